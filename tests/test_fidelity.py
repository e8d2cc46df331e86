"""Fidelity measures of regenerated CSI (mimokd.channels.fidelity), on small random-weight models.

The delay profile is checked against a closed form computed by hand from the convolution kernel,
and the data route against the BatchNorm's own moving statistics after one training-mode call;
the NMSE against an independent numpy computation in the authors' complex form. No ../shared.
"""

import numpy as np
import pytest

from mimokd.channels import fidelity
from mimokd.channels.fidelity import (
    PUBLISHED_CSINET_NMSE_DB,
    amplitude_db,
    authors_file_stem,
    authors_nmse_db,
    delay_profile,
    fidelity_table,
    first_layer_column_excess,
    first_layer_floor,
    total_variation,
)
from mimokd.zoo import create_model

H = W = 32


@pytest.fixture(scope="module")
def model():
    """A csinet_authors model at 1/16 with random (untrained) weights; not modified by the tests."""
    import keras

    keras.utils.set_random_seed(0)
    return create_model("csinet_authors", cr=16)


def _csi(rng, n, decay=4.0):
    """Random CSI [n, 2, 32, 32] in [0, 1], energy decaying along the delay axis."""
    profile = np.exp(-np.arange(W) / decay)
    h = 0.1 * rng.standard_normal((n, 2, H, W)) * np.sqrt(profile)
    return np.clip(0.5 + h, 0, 1).astype("float32")


@pytest.mark.parametrize("column", [5, 0, W - 1])
def test_excess_of_one_column_is_the_kernel_in_closed_form(model, column):
    # One nonzero entry v at (channel c0, row r0, column w0), in a batch {0.5 + v e, 0.5 - v e}:
    # the conv output minus its zero-CSI value is z = +-v K[r0 - r + 1, w0 - w + 1, c0, :], whose
    # batch mean is 0 at every position, so the excess of column w is E[z^2] over 2 x 32 x 2 values:
    # v^2 sum_{i, co} K[i, w0 - w + 1, c0, co]^2 / 64 for |w - w0| <= 1, and 0 elsewhere.
    kernel = model.encoder.get_layer("enc_head_conv").kernel.numpy().astype(np.float64)
    v, r0, c0 = 0.3, 10, 1
    csi = np.full((2, 2, H, W), 0.5)
    csi[0, c0, r0, column] += v
    csi[1, c0, r0, column] -= v
    expected = np.zeros(W)
    for w in range(max(column - 1, 0), min(column + 2, W)):
        expected[w] = 2 * v**2 * np.sum(kernel[:, column - w + 1, c0, :] ** 2) / (2 * H * 2)  # 2 samples
    excess = first_layer_column_excess(model, csi)
    assert excess.dtype == np.float64 and excess.shape == (W,)
    np.testing.assert_allclose(excess, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(delay_profile(model, csi), expected / expected.sum(), atol=1e-9)


def test_zero_csi_has_no_excess_and_the_floor_is_bias_and_padding(model):
    zero = np.full((3, 2, H, W), 0.5, np.float32)
    np.testing.assert_allclose(first_layer_column_excess(model, zero), 0.0, atol=1e-12)
    conv = model.encoder.get_layer("enc_head_conv")
    kernel, bias = conv.kernel.numpy().astype(np.float64), conv.bias.numpy().astype(np.float64)
    # interior column, interior rows: each channel is b_c + 0.5 sum K[..., c]; rows 0 and 31 lose a kernel row
    full = bias + 0.5 * kernel.sum(axis=(0, 1, 2))
    top = bias + 0.5 * kernel[1:].sum(axis=(0, 1, 2))
    bottom = bias + 0.5 * kernel[:2].sum(axis=(0, 1, 2))
    values = np.concatenate([np.tile(full, H - 2), top, bottom])
    assert first_layer_floor(model)[W // 2] == pytest.approx(values.var(), rel=1e-9)
    with pytest.raises(ValueError, match="no excess variance"):
        delay_profile(model, zero)


def test_stored_batchnorm_route_equals_the_data_route():
    import keras

    keras.utils.set_random_seed(1)
    fresh = create_model("csinet_authors", cr=32)
    conv = fresh.encoder.get_layer("enc_head_conv")
    # a bias that cancels the 0.5 offset inside the image, as training tends to: the floor is then the
    # padding's alone and small beside the data, so the float32 BatchNorm statistics keep their digits
    conv.bias.assign(-0.5 * conv.kernel.numpy().sum(axis=(0, 1, 2)))
    csi = _csi(np.random.default_rng(2), 64)
    bn = fresh.encoder.get_layer("enc_head_bn")
    bn.momentum = 0.0  # moving statistics := this batch's (Keras' population variance)
    fresh.encoder(csi, training=True)
    stored, data = delay_profile(fresh), delay_profile(fresh, csi)
    np.testing.assert_allclose(stored, data, atol=1e-5)
    assert stored.sum() == pytest.approx(1.0) and stored[0] > stored[20]
    assert total_variation(stored, data) < 1e-4
    assert amplitude_db(fresh, csi) == pytest.approx(0.0, abs=1e-3)
    # h and -h in the batch (no cross term with the zero-CSI output): twice the amplitude of h is four
    # times the excess, +6.02 dB, and the profile does not move
    x = csi.astype(np.float64)
    symmetric = np.concatenate([x, 1 - x])
    louder = 0.5 + 2 * (symmetric - 0.5)
    gain = amplitude_db(fresh, louder) - amplitude_db(fresh, symmetric)
    assert gain == pytest.approx(10 * np.log10(4), abs=1e-9)
    np.testing.assert_allclose(delay_profile(fresh, louder), delay_profile(fresh, symmetric), atol=1e-12)


def test_total_variation_closed_forms():
    p = np.array([0.25, 0.25, 0.5, 0.0])
    assert total_variation(p, p) == 0.0
    assert total_variation([1, 0], [0, 1]) == 1.0
    assert total_variation([1, 0], [0.5, 0.5]) == 0.5
    assert total_variation(p, [0.0, 0.5, 0.25, 0.25]) == pytest.approx(0.5)  # 0.5 (0.25 + 0.25 + 0.25 + 0.25)
    assert total_variation(p, [0.0, 0.5, 0.25, 0.25]) == total_variation([0.0, 0.5, 0.25, 0.25], p)
    with pytest.raises(ValueError, match="same shape"):
        total_variation([1.0], [0.5, 0.5])


def test_authors_nmse_matches_an_independent_computation(model):
    csi = _csi(np.random.default_rng(3), 8)
    prediction = model.predict(csi, verbose=0).astype(np.float64)
    x = csi.astype(np.float64)
    # the authors' test code: complex CSI from the two planes minus 0.5, flattened per sample
    x_c = (x[:, 0] - 0.5) + 1j * (x[:, 1] - 0.5)
    y_c = (prediction[:, 0] - 0.5) + 1j * (prediction[:, 1] - 0.5)
    ratios = [np.sum(np.abs(a - b) ** 2) / np.sum(np.abs(a) ** 2) for a, b in zip(x_c, y_c)]
    assert authors_nmse_db(model, csi, batch_size=3) == pytest.approx(10 * np.log10(np.mean(ratios)), abs=1e-4)


def test_bad_csi_and_wrong_models_are_refused(model):
    with pytest.raises(ValueError, match=r"\[batch, 2, 32, 32\].*csi.shape=\(4, 32, 32, 2\)"):
        first_layer_column_excess(model, np.full((4, 32, 32, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"csi.shape=\(2, 32, 32\)"):
        delay_profile(model, np.full((2, 32, 32), 0.5))
    with pytest.raises(ValueError, match="csi.shape"):
        authors_nmse_db(model, np.full((2, 2, 32, 16), 0.5, np.float32))
    with pytest.raises(ValueError, match="axis 2"):
        first_layer_column_excess(create_model("csinet", cr=16))  # per-channel BatchNorm
    with pytest.raises(ValueError, match="no layers 'enc_head_conv'"):
        delay_profile(_plain_model())
    with pytest.raises(ValueError, match="scenario"):
        authors_file_stem("urban", 16)


def _plain_model():
    import keras

    inputs = keras.Input((2, H, W))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


def test_fidelity_table_rows_and_absent_files(model, tmp_path, monkeypatch):
    import mimokd.pretrained.importers as importers

    assert authors_file_stem("indoor", 16) == "model_CsiNet_indoor_dim128"
    assert authors_file_stem("outdoor", 64) == "model_CsiNet_outdoor_dim32"
    assert len(PUBLISHED_CSINET_NMSE_DB) == 6 and PUBLISHED_CSINET_NMSE_DB[("outdoor", 32)] == -2.81
    for suffix in (".json", ".h5"):
        (tmp_path / f"model_CsiNet_indoor_dim128{suffix}").write_text("")
    (tmp_path / "model_CsiNet_indoor_dim64.json").write_text("")  # its .h5 is absent
    calls = []
    monkeypatch.setattr(importers, "import_csinet_keras", lambda j, h: calls.append(j.name) or model)
    csi = _csi(np.random.default_rng(4), 6)
    lines = []
    rows = fidelity_table(tmp_path, {"indoor": csi}, log=lines.append)
    assert calls == ["model_CsiNet_indoor_dim128.json"]
    assert [(r["scenario"], r["cr"]) for r in rows] == [("indoor", 16), ("indoor", 32), ("indoor", 64)]
    first = rows[0]
    assert first["published"] == -8.65 and first["gap"] == pytest.approx(first["ours"] + 8.65)
    assert first["ours"] == pytest.approx(authors_nmse_db(model, csi))
    assert first["profile_tv"] == pytest.approx(total_variation(delay_profile(model), delay_profile(model, csi)))
    assert first["amplitude_db"] == pytest.approx(amplitude_db(model, csi))
    assert len(first["profile_ours"]) == W and first["samples"] == 6 and first["note"] == ""
    assert rows[1]["ours"] is None and rows[1]["note"] == "skipped: model_CsiNet_indoor_dim64.h5 absent"
    assert "model_CsiNet_indoor_dim32.json, model_CsiNet_indoor_dim32.h5 absent" in rows[2]["note"]
    assert len(lines) == 3
    with pytest.raises(FileNotFoundError, match="None of the authors' files"):
        fidelity_table(tmp_path, {"outdoor": csi})
    with pytest.raises(ValueError, match="keys"):
        fidelity_table(tmp_path, {"urban": csi})
    with pytest.raises(FileNotFoundError, match="No weights folder"):
        fidelity_table(tmp_path / "nowhere", {"indoor": csi})
    assert fidelity.SCENARIOS == ("indoor", "outdoor")


def test_plot_delay_profiles_writes_one_panel_per_scenario(tmp_path):
    from mimokd.plots import plot_delay_profiles

    profile = np.full(32, 1 / 32)
    rows = [{"scenario": s, "cr": cr, "profile_original": profile, "profile_ours": profile, "profile_tv": 0.0}
            for s in ("indoor", "outdoor") for cr in (16, 32)]
    rows.append({"scenario": "outdoor", "cr": 64, "profile_original": None, "profile_ours": None,
                 "profile_tv": None})  # a skipped model is left out
    path = tmp_path / "profiles.png"
    plot_delay_profiles(rows, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > 1.8 * height  # two panels side by side
