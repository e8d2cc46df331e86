"""Learning-rate schedules.

:func:`warmup_cosine` is CRNet's recipe (also the benchmark schedule of Lu et al., Fig. 3):
linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine annealing from ``peak`` to
``floor`` at ``total_steps``, stepped per iteration (2e-3 -> 5e-5, 30 warm-up epochs of 2500 in the
published recipe). It is Keras' own ``keras.optimizers.schedules.CosineDecay`` with a warm-up;
:class:`WarmupCosine`, the hand-written schedule it replaced, stays registered so that checkpoints
saved with it still load.
"""

import warnings

import keras
from keras import ops


def warmup_cosine(peak=2e-3, floor=5e-5, total_steps=1, warmup_steps=0):
    """Linear warm-up then cosine annealing, per optimizer step, as a Keras ``CosineDecay``.

    ``lr(s) = peak * s / warmup_steps`` for ``s < warmup_steps``, then
    ``floor + (peak - floor) * (1 + cos(pi * (s - warmup_steps) / (total_steps - warmup_steps))) / 2``,
    held at ``floor`` after ``total_steps``.

    Args:
        peak: the learning rate at the end of the warm-up (2e-3).
        floor: the final learning rate (5e-5).
        total_steps: optimizer steps of the whole run.
        warmup_steps: steps of the linear warm-up (0 for none); must be < total_steps.

    Returns:
        a ``keras.optimizers.schedules.CosineDecay`` (``initial_learning_rate=0``,
        ``warmup_target=peak``, ``alpha=floor / peak``; without warm-up it starts at ``peak``).
    """
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            "Expected 0 <= warmup_steps < total_steps. "
            f"Received: warmup_steps={warmup_steps}, total_steps={total_steps}"
        )
    if not 0 <= floor <= peak:
        raise ValueError(f"Expected 0 <= floor <= peak. Received: floor={floor}, peak={peak}")
    alpha = floor / peak if peak else 0.0
    if warmup_steps == 0:  # no warm-up branch: a step before 0 (TwoStage's unused side) stays finite
        return keras.optimizers.schedules.CosineDecay(peak, total_steps, alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total_steps - warmup_steps, alpha=alpha, warmup_target=peak, warmup_steps=warmup_steps
    )


@keras.saving.register_keras_serializable(package="mimokd", name="WarmupCosine")
class WarmupCosine(keras.optimizers.schedules.CosineDecay):
    """Deprecated: use :func:`warmup_cosine` (a plain ``CosineDecay``).

    The hand-written warm-up cosine of checkpoints saved before issue 18, registered under its old
    name (``mimokd>WarmupCosine``) so that their optimizer configs (``peak``, ``floor``,
    ``total_steps``, ``warmup_steps``) still load: it is the ``CosineDecay`` of
    :func:`warmup_cosine` with those arguments, and saves its old config.
    """

    def __init__(self, peak=2e-3, floor=5e-5, total_steps=1, warmup_steps=0):
        warnings.warn(
            "mimokd.train.schedules.WarmupCosine is deprecated: use warmup_cosine(), a "
            "keras.optimizers.schedules.CosineDecay",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(**warmup_cosine(peak, floor, total_steps, warmup_steps).get_config())
        self.peak, self.floor, self.total_steps = peak, floor, total_steps

    def get_config(self):
        return {
            "peak": self.peak,
            "floor": self.floor,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="mimokd")
class TwoStage(keras.optimizers.schedules.LearningRateSchedule):
    """``first(step)`` for ``step < boundary``, then ``second(step - boundary)``.

    The learning rate of one half of the network under Lu et al.'s mimic-explore strategy (Fig. 3):
    one schedule while mimicking, another, restarted, while exploring.

    Args:
        first, second: learning-rate schedules (or their serialized configs).
        boundary: the optimizer step at which ``second`` starts.
    """

    def __init__(self, first, second, boundary):
        self.first = keras.optimizers.schedules.deserialize(first) if isinstance(first, dict) else first
        self.second = keras.optimizers.schedules.deserialize(second) if isinstance(second, dict) else second
        self.boundary = int(boundary)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        return ops.where(step < self.boundary, self.first(step), self.second(step - self.boundary))

    def get_config(self):
        return {
            "first": keras.optimizers.schedules.serialize(self.first),
            "second": keras.optimizers.schedules.serialize(self.second),
            "boundary": self.boundary,
        }
