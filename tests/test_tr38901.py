"""Tests of the TR 38.901 scenario generator (mimokd.channels.tr38901) against the standard's closed forms."""

import numpy as np
import pytest

from mimokd.channels import tr38901
from mimokd.channels.transforms import to_angular_delay
from mimokd.channels.tr38901 import (
    SCENARIOS_38901,
    Rays,
    generate_frequency_response,
    generate_rays,
    get_scenario_38901,
    path_loss_db,
    rays_to_frequency,
    ue_positions,
)


def _angular_delay_energy(h):
    return np.abs(to_angular_delay(h, n_delay=h.shape[-1])) ** 2


def _single_ray(aod_deg, delay_s, zod_deg=90.0):
    one = np.ones((1, 1))
    return Rays(one + 0j, delay_s * one, aod_deg * one, zod_deg * one, np.zeros((1, 2)))


@pytest.mark.parametrize("name", list(SCENARIOS_38901))
def test_every_scenario_gives_32x32_complex64(name):
    h = generate_frequency_response(name, 3, seed=0)
    assert h.shape == (3, 32, 32) and h.dtype == np.complex64
    assert np.isfinite(h).all() and np.all(np.abs(h).sum(axis=(1, 2)) > 0)


def test_overrides_change_the_grid():
    h = generate_frequency_response("umi-los", 2, seed=0, num_antennas=16, num_subcarriers=8)
    assert h.shape == (2, 16, 8)


@pytest.mark.parametrize("spatial_consistency", [True, False])
def test_shard_stability(spatial_consistency):
    kwargs = dict(seed=7, spatial_consistency=spatial_consistency)
    whole = generate_frequency_response("umi-los", 10, **kwargs)
    shards = np.concatenate([generate_frequency_response("umi-los", 5, **kwargs),
                             generate_frequency_response("umi-los", 5, start=5, **kwargs)])
    np.testing.assert_array_equal(whole, shards)
    np.testing.assert_array_equal(whole[3:4], generate_frequency_response("umi-los", 1, start=3, **kwargs))


def test_seeds_and_environments_differ():
    a = generate_frequency_response("umi-nlos", 4, seed=0)
    assert not np.allclose(a, generate_frequency_response("umi-nlos", 4, seed=1))
    other_environment = generate_frequency_response("umi-nlos", 4, seed=0, environment_seed=1)
    assert not np.allclose(a, other_environment)
    # the environment changes the channel, not the drop positions
    np.testing.assert_array_equal(ue_positions("umi-nlos", 4, seed=0), ue_positions("umi-nlos", 4, seed=0))


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ValueError, match="umi-los.*umi-nlos"):
        generate_frequency_response("uma-los", 2, seed=0)
    with pytest.raises(ValueError, match="bandwidth_hz"):
        get_scenario_38901("umi-los", bandwidth=1e6)
    with pytest.raises(ValueError, match="known"):
        get_scenario_38901("umi-los", environment="inh", los=False)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_bad_n(bad):
    with pytest.raises(ValueError, match="`n`"):
        generate_frequency_response("umi-los", bad, seed=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(seed=-1), "`seed`"),
    (dict(seed=0, start=-2), "`start`"),
    (dict(seed=0, region=(95.0, 0.0, 10.0)), "inside the cell"),
    (dict(seed=0, region=(50.0, 0.0, -1.0)), "inside the cell"),
    (dict(seed=0, region=(5.0, 0.0, 2.0)), "inside the cell"),
    (dict(seed=0, region=(50.0, 0.0)), "x_m, y_m, radius_m"),
    (dict(seed=0, bandwidth_hz=0.0), "bandwidth_hz"),
    (dict(seed=0, min_distance_m=150.0), "min_distance_m"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_frequency_response("umi-los", 2, **kwargs)


def test_positions_fill_the_cell_annulus_uniformly():
    xy = ue_positions("umi-los", 3000, seed=0)
    d = np.hypot(xy[:, 0], xy[:, 1])
    assert d.min() >= 10.0 and d.max() <= 100.0
    # uniform over the area: P(d <= 55) = (55^2 - 10^2) / (100^2 - 10^2) = 0.2955
    assert abs(np.mean(d <= 55.0) - 0.2955) < 0.03
    np.testing.assert_array_equal(generate_rays("umi-los", 20, seed=0).positions_m, xy[:20])


@pytest.mark.parametrize("name", ["umi-nlos-area1", "umi-nlos-area2"])
def test_area_scenarios_stay_in_their_disc(name):
    x, y, radius = SCENARIOS_38901[name].region
    assert radius == 10.0
    xy = ue_positions(name, 500, seed=0)
    r = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
    assert r.max() <= radius and r.max() > 0.9 * radius
    # both areas are in the same environment as umi-nlos (same random fields)
    same_drops = generate_frequency_response("umi-nlos", 3, seed=0, region=(x, y, radius))
    np.testing.assert_array_equal(generate_frequency_response(name, 3, seed=0), same_drops)


def test_path_loss_matches_table_7_4_1_1():
    # values computed by hand from Table 7.4.1-1: fc = 2.655 GHz, h_BS = 10 m, h_UT = 1.5 m,
    # d'_BP = 4 * 9 * 0.5 * fc / c = 159.41 m; InH: h_BS = 3 m, h_UT = 1 m
    np.testing.assert_allclose(path_loss_db("umi-los", [50.0, 300.0]), [76.6896, 98.1136], atol=1e-3)
    np.testing.assert_allclose(path_loss_db("umi-nlos", 50.0), 91.6246, atol=1e-3)
    np.testing.assert_allclose(path_loss_db("inh-los-40mhz", 10.0), 58.3286, atol=1e-3)
    with pytest.raises(ValueError, match="distance_2d_m"):
        path_loss_db("umi-los", [0.0])


def test_path_loss_and_shadow_fading_of_step_12():
    kwargs = dict(seed=3, spatial_consistency=False)
    raw = generate_frequency_response("umi-los", 600, **kwargs)
    lossy = generate_frequency_response("umi-los", 600, include_path_loss=True, **kwargs)
    d = np.hypot(*ue_positions("umi-los", 600, seed=3).T)
    gain_db = 10 * np.log10(np.sum(np.abs(lossy) ** 2, axis=(1, 2)) / np.sum(np.abs(raw) ** 2, axis=(1, 2)))
    shadowing = gain_db + path_loss_db("umi-los", d)  # the SF of each drop, N(0, 4 dB) in UMi LOS
    assert abs(shadowing.mean()) < 0.5 and 3.6 < shadowing.std() < 4.4


def test_los_k_factor_follows_table_7_5_6():
    rays = generate_rays("umi-los", 1000, seed=0, spatial_consistency=False)
    power = np.abs(rays.gains) ** 2
    assert rays.gains.shape == (1000, 1 + 12 * 20)
    np.testing.assert_array_equal(rays.delays_s[:, 0], 0.0)
    k_db = 10 * np.log10(power[:, 0] / power[:, 1:].sum(axis=1))  # K ~ N(9 dB, 5 dB)
    assert abs(k_db.mean() - 9.0) < 0.6 and 4.5 < k_db.std() < 5.5
    assert generate_rays("umi-nlos", 2, seed=0).gains.shape == (2, 19 * 20)


def test_los_concentrates_energy_in_one_bin_nlos_does_not():
    def peak_share(name):
        e = _angular_delay_energy(generate_frequency_response(name, 300, seed=0)).reshape(300, -1)
        return np.mean(e.max(axis=1) / e.sum(axis=1))

    assert peak_share("umi-los") > 0.5 > 0.2 > peak_share("umi-nlos")


@pytest.mark.parametrize("aod_deg, bin_", [(np.degrees(np.arcsin(5 / 16)), 5), (-np.degrees(np.arcsin(5 / 16)), 27)])
def test_single_ray_lands_in_its_angular_bin_and_delay_tap(aod_deg, bin_):
    # (d / lambda) sin(AOD) = 0.5 * 5/16 = 5/32 -> angular bin 5 (negative angles wrap to 32 - 5);
    # a delay of 3 / bandwidth -> tap 3
    bandwidth = SCENARIOS_38901["umi-los"].bandwidth_hz
    e = _angular_delay_energy(rays_to_frequency(_single_ray(aod_deg, 3 / bandwidth), "umi-los"))[0]
    assert e[bin_, 3] / e.sum() > 0.9999


def test_generated_los_ray_lands_in_the_bin_of_the_ue_direction():
    # a small region where the LOS direction cosine sin(ZOD) sin(AOD) is 0.25, i.e. angular bin 4
    d = 40.0
    azimuth = np.arcsin(0.25 * np.hypot(d, 8.5) / d)
    region = (d * np.cos(azimuth), d * np.sin(azimuth), 1.0)
    e = _angular_delay_energy(generate_frequency_response("umi-los", 200, seed=0, region=region)).sum(axis=-1)
    assert np.mean(e.argmax(axis=1) == 4) > 0.9


def test_fewer_delay_taps_at_10_mhz_than_at_40_mhz():
    def taps_for_99_percent(name):
        e = np.sort(_angular_delay_energy(generate_frequency_response(name, 300, seed=0)).sum(axis=1), axis=1)[:, ::-1]
        return np.sum(np.cumsum(e, axis=1) / e.sum(axis=1, keepdims=True) < 0.99, axis=1) + 1

    wide, narrow = taps_for_99_percent("inh-los-40mhz"), taps_for_99_percent("inh-los-10mhz")
    assert narrow.mean() < wide.mean() - 1 and np.mean(narrow <= wide) > 0.85
    # the same 100 ns delay is tap 4 at 40 MHz and tap 1 at 10 MHz
    for name, tap in [("inh-los-40mhz", 4), ("inh-los-10mhz", 1)]:
        e = _angular_delay_energy(rays_to_frequency(_single_ray(0.0, 100e-9), name))[0]
        assert e[0, tap] / e.sum() > 0.9999


def test_frequency_response_is_the_sum_over_rays():
    # the generator sums rays of equal delay first; the plain per-ray sum must agree
    for name in ["umi-los", "umi-nlos"]:
        h = generate_frequency_response(name, 20, seed=4, include_path_loss=True)
        np.testing.assert_allclose(rays_to_frequency(generate_rays(name, 20, seed=4, include_path_loss=True), name),
                                   h, rtol=1e-5, atol=1e-6 * np.abs(h).max())


def test_spatial_consistency_co_located_drops_share_their_channel():
    def mean_similarity(**kwargs):
        h = generate_frequency_response("umi-nlos", 20, seed=0, region=(50.0, 0.0, 1e-4), **kwargs).reshape(20, -1)
        h = h / np.linalg.norm(h, axis=1, keepdims=True)
        return np.abs(h.conj() @ h.T)[np.triu_indices(20, 1)].mean()

    assert mean_similarity() > 0.98
    assert mean_similarity(spatial_consistency=False) < 0.3


def test_random_fields_have_the_exponential_autocorrelation():
    # E[z(x) z(x + r)] = exp(-r / d_corr), unit variance: UMi NLOS LSPs (SF, DS, ASD, ZSD) have
    # d_corr = 13, 10, 10, 10 m (Table 7.5-6), cluster / ray variables 15 m (Table 7.6.3.1-2)
    rng = np.random.default_rng(0)
    x = rng.uniform(-80, 80, (300, 2))
    angle = rng.uniform(0, 2 * np.pi, 300)
    y = x + 10.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    products, squares = [], []
    for environment_seed in range(40):
        fields = tr38901._random_fields(get_scenario_38901("umi-nlos", environment_seed=environment_seed))
        fields = fields._replace(ssp_weights=fields.ssp_weights[:, :8])  # 8 of the 874 cluster / ray fields
        zx, zy = (np.concatenate(tr38901._field_values(fields, p), axis=1) for p in (x, y))
        products.append(np.mean(zx * zy, axis=0))
        squares.append(np.mean(zx ** 2, axis=0))
    expected = np.exp(-10.0 / np.array([13.0, 10.0, 10.0, 10.0] + [15.0] * 8))
    np.testing.assert_allclose(np.mean(squares, axis=0), 1.0, atol=0.1)
    np.testing.assert_allclose(np.mean(products, axis=0), expected, atol=0.08)
