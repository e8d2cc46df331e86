"""The ``mimokd`` command line.

    mimokd pipeline                      # the main job on built-in data: generate, train, evaluate
    mimokd models                        # the zoo with UE parameters, multiplications and FLOPs
    mimokd generate --data builtin-indoor --out data/   # COST2100-format .mat files
    mimokd train --model crnet --cr 4 --data builtin-indoor --epochs 20 --out runs/crnet4
    mimokd evaluate --checkpoint runs/crnet4/best.keras --data builtin-indoor

Run ``mimokd <command> --help`` for each command's options.
"""

import argparse
import sys
import time
from pathlib import Path

SPLITS = ("train", "val", "test")


def _add_data_args(parser, default_samples):
    parser.add_argument(
        "--data",
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
    parser.add_argument("--seed", type=int, default=0, help="data and training seed (default: 0)")
    for split, count in default_samples.items():
        parser.add_argument(
            f"--{split}-samples",
            type=int,
            default=count,
            help=f"{split} samples to use (default: {count}; all of a file when 0)",
        )


def _load(args, split):
    from mimokd.channels import load_csi

    count = getattr(args, f"{split}_samples") or None
    kwargs = {"scenario": args.scenario} if args.scenario else {}
    return load_csi(args.data, split=split, num_samples=count, seed=args.seed, **kwargs)


def _add_train_args(parser, epochs=20, batch_size=200):
    parser.add_argument(
        "--epochs", type=int, default=epochs, help=f"training epochs (default: {epochs})"
    )
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"global batch (default: {batch_size})"
    )
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    parser.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    parser.add_argument(
        "--strategy",
        default="default",
        choices=("default", "cpu", "mirrored", "multiworker"),
        help="tf.distribute strategy (multiworker reads TF_CONFIG; default: one device)",
    )


def _train_config(args):
    from mimokd.train import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        peak_lr=args.lr,
        jit_compile=args.jit,
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


def cmd_generate(args):
    from mimokd.channels import save_cost2100
    from mimokd.channels.cost2100 import cost2100_filename

    scenario = args.scenario or ("outdoor" if "outdoor" in args.data else "indoor")
    for split in SPLITS:
        path = Path(args.out) / cost2100_filename(split, scenario)
        save_cost2100(path, _load(args, split))
        print(f"wrote {path}")


def cmd_train(args):
    from mimokd.train import evaluate_autoencoder, fit_autoencoder

    train, val = _load(args, "train"), _load(args, "val")
    out = Path(args.out or f"runs/{args.model}_cr{args.cr}")
    model, _ = fit_autoencoder(
        args.model,
        train,
        val,
        out_dir=out,
        config=_train_config(args),
        strategy=args.strategy,
        cr=args.cr,
    )
    print(f"saved {out / 'best.keras'} (best validation NMSE) and {out / 'final.keras'}")
    _print_metrics(f"{args.model} 1/{args.cr} (final)", evaluate_autoencoder(model, _load(args, "test")))


def cmd_evaluate(args):
    import keras

    import mimokd.metrics  # noqa: F401  (registers the metrics for loading)
    import mimokd.train  # noqa: F401  (registers the schedules for loading)
    import mimokd.zoo  # noqa: F401  (registers the model classes for loading)
    from mimokd.train import evaluate_autoencoder

    path = Path(args.checkpoint)
    if not path.is_file():
        raise SystemExit(f"error: no checkpoint at {path} (expected a .keras file from `mimokd train`)")
    model = keras.saving.load_model(path)
    _print_metrics(f"{model.name} ({path})", evaluate_autoencoder(model, _load(args, "test")))


def cmd_pipeline(args):
    from mimokd.pipeline import run_pipeline

    run_pipeline(
        out_dir=args.out,
        teacher=args.teacher,
        student=args.student,
        cr=args.cr,
        samples=(args.train_samples, args.val_samples, args.test_samples),
        config=_train_config(args),
        seed=args.seed,
        strategy=args.strategy,
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mimokd",
        description="CSI-feedback model zoo with knowledge distillation (Keras 3). "
        "Start with `mimokd pipeline`: it generates CSI, trains a teacher and a student and "
        "evaluates both, on built-in data, in a few minutes on a laptop CPU.",
        epilog="Run `mimokd <command> --help` for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    p = sub.add_parser(
        "pipeline",
        help="the main job: generate data, train teacher and student, evaluate, write a report",
        description="Generate built-in indoor CSI (written and read back in the COST2100 .mat "
        "format), train a teacher and a student autoencoder, evaluate both, and write "
        "results.md, results.json and curves.png to --out.",
    )
    p.add_argument("--out", default="runs/pipeline", help="output directory (default: runs/pipeline)")
    p.add_argument("--teacher", default="crnet", help="teacher model name (default: crnet)")
    p.add_argument("--student", default="bcrnet", help="student model name (default: bcrnet)")
    p.add_argument("--cr", type=int, default=4, help="compression ratio 1/gamma (default: 4)")
    p.add_argument("--seed", type=int, default=0, help="data and training seed (default: 0)")
    p.add_argument("--train-samples", type=int, default=3000, help="(default: 3000)")
    p.add_argument("--val-samples", type=int, default=500, help="(default: 500)")
    p.add_argument("--test-samples", type=int, default=1000, help="(default: 1000)")
    # a few minutes on 2 CPU cores; the paper scale is --epochs 1000 --train-samples 100000
    _add_train_args(p, epochs=5, batch_size=50)
    p.set_defaults(func=cmd_pipeline)

    p = sub.add_parser("models", help="list the zoo: UE parameters, multiplications, FLOPs")
    p.add_argument(
        "--cr", type=int, nargs="+", default=[4, 8, 16, 32], help="ratios (default: 4 8 16 32)"
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("generate", help="write train/val/test CSI as COST2100-format .mat files")
    _add_data_args(p, {"train": 20000, "val": 2000, "test": 2000})
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("train", help="train one zoo autoencoder (vanilla MSE, warm-up cosine LR)")
    p.add_argument("--model", required=True, help="a name from `mimokd models`, e.g. crnet")
    p.add_argument("--cr", type=int, default=4, help="compression ratio 1/gamma (default: 4)")
    p.add_argument("--out", default=None, help="run directory (default: runs/<model>_cr<cr>)")
    _add_data_args(p, {"train": 20000, "val": 2000, "test": 2000})
    _add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="NMSE and rho of a saved model on test CSI")
    p.add_argument("--checkpoint", required=True, help="a .keras file written by `mimokd train`")
    _add_data_args(p, {"test": 2000})
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
