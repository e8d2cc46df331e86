import math

import numpy as np
import pytest

from mimokd.train import TrainConfig, WarmupCosine


def test_warmup_cosine_closed_form():
    s = WarmupCosine(peak=2e-3, floor=5e-5, total_steps=100, warmup_steps=10)
    lr = lambda k: float(s(k))  # noqa: E731
    assert lr(0) == 0
    assert lr(5) == pytest.approx(1e-3)
    assert lr(10) == pytest.approx(2e-3)
    mid = 5e-5 + 0.5 * (2e-3 - 5e-5) * (1 + math.cos(math.pi * 45 / 90))
    assert lr(55) == pytest.approx(mid, rel=1e-5)
    assert lr(100) == pytest.approx(5e-5)
    assert lr(500) == pytest.approx(5e-5)
    values = [lr(k) for k in range(10, 101)]
    assert np.all(np.diff(values) <= 1e-12)  # monotone after the warm-up
    assert WarmupCosine.from_config(s.get_config()).get_config() == s.get_config()


def test_warmup_cosine_rejects_bad_steps():
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        WarmupCosine(total_steps=10, warmup_steps=10)


def test_train_config_scales_warmup():
    s = TrainConfig(epochs=1000).schedule(steps_per_epoch=500)
    assert s.warmup_steps == 30 * 500 and s.total_steps == 1000 * 500
    short = TrainConfig(epochs=5).schedule(steps_per_epoch=10)
    assert short.warmup_steps == 10  # at least one epoch
