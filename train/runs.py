"""The run directory every trainer writes: resumable ``fit`` with an atomic best checkpoint.

A run directory holds:

- ``best.keras``: the deployable model (for a KD trainer: the student, not the trainer) at the
  best value of the monitored validation metric, written atomically;
- ``final.keras``: the same model after the last epoch;
- ``log.csv``: one row per epoch (every logged loss term and metric, the learning rate, and the
  epoch's wall time in ``seconds``);
- ``config.json``: what the run was asked to do;
- ``backup/``: ``keras.callbacks.BackupAndRestore`` state while a run is in progress. Running the
  same call again after an interruption resumes from the last finished epoch (weights, optimizer
  state and step counter included).
"""

import csv
import time
from pathlib import Path

import keras

from mimokd.channels.datasets import make_dataset
from mimokd.fileio import atomic_path, write_json
from mimokd.train.callbacks import BestCheckpoint


class EpochLog(keras.callbacks.Callback):
    """Put the optimizer's current learning rate (``lr``; ``encoder_lr`` too when the model has a
    separate ``encoder_optimizer``) and the epoch's wall time (``seconds``, training and
    validation) in the epoch logs, so that CSVLogger records them."""

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


def read_log(log_path):
    """A run's ``log.csv`` as ``{column: [float per epoch]}``."""
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {key: [float(r[key]) if r[key] != "" else float("nan") for r in rows] for key in (rows[0] if rows else {})}


def best_logged(log_path, monitor):
    """The best (lowest) ``monitor`` value of an existing CSV log, or ``None``."""
    if not Path(log_path).exists():
        return None
    with open(log_path, newline="") as f:
        values = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor)]
    return min(values) if values else None


def fit_run(
    trainer,
    train_data,
    val_data,
    *,
    out_dir,
    epochs,
    record,
    deployable=None,
    monitor="val_nmse",
    callbacks=(),
    verbose="auto",
):
    """``trainer.fit`` in a run directory (see the module docstring).

    Args:
        trainer: a compiled ``keras.Model`` (an autoencoder, or a KD trainer wrapping a student).
        train_data: a ``tf.data.Dataset`` of training batches (shuffled by the caller).
        val_data: a ``tf.data.Dataset`` of validation batches.
        out_dir: the run directory; an interrupted run in the same directory resumes.
        epochs: total epochs of the run (a resumed run does only those left).
        record: JSON-serializable description of the run, written to ``config.json``.
        deployable: ``trainer -> keras.Model``, the model written to ``best.keras`` and
            ``final.keras`` (default: the trainer itself).
        monitor: the validation metric that picks ``best.keras`` (lower is better).
        callbacks: more Keras callbacks, run after the built-in ones.
        verbose: passed to ``fit`` (progress bar by default).

    Returns:
        The ``History`` of this call.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = out_dir / "backup"
    log_path = out_dir / "log.csv"
    resuming = backup_dir.exists()
    write_json(out_dir / "config.json", record)
    if not trainer.built:  # BackupAndRestore restores into built models only (a Distiller is not)
        for x, *_ in train_data.take(1):
            trainer(x[:1])
    history = trainer.fit(
        train_data,
        validation_data=val_data,
        epochs=epochs,
        shuffle=False,  # the tf.data pipeline shuffles, seeded
        callbacks=[
            keras.callbacks.BackupAndRestore(str(backup_dir)),
            EpochLog(),
            BestCheckpoint(
                out_dir / "best.keras",
                monitor=monitor,
                best_value=best_logged(log_path, monitor) if resuming else None,
                target=deployable,
            ),
            keras.callbacks.CSVLogger(str(log_path), append=resuming),
            *callbacks,
        ],
        verbose=verbose,
    )
    model = trainer if deployable is None else deployable(trainer)
    with atomic_path(out_dir / "final.keras") as tmp:
        model.save(tmp)
    return history


def fit_csi_run(trainer, train_csi, val_csi, *, config, **kwargs):
    """:func:`fit_run` on CSI arrays ``[N, 2, H, W]``: ``(csi, csi)`` batches of ``config.batch_size``,
    the training set reshuffled every epoch from ``config.seed``, for ``config.epochs`` epochs;
    ``kwargs`` go to :func:`fit_run`."""
    return fit_run(
        trainer,
        make_dataset(train_csi, batch_size=config.batch_size, shuffle=True, seed=config.seed),
        make_dataset(val_csi, batch_size=config.batch_size),
        epochs=config.epochs,
        **kwargs,
    )
