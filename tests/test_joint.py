"""Algorithm 1 of Kong et al. (train/joint.py): the two updates, schedules, data, evaluation, saving."""

import csv

import keras
import numpy as np
import pytest

from mimokd.classical.mimo import rayleigh_channels
from mimokd.classical.sum_rate import db_to_linear, sum_rate_np
from mimokd.train.joint import (
    JointTrainer,
    SlopeSchedule,
    channel_arrays,
    channel_dataset,
    evaluate_sum_rate,
    fit_joint,
    kong_learning_rate,
)
from mimokd.zoo.precoding import KongSystem, to_complex
from weights import model_output, snapshot, unchanged  # tests/weights.py

K, M, N, B, L = 2, 4, 1, 3, 4
DIMS = dict(num_users=K, num_tx=M, num_rx=N, pilot_length=L)
P_DB = 10.0


def _system(shared=True, binarization="tanh-ste", hidden=(16, 16), seed=0):
    keras.utils.set_random_seed(seed)
    return KongSystem.build(
        bits=B, shared_receiver=shared, binarization=binarization, receiver_hidden=hidden,
        transmitter_hidden=hidden, **DIMS,
    )


def _trainer(system, use_kd=True, lr=1e-3, **kwargs):
    trainer = JointTrainer(system, power_db=P_DB, use_kd=use_kd, **kwargs)
    trainer.compile(optimizer=keras.optimizers.Adam(lr), aux_optimizer=keras.optimizers.Adam(lr))
    return trainer


@pytest.fixture(scope="module")
def batch():
    return channel_arrays(64, seed=0, **DIMS)


def _parts(system):
    receivers = [v for r in system.unique_receivers for v in r.trainable_variables]
    return receivers, system.transmitter.trainable_variables, system.aux_transmitter.trainable_variables


def _changed(before, variables):
    return not any(unchanged(before, variables))  # every weight moved


# --- schedules ------------------------------------------------------------------------------------


def test_kong_learning_rate_paper_and_scaled():
    lr = kong_learning_rate()
    for step, expected in [(0, 2e-4), (30_000, 2e-4), (30_001, 2e-5), (40_000, 2e-5), (40_001, 2e-6), (50_000, 2e-6)]:
        assert float(lr(step)) == pytest.approx(expected, rel=1e-6), step
    short = kong_learning_rate(100, lr=1e-3)  # boundaries scale with the run: 60 and 80
    assert [float(short(s)) for s in (60, 61, 80, 81)] == pytest.approx([1e-3, 1e-4, 1e-4, 1e-5], rel=1e-6)
    with pytest.raises(ValueError, match="boundaries"):
        kong_learning_rate(100, boundaries=(0.8, 0.6))


def test_slope_schedule_closed_form():
    schedule = SlopeSchedule(initial=1.0, final=16.0, total_steps=100)
    for step in (0, 25, 50, 100, 150):
        assert float(schedule(step)) == pytest.approx(16.0 ** min(step / 100, 1.0), rel=1e-5)
    assert SlopeSchedule.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="initial"):
        SlopeSchedule(initial=2.0, final=1.0)


# --- data -----------------------------------------------------------------------------------------


def test_channel_data_is_fresh_per_epoch_and_seeded():
    pilots, channels = channel_arrays(5, seed=3, **DIMS)
    assert pilots.shape == (5, K, 2 * N * L) and pilots.dtype == np.float32
    assert channels.shape == (5, K, M, N) and channels.dtype == np.complex64
    again = channel_arrays(5, seed=3, **DIMS)
    np.testing.assert_array_equal(pilots, again[0])
    np.testing.assert_array_equal(channels, again[1])
    dataset = channel_dataset(4, steps=2, seed=0, **DIMS)
    first = [h.numpy() for _, h in dataset]
    second = [h.numpy() for _, h in dataset]
    assert len(first) == len(second) == 2 and first[0].shape == (4, K, M, N)
    assert not np.array_equal(first[0], second[0])  # every epoch draws new channels


# --- the two updates of Algorithm 1 ---------------------------------------------------------------


def test_train_step_with_kd_updates_all_three(batch):
    system = _system()
    trainer = _trainer(system)
    receivers, transmitter, aux = _parts(system)
    before = [snapshot(v) for v in (receivers, transmitter, aux)]
    logs = trainer.train_step(batch)
    assert {"loss", "aux_loss", "sum_rate"} <= set(logs)
    assert float(logs["sum_rate"]) == pytest.approx(-float(logs["loss"]), rel=1e-6)
    for b, v in zip(before, (receivers, transmitter, aux)):
        assert _changed(b, v)
    assert int(trainer.optimizer.iterations) == int(trainer.aux_optimizer.iterations) == 1


def test_train_step_without_kd_leaves_aux_untouched(batch):
    system = _system()
    trainer = _trainer(system, use_kd=False)
    receivers, transmitter, aux = _parts(system)
    before = [snapshot(v) for v in (receivers, transmitter, aux)]
    logs = trainer.train_step(batch)
    assert "aux_loss" not in logs and {"loss", "sum_rate"} <= set(logs)
    assert _changed(before[0], receivers) and _changed(before[1], transmitter)
    assert all(unchanged(before[2], aux))
    assert int(trainer.aux_optimizer.iterations) == 0


def test_step_4_leaves_the_transmitter_and_step_5_the_aux_transmitter(batch):
    pilots, channels = batch
    system = _system(shared=False)
    trainer = _trainer(system)
    receivers, transmitter, aux = _parts(system)

    before = [snapshot(v) for v in (receivers, transmitter, aux)]
    trainer.aux_step(pilots, channels)  # step 4: receivers + auxiliary transmitter
    assert _changed(before[0], receivers) and _changed(before[2], aux)
    assert all(unchanged(before[1], transmitter))

    before = [snapshot(v) for v in (receivers, transmitter, aux)]
    trainer.main_step(pilots, channels)  # step 5: receivers (through the STE) + transmitter
    assert _changed(before[0], receivers) and _changed(before[1], transmitter)
    assert all(unchanged(before[2], aux))


def test_losses_are_minus_the_sum_rate_of_each_path(batch):
    pilots, channels = batch
    system = _system()
    trainer = _trainer(system)
    for loss, path in ((trainer.main_loss, system.precoders), (trainer.aux_loss, system.aux_precoders)):
        v = to_complex(keras.ops.convert_to_numpy(path(pilots, P_DB)))
        expected = -sum_rate_np(channels, v, db_to_linear(P_DB)).mean()
        assert float(loss(pilots, channels, training=False)) == pytest.approx(expected, rel=1e-4)


def test_sigmoid_ste_slope_is_annealed_by_the_trainer(batch):
    system = _system(binarization="sigmoid-ste")
    schedule = SlopeSchedule(initial=1.0, final=8.0, total_steps=4)
    trainer = _trainer(system, slope_schedule=schedule)
    layer = system.receiver.get_layer("binarize")
    for step in range(3):
        logs = trainer.train_step(batch)
        assert float(layer.slope.numpy()) == pytest.approx(float(schedule(step)), rel=1e-6)
    assert "slope" in logs


# --- training, evaluation, saving -----------------------------------------------------------------


def test_a_few_hundred_steps_raise_the_sum_rate():
    system = _system(hidden=(32, 32))
    test_channels = rayleigh_channels(2000, K, M, N, rng=11)
    untrained = evaluate_sum_rate(system, test_channels, P_DB, rng=12)
    assert untrained == evaluate_sum_rate(system, test_channels, P_DB, rng=12)  # seeded
    trainer = _trainer(system)
    history = trainer.fit(channel_dataset(64, steps=100, seed=1, **DIMS), epochs=3, shuffle=False, verbose=0)
    trained = evaluate_sum_rate(system, test_channels, P_DB, rng=12)
    assert trained > untrained + 0.2, (untrained, trained)
    assert history.history["sum_rate"][-1] > history.history["sum_rate"][0]
    rates = evaluate_sum_rate(system, test_channels, P_DB, rng=12, per_sample=True)
    assert rates.shape == (2000,) and rates.mean() == pytest.approx(trained)


def test_evaluate_sum_rate_is_the_deployed_path():
    system = _system()
    channels = rayleigh_channels(50, K, M, N, rng=0)
    pilots, again = channel_arrays(50, seed=0, **DIMS)  # channel_arrays: channels then noise, one rng
    np.testing.assert_array_equal(channels, again)
    rng = np.random.default_rng(0)
    rayleigh_channels(50, K, M, N, rng=rng)  # advance the generator past the channels
    bits = [keras.ops.convert_to_numpy(system.receiver(pilots[:, k])) for k in range(K)]
    feedback = np.concatenate(bits, axis=-1)
    v = system.transmitter([feedback, np.full((50, 1), P_DB, "float32")])
    expected = sum_rate_np(channels, to_complex(keras.ops.convert_to_numpy(v)), db_to_linear(P_DB)).mean()
    assert evaluate_sum_rate(system, channels, P_DB, rng) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="H.shape"):
        evaluate_sum_rate(system, channels[:, :1], P_DB, 0)


@pytest.mark.parametrize("shared", [True, False])
def test_trainer_keras_round_trip(tmp_path, batch, shared):
    system = _system(shared=shared, binarization="sigmoid-ste")
    trainer = _trainer(system, slope_schedule=SlopeSchedule(1.0, 4.0, total_steps=10))
    trainer.train_step(batch)
    trainer.save(tmp_path / "trainer.keras")
    loaded = keras.saving.load_model(tmp_path / "trainer.keras")
    pilots = batch[0][:8]
    np.testing.assert_array_equal(model_output(loaded, pilots), model_output(trainer, pilots))
    assert loaded.system.shared_receiver == shared and loaded.system.num_users == K
    assert (loaded.power_db, loaded.use_kd) == (P_DB, True)
    assert loaded.slope_schedule.get_config() == trainer.slope_schedule.get_config()
    assert int(loaded.optimizer.iterations) == int(loaded.aux_optimizer.iterations) == 1
    for a, b in zip(loaded.aux_optimizer.variables, trainer.aux_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.system.aux_precoders(pilots, P_DB)),
        keras.ops.convert_to_numpy(system.aux_precoders(pilots, P_DB)),
    )
    loaded.train_step(batch)  # trains on


def test_fit_joint_writes_a_run_directory(tmp_path):
    system = _system(binarization="sigmoid-ste")
    trainer, _ = fit_joint(
        system, out_dir=tmp_path, power_db=P_DB, iterations=6, steps_per_epoch=3, batch_size=32,
        val_samples=64, verbose=0,
    )
    assert int(trainer.optimizer.iterations) == 6
    assert {"best.keras", "final.keras", "log.csv", "config.json"} <= {p.name for p in tmp_path.iterdir()}
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and {"loss", "aux_loss", "sum_rate", "val_loss", "val_sum_rate", "lr"} <= set(rows[0])
    best = keras.saving.load_model(tmp_path / "best.keras")
    assert isinstance(best, JointTrainer)
    # the slope is annealed inside the compiled step too: a(5) of a(t) = 10 ** (t / 6)
    slope = system.receiver.get_layer("binarize").slope.numpy()
    assert float(slope) == pytest.approx(10 ** (5 / 6), rel=1e-5)
    assert float(rows[-1]["slope"]) > float(rows[0]["slope"])
