"""Codeword mimic (Lu et al.): alpha(t), the mimic-explore learning rates, the trainer, its runs."""

import csv
import json
import math
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from mimokd.metrics import nmse_db
from mimokd.train import TrainConfig, warmup_cosine
from mimokd.train.codeword_mimic import (
    AlphaSchedule,
    CodewordMimic,
    fit_codeword_mimic,
    mimic_explore_schedules,
)
from mimokd.train.schedules import TwoStage
from mimokd.zoo import create_model
from weights import model_output, snapshot, unchanged  # tests/weights.py

STEPS = 2  # 40 training samples / batch 20


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = (0.5 + 0.1 * rng.standard_normal((60, 2, 32, 32))).clip(0, 1).astype("float32")
    return x[:40], x[40:]


def _alpha(kind, alpha0, mimic_epochs, t):
    """alpha(t) in closed form, t the 0-based epoch: Lu et al. eq. (5) and the Table III variants."""
    if t >= mimic_epochs:
        return 0.0
    if kind == "cosine":
        return alpha0 * (1 + math.cos(math.pi * t / mimic_epochs)) / 2
    if kind == "linear":
        return alpha0 * (1 - t / mimic_epochs)
    return alpha0


def _cosine(peak, floor, progress):
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def _log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- alpha(t) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cosine", "linear", "constant"])
@pytest.mark.parametrize("alpha0, mimic_epochs", [(1e-4, 5), (0.6, 4), (0.3, 1)])
def test_alpha_schedule_closed_form(kind, alpha0, mimic_epochs):
    schedule = AlphaSchedule(kind, alpha0=alpha0, mimic_epochs=mimic_epochs)
    for t in range(mimic_epochs + 4):
        expected = _alpha(kind, alpha0, mimic_epochs, t)
        assert float(schedule(t)) == pytest.approx(expected, rel=1e-5, abs=1e-12), (kind, t)
        assert float(schedule(np.int64(t))) == pytest.approx(expected, rel=1e-5, abs=1e-12)
    assert float(schedule(0)) == pytest.approx(alpha0, rel=1e-6)
    assert float(schedule(mimic_epochs)) == 0.0  # the explore stage starts at t = T_cm


def test_alpha_schedule_defaults_are_the_papers():
    schedule = AlphaSchedule()
    assert (schedule.kind, schedule.alpha0, schedule.mimic_epochs) == ("cosine", 1e-4, 200)
    assert float(schedule(100)) == pytest.approx(0.5e-4, rel=1e-5)


def test_alpha_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Unknown distillation scheduler 'step'"):
        AlphaSchedule("step")
    with pytest.raises(ValueError, match="mimic_epochs"):
        AlphaSchedule("cosine", mimic_epochs=-1)
    with pytest.raises(ValueError, match="alpha0"):
        AlphaSchedule("linear", alpha0=1.5)


def test_alpha_schedule_config_round_trip():
    schedule = AlphaSchedule("linear", alpha0=0.2, mimic_epochs=7)
    restored = AlphaSchedule.from_config(json.loads(json.dumps(schedule.get_config())))
    assert restored.get_config() == schedule.get_config()
    serialized = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(serialized, AlphaSchedule) and serialized.get_config() == schedule.get_config()
    assert [float(restored(t)) for t in range(9)] == [float(schedule(t)) for t in range(9)]


# --- mimic-explore learning rates ----------------------------------------------------------------


def test_mimic_explore_schedules_closed_form():
    steps, epochs, mimic_epochs = 10, 10, 4
    encoder, decoder = mimic_explore_schedules(steps, epochs, mimic_epochs, warmup_fraction=0.03)
    lr = lambda s, k: float(s(k))  # noqa: E731
    warmup = 10  # 3% of 100 steps is 3, raised to one epoch's steps
    mimic_steps, explore_steps = 40, 60
    for s in (encoder, decoder):  # the mimic stage: one warm-up cosine 2e-3 -> 4e-5 for both halves
        assert lr(s, 0) == 0.0
        assert lr(s, 5) == pytest.approx(1e-3, rel=1e-5)
        assert lr(s, warmup) == pytest.approx(2e-3, rel=1e-5)
        last = _cosine(2e-3, 4e-5, (mimic_steps - 1 - warmup) / (mimic_steps - warmup))
        assert lr(s, mimic_steps - 1) == pytest.approx(last, rel=1e-4)
    # the explore stage restarts: encoder from 2e-4, decoder from 4e-3, each down to 1/100 of it
    assert lr(encoder, mimic_steps) == pytest.approx(2e-4, rel=1e-5)
    assert lr(decoder, mimic_steps) == pytest.approx(4e-3, rel=1e-5)
    final = epochs * steps - 1
    progress = (final - mimic_steps) / explore_steps
    assert lr(encoder, final) == pytest.approx(_cosine(2e-4, 2e-6, progress), rel=1e-4)
    assert lr(decoder, final) == pytest.approx(_cosine(4e-3, 4e-5, progress), rel=1e-4)
    assert lr(encoder, epochs * steps) == pytest.approx(2e-6, rel=1e-4)
    assert lr(decoder, epochs * steps) == pytest.approx(4e-5, rel=1e-4)


def test_mimic_explore_without_explore_epochs_is_one_schedule():
    steps, epochs = 5, 6
    encoder, decoder = mimic_explore_schedules(steps, epochs, epochs, warmup_fraction=0.03)
    total, warmup = epochs * steps, steps
    for k in (0, 2, warmup, 17, total - 1, total):
        expected = 2e-3 * k / warmup if k < warmup else _cosine(2e-3, 4e-5, (k - warmup) / (total - warmup))
        assert float(encoder(k)) == pytest.approx(expected, rel=1e-4, abs=1e-12)
        assert float(decoder(k)) == pytest.approx(expected, rel=1e-4, abs=1e-12)


@pytest.mark.parametrize("mimic_epochs", [0, -1, 11])
def test_mimic_explore_rejects_mimic_epochs(mimic_epochs):
    with pytest.raises(ValueError, match="0 < mimic_epochs <= epochs"):
        mimic_explore_schedules(10, 10, mimic_epochs)


def test_two_stage_serialization_round_trip():
    schedule = TwoStage(
        warmup_cosine(2e-3, 4e-5, total_steps=40, warmup_steps=10), warmup_cosine(4e-3, 4e-5, total_steps=60), 40
    )
    config = json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
    restored = keras.optimizers.schedules.deserialize(config)
    assert isinstance(restored, TwoStage)
    cosine = keras.optimizers.schedules.CosineDecay
    assert isinstance(restored.first, cosine) and isinstance(restored.second, cosine)
    assert restored.boundary == 40
    assert restored.get_config() == schedule.get_config()
    for k in (0, 5, 10, 39, 40, 41, 99, 150):
        assert float(restored(k)) == float(schedule(k))
        expected = schedule.first(k) if k < 40 else schedule.second(k - 40)
        assert float(restored(k)) == pytest.approx(float(expected), rel=1e-6)


# --- the CodewordMimic trainer ---------------------------------------------------------------------

# alpha0 large enough that both terms of eq. (4) count, and distinct values in every epoch
ALPHA = AlphaSchedule("linear", alpha0=0.5, mimic_epochs=3)


def _alpha_at(epoch):
    return _alpha("linear", 0.5, 3, epoch)


@pytest.fixture(scope="module")
def mimic(data):
    """A CM trainer fitted for two epochs, with the weights from before the fit."""
    train, val = data
    keras.utils.set_random_seed(2)
    teacher, student = create_model("crnet_cui", cr=32), create_model("crnet_se", cr=32)
    trainer = CodewordMimic(teacher.encoder, student, alpha=ALPHA, steps_per_epoch=STEPS)
    # eager steps (cheaper than tracing on 2 cores); fit_codeword_mimic below trains as a graph
    trainer.compile(optimizer=keras.optimizers.Adam(2e-3), run_eagerly=True)
    before = SimpleNamespace(teacher=snapshot(teacher.encoder.weights), student=snapshot(student.trainable_weights))
    history = trainer.fit(train, train, validation_data=(val, val), batch_size=20, epochs=2, shuffle=False, verbose=0)
    return SimpleNamespace(trainer=trainer, teacher=teacher, student=student, before=before, history=history)


def test_codeword_mimic_freezes_teacher_and_trains_student(mimic):
    encoder = mimic.teacher.encoder
    assert any("moving_mean" in w.path for w in encoder.non_trainable_weights)  # BN statistics checked too
    assert all(unchanged(mimic.before.teacher, encoder.weights))
    moved = [not same for same in unchanged(mimic.before.student, mimic.student.trainable_weights)]
    assert len(moved) == len(mimic.student.trainable_weights) and all(moved)  # encoder and decoder
    assert int(mimic.trainer.optimizer.iterations.numpy()) == 2 * STEPS


def test_codeword_mimic_logs(mimic):
    logs = mimic.history.history
    for key in ("loss", "codeword_mse", "reconstruction_mse", "alpha", "nmse"):
        for name in (key, f"val_{key}"):
            assert name in logs and len(logs[name]) == 2 and all(np.isfinite(logs[name])), name
    # training and validation both use the epoch's alpha
    np.testing.assert_allclose(logs["alpha"], [_alpha_at(0), _alpha_at(1)], rtol=1e-6)
    np.testing.assert_allclose(logs["val_alpha"], [_alpha_at(0), _alpha_at(1)], rtol=1e-6)


def test_codeword_mimic_loss_matches_numpy(mimic, data):
    _, val = data
    trainer, teacher, student = mimic.trainer, mimic.teacher, mimic.student
    result = trainer.evaluate(val, val, batch_size=len(val), return_dict=True, verbose=0)  # one batch
    codeword_mse = np.mean((model_output(teacher.encoder, val) - model_output(student.encoder, val)) ** 2)
    pred = model_output(student, val)
    reconstruction_mse = np.mean((val - pred) ** 2)
    # in validation, alpha is that of the epoch of the last step taken
    alpha = _alpha_at((int(trainer.optimizer.iterations.numpy()) - 1) // STEPS)
    assert result["alpha"] == pytest.approx(alpha, rel=1e-6)
    assert result["codeword_mse"] == pytest.approx(codeword_mse, rel=1e-4)
    assert result["reconstruction_mse"] == pytest.approx(reconstruction_mse, rel=1e-4)
    assert result["loss"] == pytest.approx(alpha * codeword_mse + (1 - alpha) * reconstruction_mse, rel=1e-4)
    assert result["nmse"] == pytest.approx(nmse_db(val, pred), abs=1e-3)


def test_codeword_mimic_alpha_follows_iterations(mimic, data):
    train, val = data
    trainer = mimic.trainer
    iterations = trainer.optimizer.iterations
    start = int(iterations.numpy())
    try:
        iterations.assign(0)  # before any step, validation takes epoch 0
        logs = trainer.evaluate(val, val, batch_size=len(val), return_dict=True, verbose=0)
        assert logs["alpha"] == pytest.approx(_alpha_at(0), rel=1e-6)
        for step in (1, 2, 4, 7):  # inside epoch 0, first step of epoch 1, epoch 2, after T_cm = 3
            iterations.assign(step)
            logs = trainer.train_on_batch(train[:20], train[:20], return_dict=True)
            assert logs["alpha"] == pytest.approx(_alpha_at(step // STEPS), rel=1e-6, abs=1e-12), step
            assert int(iterations.numpy()) == step + 1
            # validation after that step: the epoch of the step just taken
            logs = trainer.evaluate(val, val, batch_size=len(val), return_dict=True, verbose=0)
            assert logs["alpha"] == pytest.approx(_alpha_at(step // STEPS), rel=1e-6, abs=1e-12), step
    finally:
        iterations.assign(start)


def test_codeword_mimic_encoder_optimizer(mimic, data):
    train, _ = data
    keras.utils.set_random_seed(4)
    student = create_model("crnet_se", cr=32)
    trainer = CodewordMimic(mimic.teacher.encoder, student, alpha=ALPHA, steps_per_epoch=STEPS)
    trainer.compile(
        optimizer=keras.optimizers.Adam(2e-3), encoder_optimizer=keras.optimizers.Adam(0.0), run_eagerly=True
    )
    encoder_before = snapshot(student.encoder.trainable_weights)
    decoder_before = snapshot(student.decoder.trainable_weights)
    trainer.fit(train, train, batch_size=20, epochs=1, shuffle=False, verbose=0)
    assert int(trainer.optimizer.iterations.numpy()) == STEPS
    assert int(trainer.encoder_optimizer.iterations.numpy()) == STEPS
    assert encoder_before and all(unchanged(encoder_before, student.encoder.trainable_weights))
    moved = [not same for same in unchanged(decoder_before, student.decoder.trainable_weights)]
    assert moved and all(moved)


@pytest.mark.filterwarnings("ignore:`compile\\(\\)` was not called")
@pytest.mark.filterwarnings("ignore:You are saving a model that has not yet been built")
def test_codeword_mimic_save_load_round_trip(mimic, data, tmp_path):
    _, val = data
    trainer = mimic.trainer
    trainer.save(tmp_path / "cm.keras")
    loaded = keras.saving.load_model(tmp_path / "cm.keras")
    assert isinstance(loaded, CodewordMimic)
    np.testing.assert_allclose(model_output(loaded, val), model_output(trainer, val), atol=1e-6)
    np.testing.assert_allclose(model_output(loaded.teacher_encoder, val), model_output(mimic.teacher.encoder, val),
                               atol=1e-6)
    saved, restored = trainer.get_weights(), loaded.get_weights()
    assert len(saved) == len(restored) and all(np.array_equal(a, b) for a, b in zip(saved, restored))
    assert loaded.alpha.get_config() == ALPHA.get_config()
    assert loaded.steps_per_epoch == STEPS
    assert loaded.student.get_config() == mimic.student.get_config()
    assert not loaded.teacher_encoder.trainable


def test_codeword_mimic_rejects_mismatched_codewords():
    teacher, student = create_model("crnet_cui", cr=16), create_model("crnet_se", cr=32)
    with pytest.raises(ValueError, match="codewords must have the same shape"):
        CodewordMimic(teacher.encoder, student)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        CodewordMimic(student.encoder, student, steps_per_epoch=0)


# --- fit_codeword_mimic ----------------------------------------------------------------------------


def test_fit_codeword_mimic_writes_run(data, tmp_path):
    train, val = data
    keras.utils.set_random_seed(7)
    # the run's mechanics, on the zoo's lightest pair (the same codeword size: CsiNet for both)
    teacher, student = create_model("csinet", cr=32), create_model("csinet", cr=32)
    config = TrainConfig(epochs=3, batch_size=20, seed=1)
    returned, history = fit_codeword_mimic(
        teacher, student, train, val, out_dir=tmp_path, config=config, mimic_epochs=2, verbose=0
    )
    assert returned is student
    for name in ("best.keras", "final.keras"):
        model = keras.saving.load_model(tmp_path / name)
        assert type(model) is type(student) and model.get_config() == student.get_config()
    np.testing.assert_allclose(
        model_output(keras.saving.load_model(tmp_path / "final.keras"), val),
        model_output(student, val),
        atol=1e-6,
    )

    rows = _log(tmp_path / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for key in ("encoder_lr", "lr", "alpha", "codeword_mse", "val_codeword_mse", "val_nmse"):
        assert key in rows[0]
    # defaults: the cosine scheduler of eq. (5), alpha0 = 1e-4
    for t, row in enumerate(rows):
        assert float(row["alpha"]) == pytest.approx(_alpha("cosine", 1e-4, 2, t), rel=1e-5, abs=1e-12)
    # the learning rates after each epoch (4 mimic steps, 2 explore steps, warm-up of one epoch)
    encoder_lr = [float(r["encoder_lr"]) for r in rows]
    decoder_lr = [float(r["lr"]) for r in rows]
    np.testing.assert_allclose(encoder_lr, [2e-3, 2e-4, 2e-6], rtol=1e-4)  # peak, explore restart, floor
    np.testing.assert_allclose(decoder_lr, [2e-3, 4e-3, 4e-5], rtol=1e-4)

    stages = json.loads((tmp_path / "stages.json").read_text())
    by_epoch = {int(r["epoch"]): float(r["val_codeword_mse"]) for r in rows}
    assert stages["mse_cm_mid"] == pytest.approx(by_epoch[1])  # after the last mimic epoch
    assert stages["mse_cm_end"] == pytest.approx(by_epoch[2])
    assert history.history["val_codeword_mse"] == pytest.approx([by_epoch[t] for t in range(3)])
    # eq. (4) in the compiled test step (one validation batch, so the logged means are its terms)
    for row in rows:
        alpha = float(row["val_alpha"])
        assert alpha == pytest.approx(float(row["alpha"]), rel=1e-6, abs=1e-12)
        assert float(row["val_loss"]) == pytest.approx(
            alpha * float(row["val_codeword_mse"]) + (1 - alpha) * float(row["val_reconstruction_mse"]), rel=1e-5
        )


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill after epoch 2")


def test_fit_codeword_mimic_resumes(data, tmp_path):
    train, val = data
    keras.utils.set_random_seed(8)
    teacher = create_model("csinet", cr=32)  # the zoo's lightest pair, as above
    config = TrainConfig(epochs=3, batch_size=20, seed=2)
    kwargs = {"out_dir": tmp_path, "config": config, "mimic_epochs": 2, "scheduler": "constant", "verbose": 0}
    with pytest.raises(KeyboardInterrupt):
        fit_codeword_mimic(teacher, create_model("csinet", cr=32), train, val, callbacks=[_Interrupt()], **kwargs)
    assert (tmp_path / "backup").is_dir()
    assert [int(r["epoch"]) for r in _log(tmp_path / "log.csv")] == [0, 1]

    # a fresh process: new student, same directory
    student, history = fit_codeword_mimic(teacher, create_model("csinet", cr=32), train, val, **kwargs)
    assert history.epoch == [2]  # only the epoch left
    trainer = history.model
    assert int(trainer.optimizer.iterations.numpy()) == 3 * STEPS
    assert int(trainer.encoder_optimizer.iterations.numpy()) == 3 * STEPS
    assert (tmp_path / "backup" / "epoch-00003.json").is_file()  # kept: running it again trains nothing

    rows = _log(tmp_path / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    # the resumed epoch took alpha and the explore learning rates from the restored step counters
    alphas = [float(r["alpha"]) for r in rows]
    assert alphas == pytest.approx([_alpha("constant", 1e-4, 2, t) for t in range(3)], rel=1e-5, abs=1e-12)
    assert float(rows[2]["encoder_lr"]) == pytest.approx(2e-6, rel=1e-4)
    assert float(rows[2]["lr"]) == pytest.approx(4e-5, rel=1e-4)
    stages = json.loads((tmp_path / "stages.json").read_text())
    assert stages["mse_cm_mid"] == pytest.approx(float(rows[1]["val_codeword_mse"]))
    assert stages["mse_cm_end"] == pytest.approx(float(rows[2]["val_codeword_mse"]))
    np.testing.assert_allclose(
        model_output(keras.saving.load_model(tmp_path / "final.keras"), val),
        model_output(student, val),
        atol=1e-6,
    )
