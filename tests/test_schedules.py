"""The warm-up cosine (a Keras CosineDecay) against its closed form, and the deprecated WarmupCosine alias."""

import json
import math
import warnings
import zipfile

import keras
import numpy as np
import pytest

from mimokd.train import TrainConfig, WarmupCosine, warmup_cosine

# the optimizer's learning rate as the hand-written WarmupCosine (before issue 18) serialized it
OLD_CONFIG = {
    "module": "mimokd.train.schedules",
    "class_name": "WarmupCosine",
    "config": {"peak": 0.002, "floor": 5e-05, "total_steps": 100, "warmup_steps": 10},
    "registered_name": "mimokd>WarmupCosine",
}


def closed_form(step, peak=2e-3, floor=5e-5, total=100, warmup=10):
    """Linear warm-up 0 -> peak over ``warmup`` steps, then a cosine peak -> floor at ``total``, then floor."""
    if step < warmup:
        return peak * step / warmup
    progress = min((step - warmup) / (total - warmup), 1.0)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize("warmup", [10, 0])
def test_warmup_cosine_is_the_closed_form(warmup):
    schedule = warmup_cosine(peak=2e-3, floor=5e-5, total_steps=100, warmup_steps=warmup)
    assert type(schedule) is keras.optimizers.schedules.CosineDecay
    steps = range(0, 131)
    values = np.array([float(schedule(k)) for k in steps])
    expected = np.array([closed_form(k, warmup=warmup) for k in steps])
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-10)
    assert values[-1] == pytest.approx(5e-5)  # held at the floor after total_steps
    assert np.all(np.diff(values[warmup:]) <= 1e-12)  # monotone after the warm-up


def test_warmup_cosine_rejects_bad_arguments():
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        warmup_cosine(total_steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="floor <= peak"):
        warmup_cosine(peak=1e-4, floor=1e-3)


def test_train_config_scales_warmup():
    s = TrainConfig(epochs=1000).schedule(steps_per_epoch=500)
    assert s.warmup_steps == 30 * 500 and s.warmup_steps + s.decay_steps == 1000 * 500
    short = TrainConfig(epochs=5).schedule(steps_per_epoch=10)
    assert short.warmup_steps == 10  # at least one epoch


def test_old_warmup_cosine_config_loads():
    with pytest.warns(DeprecationWarning, match="warmup_cosine"):
        old = keras.optimizers.schedules.deserialize(json.loads(json.dumps(OLD_CONFIG)))
    assert isinstance(old, WarmupCosine) and isinstance(old, keras.optimizers.schedules.CosineDecay)
    assert [float(old(k)) for k in range(0, 120, 7)] == pytest.approx([closed_form(k) for k in range(0, 120, 7)],
                                                                     rel=1e-5, abs=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert keras.optimizers.schedules.serialize(old) == OLD_CONFIG  # re-saved as it was


def test_old_checkpoint_with_warmup_cosine_loads(tmp_path):
    """A .keras file whose optimizer config names the old class loads, with its optimizer state."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(warmup_cosine(2e-3, 5e-5, 100, 10)), loss="mse")
    model.fit(np.ones((4, 3), "float32"), np.ones((4, 1), "float32"), epochs=3, verbose=0)
    new, old = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new)
    with zipfile.ZipFile(new) as src, zipfile.ZipFile(old, "w") as dst:  # the same file, as the old code wrote it
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                config["compile_config"]["optimizer"]["config"]["learning_rate"] = OLD_CONFIG
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = keras.saving.load_model(old)
    assert loaded.optimizer.get_config()["learning_rate"]["registered_name"] == "mimokd>WarmupCosine"
    assert int(loaded.optimizer.iterations) == 3
    assert float(loaded.optimizer.learning_rate) == pytest.approx(closed_form(3), rel=1e-5)
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
