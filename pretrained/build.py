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
``work_dir``, then measures and stores it the same way. Vanilla recipes only for now: students
trained by KD are built with ``mimokd distill`` and registered.
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


def measure_entry(model, cr, dataset, trained, *, recipe, test_samples=20000, out_dir=None,
                  paper_nmse_db=None, paper_source="", log=print):
    """Store ``trained`` as the entry ``(model, cr, dataset)`` and measure the stored file.

    Args:
        model, cr, dataset: the entry's key (a zoo preset, its ratio, a recipe of ``mimokd data list``).
        trained: the trained Keras model (built by ``create_model(model, cr=cr)``).
        recipe: the :class:`~mimokd.pretrained.registry.Recipe` that trained it.
        test_samples: size of the fixed test split (20,000 as the COST2100 test files).
        out_dir: where the file goes (default: the checkout's ``pretrained/weights``).
        paper_nmse_db, paper_source: the paper's figure for the same model and ratio, if any.
        log: a callable for progress lines.

    Returns:
        the :class:`~mimokd.pretrained.registry.PretrainedEntry`, figures measured from the file.
    """
    from mimokd.channels.recipes import split_samples
    from mimokd.train.vanilla import evaluate_autoencoder
    from mimokd.zoo import create_model

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


def build_entry(key, *, work_dir, out_dir=None, epochs=None, registry=None, workers=1, log=print):
    """Re-create a registered entry from its recipe; returns the new entry (its stanza to paste).

    Args:
        key: an entry name or ``(model, cr, dataset)`` of the registry.
        work_dir: where the data and the (resumable) run go.
        out_dir: where the new file goes (default: the checkout's ``pretrained/weights``).
        epochs: override the recipe's epochs (e.g. more on a GPU); the new entry records it.
        registry: as in :mod:`mimokd.pretrained.registry`.
        workers: data-generation processes.
    """
    import dataclasses

    import keras

    from mimokd.channels.shards import load_shards, write_dataset
    from mimokd.train import TrainConfig, fit_autoencoder

    entry = get_entry(key, registry=registry)
    recipe = entry.recipe
    if recipe.method != "vanilla":
        raise ValueError(f"{entry.name} was trained by {recipe.method} from {recipe.teacher}; only vanilla recipes "
                         "can be built yet (train the teacher's entry, then `mimokd distill` and register).")
    recipe = dataclasses.replace(recipe, epochs=epochs or recipe.epochs, commit=code_commit())
    work = Path(work_dir)
    splits = {"train": recipe.train_samples, "val": recipe.val_samples or max(1, recipe.train_samples // 10)}
    for split, samples in splits.items():
        log(f"generating {samples} {split} samples of {recipe.data} (seed {recipe.data_seed}) -> {work / 'data'}")
        write_dataset(recipe.data, work / "data", samples=samples, split=split, seed=recipe.data_seed,
                      workers=workers, progress=False)
    train, val = load_shards(work / "data", "train"), load_shards(work / "data", "val")
    config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, seed=recipe.seed)
    log(f"training {entry.model} 1/{entry.cr} for {config.epochs} epochs -> {work / 'run'}")
    fit_autoencoder(entry.model, train, val, out_dir=work / "run", config=config, cr=entry.cr, verbose=2)
    trained = keras.saving.load_model(work / "run" / "final.keras")
    return measure_entry(entry.model, entry.cr, entry.dataset, trained, recipe=recipe,
                         test_samples=entry.metrics.test_samples, out_dir=out_dir,
                         paper_nmse_db=entry.metrics.paper_nmse_db, paper_source=entry.metrics.paper_source, log=log)
