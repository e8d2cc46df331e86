"""Learning-rate schedules.

:class:`WarmupCosine` is CRNet's recipe (also the benchmark schedule of Lu et al., Fig. 3):
linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine annealing from ``peak`` to
``floor`` at ``total_steps``, stepped per iteration (2e-3 -> 5e-5, 30 warm-up epochs of 2500 in the
published recipe).
"""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mimokd")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up then cosine annealing, per optimizer step.

    ``lr(s) = peak * s / warmup_steps`` for ``s < warmup_steps``, then
    ``floor + (peak - floor) * (1 + cos(pi * (s - warmup_steps) / (total_steps - warmup_steps))) / 2``,
    held at ``floor`` after ``total_steps``.

    Args:
        peak: the learning rate at the end of the warm-up (2e-3).
        floor: the final learning rate (5e-5).
        total_steps: optimizer steps of the whole run.
        warmup_steps: steps of the linear warm-up (0 for none); must be < total_steps.
    """

    def __init__(self, peak=2e-3, floor=5e-5, total_steps=1, warmup_steps=0):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(
                "Expected 0 <= warmup_steps < total_steps. "
                f"Received: warmup_steps={warmup_steps}, total_steps={total_steps}"
            )
        if not 0 <= floor <= peak:
            raise ValueError(f"Expected 0 <= floor <= peak. Received: floor={floor}, peak={peak}")
        self.peak = peak
        self.floor = floor
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0, 1)
        cosine = self.floor + 0.5 * (self.peak - self.floor) * (1 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, cosine)

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
