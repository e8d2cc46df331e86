"""Multicell SLNR / ZF recovery (zoo/beamforming.py) and distributed training (train/multicell.py), on
synthetic per-BS views: the recoveries and the SLNR rate against numpy, the loss terms of eq. (36),
which terms drive the gradients, a short training run, saving, and the SINR scoring of eq. (26)."""

import types
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from mimokd.classical.slnr import (
    multicell_slnr_beamformer,
    multicell_user_rates,
    slnr_beamformer,
    slnr_directions,
    slnr_values,
)
from mimokd.train.multicell import MulticellBeamformer, evaluate_multicell, learned_channels
from mimokd.zoo.beamforming import MulticellZFRecovery, SLNRRecovery, build_power_net, slnr_rate_tf, to_real
from weights import assert_same_gradients, loss_term_gradients  # tests/weights.py

NT, NC, P, NOISE = 4, 3, 10.0, 1.0
HIDDEN = (16, 16)


def _cn(rng, *shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


def _complex(x):
    x = np.asarray(x, np.float64)
    return x[..., 0] + 1j * x[..., 1]


def _views(h, kc):
    """Classical ``[N, nc, K_total, Nt]`` -> views ``[N nc, K_total, Nt]`` (own users first), written
    independently of :func:`view_order`."""
    n, nc, kt, nt = h.shape
    out = np.empty((n, nc, kt, nt), h.dtype)
    for i in range(nc):
        own = list(range(i * kc, (i + 1) * kc))
        order = own + [u for u in range(kt) if u not in own]
        out[:, i] = h[:, i, order]
    return out.reshape(n * nc, kt, nt)


def _network(n, kc, seed):
    """A synthetic network: uplink CN(0, 1) with own-cell users 3x stronger than the others (per BS),
    downlink = a fixed unitary front-end times the uplink, LS input = uplink + small noise; SLNR power
    labels ``p / P`` per view (Sec. VI-A alternating optimization on the true downlink view)."""
    rng = np.random.default_rng(seed)
    kt = NC * kc
    gain = np.full((NC, kt), 0.6)
    for i in range(NC):
        gain[i, i * kc:(i + 1) * kc] = 1.8
    h_up = _cn(rng, n, NC, kt, NT) * gain[None, :, :, None]
    phi = np.linalg.qr(_cn(np.random.default_rng(123), NT, NT))[0]
    h_down = np.einsum("mn,bjun->bjum", phi, h_up)
    ls = h_up + 0.05 * _cn(rng, *h_up.shape)
    down_views = _views(h_down, kc)
    _, p, _ = slnr_beamformer(down_views[:, :kc], P, NOISE, leak=down_views[:, kc:], return_info=True)
    return {
        "uplink": to_real(_views(ls, kc)),
        "downlink": to_real(down_views),
        "powers": (p / P).astype("float32"),
        "h_down": h_down,
    }


@pytest.fixture(scope="module")
def net1():
    return _network(128, 1, 0)


@pytest.fixture(scope="module")
def net2():
    return _network(128, 2, 1)


def _model(kc, **kwargs):
    keras.utils.set_random_seed(0)
    kwargs.setdefault("power_hidden", HIDDEN)
    return MulticellBeamformer(NT, NC, kc, P, NOISE, csi_hidden=HIDDEN, **kwargs)


def _numpy_slnr_rate(h, W, kc, approximate=False):
    """Per-view SLNR rate via classical.slnr.slnr_values (directions and powers taken from W)."""
    h, W = np.asarray(h, np.complex128), np.asarray(W, np.complex128)
    p = np.sum(np.abs(W) ** 2, axis=1)
    gamma = slnr_values(h[:, :kc], W, p, NOISE, leak=h[:, kc:])
    return np.sum(np.log2(gamma) if approximate else np.log2(1 + gamma), axis=1)


# ----------------------------------------------------------------------------- layers


@pytest.mark.parametrize("kc", [1, 2])
def test_slnr_recovery_matches_numpy(kc):
    rng = np.random.default_rng(kc)
    b, kt = 16, NC * kc
    h = _cn(rng, b, kt, NT)
    p = rng.uniform(0.05, 1.0, (b, kc))
    p_ref = p / p.sum(1, keepdims=True) * P
    W_ref = slnr_directions(h[:, :kc], p_ref, NOISE, leak=h[:, kc:]) * np.sqrt(p_ref)[:, None, :]
    layer = SLNRRecovery(P, NOISE, kc)
    W = layer([tf.constant(to_real(h, "float64")), tf.constant(p)])
    assert W.shape == (b, NT, kc, 2) and W.dtype == tf.float32
    np.testing.assert_allclose(_complex(W), W_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.sum(np.abs(_complex(W)) ** 2, axis=1), p_ref, rtol=1e-5)  # ||w_k||^2 = p_k
    W32 = SLNRRecovery(P, NOISE, kc, linalg_dtype="float32")([to_real(h), p.astype("float32")])
    np.testing.assert_allclose(_complex(W32), W_ref, rtol=1e-3, atol=2e-3)
    # the per-user matrix matters: using the SAME power for every user gives other directions (kc > 1)
    if kc > 1:
        W_eq = slnr_directions(h[:, :kc], np.full((b, kc), P / kc), NOISE, leak=h[:, kc:])
        assert not np.allclose(np.abs(np.einsum("bnk,bnk->bk", W_eq.conj(), _complex(W))),
                               np.sqrt(p_ref), rtol=1e-3)
    assert SLNRRecovery.from_config(layer.get_config()).users_per_cell == kc


def test_multicell_zf_recovery_zero_forces_all_users():
    rng = np.random.default_rng(3)
    b, kc, nt = 16, 2, 6
    kt = NC * kc  # = Nt: the tightest case
    h = _cn(rng, b, kt, nt)
    p = rng.uniform(0.1, 1.0, (b, kc)).astype("float32")
    W = _complex(MulticellZFRecovery(P, kc)([to_real(h), p]))
    assert W.shape == (b, nt, kc)
    gains = np.einsum("bmn,bnk->bmk", h.conj(), W)  # h_m^H w_k
    mask = np.ones((kt, kc), bool)
    mask[np.arange(kc), np.arange(kc)] = False
    assert np.abs(gains[:, mask]).max() < 1e-4 * np.abs(gains[:, ~mask]).min()
    np.testing.assert_allclose(np.sum(np.abs(W) ** 2, axis=1), p / p.sum(1, keepdims=True) * P, rtol=1e-5)
    # direction = normalized own column of H (H^H H)^-1
    H = h.transpose(0, 2, 1)
    C = (H @ np.linalg.inv(H.conj().transpose(0, 2, 1) @ H))[:, :, :kc]
    cos = np.abs(np.einsum("bnk,bnk->bk", C.conj(), W)) / (np.linalg.norm(C, axis=1) * np.linalg.norm(W, axis=1))
    np.testing.assert_allclose(cos, 1.0, rtol=1e-5)
    # h alone: equal power
    W_eq = _complex(MulticellZFRecovery(P, kc)(to_real(h)))
    np.testing.assert_allclose(np.sum(np.abs(W_eq) ** 2, axis=1), P / kc, rtol=1e-5)
    with pytest.raises(ValueError, match="Nt >= K_total"):
        MulticellZFRecovery(P, kc)([to_real(h[:, :, :4]), p])


@pytest.mark.parametrize("approximate", [False, True])
def test_slnr_rate_tf_matches_numpy(approximate):
    rng = np.random.default_rng(4)
    b, kc = 16, 2
    h = _cn(rng, b, NC * kc, NT)
    W = _cn(rng, b, NT, kc) * 2.0
    ref = _numpy_slnr_rate(h, W, kc, approximate)
    np.testing.assert_allclose(slnr_rate_tf(to_real(h, "float64"), to_real(W, "float64"), NOISE, kc,
                                            approximate=approximate).numpy(), ref, rtol=1e-10)
    np.testing.assert_allclose(slnr_rate_tf(h, W, NOISE, kc, approximate=approximate).numpy(), ref, rtol=1e-10)
    np.testing.assert_allclose(slnr_rate_tf(to_real(h), to_real(W), NOISE, kc, approximate=approximate).numpy(),
                               ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="users_per_cell"):
        slnr_rate_tf(h, W, NOISE, 1)


def test_slnr_rate_tf_has_no_cancellation_in_float32():
    """Multicell views span a huge path-loss range: with a ZF beam the signal exceeds the leakage by up to
    ~1e8, where "sum of all terms - signal" cancels in float32 (in a graph: an infinite / NaN rate)."""
    rng = np.random.default_rng(6)
    b, kc = 256, 1
    h = _cn(rng, b, NC, 8)
    h[:, :kc] *= 10 ** rng.uniform(0, 2.5, (b, 1, 1))  # own user up to 50 dB stronger
    H = h.transpose(0, 2, 1)
    C = (H @ np.linalg.inv(H.conj().transpose(0, 2, 1) @ H))[:, :, :kc]
    W = C / np.linalg.norm(C, axis=1, keepdims=True) * np.sqrt(400.0)
    ref = _numpy_slnr_rate(h, W, kc)
    rate = tf.function(lambda a, w: slnr_rate_tf(a, w, NOISE, kc))(tf.constant(to_real(h)), tf.constant(to_real(W)))
    assert np.all(np.isfinite(rate.numpy()))
    np.testing.assert_allclose(rate.numpy(), ref, rtol=1e-4, atol=1e-4)


def test_power_net_outputs():
    net = build_power_net(NT, 6, hidden=(8,), outputs=2)
    y = net(np.random.default_rng(0).standard_normal((5, 6, NT, 2)).astype("float32")).numpy()
    assert y.shape == (5, 2)
    np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-5)
    assert build_power_net(NT, 3, hidden=(8,)).output_shape == (None, 6)  # default unchanged: 2K


def test_default_csi_net_is_the_papers():
    model = MulticellBeamformer(NT, NC, 1, P)
    assert model.csi_hidden == (2 * NT * NC**2,) * 3
    assert [layer.units for layer in model.csi_net.layers if isinstance(layer, keras.layers.Dense)] == \
        [72, 72, 72, 2 * NC * NT]
    assert model.power_net is None


@pytest.mark.parametrize("kc", [1, 2])
def test_loss_terms_match_recomputation(kc, net1, net2):
    data = net1 if kc == 1 else net2
    model = _model(kc, alpha_h=0.7, alpha_p=3.0, alpha_r=0.2)
    x, y, pw = data["uplink"][:32], data["downlink"][:32], data["powers"][:32]
    terms = {k: float(v) for k, v in model.loss_terms(x, y, pw, training=False).items()}
    h_hat = model.csi_net(x, training=False).numpy()
    W = model(x).numpy()
    assert W.shape == (32, NT, kc, 2)
    channel_mse = np.sum((y - h_hat).astype(np.float64) ** 2) / (2 * 32 * NT * NC * kc)  # eq. (8)
    rate = np.mean(_numpy_slnr_rate(_complex(y), _complex(W), kc))  # on the TRUE view
    if kc > 1:
        p_hat = model.power_net(h_hat, training=False).numpy()
        power_mse = np.mean((pw - p_hat) ** 2)  # eq. (37) on the p / P scale
        # W is the SLNR recovery of (h_hat, p_hat), independently via numpy
        p_ref = p_hat / p_hat.sum(1, keepdims=True) * P
        hh = _complex(h_hat)
        W_ref = slnr_directions(hh[:, :kc], p_ref, NOISE, leak=hh[:, kc:]) * np.sqrt(p_ref)[:, None]
        np.testing.assert_allclose(_complex(W), W_ref, rtol=1e-4, atol=1e-4)
    else:
        power_mse = 0.0
        np.testing.assert_allclose(np.sum(np.abs(_complex(W)) ** 2, axis=(1, 2)), P, rtol=1e-5)  # p = P
    np.testing.assert_allclose(terms["channel_mse"], channel_mse, rtol=1e-4)
    np.testing.assert_allclose(terms["power_mse"], power_mse, rtol=1e-3, atol=1e-12)
    np.testing.assert_allclose(terms["slnr_rate"], rate, rtol=1e-4)
    np.testing.assert_allclose(terms["rate_objective"], rate, rtol=1e-4)
    expected = 0.7 * channel_mse + (3.0 * power_mse if kc > 1 else 0.0) - 0.2 * rate
    np.testing.assert_allclose(terms["loss"], expected, rtol=1e-4)


def test_rate_objective_variants(net2):
    x, y, pw = net2["uplink"][:32], net2["downlink"][:32], net2["powers"][:32]
    model = _model(2, alpha_h=0.0, alpha_p=0.0, alpha_r=1.0, approximate_rate=True, rate_channel="learned")
    terms = {k: float(v) for k, v in model.loss_terms(x, y, pw, training=False).items()}
    h_hat = _complex(model.csi_net(x, training=False).numpy())
    W = _complex(model(x).numpy())
    learned_approx = np.mean(_numpy_slnr_rate(h_hat, W, 2, approximate=True))
    true_exact = np.mean(_numpy_slnr_rate(_complex(y), W, 2))
    np.testing.assert_allclose(terms["loss"], -learned_approx, rtol=1e-4)
    np.testing.assert_allclose(terms["slnr_rate"], true_exact, rtol=1e-4)  # logged: exact, true view
    assert abs(learned_approx - true_exact) > 1e-2
    model = _model(2, alpha_h=0.0, alpha_p=0.0, alpha_r=1.0, approximate_rate=True)
    terms = {k: float(v) for k, v in model.loss_terms(x, y, pw, training=False).items()}
    W = _complex(model(x).numpy())
    np.testing.assert_allclose(terms["loss"], -np.mean(_numpy_slnr_rate(_complex(y), W, 2, approximate=True)),
                               rtol=1e-4)


def test_supervised_only_has_no_rate_gradient(net2):
    x, y, pw = net2["uplink"][:32], net2["downlink"][:32], net2["powers"][:32]
    model = _model(2, alpha_h=1.0, alpha_p=2.0, alpha_r=0.0)
    total = loss_term_gradients(model, x, y, pw, lambda t: t["loss"])
    supervised = loss_term_gradients(model, x, y, pw, lambda t: 1.0 * t["channel_mse"] + 2.0 * t["power_mse"])
    assert_same_gradients(total, supervised)
    rate = loss_term_gradients(model, x, y, pw, lambda t: t["rate_objective"])
    assert any(g is not None and np.abs(g).max() > 0 for g in rate)  # the rate term would have mattered


@pytest.mark.parametrize("kc", [1, 2])
def test_unsupervised_only_is_the_rate(kc, net1, net2):
    data = net1 if kc == 1 else net2
    x, y, pw = data["uplink"][:32], data["downlink"][:32], data["powers"][:32]
    # with one user per cell alpha_p is ignored (no Power-Net), so alpha_p=5 adds nothing
    model = _model(kc, alpha_h=0.0, alpha_p=5.0 if kc == 1 else 0.0, alpha_r=1.5)
    total = loss_term_gradients(model, x, y, pw, lambda t: t["loss"])
    assert_same_gradients(total, loss_term_gradients(model, x, y, pw, lambda t: -1.5 * t["rate_objective"]))
    channel = loss_term_gradients(model, x, y, pw, lambda t: t["channel_mse"])
    assert any(g is not None and np.abs(g).max() > 0 for g in channel)  # L_H would have mattered
    # CSI-Net is trained only through the rate, back through the recovery (and the Power-Net)
    csi = {id(v) for v in model.csi_net.trainable_variables}
    csi_grads = [g for g, v in zip(total, model.trainable_variables) if id(v) in csi]
    assert csi_grads and all(g is not None for g in csi_grads)
    assert max(np.abs(g).max() for g in csi_grads) > 0


def test_training_increases_the_multicell_rate(net2):
    data = _network(512, 2, 7)
    model = _model(2, alpha_h=1.0, alpha_p=1.0, alpha_r=0.1)
    model.compile(optimizer=keras.optimizers.Adam(5e-3))
    test = net2
    before = evaluate_multicell(model, test["uplink"], test["h_down"], NC, 1.0)
    start = model.evaluate(test["uplink"], {"downlink": test["downlink"], "powers": test["powers"]},
                           batch_size=128, verbose=0, return_dict=True)
    history = model.fit(data["uplink"], {"downlink": data["downlink"], "powers": data["powers"]}, epochs=10,
                        batch_size=32, verbose=0)  # 160 steps
    end = model.evaluate(test["uplink"], {"downlink": test["downlink"], "powers": test["powers"]},
                         batch_size=128, verbose=0, return_dict=True)
    after = evaluate_multicell(model, test["uplink"], test["h_down"], NC, 1.0)
    assert set(history.history) == {"loss", "channel_mse", "power_mse", "slnr_rate"}
    assert history.history["loss"][-1] < history.history["loss"][0] - 0.5
    assert end["loss"] < start["loss"] - 0.5 and end["channel_mse"] < 0.5 * start["channel_mse"]
    assert end["slnr_rate"] > start["slnr_rate"] + 2.0  # ~1.6 -> ~4.6 bits per view
    assert after["sum_rate"] > before["sum_rate"] + 5.0  # ~4.8 -> ~14 bits/s/Hz (SINR, all cells)
    # bounded by SLNR beamforming on the TRUE channels (same SINR scoring), up to a small margin
    W_true = multicell_slnr_beamformer(test["h_down"], P, NOISE, 2, iterations=20)
    reference = multicell_user_rates(test["h_down"], W_true, NOISE).sum(1).mean()
    assert after["sum_rate"] < reference * 1.1


def test_keras_round_trip(net2, tmp_path):
    model = _model(2, alpha_h=0.5, alpha_p=2.0, alpha_r=0.0, recovery="slnr", approximate_rate=True)
    model.compile(optimizer="adam")
    x, y = net2["uplink"], {"downlink": net2["downlink"], "powers": net2["powers"]}
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    path = tmp_path / "multicell.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.save(path)
        loaded = keras.models.load_model(path)
    assert isinstance(loaded, MulticellBeamformer)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(x[:16], verbose=0), model.predict(x[:16], verbose=0), atol=1e-6)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    loaded.fit(x, y, epochs=1, batch_size=64, verbose=0)


def test_zf_model_round_trip_and_zero_leakage(net1, tmp_path):
    model = _model(1, recovery="zf", alpha_p=0.0)
    model.compile(optimizer="adam")
    x = net1["uplink"][:64]
    model.fit(x, net1["downlink"][:64], epochs=1, batch_size=32, verbose=0)  # y = downlink alone is fine (kc=1)
    h_hat = _complex(model.csi_net(x).numpy())
    W = _complex(model(x).numpy())
    leak = np.abs(np.einsum("bmn,bn->bm", h_hat[:, 1:].conj(), W[:, :, 0]))
    assert leak.max() < 1e-3 * np.abs(np.einsum("bn,bn->b", h_hat[:, 0].conj(), W[:, :, 0])).min()
    path = tmp_path / "zf.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.recovery_name == "zf" and isinstance(loaded.recovery, MulticellZFRecovery)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("kc", [1, 2])
def test_evaluate_multicell_matches_numpy(kc, net1, net2):
    data = net1 if kc == 1 else net2
    model = _model(kc)
    n = 16
    scale = 2.0
    x, h_down = data["uplink"][:n * NC], data["h_down"][:n] * scale  # unscaled channels, s = 2
    out = evaluate_multicell(model, x, h_down, NC, scale)
    W = _complex(model.predict(x, batch_size=1024, verbose=0)).reshape(n, NC, NT, kc)
    h = h_down / scale
    kt = NC * kc
    rates = np.empty((n, kt))
    for u in range(kt):  # eq. (26), user u of cell u // kc
        cell, k = divmod(u, kc)
        sig = np.abs(np.einsum("bn,bn->b", h[:, cell, u].conj(), W[:, cell, :, k])) ** 2
        total = sum(np.abs(np.einsum("bn,bnk->bk", h[:, j, u].conj(), W[:, j])) ** 2 for j in range(NC)).sum(1)
        rates[:, u] = np.log2(1 + sig / (total - sig + NOISE))
    np.testing.assert_allclose(out["rates"], rates, rtol=1e-6)
    np.testing.assert_allclose(out["sum_rates"], rates.sum(1), rtol=1e-6)
    assert out["sum_rate"] == pytest.approx(rates.sum(1).mean(), rel=1e-6)
    with pytest.raises(ValueError, match="h_down"):
        evaluate_multicell(model, x, h_down[:, :2], NC, scale)


@pytest.mark.parametrize("kc", [1, 2])
def test_learned_channels_undoes_the_view_permutation(kc):
    h = _cn(np.random.default_rng(5), 6, NC, NC * kc, NT)
    identity = types.SimpleNamespace(csi_net=types.SimpleNamespace(predict=lambda v, **_: v))
    np.testing.assert_allclose(learned_channels(identity, to_real(_views(h, kc), "float64"), NC, kc), h)
    model = _model(kc)
    x = to_real(_views(h, kc))
    out = learned_channels(model, x, NC, kc)
    assert out.shape == h.shape and out.dtype == np.complex128
    np.testing.assert_allclose(to_real(_views(out, kc)), model.csi_net.predict(x, verbose=0), atol=1e-6)


def test_bad_arguments_raise():
    def make(**kwargs):
        args = {"Nt": NT, "num_cells": NC, "users_per_cell": 2, "power": P, "csi_hidden": HIDDEN}
        args.update(kwargs)
        return MulticellBeamformer(**args)

    with pytest.raises(ValueError, match="recovery"):
        make(recovery="mmse")
    with pytest.raises(ValueError, match="rate_channel"):
        make(rate_channel="estimated")
    with pytest.raises(ValueError, match="alpha_r"):
        make(alpha_r=-1.0)
    with pytest.raises(ValueError, match="alpha_h"):
        make(alpha_h=0.0, alpha_p=0.0, alpha_r=0.0)
    with pytest.raises(ValueError, match="alpha_p is ignored"):
        make(users_per_cell=1, alpha_h=0.0, alpha_p=1.0, alpha_r=0.0)
    with pytest.raises(ValueError, match="Nt"):
        make(recovery="zf")  # K_total = 6 > Nt = 4
    with pytest.raises(ValueError, match="users_per_cell"):
        make(users_per_cell=0)
    with pytest.raises(ValueError, match="num_cells"):
        make(num_cells=1.5)
    with pytest.raises(ValueError, match="approximate_rate"):
        make(approximate_rate="yes")
    with pytest.raises(ValueError, match="users_per_cell"):
        SLNRRecovery(P, NOISE, 0)
    with pytest.raises(ValueError, match="users_per_cell"):
        MulticellZFRecovery(P, -1)
    with pytest.raises(ValueError, match="power"):
        SLNRRecovery(0.0, NOISE, 1)
    with pytest.raises(ValueError, match="powers"):
        make().loss_terms(np.zeros((2, 6, NT, 2), "float32"), np.zeros((2, 6, NT, 2), "float32"))
