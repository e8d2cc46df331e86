"""The ``mimokd`` command line.

    mimokd pipeline                      # the main job on built-in data: generate, train, evaluate
    mimokd models                        # the zoo with UE parameters, multiplications and FLOPs
    mimokd generate --data builtin-indoor --out data/   # COST2100-format .mat files
    mimokd data generate cost2100-indoor --samples 100000 --out data/indoor   # COST 2100 model, sharded
    mimokd data stats data/indoor        # channel statistics vs the Octave reference, power maps
    mimokd train --model crnet --cr 4 --data builtin-indoor --epochs 20 --out runs/crnet4
    mimokd evaluate --checkpoint runs/crnet4/best.keras --data builtin-indoor
    mimokd distill --method codeword-mimic --teacher runs/crnet4/best.keras --student bcrnet
    mimokd ip-kd bs-export --model runs/teacher/best.keras --out bs_pairs.npz   # then ue-train, ...
    mimokd experiment lu-table1 --out runs/lu-table1   # a paper table at small scale
    mimokd export --checkpoint runs/crnet4/best.keras --out export/crnet4   # SavedModel/ONNX/TFLite
    mimokd report --models crnet,crnet_se --cr 4,16 --out runs/report      # FLOPs, latency, NMSE
    mimokd import csinet-keras --json model_CsiNet_indoor_dim128.json --h5 model_CsiNet_indoor_dim128.h5 \
        --out csinet16.keras                                 # the CsiNet authors' Keras 2 weights
    mimokd import torch --model crnet --checkpoint in_04.pth --out crnet4.keras   # PyTorch CRNet / BCRNet
    mimokd pretrained list               # the pretrained weights: recipe, NMSE, rho, the paper's figure
    mimokd pretrained download crnet_cui-cr16-cost2100-indoor   # into the cache, sha256-verified
    mimokd pretrained verify             # sha256 of every offline / checkout / cache copy
    mimokd pretrained build crnet_cui-cr16-cost2100-indoor --work-dir runs/build   # re-create from its recipe
    mimokd pretrained train --model crnet_se --cr 16 --dataset cost2100-indoor --method encoder-kd \
        --teacher crnet_cui-cr16-cost2100-indoor --epochs 2 --work-dir runs/se16   # a new entry

Run ``mimokd <command> --help`` for each command's options.

Output: results (tables, metrics) go to stdout; progress and status lines go to the ``mimokd``
logger, on stderr (``-q``: warnings and errors only; ``-v``: debug lines, TensorFlow's own log and
the traceback of an internal error; ``--debug``: as ``-v``, and the traceback of every error).
Exit status: 0 done; 1 a failed run, with one ``error:`` line (bad data, a refused run directory, a
failed check such as ``pretrained verify``'s); 2 a usage error, refused by the argument parser
before any work; 3 an exported artifact out of tolerance (a failed parity check);
:data:`INTERNAL_ERROR` an unexpected exception; 130 interrupted.
"""

import argparse
import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from mimokd import __version__
from mimokd.argtypes import (
    bits,
    compression_ratio,
    csi_source,
    existing_dir,
    existing_checkpoint,
    existing_file,
    finite_float,
    nonnegative_float,
    nonnegative_int,
    output_dir,
    output_file,
    positive_float,
    positive_int,
    scaling,
    sparsity,
    unit_interval,
)

SPLITS = ("train", "val", "test")

#: Exit status of a run that failed with a message: bad data, a refused run directory, a failed check.
FAILED = 1
#: Exit status of an exported artifact out of tolerance (a failed parity check).
PARITY_FAILED = 3
#: Exit status of an unexpected exception (sysexits' EX_SOFTWARE): a bug to report, told apart from a
#: failed run (1) and from argparse's usage error (2).
INTERNAL_ERROR = 70
#: Exit status when stdout's reader has gone (as a shell reports a process killed by SIGPIPE).
BROKEN_PIPE = 141

#: ``--jit`` values -> ``TrainConfig.jit_compile``
JIT_CHOICES = {"auto": "auto", "on": True, "off": False}

logger = logging.getLogger("mimokd.cli")  # not __name__: `python -m mimokd.cli` runs as __main__


class _StderrHandler(logging.StreamHandler):
    """A ``StreamHandler`` on whatever ``sys.stderr`` is when a record is emitted (tests replace it).

    It sits on the root logger and passes ``mimokd`` records at every level and other libraries'
    warnings and errors. Being the root's handler, it also makes a library's later
    ``logging.basicConfig()`` a no-op (tf2onnx calls it on export), which would otherwise print
    every ``mimokd`` line a second time as ``INFO:mimokd...``.
    """

    def filter(self, record):
        return (record.name == "mimokd" or record.name.startswith("mimokd.")
                or record.levelno >= logging.WARNING) and super().filter(record)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


class _Formatter(logging.Formatter):
    """``message`` for debug and info records, ``warning: message`` / ``error: message`` above."""

    def format(self, record):
        text = super().format(record)
        return text if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {text}"


def _configure_output(verbosity):
    """Send the ``mimokd`` loggers to stderr at ``verbosity`` (-1 quiet, 0 default, 1 verbose).

    Below verbose, TensorFlow's and absl's Python loggers keep only errors; quiet also turns off
    Keras' progress bars and tqdm's. The handler is added once (tests call :func:`main` repeatedly).
    """
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter("%(message)s"))
        root.addHandler(handler)
    logging.getLogger("mimokd").setLevel({-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[verbosity])
    if verbosity < 1:
        from absl import logging as absl_logging  # a Keras dependency; its own logger class, so its own call

        absl_logging.set_verbosity(absl_logging.ERROR)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if verbosity < 0:
        os.environ["TQDM_DISABLE"] = "1"
        import keras

        keras.config.disable_interactive_logging()  # progress bars go to absl's logger, at ERROR here


@contextlib.contextmanager
def _stderr_to_devnull():
    """File descriptor 2 (what C++ libraries write to) points at /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports ``tensorflow`` with stderr at /dev/null, once, then leaves ``sys.meta_path``.

    TensorFlow's C++ libraries log at load time (CUDA probing, CPU features) through absl before
    anything can configure absl, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. An import error is raised
    after stderr is back. Installed by :func:`main` only, never by a library import.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def quiet_exec_module(module):
                with _stderr_to_devnull():
                    exec_module(module)

            spec.loader.exec_module = quiet_exec_module
        return spec


def _quiet_tensorflow():
    """Silence TensorFlow's start-up log before it is imported: ``TF_CPP_MIN_LOG_LEVEL=3`` unless the
    user set it, and :class:`_QuietTensorFlowImport`. Returns an undo for ``--verbose``."""
    ours = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    finder = None
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        finder = _QuietTensorFlowImport()
        sys.meta_path.insert(0, finder)

    def undo():
        if ours:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)

    return undo



class _CommandParser(argparse.ArgumentParser):
    """A command's parser. It leaves itself in the parsed arguments as ``args.parser`` (the innermost
    one, e.g. ``data generate``'s), so that a command refuses an argument combination as argparse does:
    ``args.parser.error(message)`` prints the command's usage and exits with status 2, before any work."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, rest = super().parse_known_args(args, namespace)
        vars(namespace).setdefault("parser", self)  # a sub-command's parser was set first: it stays
        return namespace, rest


class _ListAction(argparse.Action):
    """A list option whose values are space- or comma-separated, or both (``--cr 4 16``, ``--cr 4,16``).

    Args (to ``add_argument``): ``convert``, applied to each item (``ValueError`` = a usage error);
    ``valid``, the allowed items (after ``convert``), named in the error.
    """

    def __init__(self, option_strings, dest, convert=str, valid=None, **kwargs):
        super().__init__(option_strings, dest, nargs="+", **kwargs)
        self.convert, self.valid = convert, valid

    def __call__(self, parser, namespace, values, option_string=None):
        items = [item for value in values for item in value.split(",") if item]
        try:
            converted = [self.convert(item) for item in items]
        except ValueError as err:
            raise argparse.ArgumentError(self, str(err)) from None
        bad = [item for item in converted if self.valid is not None and item not in self.valid]
        if bad:  # argparse's own wording
            raise argparse.ArgumentError(self, f"invalid choice: {bad[0]!r} (choose from "
                                         f"{', '.join(map(repr, self.valid))})")
        if not converted:
            raise argparse.ArgumentError(self, "expected at least one value")
        setattr(namespace, self.dest, converted)


def _add_list_arg(parser, option, convert=str, valid=None, **kwargs):
    """``option`` as a :class:`_ListAction` (space- or comma-separated values)."""
    parser.add_argument(option, action=_ListAction, convert=convert, valid=valid, **kwargs)


def _add_data_args(parser, default_samples, splits=None):
    """``--data``, ``--scenario``, ``--seed`` and ``--{split}-samples`` for each split of ``default_samples``.

    ``splits`` (default: those of ``default_samples``) are the splits the command reads; where
    there are several, ``--data`` may not be one file (refused by the parser, :func:`csi_source`).
    """
    parser.add_argument(
        "--data",
        type=csi_source(splits or default_samples),
        default="builtin-indoor",
        help="a registered source (builtin-indoor, builtin-outdoor), a COST2100 .mat file, or a "
        "directory of COST2100 files (default: builtin-indoor, generated here, no download)",
    )
    parser.add_argument(
        "--scenario",
        default=None,
        choices=("indoor", "outdoor"),
        help="which COST2100 files to read when --data is a directory",
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="data and training seed (default: 0)")
    for split, count in default_samples.items():
        parser.add_argument(
            f"--{split}-samples",
            type=nonnegative_int,
            default=count,
            help=f"{split} samples to use (default: {count}; all of a file when 0)",
        )


def _load(args, split):
    """The ``split`` CSI of ``--data``, at most ``--{split}-samples`` of it (0: all)."""
    from mimokd.channels import load_csi

    count = getattr(args, f"{split}_samples") or None
    kwargs = {"scenario": args.scenario} if args.scenario else {}
    return load_csi(args.data, split=split, num_samples=count, seed=args.seed, **kwargs)


#: ``--strategy`` of the commands that train on tf.distribute strategies (``mimokd.train.distribute``).
TF_STRATEGIES = ("default", "cpu", "mirrored", "multiworker")
#: ``--strategy`` of the commands whose trainers Keras' own fit steps under the JAX backend too.
DATA_PARALLEL = ("default", "data-parallel")


STRATEGY_HELP = {
    "default": "one device",
    "cpu": "tf.distribute on the CPU",
    "mirrored": "tf.distribute over all local GPUs",
    "multiworker": "refused: Keras 3's fit cannot run tf.distribute.MultiWorkerMirroredStrategy (keras#20585)",
    "data-parallel": "Keras' DataParallel under JAX, over the devices of --num-processes processes",
}


def _add_strategy_args(parser, strategies):
    """``--strategy`` (one of ``strategies``), and with ``data-parallel`` the settings of one process of the job."""
    parser.add_argument("--strategy", default="default", choices=strategies,
                        help="; ".join(f"{name}: {STRATEGY_HELP[name]}" for name in strategies) + " (default: default)")
    if "data-parallel" not in strategies:
        return
    group = parser.add_argument_group(
        "data-parallel processes (--strategy data-parallel: run the same command once per process, KERAS_BACKEND=jax "
        "is set for it; only process 0 writes --out)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="process 0's address, which every process connects to "
                       "(default: $KERAS_DISTRIBUTION_JOB_ADDRESSES; none: one process on its local devices)")
    group.add_argument("--num-processes", type=positive_int, default=None, metavar="N",
                       help="the number of processes (default: $KERAS_DISTRIBUTION_NUM_PROCESSES, else 1)")
    group.add_argument("--process-id", type=nonnegative_int, default=None, metavar="I",
                       help="this process, 0 .. N-1; 0 is the chief (default: $KERAS_DISTRIBUTION_PROCESS_ID)")


def _add_train_args(parser, epochs=20, batch_size=200, lr=2e-3, strategies=DATA_PARALLEL):
    parser.add_argument(
        "--epochs", type=positive_int, default=epochs, help=f"training epochs (default: {epochs})"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=batch_size, help=f"global batch (default: {batch_size})"
    )
    parser.add_argument("--lr", type=positive_float, default=lr, help=f"peak learning rate (default: {lr:g})")
    parser.add_argument("--jit", nargs="?", const="on", default="auto", choices=JIT_CHOICES,
                        help="compile the train step with XLA: on (plain --jit), off, or auto: XLA with a GPU, not on "
                        "a CPU, where it was measured slower (default: auto)")
    _add_strategy_args(parser, strategies)


def _add_overwrite_arg(parser):
    """``--overwrite`` of a command that writes a run directory (``mimokd.train.runs``)."""
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace a run with other settings in --out (without it such a run is refused, the differences "
        "listed; the same settings resume)",
    )


def _train_config(args):
    from mimokd.train import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        peak_lr=args.lr,
        floor_lr=min(5e-5, args.lr / 40),
        jit_compile=JIT_CHOICES[args.jit],
        seed=args.seed,
    )


def _print_metrics(label, metrics):
    print(
        f"{label}: NMSE {metrics['nmse_db']:.2f} dB (global mean), "
        f"{metrics['nmse_db_per_batch']:.2f} dB (mean of per-batch dB), "
        f"rho {metrics['rho']:.4f}, {metrics['samples']} test samples"
    )


def cmd_models(args):
    from mimokd.export.flops import COMPLEXITY_COLUMNS, zoo_complexity_table
    from mimokd.tables import markdown_table

    print(markdown_table(zoo_complexity_table(args.cr), COMPLEXITY_COLUMNS), end="")
    from mimokd.pretrained.registry import list_entries, registry_table

    entries = [e for e in list_entries() if e.cr in args.cr]
    print("\nPretrained weights (`mimokd pretrained list`; create_model(name, cr=..., weights=dataset)):")
    empty = "none registered at these ratios yet.\n" if list_entries() else "none registered yet.\n"
    print(registry_table(registry=entries) if entries else empty, end="")


def cmd_generate(args):
    from mimokd.channels.datasets import write_cost2100_dataset

    written = write_cost2100_dataset(args.data, args.out, samples={s: getattr(args, f"{s}_samples") or None
                                                                   for s in SPLITS},
                                     scenario=args.scenario, seed=args.seed, overwrite=args.overwrite)
    for path in written:
        logger.info("wrote %s", path)
    if not written:
        logger.info("%s: every file present with these settings, skipped", args.out)


def cmd_data_list(args):
    from mimokd.channels.recipes import RECIPES
    from mimokd.tables import markdown_table

    rows = [{"scenario": r.name, "model": r.model, "files": r.suffix or "-", "description": r.description}
            for r in RECIPES.values()]
    print(markdown_table(rows, [(c, c) for c in ("scenario", "model", "files", "description")]), end="")


def cmd_data_generate(args):
    from mimokd.channels.shards import write_dataset

    written = write_dataset(args.scenario, args.out, samples=args.samples, split=args.split, seed=args.seed,
                            shards=args.shards, shard_ids=args.shard_ids, workers=args.workers, format=args.format,
                            bandwidth=args.bandwidth, timing=args.timing, scaling=args.scaling,
                            steering_sign=args.steering_sign, angle_order=args.angle_order,
                            delay_offset=args.delay_offset,
                            ue_annulus=None if args.ue_annulus is None else tuple(args.ue_annulus),
                            overwrite=args.overwrite)
    logger.info("wrote %d file(s) to %s%s", len(written), args.out, "" if written else " (all present, skipped)")


def cmd_data_stats(args):
    from mimokd.channels.dataset_stats import channel_statistics, csi_power_map
    from mimokd.channels.recipes import get_recipe
    from mimokd.channels.shards import read_manifest
    from mimokd.plots import plot_maps
    from mimokd.tables import markdown_table

    manifest = read_manifest(args.dir)
    maps = {f"stored CSI ({args.split})": csi_power_map(args.dir, args.split)}
    if get_recipe(manifest["recipe"]["name"]).model == "cost2100":
        rows, port_map, reference_map = channel_statistics(args.dir, drops=args.drops)
        print(f"{manifest['recipe']['name']}: {args.drops} drops of the port vs the Octave reference fixture, "
              "two-sample KS, Bonferroni alpha = 0.01")
        print(markdown_table(rows, [("statistic", "statistic"), ("reference", "reference median"),
                                   ("port", "port median"), ("p_value", "KS p-value"), ("pass", "pass")]), end="")
        maps[f"port, {args.drops} drops"] = port_map
        maps["Octave reference"] = reference_map
    path = Path(args.png or Path(args.dir) / "power_maps.png")
    plot_maps(maps, path)
    logger.info("wrote %s", path)


def cmd_train(args):
    from mimokd.train import fit_autoencoder

    train, val = _load(args, "train"), _load(args, "val")
    out = Path(args.out or f"runs/{args.model}_cr{args.cr}")
    model, _ = fit_autoencoder(
        args.model,
        train,
        val,
        out_dir=out,
        config=_train_config(args),
        strategy=args.strategy,
        overwrite=args.overwrite,
        cr=args.cr,
    )
    _report_trained(args, f"{args.model} 1/{args.cr} (final)", out / "final.keras", model,
                    saved=f"saved {out / 'best.keras'} (best validation NMSE) and {out / 'final.keras'}")


def _report_trained(args, label, path, model=None, *, saved):
    """Log ``saved`` and print the test metrics of the trained model (``model``, else the checkpoint at
    ``path``; ``label`` names it). Under ``--strategy data-parallel`` only the chief (process 0), which
    wrote ``path``, does so, loading it on its own devices; the other processes log that they are done."""
    from mimokd.train import evaluate_autoencoder
    from mimokd.train.checkpoints import load_checkpoint
    from mimokd.train.distribute import data_parallel, is_chief, local_only, process_index

    if not is_chief():
        logger.info("process %d done; process 0 wrote the run and evaluates it", process_index())
        return
    logger.info("%s", saved)
    if label is None:
        return
    with local_only():
        if model is None or data_parallel() is not None:
            model = load_checkpoint(path)
        _print_metrics(label, evaluate_autoencoder(model, _load(args, "test")))


def cmd_evaluate(args):
    from mimokd.train import evaluate_autoencoder
    from mimokd.train.checkpoints import load_checkpoint

    model = load_checkpoint(args.checkpoint)
    _print_metrics(f"{model.name} ({args.checkpoint})", evaluate_autoencoder(model, _load(args, "test")))


def cmd_distill(args):
    from mimokd.train.checkpoints import load_checkpoint
    from mimokd.train.codeword_mimic import fit_codeword_mimic
    from mimokd.train.distill import fit_distillation, fit_encoder_kd
    from mimokd.zoo import check_teacher, create_model

    import keras

    teacher = load_checkpoint(args.teacher)
    check_teacher(teacher, origin=args.teacher)
    keras.utils.set_random_seed(args.seed)  # the student's initial weights: the same run twice is the same run
    student = create_model(args.student, cr=teacher.cr, height=teacher.height, width=teacher.width)
    train, val = _load(args, "train"), _load(args, "val")
    out = Path(args.out or f"runs/{args.student}_cr{teacher.cr}_{args.method}")
    common = {"out_dir": out, "config": _train_config(args), "overwrite": args.overwrite}
    if args.method == "output-kd":
        fit_distillation(args.method, teacher, student, train, val, weight=args.weight, **common)
    elif args.method == "autoencoder-kd":
        fit_distillation(args.method, teacher, student, train, val, alpha=args.alpha,
                         temperature=args.temperature, **common)
    elif args.method == "codeword-mimic":
        fit_codeword_mimic(teacher, student, train, val, mimic_epochs=args.mimic_epochs,
                           scheduler=args.scheduler, alpha0=args.alpha0, **common)
    else:
        fit_encoder_kd(teacher, student, train, val, **common)
        out = out / "finetune"
    _report_trained(args, f"{args.student} 1/{teacher.cr} {args.method}", out / "best.keras",
                    saved=f"saved {out / 'best.keras'} (the student, best validation NMSE)")


def cmd_ip_kd(args):
    from mimokd.train import evaluate_autoencoder
    from mimokd.train.checkpoints import load_checkpoint
    from mimokd.train.ip_kd import export_pairs, fit_decoder_on_pairs, fit_encoder_on_pairs, load_pairs
    from mimokd.zoo import ComposedAutoencoder, create_model
    from mimokd.zoo.autoencoder import copy_model

    quant = {"codeword_bits": getattr(args, "codeword_bits", None), "csi_bits": getattr(args, "csi_bits", None)}
    if args.role == "bs-export":
        model = load_checkpoint(args.model)
        size = export_pairs(model.encoder, _load(args, "train"), args.out, **quant)
        logger.info("wrote %s (%.2f MB): CSI and the BS encoder's codewords", args.out, size / 1e6)
    elif args.role == "ue-train":
        csi, codewords = load_pairs(args.pairs)
        _, _, height, width = csi.shape
        cr = 2 * height * width // codewords.shape[1]
        encoder = create_model(args.encoder, cr=cr, height=height, width=width).encoder
        fit_encoder_on_pairs(encoder, csi, codewords, out_dir=args.out, config=_train_config(args),
                             overwrite=args.overwrite)
        _report_trained(args, None, None, saved=f"saved {Path(args.out) / 'best.keras'} (the UE encoder, best "
                        "validation codeword MSE)")
    elif args.role == "ue-export":
        encoder = load_checkpoint(args.encoder, role="encoder")
        csi = load_pairs(args.pairs)[0] if args.pairs else _load(args, "train")
        size = export_pairs(encoder, csi, args.out, **quant)
        logger.info("wrote %s (%.2f MB): CSI and the UE encoder's codewords", args.out, size / 1e6)
    elif args.role == "bs-finetune":
        decoder = copy_model(load_checkpoint(args.model).decoder)
        csi, codewords = load_pairs(args.pairs)
        fit_decoder_on_pairs(decoder, codewords, csi, out_dir=args.out, config=_train_config(args),
                             overwrite=args.overwrite)
        _report_trained(args, None, None, saved=f"saved {Path(args.out) / 'best.keras'} (the BS decoder, best "
                        "validation NMSE)")
    else:  # evaluate
        encoder = load_checkpoint(args.encoder, role="encoder")
        try:
            decoder = load_checkpoint(args.decoder, role="decoder")
        except ValueError:  # a whole BS autoencoder (sequential training deploys its decoder as is)
            decoder = load_checkpoint(args.decoder).decoder
        model = ComposedAutoencoder(encoder=encoder, decoder=decoder)
        _print_metrics("UE encoder + BS decoder", evaluate_autoencoder(model, _load(args, "test")))


def _experiment_titles():
    """``{name: "source: title"}`` of every experiment (imports the registries, and so TensorFlow)."""
    from mimokd.experiments import EXPERIMENTS
    from mimokd.experiments.kong import KONG_EXPERIMENTS
    from mimokd.experiments.zhang import ZHANG_EXPERIMENTS
    from mimokd.experiments.zhang_multicell import MULTICELL_EXPERIMENTS

    titles = {name: f"{exp.source}: {exp.title}" for name, exp in EXPERIMENTS.items()}
    return titles | {name: title for name, (_, title) in
                     {**KONG_EXPERIMENTS, **ZHANG_EXPERIMENTS, **MULTICELL_EXPERIMENTS}.items()}


def _experiment_list():
    """The experiments, one ``name  title`` line each."""
    return "".join(f"{name:12s} {title}\n" for name, title in _experiment_titles().items())


class _ExperimentHelp(argparse.Action):
    """``experiment --help``: the help with every experiment listed, built from the registries only
    when asked for (they import TensorFlow)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        print("\nexperiments:\n" + _experiment_list(), end="")
        parser.exit()


def cmd_experiment(args):
    from mimokd.experiments import get_experiment, merge_experiment, parse_rows, run_experiment
    from mimokd.experiments.kong import KONG_EXPERIMENTS, PAPER, SMALL, run_kong
    from mimokd.experiments.runner import Share
    from mimokd.experiments.zhang import ZHANG_EXPERIMENTS, run_zhang
    from mimokd.experiments.zhang_multicell import MULTICELL_EXPERIMENTS, SPLIT, SPLIT_REFUSAL, run_multicell

    if args.name == "list":
        print(_experiment_list(), end="")
        return
    out = args.out or f"runs/{args.name}"
    if args.rows is not None and args.merge:
        args.parser.error("--rows trains a share of the rows, --merge writes the table from finished rows: give one")
    share = None  # Kong's and Zhang's figures: the runs of --rows i/N, or --merge
    if (args.rows is not None or args.merge) and args.name in {**KONG_EXPERIMENTS, **ZHANG_EXPERIMENTS,
                                                                **MULTICELL_EXPERIMENTS}:
        if args.name in MULTICELL_EXPERIMENTS and args.name not in SPLIT:
            args.parser.error(f"--rows / --merge: {args.name} is not split: {SPLIT_REFUSAL}")
        if args.rows == "teachers":
            args.parser.error(f"--rows teachers: {args.name} has no teachers (the CSI-KD tables have)")
        share = Share(args.name, None if args.rows is None else parse_rows(args.rows), args.merge)
    if args.name in KONG_EXPERIMENTS:
        scale = (PAPER if args.scale == "paper" else SMALL).with_overrides(
            iterations=args.iterations, batch_size=args.batch_size, test_channels=args.test_samples,
            val_channels=args.val_samples, width=args.width,
        )
        run_kong(args.name, out, scale, powers_db=args.powers, seed=args.seed, share=share)
    elif args.name in ZHANG_EXPERIMENTS or args.name in MULTICELL_EXPERIMENTS:
        from mimokd.experiments import zhang, zhang_multicell

        module = zhang if args.name in ZHANG_EXPERIMENTS else zhang_multicell
        scale = (module.PAPER if args.scale == "paper" else module.SMALL).with_overrides(
            train=args.train_samples, test=args.test_samples, epochs=args.epochs, batch_size=args.batch_size,
            width=args.width,
        )
        if args.name in ZHANG_EXPERIMENTS:
            run_zhang(args.name, out, scale, users=args.users, pilots=args.pilots, antennas=args.antennas,
                      powers_db=args.powers, max_delay=args.max_delay, seed=args.seed, share=share)
        else:
            if args.users:
                args.parser.error(f"--users does not apply to {args.name} (one user per cell)")
            run_multicell(args.name, out, scale, antennas=args.antennas, pilots=args.pilots, powers_db=args.powers,
                          max_delay=args.max_delay, seed=args.seed, share=share)
    else:
        experiment = get_experiment(args.name)
        scale = (experiment.paper if args.scale == "paper" else experiment.small).with_overrides(
            train=args.train_samples, val=args.val_samples, test=args.test_samples, epochs=args.epochs,
            batch_size=args.batch_size, teacher_epochs=args.teacher_epochs,
        )
        common = {"out_dir": out, "scale": scale, "data": args.data, "ratios": args.cr, "seed": args.seed,
                  "teachers_dir": args.teachers}
        if args.merge:
            merge_experiment(experiment, **common)
        elif args.rows is not None:
            rows = run_experiment(experiment, rows=parse_rows(args.rows), **common)
            logger.info("%d row(s) finished in %s; `--merge` writes the table once every row is there", len(rows),
                        out)
            return
        else:
            run_experiment(experiment, **common)
    if share is not None and share.rows is not None:
        logger.info("rows %s finished in %s; `--merge` writes the figure once every row is there", args.rows, out)
        return
    written = [Path(out, "results.md")] if Path(out, "results.md").is_file() else sorted(Path(out).glob("*/results.md"))
    for path in written:  # zhang-fig5 writes one table per panel, in a/ and b/
        print(path.read_text())
    if written:
        logger.info("wrote %s, results.json and the plots", ", ".join(str(p) for p in written))


def cmd_pipeline(args):
    from mimokd.pipeline import run_pipeline

    run_pipeline(
        out_dir=args.out,
        teacher=args.teacher,
        student=args.student,
        cr=args.cr,
        method=args.method,
        data=args.data,
        samples=(args.train_samples, args.val_samples, args.test_samples),
        config=_train_config(args),
        seed=args.seed,
        strategy=args.strategy,
        pretrained=args.pretrained,
        weights_dir=args.weights_dir,
        formats=args.formats,
    )
    print(Path(args.out, "results.md").read_text(), end="")


def cmd_import(args):
    from mimokd.fileio import atomic_path
    from mimokd.pretrained.importers import import_csinet_keras, import_torch_state_dict

    out = Path(args.out)
    if out.suffix != ".keras":
        args.parser.error(f"--out must name a .keras file. Received: --out {args.out}")
    try:
        if args.source == "csinet-keras":
            model, source = import_csinet_keras(args.json, args.h5), f"{args.json} + {args.h5}"
        else:
            model, source = import_torch_state_dict(args.checkpoint, model=args.model, cr=args.cr), args.checkpoint
    except ImportError as err:  # torch / safetensors not installed: say which, no traceback
        raise ValueError(str(err)) from None
    with atomic_path(out) as tmp:
        model.save(tmp)
    print(f"imported {source}: {model.name}, compression 1/{model.cr}, {model.count_params():,} weights")
    logger.info("wrote %s", out)


def _entries_arg(args):
    from mimokd.pretrained.registry import get_entry, list_entries

    if getattr(args, "all", False) and args.entries:
        args.parser.error("give entry names or --all, not both")
    return list_entries() if getattr(args, "all", False) or not args.entries else [get_entry(e) for e in args.entries]


def cmd_pretrained_list(args):
    from mimokd.pretrained.registry import registry_table

    print(registry_table(model=args.model, dataset=args.dataset), end="")


def cmd_pretrained_download(args):
    from mimokd.pretrained.storage import cache_dir_path, check_file, download_entry

    if not args.entries and not args.all:
        args.parser.error("name the entries to download (`mimokd pretrained list`), or pass --all")
    entries = _entries_arg(args)
    if not entries:
        print("No pretrained weights are registered yet; nothing to download.")
    for entry in entries:
        cached = check_file(entry, cache_dir_path(args.cache_dir) / entry.file).status == "OK"
        path = download_entry(entry, cache_dir=args.cache_dir)  # refuses a cached copy that does not match
        print(f"{entry.name}: {'already cached' if cached else 'downloaded'}, sha256 verified: {path}")


def cmd_pretrained_register(args):
    import keras

    from mimokd.pretrained.build import code_commit, measure_entry
    from mimokd.pretrained.registry import Recipe, entry_stanza
    from mimokd.zoo import create_model

    if args.weights.endswith(".keras"):
        trained = keras.saving.load_model(args.weights)
    else:
        trained = create_model(args.model, cr=args.cr)
        trained.load_weights(args.weights)
    recipe = Recipe(data=args.dataset, data_seed=args.seed, train_samples=args.train_samples, epochs=args.epochs,
                    batch_size=args.batch_size, schedule=args.schedule, method=args.method, teacher=args.teacher,
                    val_samples=args.val_samples, commit=code_commit(), machine=args.machine, notes=args.notes)
    entry = measure_entry(args.model, args.cr, args.dataset, trained, recipe=recipe, test_samples=args.test_samples,
                          out_dir=args.out_dir, data_dir=args.data_dir, paper_nmse_db=args.paper_nmse,
                          paper_source=args.paper_source)
    logger.info("wrote %s; paste into mimokd/pretrained/registry.py ENTRIES:", entry.file)
    print(entry_stanza(entry))


def cmd_pretrained_build(args):
    from mimokd.pretrained.build import build_entry
    from mimokd.pretrained.registry import entry_stanza

    entry = build_entry(args.entry, work_dir=args.work_dir, data_dir=args.data_dir, out_dir=args.out_dir,
                        epochs=args.epochs, workers=args.workers)
    logger.info("wrote %s; its entry (replace the registered one to publish it):", entry.file)
    print(entry_stanza(entry))


def cmd_pretrained_train(args):
    from mimokd.pretrained.build import describe_schedule, train_entry
    from mimokd.pretrained.registry import Recipe, entry_stanza

    recipe = Recipe(data=args.dataset, data_seed=args.seed, train_samples=args.train_samples, epochs=args.epochs,
                    batch_size=args.batch_size, schedule=describe_schedule(args.method, args.epochs),
                    method=args.method, teacher=args.teacher, init=args.init, val_samples=args.val_samples,
                    machine=args.machine, notes=args.notes)
    entry = train_entry(args.model, args.cr, args.dataset, recipe, work_dir=args.work_dir, data_dir=args.data_dir,
                        test_samples=args.test_samples, out_dir=args.out_dir, paper_nmse_db=args.paper_nmse,
                        paper_source=args.paper_source, workers=args.workers)
    logger.info("wrote %s; paste into mimokd/pretrained/registry.py ENTRIES:", entry.file)
    print(entry_stanza(entry))


def cmd_pretrained_verify(args):
    from mimokd.pretrained.storage import verify_entries

    entries = _entries_arg(args)
    if not entries:
        print("No pretrained weights are registered yet; nothing to verify.")
        return 0
    checks = verify_entries(entries, weights_dir=args.weights_dir, cache_dir=args.cache_dir)
    for entry in entries:
        print(entry.name)
        for c in (c for c in checks if c.entry == entry.name):
            found = (f" (sha256 {c.sha256}, {c.size:,} bytes; expected {entry.sha256}, {entry.size:,})"
                     if c.status == "MISMATCH" else "")
            print(f"  {c.where:<8}  {c.status:<8}  {c.path}{found}")
    bad = [c for c in checks if c.status == "MISMATCH"]
    none = [e.name for e in entries if not any(c.entry == e.name and c.status == "OK" for c in checks)]
    counts = {status: sum(c.status == status for c in checks) for status in ("OK", "missing", "MISMATCH")}
    print(f"{len(entries)} entries: {counts['OK']} copies OK, {counts['missing']} missing, {counts['MISMATCH']} "
          "MISMATCH" + (f"; no verified copy here of {', '.join(none)}" if none else ""))
    if bad:
        logger.error("%d file(s) do not match the registry's sha256; they were neither loaded nor changed: delete "
                     "or replace them", len(bad))
        return 1
    return 0


def _models_to_export(args):
    """``[(label, model, run_dir)]`` from ``--checkpoint`` files or run directories, or from ``--models``
    x ``--cr`` (untrained). ``run_dir`` is that of a Kong / Zhang system (its inputs are drawn as its
    run drew its data), else ``None``.

    A checkpoint whose weights hold NaN or Inf is refused here, naming the file and a layer.
    """
    from mimokd.export.artifacts import check_finite_weights
    from mimokd.export.systems import SYSTEMS, load_system, resolve_checkpoint
    from mimokd.train.checkpoints import load_checkpoint
    from mimokd.zoo import create_model

    if args.checkpoint:
        models = []
        for c in args.checkpoint:
            c = resolve_checkpoint(c)
            model, run_dir = load_system(c) or (None, None)
            if model is None:
                try:
                    model = load_checkpoint(c, role=args.role)
                except ValueError as error:
                    raise ValueError(f"{error}; or {', or '.join(SYSTEMS.values())}") from None
            label = c.parent.name if c.stem in ("best", "final") else c.stem
            check_finite_weights(model, f"checkpoint {c}")
            models.append((label, model, run_dir))
        return models
    if not args.models:
        args.parser.error("give the models to export: --checkpoint FILE (trained), or --models NAMES --cr RATIOS")
    return [(f"{name}_cr{cr}", create_model(name, cr=cr), None) for name in args.models for cr in args.cr]


def _export_data(args, model, run_dir, cache):
    """``(calibration, check)`` inputs of ``model``: CSI (the first ``--calibration-samples`` of the training
    split, the test split; loaded once into ``cache``), or a Kong / Zhang system's own inputs, drawn as
    its run drew its data (:func:`mimokd.export.systems.system_inputs`)."""
    from mimokd.export.systems import system_inputs

    if run_dir is not None:
        return system_inputs(model, run_dir, calibration_samples=args.calibration_samples,
                             check_samples=args.test_samples or 500)
    if not cache:
        args.train_samples = args.calibration_samples
        cache.extend([_load(args, "train"), _load(args, "test")])
    return tuple(cache)


def cmd_export(args):
    from mimokd.export import export_model
    from mimokd.export.runtimes import set_tensorflow_threads

    set_tensorflow_threads(args.threads)  # first: TensorFlow's pools are fixed once it starts
    models = _models_to_export(args)  # before the data: a broken checkpoint is named at once
    cache = []
    for k, (label, model, run_dir) in enumerate(models, 1):
        calibration, check = _export_data(args, model, run_dir, cache)
        out = Path(args.out) / label if args.checkpoint is None or len(args.checkpoint) > 1 else Path(args.out)
        logger.info("[%d/%d] %s: export and check %s", k, len(models), label,
                    ", ".join(args.formats or ["every format"]))
        manifest = export_model(model, out, calibration=calibration, check=check, parts=args.parts,
                                formats=args.formats, threads=args.threads)
        for a in manifest["artifacts"]:
            nmse = ""
            if a["nmse_loss_db"] is not None:
                nmse = f", NMSE {a['nmse_db_artifact']:.2f} dB ({a['nmse_loss_db']:+.3f})"
            if a["mismatches"] is not None:
                nmse = f", {a['mismatches']} of {a['outputs']:,} bits flipped"
            print(f"{a['path']}: {a['size_bytes']:,} B, max |diff| {a['max_abs_diff']:.2g} "
                  f"(allowed {a['allowed_abs_diff']:.2g}){nmse}")
        logger.info("wrote %s", out / "manifest.json")


def cmd_report(args):
    import platform

    import keras

    from mimokd.export.report import report_model, write_report
    from mimokd.export.runtimes import set_tensorflow_threads

    set_tensorflow_threads(args.threads)  # first: TensorFlow's pools are fixed once it starts
    models = _models_to_export(args)  # before the data: a broken checkpoint is named at once
    complexity, artifacts, cache = [], [], []
    for k, (label, model, run_dir) in enumerate(models, 1):
        calibration, check = _export_data(args, model, run_dir, cache)
        logger.info("[%d/%d] %s: export, check and time %s", k, len(models), label,
                    ", ".join(args.formats or ["every format"]))
        rows = report_model(model, Path(args.out) / label, calibration=calibration, check=check,
                            parts=args.parts, formats=args.formats, threads=args.threads,
                            warmup=args.warmup, runs=args.runs, label=label)
        complexity += rows[0]
        artifacts += rows[1]
    data = ("each system's run (its config.json)" if all(run_dir for _, _, run_dir in models) else args.data)
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "threads": args.threads,
        "data": f"{data}, {len(check)} test samples, {len(calibration)} calibration samples",
        "keras": keras.__version__,
        "latency": f"single sample, median / p90 of {args.runs} calls after {args.warmup} warm-up calls",
    }
    write_report(complexity, artifacts, args.out, meta)
    print(Path(args.out, "report.md").read_text())
    logger.info("wrote %s/report.md, report.json, nmse_vs_flops.png, latency.png", args.out)


def _zlib_bytes(model):
    """Size of a model's weights as float32 after zlib (what pruning's zeros save in a zip)."""
    import zlib

    import numpy as np

    return len(zlib.compress(b"".join(np.asarray(w, np.float32).tobytes() for w in model.get_weights()), 6))


def cmd_compress(args):
    import numpy as np

    from mimokd.export.artifacts import ENCODER, deployable_parts, part_inputs_and_score
    try:
        from mimokd.export.compress import prune_encoder, quantization_aware_encoder
    except ImportError as err:  # the optional `compress` extra is missing: its message names the package and pip
        raise ValueError(str(err)) from None
    from mimokd.export.formats import FORMATS
    from mimokd.export.latency import measure_latency
    from mimokd.export.parity import ParityError, check_parity
    from mimokd.export.runtimes import load_runner, set_tensorflow_threads
    from mimokd.fileio import atomic_path, write_json
    from mimokd.train.checkpoints import load_checkpoint
    from mimokd.zoo import ComposedAutoencoder

    if not args.prune and not args.qat:
        args.parser.error("nothing to do: give --prune SPARSITY and/or --qat")
    set_tensorflow_threads(args.threads)  # first: TensorFlow's pools are fixed once it starts
    model = load_checkpoint(args.checkpoint)
    train, check = _load(args, "train"), _load(args, "test")
    inputs, score = part_inputs_and_score(model, deployable_parts(model)["encoder"], check)
    out = Path(args.out)
    summary = {"checkpoint": args.checkpoint, "nmse_db": score(model.encoder.predict(check, verbose=0)),
               "encoder_zlib_bytes": _zlib_bytes(model.encoder)}
    if args.prune:
        layers = "all" if args.prune_layers == "all" else (args.prune_layers,)
        pruned = prune_encoder(model.encoder, train, sparsity=args.prune, epochs=args.epochs,
                               batch_size=args.batch_size, learning_rate=args.lr, layers=layers)
        joined = ComposedAutoencoder(encoder=pruned.encoder, decoder=model.decoder, name=f"{model.name}_pruned")
        with atomic_path(out / "pruned.keras") as tmp:
            joined.save(tmp)
        summary["pruning"] = {
            "sparsity": pruned.sparsity,
            "nmse_db": score(pruned.encoder.predict(inputs, verbose=0)),
            "codeword_mse": pruned.mse,
            "codeword_mse_one_shot": pruned.mse_one_shot,
            "encoder_zlib_bytes": _zlib_bytes(pruned.encoder),
        }
        print(f"pruned encoder: sparsity {pruned.sparsity}, NMSE {summary['nmse_db']:.2f} -> "
              f"{summary['pruning']['nmse_db']:.2f} dB")
        logger.info("wrote %s", out / "pruned.keras")
    if args.qat:
        quantized = quantization_aware_encoder(model.encoder, train, epochs=args.epochs,
                                               batch_size=args.batch_size, learning_rate=args.lr)
        path = out / "encoder.qat-int8.tflite"
        with atomic_path(path) as tmp:
            tmp.write_bytes(quantized.tflite)
        fmt = FORMATS["tflite-int8"]
        runner = load_runner(path, fmt, ENCODER, threads=args.threads)
        parity = check_parity(model.encoder, runner, fmt, inputs, score=score, strict=False)
        latency = measure_latency(runner, np.asarray(inputs[:1]), warmup=100, runs=1000)
        summary["qat"] = {**parity.as_dict(), "path": str(path), "size_bytes": path.stat().st_size,
                          "latency_median_us": latency.median_us, "latency_p90_us": latency.p90_us,
                          "codeword_mse": quantized.mse}
        print(f"QAT int8 encoder: NMSE {parity.nmse_db_keras:.2f} -> {parity.nmse_db_artifact:.2f} dB "
              f"({parity.nmse_loss_db:+.3f}), {latency.median_us:.1f} µs median")
        logger.info("wrote %s", path)
    write_json(out / "compress.json", summary)
    logger.info("wrote %s", out / "compress.json")
    if args.qat and parity.failure:
        raise ParityError(parity.failure)


def _add_export_args(parser, out, parts_default):
    from mimokd.export.formats import FORMATS

    source = parser.add_argument_group("what to export (one of)")
    source.add_argument("--checkpoint", action="append", type=existing_checkpoint, default=None,
                        help="a trained .keras file, or the run directory of a Kong / Zhang experiment (its "
                        "best.keras; the check inputs are drawn from its config.json); repeat for several")
    _add_list_arg(source, "--models", default=None, metavar="NAME",
                  help="zoo names, untrained, space- or comma-separated (e.g. crnet,crnet_se)")
    _add_list_arg(parser, "--cr", compression_ratio, default=[4], metavar="CR",
                  help="compression ratios for --models, space- or comma-separated (default: 4)")
    parser.add_argument("--role", default="autoencoder", choices=("autoencoder", "encoder", "decoder"),
                        help="what the checkpoint holds (default: autoencoder)")
    _add_list_arg(parser, "--parts", default=None, metavar="PART",
                  help=f"deployable parts: encoder, decoder of a CSI model; receiver (receiver_0, ... when "
                  f"per user), transmitter of a Kong run; csi_net, power_net, beamformer of a Zhang run "
                  f"(default: {parts_default})")
    _add_list_arg(parser, "--formats", valid=list(FORMATS), default=None, metavar="FORMAT",
                  help=f"artifact formats: {', '.join(FORMATS)} (default: all; a decoder leaves out tflite-int8, "
                  "see README)")
    parser.add_argument("--out", type=output_dir, default=out, help=f"output directory (default: {out})")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="runtime threads for checks and timing (default: 1)")
    parser.add_argument("--calibration-samples", type=positive_int, default=200,
                        help="training CSI samples that calibrate int8 (default: 200)")
    _add_data_args(parser, {"test": 500}, splits=("train", "test"))


def build_parser():
    from mimokd.export.formats import FORMATS

    parser = argparse.ArgumentParser(
        prog="mimokd",
        description="CSI-feedback model zoo with knowledge distillation (Keras 3). "
        "Start with `mimokd pipeline`: it generates COST2100-like CSI, loads a pretrained teacher, "
        "distills a student from it and evaluates both, in a few minutes on a laptop CPU, no download.",
        epilog="Run `mimokd <command> --help` for a command's options. Results go to stdout, progress to "
        "stderr; exit status 1 is a failed run (one error line), 2 a usage error, 3 an artifact out of "
        f"tolerance, {INTERNAL_ERROR} an internal error (--debug: its traceback).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=0,
                           help="warnings and errors only: no progress lines or bars (results still print)")
    verbosity.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                           help="debug lines, TensorFlow's own log, and the traceback of an internal error")
    parser.add_argument("--debug", action="store_true",
                        help="as --verbose, and the traceback of every error (a failed run's too)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command", parser_class=_CommandParser)

    p = sub.add_parser(
        "pipeline",
        help="the main job: generate data, load a pretrained teacher, distill a student, evaluate, export",
        description="Generate CSI (the calibrated cost2100-indoor recipe by default; written and read back "
        "in the COST2100 .mat format), load the teacher's pretrained weights (or train it where none are "
        "registered), train the student, train it again by KD from the teacher, evaluate them beside the "
        "papers' figures, export the distilled student's UE encoder, and write results.md, results.json "
        "and curves.png to --out.",
    )
    p.add_argument("--out", type=output_dir, default="runs/pipeline", help="output directory (default: runs/pipeline)")
    p.add_argument("--teacher", default="crnet_cui", help="teacher model name (default: crnet_cui)")
    p.add_argument("--student", default="crnet_se", help="student model name (default: crnet_se)")
    p.add_argument("--data", default="cost2100-indoor",
                   help="a recipe of `mimokd data list` (generated here) or builtin-indoor / builtin-outdoor "
                   "(default: cost2100-indoor)")
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="train the teacher here even where pretrained weights exist")
    p.add_argument("--weights-dir", type=existing_dir, default=None, help="a folder of offline pretrained weight files")
    p.add_argument("--method", default="encoder-kd",
                   choices=("output-kd", "autoencoder-kd", "codeword-mimic", "encoder-kd", "ip-kd"),
                   help="the KD method for the student (default: encoder-kd)")
    p.add_argument("--cr", type=compression_ratio, default=16, help="compression ratio 1/gamma (default: 16)")
    _add_list_arg(p, "--formats", valid=list(FORMATS), default=None, metavar="FORMAT",
                  help=f"the UE encoder's export formats: {', '.join(FORMATS)} (default: all)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="data and training seed (default: 0)")
    p.add_argument("--train-samples", type=positive_int, default=3000, help="(default: 3000)")
    p.add_argument("--val-samples", type=positive_int, default=500, help="(default: 500)")
    p.add_argument("--test-samples", type=positive_int, default=1000, help="(default: 1000)")
    # a few minutes on 2 CPU cores; the paper scale is --epochs 1000 --train-samples 100000
    _add_train_args(p, epochs=5, batch_size=50, strategies=TF_STRATEGIES)
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("models", help="list the zoo: UE parameters, multiplications, FLOPs")
    _add_list_arg(p, "--cr", compression_ratio, default=[4, 8, 16, 32], metavar="CR",
                  help="compression ratios, space- or comma-separated (default: 4 8 16 32)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "generate", help="write train/val/test CSI as COST2100-format .mat files",
        description="Write the train, val and test splits of --data as COST2100 .mat files into --out, with "
        "generate.json (the settings, each file's samples and sha256). A rerun with the same settings skips "
        "the files that match and rewrites missing or damaged ones; other settings are refused unless --overwrite.")
    _add_data_args(p, {"train": 20000, "val": 2000, "test": 2000})
    p.add_argument("--out", type=output_dir, required=True, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset of other settings in --out")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("data", help="channel datasets: list, generate (COST 2100, 3GPP 38.901), stats")
    actions = p.add_subparsers(dest="action", required=True, metavar="action")
    a = actions.add_parser("list", help="the dataset scenarios (recipes) that `data generate` knows")
    a.set_defaults(func=cmd_data_list)
    a = actions.add_parser(
        "generate", help="generate a split of a scenario as .npz shards or COST2100 .mat files",
        description="Generate one split of a scenario with the built-in channel models (COST 2100 port, "
        "3GPP TR 38.901) into --out: sharded .npz (streamable with tf.data) or the public COST2100 .mat layout. "
        "Writes are atomic; manifest.json records each file's samples and sha256, checked on every load. A rerun "
        "with the same settings skips the files that match and regenerates missing or damaged ones; other "
        "settings are refused unless --overwrite. Shards made on other machines (--shard-ids) with the same seed "
        "form the same dataset: copy them in and rerun to check and record them.")
    a.add_argument("scenario", help="a name from `mimokd data list`, e.g. cost2100-indoor")
    a.add_argument("--samples", type=positive_int, required=True, help="samples of the split")
    a.add_argument("--out", type=output_dir, required=True, help="the dataset folder")
    a.add_argument("--split", default="train", choices=SPLITS, help="(default: train)")
    a.add_argument("--seed", type=nonnegative_int, default=0,
                   help="dataset seed; each split derives its own (default: 0)")
    a.add_argument("--shards", type=positive_int, default=None, help="number of .npz shards (default: one per 10,000)")
    a.add_argument("--shard-ids", type=nonnegative_int, nargs="+", default=None, metavar="K",
                   help="write only these shards")
    a.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    a.add_argument("--format", default="npz", choices=("npz", "mat"), help="(default: npz)")
    a.add_argument("--bandwidth", type=positive_float, default=None,
                   help="[Hz] (default: the recipe's; `mimokd data list` shows the COST 2100 ones)")
    a.add_argument("--timing", default=None, choices=("first-path", "absolute"),
                   help="delay origin (COST 2100; default absolute)")
    a.add_argument("--delay-offset", type=nonnegative_float, default=None,
                   help="[s] added to every delay: the window opens this long before the origin (COST 2100)")
    a.add_argument("--angle-order", default=None, choices=("centered", "dft"),
                   help="angle rows: centered (broadside in the middle, default) or dft (broadside first)")
    a.add_argument("--ue-annulus", type=nonnegative_float, nargs=2, default=None, metavar=("R_MIN", "R_MAX"),
                   help="[m] UE uniform in this annulus around the BS instead of the square (COST 2100)")
    a.add_argument("--scaling", type=scaling, default=None,
                   help="'peak' (per sample, default) or a global scale factor")
    a.add_argument("--steering-sign", type=int, default=None, choices=(1, -1), help="BS array sign (COST 2100)")
    a.add_argument("--overwrite", action="store_true",
                   help="replace what --out holds with other settings (the split, or the whole dataset for "
                   "another scenario, seed or format)")
    a.set_defaults(func=cmd_data_generate)
    a = actions.add_parser("stats", help="channel statistics of a dataset vs the Octave reference, and power maps")
    a.add_argument("dir", type=existing_dir, help="a folder written by `mimokd data generate`")
    a.add_argument("--split", default="train", choices=SPLITS, help="the split of the stored-CSI map")
    a.add_argument("--drops", type=positive_int, default=600,
                   help="drops drawn again for the statistics (default: 600)")
    a.add_argument("--png", type=output_file, default=None, help="the PNG of the maps (default: DIR/power_maps.png)")
    a.set_defaults(func=cmd_data_stats)

    p = sub.add_parser("train", help="train one zoo autoencoder (vanilla MSE, warm-up cosine LR)")
    p.add_argument("--model", required=True, help="a name from `mimokd models`, e.g. crnet")
    p.add_argument("--cr", type=compression_ratio, default=4, help="compression ratio 1/gamma (default: 4)")
    p.add_argument("--out", type=output_dir, default=None, help="run directory (default: runs/<model>_cr<cr>)")
    _add_data_args(p, {"train": 20000, "val": 2000, "test": 2000})
    _add_train_args(p, strategies=(*TF_STRATEGIES, "data-parallel"))
    _add_overwrite_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "distill",
        help="train a student from a teacher checkpoint (output KD, autoencoder KD, codeword mimic, encoder KD)",
        description="Knowledge distillation from a trained teacher (a .keras autoencoder) into a zoo "
        "student of the same compression ratio. Writes a run directory (best.keras = the student).",
    )
    p.add_argument("--method", required=True,
                   choices=("output-kd", "autoencoder-kd", "codeword-mimic", "encoder-kd"))
    p.add_argument("--teacher", type=existing_file, required=True,
                   help="the teacher's .keras checkpoint (e.g. from `mimokd train`)")
    p.add_argument("--student", required=True, help="the student's zoo name, e.g. bcrnet or crnet_se")
    p.add_argument("--out", type=output_dir, default=None,
                   help="run directory (default: runs/<student>_cr<cr>_<method>)")
    p.add_argument("--weight", type=unit_interval, default=0.5, help="output KD: weight of the ground-truth MSE (0.5)")
    p.add_argument("--alpha", type=unit_interval, default=0.3, help="autoencoder KD: alpha of eq. (10) (0.3)")
    p.add_argument("--temperature", type=positive_float, default=5.0, help="autoencoder KD: t of eq. (9) (5)")
    p.add_argument("--mimic-epochs", type=nonnegative_int, default=None,
                   help="codeword mimic: T_cm (default: epochs / 5)")
    p.add_argument("--scheduler", default="cosine", choices=("cosine", "linear", "constant"),
                   help="codeword mimic: alpha(t) (cosine, eq. 5)")
    p.add_argument("--alpha0", type=nonnegative_float, default=1e-4, help="codeword mimic: alpha0 of eq. (5) (1e-4)")
    _add_data_args(p, {"train": 20000, "val": 2000, "test": 2000})
    _add_train_args(p)
    _add_overwrite_arg(p)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser(
        "ip-kd",
        help="the two-party (IP-protecting) encoder KD: each role a command, only pairs files exchanged",
        description="Cui et al.'s IP-protecting encoder KD. BS: `bs-export` writes CSI and its teacher's "
        "codewords; UE: `ue-train` trains its encoder on that file and `ue-export` writes its own "
        "codewords; BS: `bs-finetune` fine-tunes its decoder on the UE's file; `evaluate` joins the two. "
        "Sequential training is bs-export (of a BS model without a teacher) + ue-train + evaluate.",
    )
    roles = p.add_subparsers(dest="role", required=True, metavar="role")
    r = roles.add_parser("bs-export", help="BS: write CSI and its encoder's codewords to a pairs file")
    r.add_argument("--model", type=existing_file, required=True,
                   help="the BS's autoencoder (.keras), e.g. a trained teacher")
    r.add_argument("--out", type=output_file, required=True, help="the pairs file to write (.npz)")
    _add_data_args(r, {"train": 20000})
    r = roles.add_parser("ue-train", help="UE: train a zoo encoder on a pairs file (MSE to the codewords)")
    r.add_argument("--pairs", type=existing_file, required=True, help="the BS's pairs file")
    r.add_argument("--encoder", required=True, help="zoo name whose encoder the UE trains, e.g. crnet_se")
    r.add_argument("--out", type=output_dir, required=True, help="run directory (best.keras = the encoder)")
    r.add_argument("--seed", type=nonnegative_int, default=0, help="training seed (default: 0)")
    _add_train_args(r)
    _add_overwrite_arg(r)
    r = roles.add_parser("ue-export", help="UE: write CSI and its encoder's codewords to a pairs file")
    r.add_argument("--encoder", type=existing_file, required=True, help="the UE encoder (.keras from ue-train)")
    r.add_argument("--pairs", type=existing_file, default=None,
                   help="take the CSI of this pairs file (default: --data)")
    r.add_argument("--out", type=output_file, required=True, help="the pairs file to write (.npz)")
    _add_data_args(r, {"train": 20000})
    r = roles.add_parser("bs-finetune", help="BS: fine-tune its decoder on the UE's pairs file")
    r.add_argument("--model", type=existing_file, required=True,
                   help="the BS's autoencoder (.keras) whose decoder is tuned")
    r.add_argument("--pairs", type=existing_file, required=True, help="the UE's pairs file")
    r.add_argument("--out", type=output_dir, required=True, help="run directory (best.keras = the decoder)")
    r.add_argument("--seed", type=nonnegative_int, default=0, help="training seed (default: 0)")
    _add_train_args(r, epochs=5, lr=2e-4)
    _add_overwrite_arg(r)
    for r in roles.choices["bs-export"], roles.choices["ue-export"]:
        r.add_argument("--codeword-bits", type=bits, default=None, help="quantize codewords to so many bits (1-16)")
        r.add_argument("--csi-bits", type=bits, default=None, help="quantize CSI to so many bits (1-16)")
    r = roles.add_parser("evaluate", help="NMSE of a UE encoder joined to a BS decoder")
    r.add_argument("--encoder", type=existing_file, required=True, help="the UE encoder (.keras)")
    r.add_argument("--decoder", type=existing_file, required=True,
                   help="the BS decoder (.keras from bs-finetune, or an autoencoder)")
    _add_data_args(r, {"test": 2000})
    p.set_defaults(func=cmd_ip_kd)

    p = sub.add_parser(
        "experiment",
        help="run a paper table or figure (Lu et al., Cui et al., Kong et al., Zhang et al.); `list` lists them",
        description="Train every row of a paper table or figure at a scale (small: minutes on 2 CPU cores; paper: "
        "the paper's samples and epochs), write results.md/json beside the paper's numbers, with plots, and "
        "print results.md. Interrupted experiments resume.",
        add_help=False,
    )
    p.add_argument("-h", "--help", action=_ExperimentHelp, help="show this help message, with every experiment")
    p.add_argument("name", help="an experiment name (listed below), or `list`")
    p.add_argument("--scale", default="small", choices=("small", "paper"), help="(default: small)")
    p.add_argument("--out", type=output_dir, default=None, help="output directory (default: runs/<name>)")
    _add_list_arg(p, "--cr", compression_ratio, default=None, metavar="CR",
                  help="compression ratios, space- or comma-separated (default: the table's)")
    p.add_argument("--teachers", type=output_dir, default=None,
                   help="where teachers are trained or found (default: <out>/teachers)")
    p.add_argument("--data", default="builtin-indoor", help="CSI source (default: builtin-indoor)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="data and training seed (default: 0)")
    p.add_argument("--rows", default=None, metavar="i/N",
                   help="train only the rows whose index is i modulo N (a share of the table, e.g. one task of a job "
                   "array), each in its own run directory; no table: --merge writes it. Rows: lu-*, cui-*, "
                   "kd-methods: the students (their teachers already in --teachers; `--rows teachers` trains "
                   "those, --cr splits them); kong-fig*: the DNNs (setup, scheme, P); zhang-fig2/4/5/6, "
                   "zhang-table1: the sweep points (all schemes of a point). zhang-fig7/8 are not split")
    p.add_argument("--merge", action="store_true",
                   help="write the table and plots from the finished rows in --out (copied together from the "
                   "--rows runs; kong-fig*: with the codebook baselines); refuses, naming them, if rows are missing. "
                   "Give the runs' scale options")
    for option in ("train-samples", "val-samples", "test-samples", "epochs", "batch-size", "teacher-epochs"):
        p.add_argument(f"--{option}", type=positive_int, default=None, help="override the scale's value")
    # Kong et al. (kong-fig*): iterations per DNN, the hidden-width factor, the powers in dB
    p.add_argument("--iterations", type=positive_int, default=None, help="kong-fig*: training iterations per DNN")
    p.add_argument("--width", type=positive_float, default=None,
                   help="kong-fig*, zhang-*: factor on the paper's layer widths")
    _add_list_arg(p, "--powers", finite_float, default=None, metavar="P",
                  help="kong-fig2/3: P values in dB; zhang-*: the one power (SNR dB; dBm for fig6-8), "
                  "zhang-fig7: the test powers in dBm")
    # Zhang et al. (zhang-*): the swept users, pilots and antennas
    _add_list_arg(p, "--users", positive_int, default=None, metavar="K",
                  help="zhang-*: the swept K (K = Nt in fig2 / fig4)")
    _add_list_arg(p, "--pilots", positive_int, default=None, metavar="L",
                  help="zhang-fig5 / fig6: the swept pilot lengths L")
    _add_list_arg(p, "--antennas", positive_int, default=None, metavar="NT",
                  help="zhang-fig5 / table1 / fig7 / fig8: Nt (one value); zhang-fig6: the swept Nt")
    p.add_argument("--max-delay", type=positive_float, default=None,
                   help="zhang-fig5 / fig6-8 / table1: the FDD path-delay range in seconds (default: 1e-4)")
    _add_strategy_args(p, DATA_PARALLEL)  # refused with the reason (_start_strategy)
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser(
        "export",
        help="export encoder (UE) and decoder (BS) to SavedModel, ONNX and TFLite, each checked",
        description="Write every deployable part in every format, load each artifact back in "
        "TensorFlow / onnxruntime / LiteRT and check it against the Keras model (max |diff| and "
        "the autoencoder's NMSE); a parity failure is an error. Writes manifest.json.",
    )
    _add_export_args(p, "export", "all the model has")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "report",
        help="per model and artifact: params, mults, FLOPs, size, latency, NMSE (markdown, JSON, plots)",
        description="Export each model's UE encoder in every format, then measure single-sample "
        "latency in each runtime and the NMSE each artifact keeps; count parameters, "
        "multiplications and FLOPs (Cui et al. eq. 13-14 and a graph count).",
    )
    _add_export_args(p, "runs/report", "encoder")
    p.add_argument("--runs", type=positive_int, default=1000, help="timed calls per artifact (default: 1000)")
    p.add_argument("--warmup", type=nonnegative_int, default=100, help="untimed calls first (default: 100)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "compress",
        help="prune and/or quantization-aware-train a UE encoder (tfmot), fine-tuned on its own codewords",
        description="Magnitude pruning (--prune) writes pruned.keras (pruned encoder + the same "
        "decoder; export it like any checkpoint); --qat writes encoder.qat-int8.tflite, checked "
        "like a tflite-int8 export. Both fine-tune on the MSE to the original encoder's codewords, "
        "so the BS decoder needs no change. Writes compress.json. Needs the optional compress extra "
        '(tensorflow-model-optimization, tf_keras): pip install "mimokd[compress]".',
    )
    p.add_argument("--checkpoint", type=existing_file, required=True, help="a trained autoencoder .keras file")
    p.add_argument("--prune", type=sparsity, default=None, help="target sparsity of the pruned kernels, e.g. 0.5")
    p.add_argument("--prune-layers", default="dense", choices=("dense", "conv", "all"),
                   help="which kernels to prune (default: dense, the codeword layer)")
    p.add_argument("--qat", action="store_true", help="quantization-aware training to a full-integer int8 TFLite")
    p.add_argument("--out", type=output_dir, default="runs/compress", help="output directory (default: runs/compress)")
    p.add_argument("--threads", type=positive_int, default=1, help="runtime threads for the checks (default: 1)")
    # 6 epochs of 5,000 samples at 1e-4: QAT of CRNet-SE 1/4 lost 0.50 dB after 2 epochs, 0.26 after 6,
    # 0.25 after 20; 1e-5 and 1e-3 did worse (README, "Compression")
    p.add_argument("--epochs", type=positive_int, default=6, help="fine-tuning epochs (default: 6)")
    p.add_argument("--batch-size", type=positive_int, default=50, help="fine-tuning batch (default: 50)")
    p.add_argument("--lr", type=positive_float, default=1e-4, help="learning rate of the fine-tunes (default: 1e-4)")
    _add_data_args(p, {"train": 5000, "test": 500})
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser(
        "import",
        help="convert a published checkpoint (CsiNet authors' Keras 2, PyTorch CRNet / BCRNet) to .keras",
        description="Load a checkpoint of the field's public code into the zoo model of the same architecture, "
        "checking every layer and shape, and write it as a .keras file (atomically) that evaluate, export, "
        "distill and fit take like any other. PyTorch files are read with torch.load(weights_only=True) "
        "(needs torch) or safetensors.",
    )
    sources = p.add_subparsers(dest="source", required=True, metavar="source")
    s = sources.add_parser("csinet-keras", help="the CsiNet authors' model_CsiNet_*.json + .h5 (Keras 2) "
                           "-> csinet_authors")
    s.add_argument("--json", type=existing_file, required=True,
                   help="the model config, e.g. model_CsiNet_indoor_dim128.json")
    s.add_argument("--h5", type=existing_file, required=True, help="the weights, e.g. model_CsiNet_indoor_dim128.h5")
    s.add_argument("--out", type=output_file, required=True, help="the .keras file to write")
    s = sources.add_parser("torch", help="a state dict (.pth / .pt / .safetensors) of the public CRNet or "
                           "BCRNet code -> crnet / bcrnet")
    s.add_argument("--model", required=True, choices=("crnet", "bcrnet"), help="the reference architecture")
    s.add_argument("--checkpoint", type=existing_file, required=True,
                   help="the .pth / .pt (torch.save) or .safetensors file")
    s.add_argument("--cr", type=compression_ratio, default=None,
                   help="compression ratio (default: from the encoder fc weight)")
    s.add_argument("--out", type=output_file, required=True, help="the .keras file to write")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "pretrained",
        help="pretrained weights: list, download, verify sha256, register a trained model, build from the recipe",
        description="The registry of pretrained weights (create_model(name, cr=..., weights=dataset)). Files are "
        "looked up in --weights-dir / $MIMOKD_WEIGHTS_DIR, the checkout's pretrained/weights/, then the cache "
        "(--cache-dir / $MIMOKD_CACHE_DIR, default ~/.keras/mimokd), and downloaded from $MIMOKD_WEIGHTS_URL or "
        "the repository's release tag. A file whose sha256 does not match is never loaded nor overwritten.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="action")
    a = actions.add_parser("list", help="the registry as a table: recipe, NMSE (both conventions), rho, paper")
    a.add_argument("--model", default=None, help="only this model, e.g. crnet_cui")
    a.add_argument("--dataset", default=None, help="only this dataset, e.g. cost2100-indoor")
    a.set_defaults(func=cmd_pretrained_list)
    a = actions.add_parser("download", help="download entries into the cache (sha256-verified)")
    a.add_argument("entries", nargs="*", metavar="ENTRY", help="entry names, e.g. crnet_cui-cr16-cost2100-indoor")
    a.add_argument("--all", action="store_true", help="every registered entry")
    a.add_argument("--cache-dir", type=output_dir, default=None,
                   help="the cache (default: $MIMOKD_CACHE_DIR or ~/.keras/mimokd)")
    a.set_defaults(func=cmd_pretrained_download)
    a = actions.add_parser("verify", help="check the sha256 of every local copy: OK, missing or MISMATCH (exit 1)")
    a.add_argument("entries", nargs="*", metavar="ENTRY", help="entry names (default: all)")
    a.add_argument("--weights-dir", type=existing_dir, default=None,
                   help="offline copies (default: $MIMOKD_WEIGHTS_DIR)")
    a.add_argument("--cache-dir", type=existing_dir, default=None,
                   help="the cache (default: $MIMOKD_CACHE_DIR or ~/.keras/mimokd)")
    a.set_defaults(func=cmd_pretrained_verify)
    a = actions.add_parser("register", help="store a trained model as an entry: measured on the fixed test split, "
                           "float16 where that costs <= 0.01 dB; prints the registry stanza")
    a.add_argument("--model", required=True, help="the zoo preset, e.g. crnet_cui")
    a.add_argument("--cr", type=compression_ratio, required=True)
    a.add_argument("--dataset", required=True, help="the data recipe it was trained on, e.g. cost2100-indoor")
    a.add_argument("--weights", type=existing_file, required=True, help="the trained model: .keras or .weights.h5")
    a.add_argument("--seed", type=nonnegative_int, default=0, help="the dataset seed (default: 0)")
    a.add_argument("--test-samples", type=positive_int, default=20000,
                   help="the fixed test split's size (default: 20000)")
    a.add_argument("--train-samples", type=positive_int, required=True)
    a.add_argument("--val-samples", type=positive_int, default=None)
    a.add_argument("--epochs", type=positive_int, required=True)
    a.add_argument("--batch-size", type=positive_int, required=True)
    a.add_argument("--schedule", required=True, help="the learning-rate schedule, in words")
    a.add_argument("--method", default="vanilla", help="vanilla or the KD method of a student")
    a.add_argument("--teacher", default=None, help="the teacher's entry name, for students")
    a.add_argument("--machine", default="", help="machine and budget, stated honestly")
    a.add_argument("--notes", default="")
    a.add_argument("--paper-nmse", type=finite_float, default=None,
                   help="the paper's NMSE (dB) for this model and ratio")
    a.add_argument("--paper-source", default="")
    a.add_argument("--data-dir", type=existing_dir, default=None,
                   help="a dataset of --dataset / --seed (`mimokd data generate`) whose "
                   "test split is read instead of generated")
    a.add_argument("--out-dir", type=output_dir, default=None,
                   help="where the file goes (default: the checkout's pretrained/weights)")
    a.set_defaults(func=cmd_pretrained_register)
    a = actions.add_parser("build", help="re-create an entry from its recipe: generate its data, train, register "
                           "(paper-scale budgets want a GPU)")
    a.add_argument("entry", help="an entry name, e.g. crnet_cui-cr16-cost2100-indoor")
    a.add_argument("--work-dir", type=output_dir, required=True, help="data and the resumable run")
    a.add_argument("--epochs", type=positive_int, default=None, help="override the recipe's epochs")
    a.add_argument("--workers", type=positive_int, default=1, help="data-generation processes (default: 1)")
    a.add_argument("--data-dir", type=existing_dir, default=None,
                   help="an existing dataset of the recipe's data and seed (`mimokd "
                   "data generate`) to read instead of generating it")
    a.add_argument("--out-dir", type=output_dir, default=None,
                   help="where the file goes (default: the checkout's pretrained/weights)")
    a.set_defaults(func=cmd_pretrained_build)
    a = actions.add_parser("train", help="make a new entry: train a model by a recipe (vanilla or KD from a "
                           "registered teacher), measure the stored file, print its stanza")
    a.add_argument("--model", required=True, help="the zoo preset, e.g. bcrnet")
    a.add_argument("--cr", type=compression_ratio, required=True)
    a.add_argument("--dataset", required=True, help="the data recipe, e.g. cost2100-indoor")
    a.add_argument("--method", default="vanilla",
                   choices=("vanilla", "output-kd", "autoencoder-kd", "codeword-mimic", "encoder-kd"),
                   help="vanilla or a KD method (default: vanilla)")
    a.add_argument("--teacher", default=None, help="the teacher's entry name, for a KD method, e.g. "
                   "crnet-cr16-cost2100-indoor")
    a.add_argument("--init", default=None, help="start from this entry's weights (the same model, e.g. the indoor "
                   "entry for an outdoor one; at another ratio all but the codeword's dense layers); default: a "
                   "fresh initialisation")
    a.add_argument("--epochs", type=positive_int, required=True)
    a.add_argument("--batch-size", type=positive_int, default=200)
    a.add_argument("--train-samples", type=positive_int, default=100000)
    a.add_argument("--val-samples", type=positive_int, default=10000)
    a.add_argument("--seed", type=nonnegative_int, default=0, help="the dataset seed (default: 0)")
    a.add_argument("--test-samples", type=positive_int, default=20000,
                   help="the fixed test split's size (default: 20000)")
    a.add_argument("--work-dir", type=output_dir, required=True, help="data and the resumable run (a rerun resumes)")
    a.add_argument("--data-dir", type=existing_dir, default=None,
                   help="an existing dataset of --dataset / --seed to read instead "
                   "of generating one")
    a.add_argument("--workers", type=positive_int, default=1, help="data-generation processes (default: 1)")
    a.add_argument("--machine", default="", help="machine and budget, stated honestly")
    a.add_argument("--notes", default="")
    a.add_argument("--paper-nmse", type=finite_float, default=None,
                   help="the paper's NMSE (dB) for this model and ratio")
    a.add_argument("--paper-source", default="")
    a.add_argument("--out-dir", type=output_dir, default=None,
                   help="where the file goes (default: the checkout's pretrained/weights)")
    a.set_defaults(func=cmd_pretrained_train)

    p = sub.add_parser("evaluate", help="NMSE and rho of a saved model on test CSI")
    p.add_argument("--checkpoint", type=existing_file, required=True, help="a .keras file written by `mimokd train`")
    _add_data_args(p, {"test": 2000})
    p.set_defaults(func=cmd_evaluate)
    return parser


def _one_line(err, limit=300):
    """``Type: first line of the message``, cut at ``limit`` characters (a tensor dump stays out)."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv=None):
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status (module docstring)."""
    undo_quiet = _quiet_tensorflow()  # first: `experiment --help` imports TensorFlow
    args = build_parser().parse_args(argv)  # a usage error exits here with status 2
    if args.debug:
        args.verbosity = 1
    if args.verbosity > 0:
        undo_quiet()
    _configure_output(args.verbosity)
    if getattr(args, "strategy", "default") in ("multiworker", "data-parallel"):
        _start_strategy(args)  # before any model is built
    start = time.perf_counter()
    try:
        status = args.func(args) or 0  # a command may return an exit status (pretrained verify: 1)
    except (ValueError, FileNotFoundError, KeyError, PermissionError, IsADirectoryError,
            NotADirectoryError) as err:  # the user's input, data or paths: one line (naming the path)
        _log_error(args, "%s", err)
        return FAILED
    except KeyboardInterrupt:
        logger.error("interrupted (a run directory resumes where it stopped when the command is repeated)")
        return 130
    except BrokenPipeError:  # the reader of stdout has closed it (`mimokd models | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor fail again at exit's flush
        return BROKEN_PIPE
    except Exception as err:
        if type(err).__name__ == "ParityError":  # an artifact out of tolerance (export, report, compress)
            _log_error(args, "%s", err)
            return PARITY_FAILED
        if args.verbosity > 0:
            logger.error("internal error:\n%s", traceback.format_exc().rstrip())
        else:
            logger.error("internal error: %s (rerun with --debug for the traceback)", _one_line(err))
        return INTERNAL_ERROR
    logger.info("done in %.1f s", time.perf_counter() - start)
    return status


def _start_strategy(args):
    """``--strategy multiworker``: refused with the upstream reason. ``data-parallel``: refused for the
    TensorFlow-only trainers with the reason, else Keras set to JAX (unless already imported) and this
    process joins the job. A refusal or bad settings exit 2 (usage)."""
    if args.strategy == "multiworker":
        from mimokd.train.distribute import MULTIWORKER_REFUSAL

        args.parser.error(MULTIWORKER_REFUSAL)
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "jax"
    from mimokd.train.distribute import TENSORFLOW_ONLY, start_data_parallel

    if args.func is cmd_distill and args.method == "codeword-mimic":
        args.parser.error(f"--strategy data-parallel: {TENSORFLOW_ONLY['codeword-mimic']}. Run it in one process")
    if args.func is cmd_experiment:
        args.parser.error(
            "--strategy data-parallel: an experiment trains its runs one after another in one process (split a "
            f"table over machines with --rows i/N instead). {TENSORFLOW_ONLY['kong']}. {TENSORFLOW_ONLY['zhang']}")
    try:
        start_data_parallel(args.coordinator, args.num_processes, args.process_id)
    except (ValueError, RuntimeError) as err:  # RuntimeError: Keras was imported on another backend first
        args.parser.error(f"--strategy data-parallel: {err}")


def _log_error(args, message, *values):
    """Log the error being handled as one ``error:`` line, followed by its traceback under ``--debug``."""
    logger.error(message, *values, exc_info=args.debug)


if __name__ == "__main__":
    sys.exit(main())
