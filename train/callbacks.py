"""Training callbacks that Keras does not ship in the form we need.

:class:`BestCheckpoint` keeps the model with the best validation metric, like
``keras.callbacks.ModelCheckpoint(save_best_only=True)``, but writes through
:func:`mimokd.fileio.atomic_path`: ModelCheckpoint writes in place, so a run killed during the
write would destroy the best model so far.
"""

import math

import keras

from mimokd.fileio import atomic_path


class BestCheckpoint(keras.callbacks.Callback):
    """Save the whole model (``.keras``) whenever ``monitor`` improves (``mode="min"`` or ``"max"``).

    The best value is read back from ``best_value`` on resume (pass the value logged so far, or
    leave ``None`` to start afresh). ``target`` maps the trained model to the model to save (a KD
    trainer saves its student); ``None`` saves the trained model itself.
    """

    def __init__(self, filepath, monitor="val_nmse", mode="min", best_value=None, target=None):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max'. Received: mode={mode!r}")
        self.filepath = filepath
        self.monitor = monitor
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = math.inf if best_value is None else self.sign * best_value
        self.target = target

    @property
    def best_value(self):
        """The best ``monitor`` value so far (``None`` before the first epoch)."""
        return None if math.isinf(self.best) else self.sign * self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"BestCheckpoint monitors {self.monitor!r}, which the logs do not hold; "
                f"they hold {sorted(logs)}. Pass validation data or change `monitor`."
            )
        value = self.sign * float(logs[self.monitor])
        if value < self.best:
            self.best = value
            model = self.model if self.target is None else self.target(self.model)
            with atomic_path(self.filepath) as tmp:
                model.save(tmp)
