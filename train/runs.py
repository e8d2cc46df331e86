"""The run directory every trainer writes: refuses other settings, resumes exactly, survives kills.

A run directory holds:

- ``config.json``: what the run was asked to do (model, method, hyper-parameters, and digests of
  the data and of a teacher's weights). Running into a directory whose ``config.json`` differs is
  refused with the differences listed (:class:`RunConflictError`), unless ``overwrite=True``
  (``--overwrite``) is given, which deletes the old run first. The same settings resume.
- ``best.keras``: the deployable model (for a KD trainer: the student, not the trainer) at the
  best value of the monitored validation metric;
- ``final.keras``: the same model after the last epoch;
- ``log.csv``: one row per epoch (every logged loss term and metric, the learning rate, and the
  epoch's wall time in ``seconds``);
- ``backup/``: the training state after the last epochs (:mod:`mimokd.train.backup`), kept once
  the run has finished, so that running it again does not train again.

Resume is exact: epoch ``e`` of the training data is shuffled from ``(seed, e)``
(:func:`epoch_batches`), not by a stateful iterator, and the weights, optimizer state, step
counter and seed-generator states are restored; an interrupted and resumed run ends bit-identical
to an uninterrupted one. Every file is written through :func:`mimokd.fileio.atomic_path` (never
truncated in place), so a kill at any instant leaves a directory that resumes, and a full disk
raises one :class:`~mimokd.fileio.DiskFullError` naming the file, with every file from before intact.

Under the ``data-parallel`` strategy (:mod:`mimokd.train.distribute`) only the chief (process 0)
claims, writes and resumes the directory; it gives the state it starts from to the other processes,
which train their share of every batch and write nothing there.
"""

import contextlib
import csv
import hashlib
import io
import json
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from mimokd.channels.datasets import make_dataset
from mimokd.channels.layout import check_csi
from mimokd.fileio import atomic_path, settings_differences, write_json, write_text
from mimokd.train.backup import latest_state, restore, write_generation
from mimokd.train.callbacks import BestCheckpoint
from mimokd.train.distribute import (
    check_batches,
    files_from_chief,
    is_chief,
    local_only,
    on_chief,
    process_count,
    process_share,
)

#: What a run writes into its directory (``overwrite=True`` deletes these, and only these).
RUN_FILES = ("backup", "best.keras", "final.keras", "log.csv", "config.json")


class RunConflictError(ValueError):
    """A run directory holds another run (other settings, or files of an unknown run)."""


# --- what a run was asked to do --------------------------------------------------------------------


def array_digest(*arrays):
    """The sha256 of arrays' shapes, dtypes and bytes: a fingerprint of training data or weights."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype.str};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def data_record(*arrays):
    """``{"samples": N, "sha256": ...}`` of arrays of ``N`` samples each, for a run's ``config.json``."""
    return {"samples": int(len(arrays[0])), "sha256": array_digest(*arrays)}


def model_record(model):
    """``{"name": ..., "sha256": ...}`` of a trained model (a teacher), its weights' digest."""
    return {"name": model.name, "sha256": array_digest(*model.get_weights())}


def claim_run_dir(out_dir, record, *, overwrite=False):
    """Make ``out_dir`` the directory of the run that ``record`` describes, or refuse.

    A new (or empty) directory gets ``config.json``; one with the same ``config.json`` is kept as
    it is (the run resumes); ``overwrite=True`` first deletes the files of whatever run is there
    (:data:`RUN_FILES`; other files are left alone).

    Raises:
        RunConflictError: ``out_dir`` is a file, or holds a run with other settings (the message
            lists each ``key: old -> new``), or run files without a readable ``config.json``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RunConflictError(f"--out {out_dir} is a file; expected a run directory (or a path to create one)")
    record = json.loads(json.dumps(record))  # as config.json will hold it: tuples as lists
    config = out_dir / "config.json"
    present = [name for name in RUN_FILES if (out_dir / name).exists()]
    advice = "Pass --overwrite (overwrite=True) to replace that run, or choose another --out"
    if overwrite:
        for name in present:  # config.json last: a kill before the end leaves a claimed directory
            path = out_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    elif config.exists():
        try:
            old = json.loads(config.read_text())
        except ValueError as err:
            raise RunConflictError(f"{config} does not read as JSON ({err}), so the run in {out_dir} cannot be "
                                   f"checked against this one. {advice}") from err
        differences = settings_differences(old, record)
        if differences:
            raise RunConflictError(
                f"{out_dir} holds a run with other settings ({config}); refusing to mix two runs in one "
                "directory. Differences (old -> new):\n  " + "\n  ".join(differences) + f"\n{advice}"
            )
        return
    elif present:
        raise RunConflictError(f"{out_dir} holds {', '.join(present)} but no config.json: another run's files, "
                               f"which cannot be resumed or checked against this one. {advice}")
    write_json(config, record)


# --- training data: one shuffle per epoch --------------------------------------------------------


def epoch_batches(inputs, targets, *, batch_size, seed):
    """The training data as ``epoch -> tf.data.Dataset``: epoch ``e``'s batches of ``(input, target)``
    pairs, the samples permuted by a stateless shuffle seeded with ``(seed, e)``.

    Each epoch's order follows from ``(seed, epoch)`` alone, so a resumed run draws the same
    batches as an uninterrupted one. ``targets`` may be an array or a dict of arrays (one entry
    per sample each); float64 is cast to float32.
    """
    import tensorflow as tf

    def tensor(array):
        array = np.asarray(array)
        return tf.constant(array.astype(np.float32) if array.dtype == np.float64 else array)

    x = tensor(inputs)
    y = tf.nest.map_structure(tensor, targets)
    n = len(inputs)

    def batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
        )
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(
            lambda i: (tf.gather(x, i), tf.nest.map_structure(lambda t: tf.gather(t, i), y))
        )

    return batches


def _stream(train_batches, first, epochs):
    """Epochs ``first .. epochs - 1`` of ``train_batches`` as one dataset, and the steps per epoch."""
    import tensorflow as tf

    steps = int(train_batches(tf.constant(0, tf.int64)).cardinality())
    if steps < 1:
        raise ValueError(f"The training data of an epoch must have a known, positive number of batches. "
                         f"Received: {steps} (-1: infinite, -2: unknown)")
    stream = tf.data.Dataset.range(first, epochs).flat_map(train_batches)
    return stream.apply(tf.data.experimental.assert_cardinality(steps * (epochs - first))).prefetch(2), steps


# --- the log -------------------------------------------------------------------------------------


class EpochLog(keras.callbacks.Callback):
    """Put the optimizer's current learning rate (``lr``; ``encoder_lr`` too when the model has a
    separate ``encoder_optimizer``) and the epoch's wall time (``seconds``, training and
    validation) in the epoch logs, so that the run's log records them."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["seconds"] = time.perf_counter() - self._start
        logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        encoder_optimizer = getattr(self.model, "encoder_optimizer", None)  # codeword mimic
        if encoder_optimizer is not None:
            logs["encoder_lr"] = float(keras.ops.convert_to_numpy(encoder_optimizer.learning_rate))


def _log_text(rows):
    """``log.csv``'s text: an ``epoch`` column, then every logged key in sorted order."""
    keys = sorted({key for row in rows for key in row} - {"epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["epoch", *keys], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_log(log_path):
    """A run's ``log.csv`` as ``{column: [float per epoch]}``."""
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(r[key]) if r[key] != "" else float("nan") for r in rows] for key in (rows[0] if rows else {})}


class _RunRecord(keras.callbacks.Callback):
    """After each epoch (and after :class:`EpochLog` and ``best``): the epoch's row, then the
    training state in ``backup/``, then ``log.csv`` rewritten whole, all atomically."""

    def __init__(self, out_dir, rows, best):
        super().__init__()
        self.out_dir = out_dir
        self.rows = rows
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{key: float(value) for key, value in (logs or {}).items()}})
        write_generation(self.out_dir / "backup", self.model, epoch=epoch + 1, best=self.best.best_value,
                         rows=self.rows)
        write_text(self.out_dir / "log.csv", _log_text(self.rows))


# --- a run ---------------------------------------------------------------------------------------


def _build(trainer, train_batches):
    """Build ``trainer`` and its optimizer, so that a training state can be loaded into them."""
    import tensorflow as tf

    strategy = getattr(trainer, "distribute_strategy", None)  # TensorFlow only; JAX: the global distribution
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if not trainer.built:  # a Distiller is not built before its first call
            for x, *_ in train_batches(tf.constant(0, tf.int64)).take(1):
                trainer(x[:1])
        if not trainer.optimizer.built:
            trainer.optimizer.build(trainer.trainable_variables)


def fit_run(
    trainer,
    train_batches,
    val_data,
    *,
    out_dir,
    epochs,
    record,
    deployable=None,
    monitor="val_nmse",
    callbacks=(),
    verbose="auto",
    overwrite=False,
):
    """``trainer.fit`` in a run directory (see the module docstring).

    Args:
        trainer: a compiled ``keras.Model`` (an autoencoder, or a KD trainer wrapping a student).
        train_batches: ``epoch -> tf.data.Dataset`` of that epoch's training batches, a function of
            the epoch alone (e.g. :func:`epoch_batches`), traceable by ``tf.data`` (the epoch is an
            int64 tensor), with a known number of batches.
        val_data: a ``tf.data.Dataset`` of validation batches.
        out_dir: the run directory; running the same call again resumes it.
        epochs: total epochs of the run (a resumed run does only those left; a finished one none).
        record: JSON-serializable description of the run, written to ``config.json`` and checked
            against it (everything that changes the result belongs in it).
        deployable: ``trainer -> keras.Model``, the model written to ``best.keras`` and
            ``final.keras`` (default: the trainer itself).
        monitor: the validation metric that picks ``best.keras`` (lower is better).
        callbacks: more Keras callbacks, run after the built-in ones (log, checkpoint, backup).
        verbose: passed to ``fit`` (progress bar by default).
        overwrite: replace a run with other settings in ``out_dir`` instead of refusing.

    Returns:
        The ``History`` of this call (empty when the run had finished already).

    Raises:
        RunConflictError: ``out_dir`` holds another run and ``overwrite`` is false.
        mimokd.fileio.DiskFullError: the disk filled up; the files from before are intact.
    """
    out_dir = Path(out_dir)
    processes = process_count()
    if processes > 1:
        check_batches(train_batches(0), processes)
    _build(trainer, train_batches)
    state = on_chief(lambda: _claim(out_dir, record, overwrite), f"claiming the run directory {out_dir}")
    with files_from_chief(() if state is None else state.files) as files:  # the chief's state, on every process
        if files and not is_chief():
            state = latest_state(files[0].parent)
        if state is not None:
            restore(trainer, state)
    first = 0 if state is None else state.epoch
    chief_callbacks = []
    if is_chief():
        best = BestCheckpoint(out_dir / "best.keras", monitor=monitor, best_value=None if state is None else state.best,
                              target=deployable)
        chief_callbacks = [_Unshared([best, _RunRecord(out_dir, [] if state is None else list(state.rows), best)])]
    if first < epochs:
        shares = train_batches if processes == 1 else lambda epoch: process_share(train_batches(epoch))
        stream, steps = _stream(shares, first, epochs)
        history = trainer.fit(
            stream,
            validation_data=val_data,  # each process feeds it whole: the global batch is N copies, same means
            epochs=epochs,
            initial_epoch=first,
            steps_per_epoch=steps,
            shuffle=False,  # each epoch's order comes from train_batches
            callbacks=[EpochLog(), *chief_callbacks, *callbacks],
            verbose=verbose if is_chief() else 0,
        )
    else:  # finished before: the state of its last epoch is loaded, nothing to train
        history = keras.callbacks.History()
        history.set_model(trainer)
        history.on_train_begin()
        if not is_chief() or (out_dir / "final.keras").is_file():
            return history
    if is_chief():
        with local_only(), atomic_path(out_dir / "final.keras") as tmp:
            (trainer if deployable is None else deployable(trainer)).save(tmp)
    return history


def _claim(out_dir, record, overwrite):
    """Claim ``out_dir`` for ``record`` (:func:`claim_run_dir`) and return its newest training state
    (:class:`~mimokd.train.backup.RunState`, ``None`` for a new run), its ``log.csv`` made that state's."""
    claim_run_dir(out_dir, record, overwrite=overwrite)
    state = latest_state(out_dir / "backup")
    log_path = out_dir / "log.csv"
    if state is not None and (not log_path.is_file() or log_path.read_text() != _log_text(state.rows)):
        write_text(log_path, _log_text(state.rows))  # the log of the state resumed from
    return state


class _Unshared(keras.callbacks.Callback):
    """The chief's callbacks that write the run directory, run at each epoch's end with the distribution
    unset (:func:`~mimokd.train.distribute.local_only`: saving makes variables of its own)."""

    def __init__(self, callbacks):
        super().__init__()
        self.callbacks = callbacks

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def on_epoch_end(self, epoch, logs=None):
        with local_only():
            for callback in self.callbacks:
                callback.on_epoch_end(epoch, logs)


def fit_csi_run(trainer, train_csi, val_csi, *, config, record, **kwargs):
    """:func:`fit_run` on CSI arrays ``[N, 2, H, W]``: ``(csi, csi)`` batches of ``config.batch_size``,
    the training set reshuffled every epoch from ``(config.seed, epoch)``, for ``config.epochs``
    epochs; the digests of both sets join ``record`` (as ``data``); ``kwargs`` go to :func:`fit_run`."""
    train_csi = check_csi(train_csi)
    return fit_run(
        trainer,
        epoch_batches(train_csi, train_csi, batch_size=config.batch_size, seed=config.seed),
        make_dataset(val_csi, batch_size=config.batch_size),
        epochs=config.epochs,
        record={**record, "data": {"train": data_record(train_csi), "val": data_record(val_csi)}},
        **kwargs,
    )
