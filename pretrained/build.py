"""Making pretrained entries: measure a trained model and store it (``mimokd pretrained register``),
or re-create a registered entry from its recipe (``mimokd pretrained build``).

:func:`measure_entry` stores the model's weights under ``pretrained/weights/`` (float16 where that
changes the NMSE by at most :data:`FLOAT16_TOLERANCE_DB`, else float32), loads the STORED file back
into a fresh model and measures it on the entry's fixed test split: the first ``test_samples``
drops of the dataset's test split (``mimokd data generate DATASET --split test --seed SEED``), with
the frequency-domain CSI for rho. The entry it returns carries those figures; its
:func:`~mimokd.pretrained.registry.entry_stanza` is what goes into ``ENTRIES``.

:func:`build_entry` generates the entry's train / val splits, trains the model with the recipe's
epochs, batch and seed (the CRNet schedule of :class:`mimokd.train.TrainConfig`), resumably in
``work_dir``, then measures and stores it the same way. A student's recipe names its method (a KD
method of :mod:`mimokd.train.methods`) and its teacher's entry, which is loaded from the registry
(``create_model(..., weights=...)``), so a student is built after its teacher. :func:`train_entry`
does the same for a recipe given by hand (``mimokd pretrained train``): how new entries are made.
"""

import subprocess
from pathlib import Path

from mimokd.pretrained.registry import Metrics, entry_file_name, get_entry
from mimokd.pretrained.storage import load_entry_weights, make_entry, save_entry_weights

#: The largest NMSE change float16 storage may cause (issue 15); above it, the file is float32.
FLOAT16_TOLERANCE_DB = 0.01
#: The checkout's weights folder, where new entry files are written.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def code_commit():
    """The checkout's short commit hash, or ``""`` outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def measure_entry(model, cr, dataset, trained, *, recipe, test_samples=20000, out_dir=None, data_dir=None,
                  paper_nmse_db=None, paper_source="", log=print):
    """Store ``trained`` as the entry ``(model, cr, dataset)`` and measure the stored file.

    Args:
        model, cr, dataset: the entry's key (a zoo preset, its ratio, a recipe of ``mimokd data list``).
        trained: the trained Keras model (built by ``create_model(model, cr=cr)``).
        recipe: the :class:`~mimokd.pretrained.registry.Recipe` that trained it.
        test_samples: size of the fixed test split (20,000 as the COST2100 test files).
        out_dir: where the file goes (default: the checkout's ``pretrained/weights``).
        data_dir: a dataset folder of ``dataset`` / ``recipe.data_seed`` (`mimokd data generate`)
            whose test split holds at least ``test_samples``: read instead of generating the split
            (the same samples).
        paper_nmse_db, paper_source: the paper's figure for the same model and ratio, if any.
        log: a callable for progress lines.

    Returns:
        the :class:`~mimokd.pretrained.registry.PretrainedEntry`, figures measured from the file.
    """
    from mimokd.channels.recipes import split_samples
    from mimokd.channels.shards import load_shards, read_manifest
    from mimokd.train.vanilla import evaluate_autoencoder
    from mimokd.zoo import create_model

    if data_dir is not None and read_manifest(_check_dataset(data_dir, dataset, recipe.data_seed))["splits"].get(
            "test", {}).get("samples", 0) >= test_samples:
        log(f"reading {test_samples} test samples of {dataset} (seed {recipe.data_seed}) from {data_dir}")
        test = {key: load_shards(data_dir, "test", num_samples=test_samples, key=key) for key in ("HT", "HF")}
    else:
        log(f"generating {test_samples} test samples of {dataset} (seed {recipe.data_seed})")
        test = split_samples(dataset, "test", test_samples, recipe.data_seed)
    reference = evaluate_autoencoder(trained, test["HT"], hf=test["HF"])["nmse_db"]
    path = Path(out_dir or WEIGHTS_DIR) / entry_file_name(model, cr, dataset)
    for dtype in ("float16", "float32"):
        save_entry_weights(trained, path, dtype=dtype)
        stored = create_model(model, cr=cr)
        load_entry_weights(stored, path)
        measured = evaluate_autoencoder(stored, test["HT"], hf=test["HF"])
        change = abs(measured["nmse_db"] - reference)
        log(f"{dtype} file: NMSE {measured['nmse_db']:.4f} dB (trained model {reference:.4f} dB, "
            f"change {change:.4f} dB)")
        if change <= FLOAT16_TOLERANCE_DB:
            break
    metrics = Metrics(nmse_db=round(measured["nmse_db"], 4), nmse_db_per_batch=round(measured["nmse_db_per_batch"], 4),
                      rho=round(measured["rho"], 5), test_samples=measured["samples"],
                      test_split=f"{dataset} test, seed {recipe.data_seed}, drops 0..{test_samples - 1}",
                      paper_nmse_db=paper_nmse_db, paper_source=paper_source)
    return make_entry(model, cr, dataset, path, recipe=recipe, metrics=metrics)


def describe_schedule(method, epochs):
    """The training schedule of ``method`` over ``epochs`` epochs, in words (a recipe's ``schedule``):
    what :func:`mimokd.train.methods.fit_method` runs with a default :class:`~mimokd.train.TrainConfig`."""
    from mimokd.train.methods import METHODS

    base = "Adam, warm-up cosine 2e-3 -> 5e-5 (3% warm-up)"
    if method == "vanilla":
        return f"{base}, MSE"
    if method == "encoder-kd":
        return (f"encoder KD (Cui et al. eq. 11): {epochs} epochs of codeword MSE to the teacher, {base}; then "
                f"{max(1, epochs // 4)} epoch(s) fine-tuning the student encoder + teacher decoder on MSE at a "
                "tenth of those rates")
    if method == "codeword-mimic":
        return (f"codeword mimic (Lu et al. eq. 4-5): {epochs} epochs, alpha(t) cosine from 1e-4 over the first "
                f"{max(1, round(0.2 * epochs))}, mimic-explore learning rates")
    if method in METHODS:
        return f"{method}: {epochs} epochs, {base}"
    raise ValueError(f"Unknown training method {method!r}. Expected one of {METHODS}")


def as_preset(trained, model, cr):
    """``trained``'s weights in a fresh ``create_model(model, cr=cr)``, encoder and decoder copied
    part by part: how a KD result (e.g. encoder KD's student encoder joined to the teacher's
    decoder, a :class:`~mimokd.zoo.ComposedAutoencoder`) becomes the preset its entry loads into."""
    from mimokd.zoo import create_model

    target = create_model(model, cr=cr)
    for part in ("encoder", "decoder"):
        source, dest = getattr(trained, part), getattr(target, part)
        got = [w.shape for w in source.get_weights()]
        want = [w.shape for w in dest.get_weights()]
        if got != want:
            raise ValueError(f"The trained {part} does not fit {model} 1/{cr}'s {part}: weight shapes {got}, "
                             f"expected {want}")
        dest.set_weights(source.get_weights())
    return target


def _splits(recipe, work, data_dir, workers, log):
    """The recipe's train / val CSI: from ``data_dir`` (a `mimokd data generate` folder of the same
    recipe and seed), or generated into ``work/data``."""
    from mimokd.channels.shards import load_shards, write_dataset

    samples = {"train": recipe.train_samples, "val": recipe.val_samples or max(1, recipe.train_samples // 10)}
    if data_dir is None:
        data_dir = work / "data"
        for split, n in samples.items():
            log(f"generating {n} {split} samples of {recipe.data} (seed {recipe.data_seed}) -> {data_dir}")
            write_dataset(recipe.data, data_dir, samples=n, split=split, seed=recipe.data_seed, workers=workers,
                          progress=False)
    _check_dataset(data_dir, recipe.data, recipe.data_seed)
    return tuple(load_shards(data_dir, split, num_samples=n) for split, n in samples.items())


def _check_dataset(data_dir, dataset, seed):
    """``data_dir``, after checking that its manifest is of ``dataset`` with ``seed``."""
    from mimokd.channels.shards import read_manifest

    manifest = read_manifest(data_dir)
    if manifest["recipe"]["name"] != dataset or manifest["seed"] != seed:
        raise ValueError(f"{data_dir} holds {manifest['recipe']['name']} seed {manifest['seed']}; the entry "
                         f"is of {dataset} seed {seed}")
    return data_dir


def train_entry(model, cr, dataset, recipe, *, work_dir, data_dir=None, test_samples=20000, out_dir=None,
                paper_nmse_db=None, paper_source="", workers=1, registry=None, jit_compile="auto", log=print):
    """Train ``model`` at 1/``cr`` on ``dataset`` by ``recipe``, then store and measure it
    (:func:`measure_entry`); returns the entry (its stanza goes into ``ENTRIES``).

    Args:
        model, cr, dataset: the entry's key.
        recipe: the :class:`~mimokd.pretrained.registry.Recipe`: data, samples, epochs, batch, seed,
            ``method`` and, for a KD method, ``teacher`` (a registered entry of the same ratio and
            dataset, loaded with its checksum verified); ``init``, a registered entry of the same
            model (any dataset) whose weights start the training: all of them at the same ratio,
            all but the codeword's dense layers at another (``fit_method(init=)``).
        work_dir: the resumable run (``work_dir/run``; a rerun resumes it) and generated data.
        data_dir: an existing dataset folder of ``recipe.data`` / ``recipe.data_seed`` to read
            instead of generating one (its first ``train_samples`` / ``val_samples`` are used).
        test_samples, out_dir, paper_nmse_db, paper_source, log: as :func:`measure_entry`.
        workers: data-generation processes.
        registry: where the teacher's entry is looked up.
        jit_compile: compile the train step with XLA: ``True``, ``False`` or ``"auto"`` (XLA on a
            GPU, not on a CPU, where it was measured slower; see ``TrainConfig``).
    """
    import dataclasses

    from mimokd.train import TrainConfig
    from mimokd.train.methods import NEEDS_TEACHER, fit_method
    from mimokd.zoo import create_model

    recipe = dataclasses.replace(recipe, data=dataset, commit=recipe.commit or code_commit())
    teacher = None
    if recipe.method in NEEDS_TEACHER:
        if not recipe.teacher:
            raise ValueError(f"Method {recipe.method!r} needs a teacher: name its entry in the recipe (--teacher)")
        known = get_entry(recipe.teacher, registry=registry)
        if (known.cr, known.dataset) != (cr, dataset):
            raise ValueError(f"The teacher {known.name} is for 1/{known.cr} on {known.dataset}; the student is "
                             f"1/{cr} on {dataset}")
        teacher = create_model(known.model, cr=cr, weights=known.name)
    init = None
    if recipe.init:
        start = get_entry(recipe.init, registry=registry)
        if start.model != model:
            raise ValueError(f"The initial weights {start.name} are of {start.model}; the entry is {model} 1/{cr}: "
                             "init must be an entry of the same model")
        init = create_model(model, cr=start.cr, weights=start.name)
    work = Path(work_dir)
    train, val = _splits(recipe, work, None if data_dir is None else Path(data_dir), workers, log)
    config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, seed=recipe.seed,
                         jit_compile=jit_compile)
    log(f"training {model} 1/{cr} by {recipe.method} for {config.epochs} epochs on {len(train)} samples"
        + (f", starting from {recipe.init}" if recipe.init else "") + f" -> {work / 'run'}")
    trained, _, _ = fit_method(recipe.method, model, cr, train, val, out_dir=work / "run", teacher=teacher,
                               init=init, config=config, verbose=2)
    data_dir = work / "data" if data_dir is None else Path(data_dir)
    return measure_entry(model, cr, dataset, as_preset(trained, model, cr), recipe=recipe,
                         test_samples=test_samples, out_dir=out_dir, data_dir=data_dir, paper_nmse_db=paper_nmse_db,
                         paper_source=paper_source, log=log)


def build_entry(key, *, work_dir, data_dir=None, out_dir=None, epochs=None, registry=None, workers=1,
                jit_compile="auto", log=print):
    """Re-create a registered entry from its recipe (:func:`train_entry`); returns the new entry.

    Args:
        key: an entry name or ``(model, cr, dataset)`` of the registry.
        work_dir: where the data and the (resumable) run go.
        data_dir: an existing dataset folder to read instead of generating the data.
        out_dir: where the new file goes (default: the checkout's ``pretrained/weights``).
        epochs: override the recipe's epochs (e.g. more on a GPU); the new entry records it.
        registry: as in :mod:`mimokd.pretrained.registry`.
        workers: data-generation processes.
        jit_compile: as :func:`train_entry`.
    """
    import dataclasses

    entry = get_entry(key, registry=registry)
    epochs = epochs or entry.recipe.epochs
    recipe = dataclasses.replace(entry.recipe, epochs=epochs, commit=code_commit(),
                                 schedule=describe_schedule(entry.recipe.method, epochs))
    return train_entry(entry.model, entry.cr, entry.dataset, recipe, work_dir=work_dir, data_dir=data_dir,
                       test_samples=entry.metrics.test_samples, out_dir=out_dir,
                       paper_nmse_db=entry.metrics.paper_nmse_db, paper_source=entry.metrics.paper_source,
                       workers=workers, registry=registry, jit_compile=jit_compile, log=log)
