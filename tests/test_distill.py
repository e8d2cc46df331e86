"""Output, autoencoder and encoder KD: the eq. (9)-(10) loss, the frozen teacher, run directories."""

import csv
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from mimokd.train import TrainConfig
from mimokd.train.distill import (
    SoftmaxCrossEntropy,
    autoencoder_kd,
    encoder_kd,
    fit_distillation,
    fit_encoder_kd,
    output_kd,
)
from mimokd.train.vanilla import compile_autoencoder
from mimokd.zoo import ComposedAutoencoder, create_model
from weights import model_output, snapshot, unchanged  # tests/weights.py

# no warm-up: the first step's learning rate is the peak, so two steps move every weight
# (a ReZero scale starts at 0 and its branch only gets a gradient once the scale has moved)
TINY = TrainConfig(epochs=1, batch_size=20, warmup_fraction=0.0, seed=3)
STEPS = 2  # 40 training samples / batch 20


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = (0.5 + 0.1 * rng.standard_normal((60, 2, 32, 32))).clip(0, 1).astype("float32")
    return x[:40], x[40:]


@pytest.fixture(scope="module")
def pair():
    """An untrained teacher / student pair for the checks that train nothing."""
    return create_model("crnet_cui", cr=32), create_model("crnet_se", cr=32)


def _softmax_ce(z_t, z_s, t):
    """Cui et al. eq. (9)-(10) in float64: softmax of z / t over all 2HW elements of a sample,
    CE = -sum p_t log p_s per sample, mean over the batch."""
    n = len(z_t)
    a = np.asarray(z_t, np.float64).reshape(n, -1) / t
    b = np.asarray(z_s, np.float64).reshape(n, -1) / t
    p_t = np.exp(a - a.max(axis=1, keepdims=True))
    p_t /= p_t.sum(axis=1, keepdims=True)
    log_p_s = b - b.max(axis=1, keepdims=True)
    log_p_s -= np.log(np.exp(log_p_s).sum(axis=1, keepdims=True))
    return float(np.mean(-np.sum(p_t * log_p_s, axis=1)))


def _softmax(z, t):
    n = len(z)
    a = np.asarray(z, np.float64).reshape(n, -1) / t
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- SoftmaxCrossEntropy ---------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 1.0, 5.0])
def test_softmax_cross_entropy_matches_eq_10(temperature):
    rng = np.random.default_rng(1)
    # a wide range of values, so the softmax is far from uniform and the axis it runs over matters
    z_t = rng.uniform(-3, 3, (3, 2, 4, 5)).astype("float32")
    z_s = rng.uniform(-3, 3, (3, 2, 4, 5)).astype("float32")
    loss = SoftmaxCrossEntropy(temperature).compute_loss(z_t, z_s)
    assert tuple(loss.shape) == ()
    assert float(loss) == pytest.approx(_softmax_ce(z_t, z_s, temperature), rel=1e-5)
    # the CE of a distribution with itself is its entropy, the minimum over students
    same = float(SoftmaxCrossEntropy(temperature).compute_loss(z_t, z_t))
    assert same == pytest.approx(_softmax_ce(z_t, z_t, temperature), rel=1e-5)
    assert same < float(loss)


@pytest.mark.parametrize("temperature", [0.7, 5.0])
def test_softmax_cross_entropy_gradient(temperature):
    rng = np.random.default_rng(2)
    batch = 4
    z_t = tf.constant(rng.uniform(0, 1, (batch, 2, 6, 3)).astype("float32") * 4)
    z_s = tf.Variable(rng.uniform(0, 1, (batch, 2, 6, 3)).astype("float32") * 4)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z_t)
        loss = SoftmaxCrossEntropy(temperature).compute_loss(z_t, z_s)
    grad = tape.gradient(loss, z_s).numpy()
    expected = (_softmax(z_s.numpy(), temperature) - _softmax(z_t.numpy(), temperature)) / (temperature * batch)
    np.testing.assert_allclose(grad, expected.reshape(z_s.shape), rtol=1e-4, atol=1e-8)
    # the soft targets are constants: no gradient flows into the teacher's outputs
    teacher_grad = tape.gradient(loss, z_t)
    assert teacher_grad is None or not np.any(teacher_grad.numpy())


@pytest.mark.parametrize("temperature", [0, -1.0, float("nan")])
def test_softmax_cross_entropy_rejects_temperature(temperature, pair):
    with pytest.raises(ValueError, match="temperature"):
        SoftmaxCrossEntropy(temperature)
    with pytest.raises(ValueError, match="temperature"):
        autoencoder_kd(*pair, temperature=temperature)


def test_softmax_cross_entropy_config_round_trip():
    loss = SoftmaxCrossEntropy(2.5)
    assert SoftmaxCrossEntropy.from_config(loss.get_config()).temperature == 2.5
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, SoftmaxCrossEntropy)
    assert restored.get_config() == loss.get_config()


# --- the three trainers ------------------------------------------------------------------------

# builder, share of the ground-truth term (output KD with a non-default weight, to see it used;
# autoencoder KD with Cui et al.'s alpha = 0.3, t = 5 as defaults)
TRAINERS = {
    "output_kd": (lambda t, s: output_kd(t, s, weight=0.25), 0.25),
    "autoencoder_kd": (autoencoder_kd, 0.3),
    "encoder_kd": (encoder_kd, 0.0),
}


@pytest.fixture(scope="module", params=sorted(TRAINERS))
def fitted(request, data):
    """A trainer of each kind fitted for two steps, with the weights from before the fit."""
    name = request.param
    build, weight = TRAINERS[name]
    train, _ = data
    keras.utils.set_random_seed(1)
    teacher, student = create_model("crnet_cui", cr=32), create_model("crnet_se", cr=32)
    trainer = build(teacher, student)
    compile_autoencoder(trainer, config=TINY, steps_per_epoch=STEPS, metrics=() if name == "encoder_kd" else None)
    # eager steps: tracing the train function costs several times the two steps on 2 cores; the
    # run-directory tests below train autoencoder KD and encoder KD as compiled graphs
    trainer.run_eagerly = True
    trained = student.encoder if name == "encoder_kd" else student
    before = SimpleNamespace(
        teacher=snapshot(teacher.weights),
        trained=snapshot(trained.trainable_weights),
        decoder=snapshot(student.decoder.weights),
    )
    history = trainer.fit(train, train, batch_size=20, epochs=1, shuffle=False, verbose=0)
    return SimpleNamespace(
        name=name,
        weight=weight,
        trainer=trainer,
        teacher=teacher,
        student=student,
        trained=trained,
        before=before,
        history=history,
    )


def test_trainer_freezes_teacher_and_trains_student(fitted):
    teacher = fitted.teacher
    # the check covers the BatchNorm moving statistics, which a forward pass in training mode moves
    assert any("moving_mean" in w.path for w in teacher.non_trainable_weights)
    assert len(fitted.before.teacher) == len(teacher.weights)
    assert all(unchanged(fitted.before.teacher, teacher.weights))
    moved = [not same for same in unchanged(fitted.before.trained, fitted.trained.trainable_weights)]
    assert moved and all(moved)
    if fitted.name == "encoder_kd":  # step 2 trains the encoder alone
        assert all(unchanged(fitted.before.decoder, fitted.student.decoder.weights))


def test_trainer_logs_loss_terms(fitted):
    logs = fitted.history.history
    for key in ("loss", "student_loss", "distillation_loss", "total_loss"):
        assert key in logs and len(logs[key]) == 1 and np.isfinite(logs[key][0])
    assert logs["total_loss"][0] == pytest.approx(logs["loss"][0], rel=1e-6)


def test_trainer_loss_terms_match_numpy(fitted, data):
    _, val = data
    trainer, teacher, student, w = fitted.trainer, fitted.teacher, fitted.student, fitted.weight
    result = trainer.evaluate(val, val, batch_size=len(val), return_dict=True, verbose=0)  # one batch
    assert result["total_loss"] == pytest.approx(
        w * result["student_loss"] + (1 - w) * result["distillation_loss"], rel=1e-5
    )
    assert result["loss"] == pytest.approx(result["total_loss"], rel=1e-5)

    if fitted.name == "encoder_kd":
        codeword_t = model_output(teacher.encoder, val)
        codeword_s = model_output(student.encoder, val)
        assert result["distillation_loss"] == pytest.approx(np.mean((codeword_t - codeword_s) ** 2), rel=1e-4)
        assert result["student_loss"] == 0.0
        return
    pred_t = model_output(teacher, val)
    pred_s = model_output(student, val)
    assert result["student_loss"] == pytest.approx(np.mean((val - pred_s) ** 2), rel=1e-4)
    if fitted.name == "output_kd":
        expected = np.mean((pred_t - pred_s) ** 2)
    else:
        expected = _softmax_ce(pred_t, pred_s, 5.0)
    assert result["distillation_loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.filterwarnings("ignore:`compile\\(\\)` was not called")
def test_trainer_save_load_round_trip(fitted, data, tmp_path):
    _, val = data
    trainer = fitted.trainer
    trainer.save(tmp_path / "trainer.keras")
    loaded = keras.saving.load_model(tmp_path / "trainer.keras")
    assert isinstance(loaded, keras.distillation.Distiller)
    np.testing.assert_allclose(model_output(loaded, val), model_output(trainer, val), atol=1e-6)
    np.testing.assert_allclose(model_output(loaded.teacher, val), model_output(trainer.teacher, val), atol=1e-6)
    assert loaded.student_loss_weight == pytest.approx(fitted.weight)
    saved, restored = trainer.get_weights(), loaded.get_weights()  # teacher and student, BN stats included
    assert len(saved) == len(restored) and all(np.array_equal(a, b) for a, b in zip(saved, restored))
    if fitted.name != "encoder_kd":  # (a functional encoder's config differs in list / tuple types)
        assert loaded.student.get_config() == trainer.student.get_config()
    if fitted.name == "autoencoder_kd":
        (loss,) = loaded.distillation_losses
        assert isinstance(loss, SoftmaxCrossEntropy) and loss.temperature == 5.0


@pytest.mark.parametrize("build", [output_kd, autoencoder_kd, encoder_kd])
def test_trainers_reject_mismatched_compression(build, pair):
    _, student = pair
    teacher = create_model("crnet_cui", cr=16)
    with pytest.raises(ValueError, match="codewords of the same length"):
        build(teacher, student)


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_trainers_reject_weight_outside_unit_interval(value, pair):
    with pytest.raises(ValueError, match="alpha"):
        autoencoder_kd(*pair, alpha=value)
    with pytest.raises(ValueError, match="weight"):
        output_kd(*pair, weight=value)


# --- run directories ---------------------------------------------------------------------------


def _log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_fit_distillation_writes_student_run(data, tmp_path):
    train, val = data
    keras.utils.set_random_seed(5)
    teacher, student = create_model("csinet", cr=32), create_model("csinet", cr=32)  # the lightest pair
    teacher_before = snapshot(teacher.weights)
    student_before = snapshot(student.trainable_weights)
    returned, history = fit_distillation(
        "autoencoder-kd", teacher, student, train, val, out_dir=tmp_path, config=TINY, verbose=0
    )
    assert returned is student
    assert all(unchanged(teacher_before, teacher.weights))
    assert not any(unchanged(student_before, student.trainable_weights))

    pred = model_output(student, val)
    for name in ("best.keras", "final.keras"):
        model = keras.saving.load_model(tmp_path / name)
        assert type(model) is type(student)
        assert model.get_config() == student.get_config()
        assert tuple(model.input_shape) == tuple(model.output_shape) == (None, 2, 32, 32)
        np.testing.assert_allclose(model_output(model, val), pred, atol=1e-6)  # one epoch

    rows = _log(tmp_path / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [0]
    for key in ("student_loss", "distillation_loss", "total_loss"):
        assert key in rows[0] and f"val_{key}" in rows[0]
    assert "lr" in rows[0]
    # the logged validation CE is eq. (10) on the teacher's and the trained student's outputs
    expected = _softmax_ce(model_output(teacher, val), pred, 5.0)
    assert float(rows[0]["val_distillation_loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(rows[0]["val_student_loss"]) == pytest.approx(np.mean((val - pred) ** 2), rel=1e-4)


def test_fit_distillation_rejects_unknown_method(pair, tmp_path):
    train = np.full((4, 2, 32, 32), 0.5, "float32")
    with pytest.raises(ValueError, match="Unknown output-distillation method") as info:
        fit_distillation("feature-kd", *pair, train, train, out_dir=tmp_path / "run", config=TINY)
    assert "'output-kd'" in str(info.value) and "'autoencoder-kd'" in str(info.value)
    assert "'feature-kd'" in str(info.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.filterwarnings("ignore:`compile\\(\\)` was not called")
def test_fit_encoder_kd_writes_both_steps(data, tmp_path):
    train, val = data
    keras.utils.set_random_seed(6)
    teacher, student = create_model("csinet", cr=32), create_model("csinet", cr=32)  # the lightest pair
    teacher.trainable = False  # a trained teacher, frozen: the copy of its decoder must still train
    teacher_before = snapshot(teacher.weights)
    joined, histories = fit_encoder_kd(teacher, student, train, val, out_dir=tmp_path, config=TINY, verbose=0)
    assert sorted(histories) == ["distill", "finetune"]
    assert all(unchanged(teacher_before, teacher.weights))  # fine-tuning trained a copy of its decoder
    assert isinstance(joined, ComposedAutoencoder)
    assert joined.decoder is not teacher.decoder
    decoder_params = [w for w in teacher.decoder.weights if "moving_" not in w.path]
    assert len(joined.decoder.trainable_weights) == len(decoder_params) > 0
    decoder_moved = [not s for s in unchanged(snapshot(decoder_params), joined.decoder.trainable_weights)]
    assert any(decoder_moved)

    # step 2: the student encoder, CSI -> codeword
    for name in ("best.keras", "final.keras"):
        encoder = keras.saving.load_model(tmp_path / "distill" / name)
        assert tuple(encoder.input_shape) == (None, 2, 32, 32)
        assert tuple(encoder.output_shape) == (None, student.codeword_dim)
        np.testing.assert_allclose(model_output(encoder, val), model_output(student.encoder, val), atol=1e-6)
    rows = _log(tmp_path / "distill" / "log.csv")
    for key in ("student_loss", "distillation_loss", "total_loss", "val_distillation_loss", "val_total_loss"):
        assert key in rows[0]
    codeword_mse = np.mean((model_output(teacher.encoder, val) - model_output(encoder, val)) ** 2)
    assert float(rows[0]["val_distillation_loss"]) == pytest.approx(codeword_mse, rel=1e-4)

    # step 3: the student encoder on the teacher's decoder, fine-tuned
    for name in ("best.keras", "final.keras"):
        model = keras.saving.load_model(tmp_path / "finetune" / name)
        assert isinstance(model, ComposedAutoencoder)
        np.testing.assert_allclose(model_output(model, val), model_output(joined, val), atol=1e-6)
    rows = _log(tmp_path / "finetune" / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [0]  # default: a quarter of step 2's epochs, at least one
    for key in ("loss", "nmse", "val_loss", "val_nmse", "lr"):
        assert key in rows[0]
