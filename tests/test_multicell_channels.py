"""Zhang et al. Sec. VI / VII-C / VII-D: the multicell dataset (mimokd.channels.multicell)."""

import numpy as np
import pytest
import scipy.special

from mimokd.channels.multicell import bs_view_order, make_multicell_dataset, multicell_channels
from mimokd.channels.uplink_downlink import (
    SPEED_OF_LIGHT,
    drop_users,
    fdd_multipath_channels,
    hexagonal_cells,
    make_front_end,
    uplink_pilots,
)
from mimokd.classical.slnr import multicell_slnr_beamformer, multicell_user_rates

NC, UPC, NT = 3, 2, 4
KT = NC * UPC


@pytest.fixture(scope="module")
def dataset():
    return make_multicell_dataset(6, NT, 7, num_cells=NC, users_per_cell=UPC, paths=2, return_paths=True)


# -------------------------------------------------------------------------------------- channels


def test_shapes_dtypes_and_view_order():
    out = multicell_channels(3, NT, 0, num_cells=NC, users_per_cell=UPC, paths=3)
    for key in ("h_up", "h_down"):
        assert out[key].shape == (3, NC, KT, NT) and out[key].dtype == np.complex128
    assert out["positions"].shape == (3, NC, UPC, 2)
    assert out["bs_positions"].shape == (NC, 2)
    assert out["distance"].shape == out["gain_up"].shape == out["gain_down"].shape == (3, NC, KT)
    assert out["rho"] == 1.0
    phi, c = out["front_end"]
    assert phi.shape == (NT, NT) and isinstance(c, complex)
    assert list(bs_view_order(3, 2, 1)) == [2, 3, 0, 1, 4, 5]
    assert list(bs_view_order(3, 2, 0)) == [0, 1, 2, 3, 4, 5]
    assert list(bs_view_order(4, 1, 3)) == [3, 0, 1, 2]


def test_matches_fdd_generator_and_eq42_noise_normalisation():
    """Same seed, documented draw order: front-end, positions, eq. (40) paths of all links BS-major."""
    batch, paths, seed = 4, 3, 11
    out = multicell_channels(batch, NT, seed, num_cells=NC, users_per_cell=UPC, paths=paths)
    g = np.random.default_rng(seed)
    phi, c = make_front_end(NT, g)
    pos = drop_users(batch, UPC, g, num_cells=NC)
    hu, hd = fdd_multipath_channels(batch, NC * KT, NT, g, paths=paths, phi=phi, c=c)
    np.testing.assert_allclose(out["positions"], pos)
    np.testing.assert_allclose(out["front_end"][0], phi)

    # eq. (42) recomputed from positions, independently of large_scale_gains
    bs = hexagonal_cells(NC)
    users = pos.reshape(batch, KT, 2)
    d = np.hypot(users[:, None, :, 0] - bs[None, :, None, 0], users[:, None, :, 1] - bs[None, :, None, 1])
    np.testing.assert_allclose(out["distance"], d)
    assert np.all(out["distance"][:, np.arange(KT) // UPC, np.arange(KT)] >= 10.0)
    noise_w = 10 ** ((-174 - 30) / 10) * 20e6
    assert out["noise_w"] == pytest.approx(noise_w)
    g_up = 10 ** (-(127 + 30 * np.log10(d / 1000)) / 10)
    g_down = 10 ** (-(128.1 + 37.6 * np.log10(d / 1000)) / 10)
    hu = hu.reshape(batch, NC, KT, NT)
    hd = hd.reshape(batch, NC, KT, NT)
    np.testing.assert_allclose(out["h_up"], hu * np.sqrt(g_up / noise_w)[..., None], rtol=1e-5, atol=0)
    # no Doppler: the rebuilt eq. (40) downlink is fdd_multipath_channels' own (complex64 there)
    np.testing.assert_allclose(out["h_down"], hd * np.sqrt(g_down / noise_w)[..., None], rtol=1e-5, atol=0)
    ratio = np.sum(np.abs(out["h_down"]) ** 2, -1) / np.sum(np.abs(hd) ** 2, -1)
    np.testing.assert_allclose(ratio, g_down / noise_w, rtol=1e-5)


def test_chunked_generation_follows_documented_draw_order(monkeypatch):
    """Chunks of 2 samples (2, 2, 1): per chunk the eq. (40) paths of all links, then the Doppler innovations."""
    from mimokd.channels import multicell

    batch, paths, seed = 5, 2, 21
    links = NC * KT
    monkeypatch.setattr(multicell, "CHUNK_ELEMENTS", 2 * links * paths * NT + 1)
    g_out = np.random.default_rng(seed)
    out = multicell_channels(batch, NT, g_out, num_cells=NC, users_per_cell=UPC, paths=paths, doppler_hz=100.0,
                             return_paths=True)
    g = np.random.default_rng(seed)
    phi, c = make_front_end(NT, g)
    drop_users(batch, UPC, g, num_cells=NC)
    hu, alpha = [], []
    for size in (2, 2, 1):
        up, _, info = fdd_multipath_channels(size, links, NT, g, paths=paths, phi=phi, c=c, return_paths=True)
        hu.append(up)
        alpha.append(info["alpha"])
        g.standard_normal(info["alpha"].shape), g.standard_normal(info["alpha"].shape)  # the innovations e
    hu = np.concatenate(hu).reshape(batch, NC, KT, NT)
    np.testing.assert_allclose(out["h_up"], hu * np.sqrt(out["gain_up"] / out["noise_w"])[..., None], rtol=1e-5)
    np.testing.assert_array_equal(out["paths"]["alpha"], np.concatenate(alpha).reshape(batch, NC, KT, paths))
    assert g_out.standard_normal() == g.standard_normal()  # both generators consumed exactly the same draws


def test_downlink_rebuilt_from_aged_gains_single_path():
    """paths=1: h_down = c Phi alpha'^2 e^{-j 2 pi f tau + j phase} a_down(theta), written out independently."""
    batch = 3
    out = multicell_channels(batch, NT, 5, num_cells=2, users_per_cell=1, paths=1, doppler_hz=120.0,
                             return_paths=True)
    p = out["paths"]
    phi, c = out["front_end"]
    f = 2.4e9
    n = np.arange(NT)
    a = np.exp(-2j * np.pi * (p["spacing"] * f / SPEED_OF_LIGHT) * n * np.sin(p["theta"][..., 0:1]))
    small = (p["alpha_down"][..., 0] ** 2 * np.exp(-2j * np.pi * f * p["tau"][..., 0] + 1j * p["phase"][..., 0]))
    small = c * (small[..., None] * a) @ phi.T
    np.testing.assert_allclose(out["h_down"], small * np.sqrt(out["gain_down"] / out["noise_w"])[..., None],
                               rtol=1e-6)
    assert p["spacing"] == pytest.approx(SPEED_OF_LIGHT / (2 * f))


def test_doppler_keeps_draws_and_ages_gains_by_jakes_rho():
    kw = dict(num_cells=NC, users_per_cell=1, paths=1, return_paths=True)
    base = multicell_channels(300, 2, 3, **kw)
    explicit0 = multicell_channels(300, 2, 3, doppler_hz=0.0, delay_s=5e-3, **kw)
    np.testing.assert_array_equal(base["h_down"], explicit0["h_down"])
    np.testing.assert_array_equal(base["paths"]["alpha_down"], base["paths"]["alpha"])
    for fd in (50.0, 150.0, 400.0):
        aged = multicell_channels(300, 2, 3, doppler_hz=fd, **kw)
        rho = scipy.special.j0(2 * np.pi * fd * 1e-3)
        assert aged["rho"] == pytest.approx(rho)
        for key in ("h_up", "positions", "distance"):
            np.testing.assert_array_equal(aged[key], base[key])
        for key in ("theta", "tau", "phase", "alpha"):
            np.testing.assert_array_equal(aged["paths"][key], base["paths"][key])
        a, a2 = base["paths"]["alpha"].ravel(), aged["paths"]["alpha_down"].ravel()  # 2700 gains
        assert np.mean(np.abs(a2) ** 2) == pytest.approx(1.0, abs=0.1)
        corr = np.mean(a2 * a.conj())
        assert abs(corr - rho) < 0.06, (fd, corr, rho)
        # single path: h_down(f_d) = (alpha'^2 / alpha^2) h_down(0) exactly
        np.testing.assert_allclose(aged["h_down"],
                                   base["h_down"] * (aged["paths"]["alpha_down"] / base["paths"]["alpha"]) ** 2,
                                   rtol=1e-8)


def test_doppler_lowers_downlink_correlation():
    kw = dict(num_cells=NC, users_per_cell=1, paths=4)
    ref = multicell_channels(200, 8, 9, **kw)["h_down"]

    def mean_corr(h):
        inner = np.abs(np.sum(h * ref.conj(), -1))
        return np.mean(inner / (np.linalg.norm(h, axis=-1) * np.linalg.norm(ref, axis=-1)))

    corrs = [mean_corr(multicell_channels(200, 8, 9, doppler_hz=fd, **kw)["h_down"]) for fd in (0.0, 10.0, 80.0, 150.0)]
    assert corrs[0] == pytest.approx(1.0)
    assert corrs[1] > 0.99
    assert all(x > y for x, y in zip(corrs, corrs[1:])), corrs
    rho150 = scipy.special.j0(2 * np.pi * 150 * 1e-3)
    assert rho150 ** 2 - 0.15 < corrs[-1] < 0.95


# ------------------------------------------------------------------------------------ dataset


def test_pilots_ls_input():
    kw = dict(num_cells=NC, users_per_cell=UPC, paths=2, slnr_labels=False)
    clean = make_multicell_dataset(4, NT, 1, pilot_power_dbm=200.0, **kw)
    assert clean["pilot_length"] == KT and clean["pilots"].shape == (KT, KT)
    np.testing.assert_allclose(clean["ls"], clean["h_up"], rtol=0, atol=1e-4 * np.abs(clean["h_up"]).max())

    short = make_multicell_dataset(4, NT, 1, pilot_power_dbm=200.0, pilot_length=3, **kw)
    err = np.linalg.norm(short["ls"] - short["h_up"]) / np.linalg.norm(short["h_up"])
    assert err > 0.1  # pilot contamination
    x = uplink_pilots(KT, 3, 1.0).astype(np.complex128)
    expected = np.einsum("bjkn,km->bjmn", short["h_up"], x @ x.conj().T) / 3  # H_U X X^H / (L P), eq. (34)
    np.testing.assert_allclose(short["ls"], expected, rtol=0, atol=1e-4 * np.abs(expected).max())

    # noise power 1 after normalisation: E|ls - h_up|^2 = 1 / (L P) per entry
    noisy = make_multicell_dataset(200, NT, 2, power_dbm=10.0, **kw)
    var = np.mean(np.abs(noisy["ls"] - noisy["h_up"]) ** 2)
    assert var == pytest.approx(1.0 / (KT * 0.01), rel=0.05)
    assert noisy["pilot_power"] == pytest.approx(0.01)


def test_views_scale_and_power(dataset):
    d = dataset
    h_up, h_down, s = d["h_up"], d["h_down"], d["channel_scale"]
    serving = [h_up[:, i, i * UPC + u] for i in range(NC) for u in range(UPC)]
    assert s == pytest.approx(np.sqrt(np.mean(np.abs(np.stack(serving)) ** 2)))
    assert d["power"] == pytest.approx(0.01) and d["noise"] == 1.0
    assert d["power_scaled"] == pytest.approx(0.01 * s ** 2)
    assert d["uplink"].shape == d["downlink"].shape == (6 * NC, KT, NT, 2)
    assert d["uplink"].dtype == d["downlink"].dtype == np.float32
    for i in range(NC):
        order = bs_view_order(NC, UPC, i)
        np.testing.assert_array_equal(d["view_order"][i], order)
        for key, h in (("downlink", h_down), ("uplink", d["ls"])):
            view = d[key][i::NC]
            z = view[..., 0].astype(np.float64) + 1j * view[..., 1]
            np.testing.assert_allclose(z, h[:, i, order] / s, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(z[:, :UPC], h[:, i, i * UPC:(i + 1) * UPC] / s, rtol=1e-5, atol=1e-6)

    other = make_multicell_dataset(2, NT, 8, num_cells=NC, users_per_cell=UPC, channel_scale=2.5, slnr_labels=False)
    assert other["channel_scale"] == 2.5
    z = other["downlink"][1::NC][..., 0] + 1j * other["downlink"][1::NC][..., 1]
    np.testing.assert_allclose(z, other["h_down"][:, 1, bs_view_order(NC, UPC, 1)] / 2.5, rtol=1e-5, atol=1e-6)


def test_same_seed_same_pilot_noise_across_doppler():
    kw = dict(num_cells=NC, users_per_cell=1, slnr_labels=False)
    a = make_multicell_dataset(3, NT, 4, **kw)
    b = make_multicell_dataset(3, NT, 4, doppler_hz=150.0, **kw)
    np.testing.assert_array_equal(a["ls"], b["ls"])
    np.testing.assert_array_equal(a["uplink"], b["uplink"])
    assert not np.allclose(a["h_down"], b["h_down"])


def test_slnr_labels(dataset):
    d = dataset
    W = d["slnr_W"]
    assert W.shape == (6, NC, NT, UPC) and W.dtype == np.complex128
    np.testing.assert_allclose(W, multicell_slnr_beamformer(d["h_down"], d["power"], 1.0, UPC), rtol=1e-10)
    assert d["powers"].shape == (6 * NC, UPC) and d["powers"].dtype == np.float32
    np.testing.assert_allclose(d["powers"].sum(-1), 1.0, rtol=1e-6)
    for i in range(NC):
        np.testing.assert_allclose(d["powers"][i::NC], np.linalg.norm(W[:, i], axis=1) ** 2 / d["power"], rtol=1e-6)
    # eq. (26) written out: user u of cell i, all beams of all BSs
    b, kt = 6, KT
    rate = np.zeros(b)
    for u in range(kt):
        sig = np.abs(np.einsum("bn,bn->b", d["h_down"][:, u // UPC, u].conj(), W[:, u // UPC, :, u % UPC])) ** 2
        total = sum(np.abs(np.einsum("bn,bn->b", d["h_down"][:, j, u].conj(), W[:, j, :, k])) ** 2
                    for j in range(NC) for k in range(UPC))
        rate += np.log2(1 + sig / (total - sig + 1.0))
    np.testing.assert_allclose(d["slnr_rate"], rate, rtol=1e-9)
    np.testing.assert_allclose(d["slnr_rate"], multicell_user_rates(d["h_down"], W, 1.0).sum(-1), rtol=1e-12)
    # scaled units (channels / s, power P s^2, noise 1) give the same rates
    s = d["channel_scale"]
    Ws = multicell_slnr_beamformer(d["h_down"] / s, d["power_scaled"], 1.0, UPC)
    np.testing.assert_allclose(multicell_user_rates(d["h_down"] / s, Ws, 1.0).sum(-1), d["slnr_rate"], rtol=1e-6)


def test_front_end_shared_between_sets():
    a = multicell_channels(2, NT, 0, num_cells=2)
    b = multicell_channels(2, NT, 1, num_cells=2, front_end=a["front_end"])
    np.testing.assert_array_equal(b["front_end"][0], a["front_end"][0])
    assert b["front_end"][1] == a["front_end"][1]


# ------------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("kwargs, name", [
    (dict(batch=0), "batch"),
    (dict(Nt=2.5), "Nt"),
    (dict(num_cells=0), "num_cells"),
    (dict(users_per_cell=-1), "users_per_cell"),
    (dict(doppler_hz=-1.0), "doppler_hz"),
    (dict(doppler_hz=float("nan")), "doppler_hz"),
    (dict(delay_s=-1e-3), "delay_s"),
    (dict(front_end="phi"), "front_end"),
    (dict(paths=0), "paths"),
    (dict(bandwidth=0.0), "bandwidth"),
    (dict(min_distance=500.0), "min_distance"),
])
def test_channels_bad_arguments(kwargs, name):
    args = dict(batch=2, Nt=NT, rng=0) | kwargs
    with pytest.raises(ValueError, match=name):
        multicell_channels(**args)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n=0), "n"),
    (dict(Nt=0), "Nt"),
    (dict(pilot_length=0), "pilot_length"),
    (dict(pilot_length=2.0), "pilot_length"),
    (dict(channel_scale=-1.0), "channel_scale"),
    (dict(channel_scale=float("inf")), "channel_scale"),
    (dict(power_dbm=float("nan")), "power_dbm"),
    (dict(pilot_power_dbm="high"), "pilot_power_dbm"),
])
def test_dataset_bad_arguments(kwargs, name):
    args = dict(n=2, Nt=NT, rng=0, num_cells=2) | kwargs
    with pytest.raises(ValueError, match=f"`{name}`"):
        make_multicell_dataset(**args)


def test_view_order_bad_arguments():
    with pytest.raises(ValueError, match="cell"):
        bs_view_order(3, 1, 3)
    with pytest.raises(ValueError, match="users_per_cell"):
        bs_view_order(3, 0, 0)
