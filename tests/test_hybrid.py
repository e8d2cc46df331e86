"""Hybrid training of Zhang et al.'s beamformer (train/hybrid.py): dataset, the loss terms of eq. (10)
against independent recomputations, which terms drive the gradients, a short training run, saving."""

import warnings

import keras
import numpy as np
import pytest

from mimokd.channels.uplink_downlink import make_front_end
from mimokd.classical.miso import miso_sum_rate, wmmse
from mimokd.train.hybrid import HybridBeamformer, evaluate, fit_arrays, make_hybrid_dataset
from weights import assert_same_gradients, loss_term_gradients  # tests/weights.py

NT, K, P, NOISE = 4, 2, 100.0, 1.0
HIDDEN = (16, 16)


@pytest.fixture(scope="module")
def data():
    return make_hybrid_dataset(256, NT, K, P, NOISE, 0, make_front_end(NT, np.random.default_rng(1)))


def _model(**alphas):
    keras.utils.set_random_seed(0)
    return HybridBeamformer(NT, K, P, NOISE, csi_hidden=HIDDEN, power_hidden=HIDDEN, **alphas)


def _complex(x):
    x = np.asarray(x, np.float64)
    return x[..., 0] + 1j * x[..., 1]


def test_dataset(data):
    n = 256
    assert data["uplink"].shape == data["downlink"].shape == (n, K, NT, 2)
    assert data["uplink"].dtype == data["downlink"].dtype == np.float32
    assert data["p"].shape == data["q"].shape == (n, K)
    assert np.all(data["p"].sum(1) <= P * (1 + 1e-6)) and np.all(data["p"].sum(1) > 0.9 * P)  # WMMSE: <= P
    np.testing.assert_allclose(data["powers"].sum(1), 1.0, rtol=0.1)
    # the labels are WMMSE's on the TRUE downlink channels
    h = _complex(data["downlink"][:16])
    W, p, q, _ = wmmse(h, P, NOISE)
    np.testing.assert_allclose(data["p"][:16], p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(data["wmmse_rate"][:16], miso_sum_rate(h, W, NOISE), rtol=1e-6)
    # LS input at 20 dB pilot SNR is close to the uplink channel, which differs from the downlink (mismatch)
    assert not np.allclose(data["uplink"], data["downlink"], atol=0.1)
    # same front-end -> same uplink-to-downlink mapping in a second set
    other = make_hybrid_dataset(8, NT, K, P, NOISE, 5, data["front_end"])
    phi, c = data["front_end"]
    hu = _complex(other["uplink"])
    np.testing.assert_allclose(_complex(other["downlink"]), c * np.einsum("mn,bkn->bkm", phi, hu), atol=0.5)


def test_loss_terms_match_recomputation(data):
    model = _model(alpha_h=0.7, alpha_p=3.0, alpha_r=0.2)
    x, y, pw = data["uplink"][:32], data["downlink"][:32], data["powers"][:32]
    terms = {k: float(v) for k, v in model.loss_terms(x, y, pw, training=False).items()}
    h_hat = model.csi_net(x, training=False).numpy()
    y_hat = model.power_net(h_hat, training=False).numpy()
    W = model(x).numpy()
    assert W.shape == (32, NT, K, 2)
    channel_mse = np.sum((y - h_hat).astype(np.float64) ** 2) / (2 * 32 * NT * K)  # eq. (8)
    target = np.concatenate([data["p"][:32], data["q"][:32]], 1) / (2 * P)
    power_mse = np.mean((target - y_hat) ** 2)  # eq. (9) on the normalised scale
    rate = np.mean(miso_sum_rate(_complex(y), _complex(W), NOISE))  # on the TRUE channels
    np.testing.assert_allclose(terms["channel_mse"], channel_mse, rtol=1e-4)
    np.testing.assert_allclose(terms["power_mse"], power_mse, rtol=1e-3)
    np.testing.assert_allclose(terms["sum_rate"], rate, rtol=1e-4)
    np.testing.assert_allclose(terms["loss"], 0.7 * channel_mse + 3.0 * power_mse - 0.2 * rate, rtol=1e-4)


def test_rate_on_the_learned_channel_as_the_paper_writes_it(data):
    x, y, pw = data["uplink"][:32], data["downlink"][:32], data["powers"][:32]
    model = HybridBeamformer(NT, K, P, NOISE, csi_hidden=HIDDEN, power_hidden=HIDDEN, alpha_h=0.0, alpha_p=0.0,
                             alpha_r=1.0, rate_channel="learned")
    terms = {k: float(v) for k, v in model.loss_terms(x, y, pw, training=False).items()}
    h_hat = model.csi_net(x, training=False).numpy()
    W = model(x).numpy()
    learned = np.mean(miso_sum_rate(_complex(h_hat), _complex(W), NOISE))
    true = np.mean(miso_sum_rate(_complex(y), _complex(W), NOISE))
    np.testing.assert_allclose(terms["loss"], -learned, rtol=1e-4)  # the loss uses h_hat ...
    np.testing.assert_allclose(terms["sum_rate"], true, rtol=1e-4)  # ... the logged rate the true h_D
    assert abs(learned - true) > 1e-3  # the two differ, so the test can tell them apart
    with pytest.raises(ValueError, match="rate_channel"):
        HybridBeamformer(NT, K, P, NOISE, rate_channel="estimated")


def test_supervised_only_has_no_rate_gradient(data):
    x, y, pw = data["uplink"][:32], data["downlink"][:32], data["powers"][:32]
    model = _model(alpha_h=1.0, alpha_p=2.0, alpha_r=0.0)
    total = loss_term_gradients(model, x, y, pw, lambda t: t["loss"])
    supervised = loss_term_gradients(model, x, y, pw, lambda t: 1.0 * t["channel_mse"] + 2.0 * t["power_mse"])
    assert_same_gradients(total, supervised)
    rate = loss_term_gradients(model, x, y, pw, lambda t: t["sum_rate"])
    assert any(g is not None and np.abs(g).max() > 0 for g in rate)  # the rate term would have mattered


def test_unsupervised_only_is_the_rate(data):
    x, y, pw = data["uplink"][:32], data["downlink"][:32], data["powers"][:32]
    model = _model(alpha_h=0.0, alpha_p=0.0, alpha_r=1.5)
    total = loss_term_gradients(model, x, y, pw, lambda t: t["loss"])
    assert_same_gradients(total, loss_term_gradients(model, x, y, pw, lambda t: -1.5 * t["sum_rate"]))
    # CSI-Net is trained only through the rate, back through the recovery and the Power-Net
    csi = {id(v) for v in model.csi_net.trainable_variables}
    csi_grads = [g for g, v in zip(total, model.trainable_variables) if id(v) in csi]
    assert csi_grads and all(g is not None for g in csi_grads)
    assert max(np.abs(g).max() for g in csi_grads) > 0


def test_invalid_alphas():
    with pytest.raises(ValueError):
        HybridBeamformer(NT, K, P, NOISE, alpha_h=0, alpha_p=0, alpha_r=0)
    with pytest.raises(ValueError):
        HybridBeamformer(NT, K, P, NOISE, alpha_r=-1)


def test_hybrid_training_increases_sum_rate(data):
    model = _model(alpha_h=1.0, alpha_p=1.0, alpha_r=0.1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = evaluate(model, data)
    x, y = fit_arrays(data)
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    after = evaluate(model, data)
    assert {"loss", "channel_mse", "power_mse", "sum_rate"} <= set(history.history)
    assert after["sum_rate"] > before["sum_rate"] + 0.5
    assert after["wmmse_sum_rate"] == pytest.approx(np.mean(data["wmmse_rate"]))
    assert after["fraction"] == pytest.approx(after["sum_rate"] / after["wmmse_sum_rate"])
    assert 0 < after["fraction"] < 1.05
    logs = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert logs["sum_rate"] == pytest.approx(after["sum_rate"], rel=1e-3)


def test_keras_round_trip(data, tmp_path):
    model = _model(alpha_h=0.5, alpha_p=2.0, alpha_r=0.0)
    model.compile(optimizer="adam")
    x, y = fit_arrays(data)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    path = tmp_path / "hybrid.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # neither "not yet been built" nor skipped optimizer variables
        model.save(path)
        loaded = keras.models.load_model(path)
    assert isinstance(loaded, HybridBeamformer)
    assert (loaded.alpha_h, loaded.alpha_p, loaded.alpha_r) == (0.5, 2.0, 0.0)
    np.testing.assert_allclose(loaded.predict(x[:16], verbose=0), model.predict(x[:16], verbose=0), atol=1e-6)
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):  # optimizer state restored
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    loaded.fit(x, y, epochs=1, batch_size=64, verbose=0)  # trains on after loading


@pytest.mark.parametrize("recovery", ["reduced", "zf"])
def test_recovery_variants(data, recovery):
    """Reduced dimension gives eq. (7)'s W exactly; ZF is eq. (24) of h_hat, with no Power-Net and no L_P."""
    from mimokd.classical.miso import zf_beamformer

    x, y, pw = data["uplink"][:32], data["downlink"][:32], data["powers"][:32]
    base = _model(alpha_h=1.0, alpha_p=1.0, alpha_r=0.1)
    keras.utils.set_random_seed(0)
    model = HybridBeamformer(NT, K, P, NOISE, csi_hidden=HIDDEN, power_hidden=HIDDEN, alpha_r=0.1, recovery=recovery)
    h_hat = model.csi_net(x).numpy()
    terms = {k: float(v) for k, v in model.loss_terms(x, y, pw).items()}
    if recovery == "reduced":
        model.set_weights(base.get_weights())
        np.testing.assert_allclose(model(x).numpy(), base(x).numpy(), rtol=1e-4, atol=1e-4)
        assert model.alpha_p == 1.0
    else:
        assert model.power_net is None and model.alpha_p == 0.0 and terms["power_mse"] == 0.0
        W = _complex(model(x).numpy())
        np.testing.assert_allclose(W, zf_beamformer(_complex(h_hat), P), rtol=1e-4, atol=1e-4)
        channel_mse = np.mean((y - h_hat).astype(np.float64) ** 2)
        rate = np.mean(miso_sum_rate(_complex(y), W, NOISE))
        np.testing.assert_allclose(terms["loss"], channel_mse - 0.1 * rate, rtol=1e-4)
        with pytest.raises(ValueError, match="alpha_p"):
            HybridBeamformer(NT, K, P, NOISE, alpha_p=1.0, recovery="zf")
    with pytest.raises(ValueError, match="recovery"):
        HybridBeamformer(NT, K, P, NOISE, recovery="mmse")


def test_channel_models_of_the_dataset():
    sq = make_hybrid_dataset(64, NT, K, P, NOISE, 3, channel_model="squared")
    hu = _complex(make_hybrid_dataset(64, NT, K, 1e12, NOISE, 3, channel_model="squared")["uplink"])
    np.testing.assert_allclose(_complex(sq["downlink"]), hu ** 2, atol=1e-4)  # h_D = h_U^2 (noiseless LS ~ h_U)
    assert sq["front_end"] is None
    fdd = make_hybrid_dataset(2000, NT, K, P, NOISE, 3, channel_model="fdd", channel_kwargs={"paths": 2})
    assert fdd["downlink"].shape == (2000, K, NT, 2) and fdd["front_end"] is not None
    # E|h_D[n]|^2 = |c|^2 E|alpha|^4 * paths = |c|^2 * 2 * 2 for eq. (40) with CN(0, 1) gains
    energy = np.mean(np.sum(fdd["downlink"].astype(np.float64) ** 2, -1)) / abs(fdd["front_end"][1]) ** 2
    assert 3.0 < energy < 5.0
    with pytest.raises(ValueError, match="channel_model"):
        make_hybrid_dataset(8, NT, K, P, NOISE, 0, channel_model="umi")
    with pytest.raises(ValueError, match="front_end"):
        make_hybrid_dataset(8, NT, K, P, NOISE, 0, sq["front_end"] or make_front_end(NT, 0), channel_model="squared")


def test_learned_channel_beamformer(data, tmp_path):
    """The BF network trains on -R_sum with the CSI-Net frozen; W meets the power budget exactly."""
    from mimokd.train.learned_channel import LearnedChannelBeamformer

    csi = _model(alpha_h=1.0, alpha_p=0.0, alpha_r=0.0).csi_net
    frozen = [w.copy() for w in csi.get_weights()]
    keras.utils.set_random_seed(0)
    model = LearnedChannelBeamformer(csi, NT, K, P, NOISE, hidden=(16, 16))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, h = data["uplink"], data["downlink"]
    before = evaluate(model, data)["sum_rate"]
    history = model.fit(x, h, epochs=4, batch_size=32, verbose=0)
    after = evaluate(model, data)["sum_rate"]
    assert after > before + 0.3
    assert history.history["sum_rate"][-1] == pytest.approx(-history.history["loss"][-1], rel=1e-5)
    for a, b in zip(csi.get_weights(), frozen):  # the learned channel is not retrained
        np.testing.assert_array_equal(a, b)
    W = _complex(model.predict(x[:16], verbose=0))
    np.testing.assert_allclose(np.sum(np.abs(W) ** 2, axis=(1, 2)), P, rtol=1e-5)
    model.save(tmp_path / "bf.keras")
    loaded = keras.models.load_model(tmp_path / "bf.keras")
    np.testing.assert_allclose(loaded.predict(x[:16], verbose=0), model.predict(x[:16], verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="csi_net"):
        LearnedChannelBeamformer(csi, NT + 1, K, P, NOISE)
