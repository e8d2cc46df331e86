"""Tests of the built-in generator: closed form against the explicit frequency response, seeds, ranges."""

import dataclasses

import numpy as np
import pytest

from mimokd.channels import builtin
from mimokd.channels.transforms import complex_to_csi, peak_scale, to_angular_delay


def _explicit(paths, config):
    """Eq. (1)-(2) on all 1024 subcarriers, then eq. (4) by FFT: the slow, independent route."""
    return to_angular_delay(builtin.paths_to_frequency(paths, config), config.num_delay_taps)


@pytest.mark.parametrize("scenario", ["indoor", "outdoor"])
def test_closed_form_matches_explicit_frequency_response(scenario):
    config = builtin.SCENARIOS[scenario]
    paths = builtin.draw_paths(config, np.random.default_rng(7), 4)
    closed = builtin.paths_to_angular_delay(paths, config)
    explicit = _explicit(paths, config)
    assert closed.dtype == np.complex64 and closed.shape == (4, 32, 32)
    np.testing.assert_allclose(closed, explicit, rtol=0, atol=2e-4 * np.abs(explicit).max())


def test_paths_to_frequency_is_eq_1_and_2():
    config = builtin.INDOOR
    paths = builtin.Paths(
        gains=np.array([[0.6 + 0.8j, -0.5j]]),
        angles=np.array([[0.3, -1.1]]),
        delays=np.array([[30e-9, 110e-9]]),
    )
    h = builtin.paths_to_frequency(paths, config)
    t, n = 5, 77
    df = config.bandwidth_hz / config.num_subcarriers
    expected = sum(
        paths.gains[0, p] * np.exp(-2j * np.pi * n * df * paths.delays[0, p])
        * np.exp(2j * np.pi * t * 0.5 * np.sin(paths.angles[0, p]))
        for p in range(2)
    )
    assert h[0, t, n] == pytest.approx(expected)


@pytest.mark.parametrize(
    "spatial, taps",
    [
        (3.0, 5.0),  # on the angular grid, integer delay: one entry
        (-16.0, 0.0),  # theta = -90 degrees exactly: the kernel's other removable singularity
        (0.0, 31.0),
        (3.25, 2.5),  # between bins and taps
        (3.0 + 1e-7, 7.0 - 1e-7),  # next to the singularity
    ],
)
def test_closed_form_at_and_near_the_grid(spatial, taps):
    config = builtin.INDOOR
    paths = builtin.Paths(
        gains=np.array([[1.0 + 0.0j, 0.5j]]),
        angles=np.array([[np.arcsin(spatial / 16.0), 0.4]]),
        delays=np.array([[taps / config.bandwidth_hz, 12.3e-8]]),
    )
    closed = builtin.paths_to_angular_delay(paths, config)
    explicit = _explicit(paths, config)
    np.testing.assert_allclose(closed, explicit, rtol=0, atol=2e-4 * np.abs(explicit).max())


def test_single_on_grid_path_is_one_entry():
    config = builtin.INDOOR
    paths = builtin.Paths(
        gains=np.array([[1.0 + 0.0j]]),
        angles=np.array([[np.arcsin(2 * 3 / 32)]]),
        delays=np.array([[5 / config.bandwidth_hz]]),
    )
    h = np.abs(builtin.paths_to_angular_delay(paths, config)[0])
    assert h[3, 5] == pytest.approx(np.sqrt(32 * 1024), rel=1e-5)
    h[3, 5] = 0
    assert h.max() < 1e-3


def test_generate_csi_shape_dtype_and_range():
    csi = builtin.generate_csi(300, "indoor", seed=0, progress=False)
    assert csi.shape == (300, 2, 32, 32) and csi.dtype == np.float32
    assert csi.min() >= 0.0 and csi.max() <= 1.0
    # Per-sample peak scaling: every sample reaches 0 or 1.
    np.testing.assert_allclose(np.abs(csi - 0.5).reshape(300, -1).max(axis=1), 0.5, atol=1e-6)


def test_generate_csi_is_the_scaled_angular_delay_matrix():
    h = builtin.generate_angular_delay(50, "outdoor", seed=3)
    np.testing.assert_array_equal(builtin.generate_csi(50, "outdoor", seed=3, progress=False),
                                  complex_to_csi(h, peak_scale(h)))


def test_same_seed_same_data_other_seed_other_data():
    a = builtin.generate_csi(64, "indoor", seed=11, progress=False)
    b = builtin.generate_csi(64, "indoor", seed=11, progress=False)
    c = builtin.generate_csi(64, "indoor", seed=12, progress=False)
    d = builtin.generate_csi(64, "outdoor", seed=11, progress=False)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a, d)


def test_samples_do_not_depend_on_how_many_are_asked_for():
    # The generator works in blocks of `_BLOCK` samples; these sizes cross block boundaries.
    block = builtin._BLOCK
    whole = builtin.generate_csi(2 * block + 300, "outdoor", seed=5, progress=False)
    for count in (1, 7, block, block + 1, 2 * block + 1):
        np.testing.assert_array_equal(builtin.generate_csi(count, "outdoor", seed=5, progress=False),
                                      whole[:count])
    # and blocks are not copies of each other
    assert not np.allclose(whole[:10], whole[block:block + 10])


def _tap_energy(h):
    energy = np.sum(np.abs(h) ** 2, axis=1)  # [batch, delay]
    return energy / energy.sum(axis=1, keepdims=True)


def test_indoor_energy_is_in_the_first_taps_outdoor_spreads():
    indoor = _tap_energy(builtin.generate_angular_delay(400, "indoor", seed=1))
    outdoor = _tap_energy(builtin.generate_angular_delay(400, "outdoor", seed=1))
    assert indoor[:, :4].sum(axis=1).mean() > 0.9
    assert indoor[:, 8:].sum(axis=1).mean() < 0.02
    assert outdoor[:, 8:].sum(axis=1).mean() > 0.1
    assert outdoor[:, :4].sum(axis=1).mean() < indoor[:, :4].sum(axis=1).mean()


def test_angular_energy_is_sparse():
    h = builtin.generate_angular_delay(200, "outdoor", seed=2)
    energy = np.sort(np.sum(np.abs(h) ** 2, axis=2), axis=1)[:, ::-1]  # [batch, angle], descending
    # 1-3 narrow clusters: the 8 strongest of 32 angular bins hold most of the energy.
    assert (energy[:, :8].sum(axis=1) / energy.sum(axis=1)).mean() > 0.8


def test_draw_paths_respects_the_config():
    config = builtin.INDOOR
    paths = builtin.draw_paths(config, np.random.default_rng(0), 500)
    assert paths.gains.shape == (500, config.num_paths)
    # Rayleigh subpaths around an exponential power-delay profile normalized to expected power 1.
    assert np.mean(np.sum(np.abs(paths.gains) ** 2, axis=1)) == pytest.approx(1.0, rel=0.05)
    active = np.abs(paths.gains).reshape(500, config.max_clusters, -1).max(axis=2) > 0
    counts = active.sum(axis=1)
    assert counts.min() == config.min_clusters and counts.max() == config.max_clusters
    assert paths.delays.min() >= 0.0
    assert np.all(np.abs(paths.angles) <= np.pi / 2)


def test_custom_scenario_config():
    narrow = dataclasses.replace(builtin.INDOOR, name="narrow", min_clusters=1, max_clusters=1,
                                 subpaths_per_cluster=1, first_arrival_max_s=0.0,
                                 intra_cluster_delay_spread_s=0.0)
    h = builtin.generate_angular_delay(20, narrow, seed=0)
    # one path at delay 0: all its energy in tap 0 of the delay axis
    assert _tap_energy(h)[:, 0].min() > 0.999


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"Unknown scenario.*'indoor'.*Received: scenario='urban'"):
        builtin.generate_csi(10, "urban", progress=False)
    with pytest.raises(ValueError, match="num_samples=0"):
        builtin.generate_csi(0, progress=False)
    with pytest.raises(ValueError, match="seed=-1"):
        builtin.generate_csi(10, seed=-1, progress=False)
    with pytest.raises(ValueError, match="min_clusters <= max_clusters"):
        dataclasses.replace(builtin.INDOOR, min_clusters=4, max_clusters=2)
    with pytest.raises(ValueError, match="cluster_angle_range_deg"):
        dataclasses.replace(builtin.INDOOR, cluster_angle_range_deg=(-100.0, 0.0))
