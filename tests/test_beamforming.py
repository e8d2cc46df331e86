"""Zhang et al.'s model-driven beamforming (zoo/beamforming.py): recovery layers vs. the numpy
reference (classical/miso.py), gradients, the TF sum rate, CSI-Net / Power-Net shapes and saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mimokd.classical.miso import miso_sum_rate, recover_beamformers, zf_beamformer
from mimokd.zoo.beamforming import (
    BeamformingRecovery,
    ReducedBeamformingRecovery,
    ZFRecovery,
    build_csi_net,
    build_power_net,
    miso_sum_rate_tf,
    power_targets,
    split_powers,
    to_complex,
    to_real,
)

B, K, NT = 6, 3, 4
P, NOISE = 10.0, 0.5


def _channels(seed=0, b=B, k=K, nt=NT):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((b, k, nt)) + 1j * rng.standard_normal((b, k, nt))) / np.sqrt(2)


def _powers(seed=1, b=B, k=K):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 1.0, (b, k)), rng.uniform(0.1, 1.0, (b, k))


def _w(layer_out):
    return to_complex(np.asarray(layer_out))


@pytest.mark.parametrize("layer_cls", [BeamformingRecovery, ReducedBeamformingRecovery])
def test_recovery_matches_numpy(layer_cls):
    h = _channels()
    p, q = _powers()
    ref = recover_beamformers(h, p, q, P, NOISE)
    out = layer_cls(P, NOISE)([to_real(h), p.astype("float32"), q.astype("float32")])
    assert out.shape == (B, NT, K, 2)
    np.testing.assert_allclose(_w(out), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.sum(np.abs(_w(out)) ** 2, axis=(1, 2)), P, rtol=1e-5)


def test_reduced_recovery_massive_mimo():
    h = _channels(seed=3, b=4, k=2, nt=16)
    p, q = _powers(seed=4, b=4, k=2)
    ref = recover_beamformers(h, p, q, P, NOISE)
    out = ReducedBeamformingRecovery(P, NOISE)([to_real(h), p, q])
    np.testing.assert_allclose(_w(out), ref, rtol=1e-4, atol=1e-5)


def test_recovery_float32_linalg():
    h = _channels()
    p, q = _powers()
    out = BeamformingRecovery(P, NOISE, linalg_dtype="float32")([to_real(h), p, q])
    np.testing.assert_allclose(_w(out), recover_beamformers(h, p, q, P, NOISE), rtol=1e-3, atol=1e-4)


def test_zf_recovery_matches_numpy_and_removes_interference():
    h = _channels(seed=5)
    out = _w(ZFRecovery(P)(to_real(h)))
    np.testing.assert_allclose(out, zf_beamformer(h, P), rtol=1e-4, atol=1e-5)
    gains = np.einsum("bkn,bnj->bkj", h.conj(), out)  # h_k^H w_j
    diag = np.einsum("bkk->bk", gains)
    off = gains - diag[..., None] * np.eye(K)
    assert np.max(np.abs(off)) < 1e-4 * np.max(np.abs(diag))
    np.testing.assert_allclose(np.sum(np.abs(out) ** 2, axis=(1, 2)), P, rtol=1e-5)


@pytest.mark.parametrize("layer_cls", [BeamformingRecovery, ReducedBeamformingRecovery])
def test_recovery_gradients_finite(layer_cls):
    h = tf.Variable(to_real(_channels(seed=6)))
    p0, q0 = _powers(seed=7)
    p = tf.Variable(p0.astype("float32"))
    q = tf.Variable(q0.astype("float32"))
    layer = layer_cls(P, NOISE)
    with tf.GradientTape() as tape:
        W = layer([h, p, q])
        rate = tf.reduce_mean(miso_sum_rate_tf(h, W, NOISE))
    gh, gp, gq = tape.gradient(rate, [h, p, q])
    for g in (gh, gp, gq):
        assert g is not None and np.all(np.isfinite(g.numpy()))
    assert np.any(np.abs(gq.numpy()) > 0) and np.any(np.abs(gp.numpy()) > 0)


def test_zf_gradient_finite_wrt_channel():
    h = tf.Variable(to_real(_channels(seed=8)))
    with tf.GradientTape() as tape:
        rate = tf.reduce_sum(miso_sum_rate_tf(h, ZFRecovery(P)(h), NOISE))
    g = tape.gradient(rate, h)
    assert np.all(np.isfinite(g.numpy()))


def test_sum_rate_tf_matches_numpy():
    h = _channels(seed=9)
    W = recover_beamformers(h, *_powers(seed=10), P, NOISE)
    noise = np.linspace(0.2, 2.0, B)
    ref = miso_sum_rate(h, W, noise)
    np.testing.assert_allclose(miso_sum_rate_tf(to_real(h, "float64"), to_real(W, "float64"), noise), ref,
                               rtol=1e-10)
    np.testing.assert_allclose(miso_sum_rate_tf(to_real(h), to_real(W), noise), ref, rtol=1e-4)
    np.testing.assert_allclose(miso_sum_rate_tf(tf.constant(h), tf.constant(W), 0.7), miso_sum_rate(h, W, 0.7),
                               rtol=1e-10)


@pytest.mark.parametrize("per_user", [True, False])
def test_csi_net_shapes(per_user):
    model = build_csi_net(NT, K, hidden=(8, 8), per_user=per_user)
    x = to_real(_channels(seed=11))
    assert model(x).shape == (B, K, NT, 2)
    n_in = model.get_layer("dense_1").kernel.shape[0]
    assert n_in == (2 * NT if per_user else 2 * K * NT)


def test_csi_net_per_user_is_shared():
    model = build_csi_net(NT, K, hidden=(8,))
    x = to_real(_channels(seed=12))
    y = model(x).numpy()
    y0 = model(np.repeat(x[:, :1], K, axis=1)).numpy()
    np.testing.assert_allclose(y[:, 0], y0[:, 1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["fc", "cnn"])
def test_power_net_softmax(variant):
    model = build_power_net(NT, K, hidden=(16, 16) if variant == "fc" else (32,), variant=variant)
    y = model(to_real(_channels(seed=13)), training=False).numpy()
    assert y.shape == (B, 2 * K)
    assert np.all(y > 0)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    p, q = split_powers(y)
    assert p.shape == q.shape == (B, K)


def test_power_net_cnn_defaults():
    model = build_power_net(NT, K, variant="cnn")
    assert [model.get_layer(f"conv_{i}").filters for i in (1, 2)] == [16, 8]
    assert model.get_layer("dense_1").units == 256
    assert model.get_layer("dropout_1").rate == 0.3
    with pytest.raises(ValueError):
        build_power_net(NT, K, variant="rnn")


def test_power_targets():
    p, q = _powers(seed=14)
    p, q = p * P / p.sum(1, keepdims=True), q * P / q.sum(1, keepdims=True)
    t = power_targets(p, q, P)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, rtol=1e-6)
    tp, tq = split_powers(t)
    np.testing.assert_allclose(recover_beamformers(_channels(), tp, tq, P, NOISE),
                               recover_beamformers(_channels(), p, q, P, NOISE), rtol=1e-5)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        BeamformingRecovery(0.0, NOISE)
    with pytest.raises(ValueError):
        BeamformingRecovery(P, NOISE, linalg_dtype="float16")
    with pytest.raises(ValueError):
        build_csi_net(NT, K, hidden=())


def test_end_to_end_model_keras_round_trip(tmp_path):
    csi = build_csi_net(NT, K, hidden=(8,))
    power = build_power_net(NT, K, hidden=(8,), variant="fc")
    h_up = keras.Input((K, NT, 2), name="uplink")
    h_dl = csi(h_up)
    y = power(h_up)
    p = keras.layers.Cropping1D((0, K), name="p")(keras.layers.Reshape((2 * K, 1))(y))
    q = keras.layers.Cropping1D((K, 0), name="q")(keras.layers.Reshape((2 * K, 1))(y))
    p = keras.layers.Flatten()(p)
    q = keras.layers.Flatten()(q)
    W = BeamformingRecovery(P, NOISE, name="recovery")([h_dl, p, q])
    W_zf = ZFRecovery(P, name="zf")(h_dl)
    model = keras.Model(h_up, [W, W_zf])
    x = to_real(_channels(seed=15))
    before = [o.numpy() for o in model(x, training=False)]
    path = tmp_path / "mdbf.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    after = [o.numpy() for o in loaded(x, training=False)]
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert loaded.get_layer("recovery").get_config()["power"] == P
    for net in (build_power_net(NT, K, variant="cnn", hidden=(8,)),):
        net.save(tmp_path / "pn.keras")
        again = keras.models.load_model(tmp_path / "pn.keras")
        np.testing.assert_allclose(net(x, training=False), again(x, training=False), rtol=1e-5, atol=1e-6)
