"""Tests of the numpy COST 2100 model (mimokd.channels.cost2100_model)."""

import dataclasses
import math

import numpy as np
import pytest

from mimokd.channels import cost2100_model as cm
from mimokd.channels.transforms import to_angular_delay

ALL = list(cm.SCENARIOS)
INDOOR, LOS, NLOS = "indoor_hall_5ghz", "semi_urban_300mhz_los", "semi_urban_300mhz_nlos"


def _positions(distances, azimuths=None):
    d = np.asarray(distances, dtype=float)
    a = np.linspace(0.3, 5.9, d.size) if azimuths is None else np.asarray(azimuths, dtype=float)
    return np.stack([d * np.cos(a), d * np.sin(a)], axis=1)


def test_scenarios_are_frozen_and_documented():
    groups = {"external", "vr", "attenuation", "los", "clusters", "spreads", "mpc_gain"}
    for name, sc in cm.SCENARIOS.items():
        assert sc.name == name
        assert set(sc.sources) == groups
        with pytest.raises(dataclasses.FrozenInstanceError):
            sc.n_mpc = 1
        rho = np.asarray(sc.cross_correlation)
        assert rho.shape == (6, 6) and np.allclose(rho, rho.T) and np.all(np.linalg.eigvalsh(rho) > 0)
    assert cm.SCENARIOS[INDOOR].carrier == 5.3e9 and cm.SCENARIOS[LOS].carrier == 300e6
    # The indoor log-normal spreads reproduce the reference's mean and std (3 ns, 0.6 ns).
    sc = cm.SCENARIOS[INDOOR]
    s = sc.delay_spread_db_std * math.log(10) / 10
    assert math.isclose(sc.delay_spread_median * math.exp(s * s / 2), 3e-9, rel_tol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_path_loss_closed_form_and_in_the_gains(name):
    sc = cm.SCENARIOS[name]
    dist = np.array([1.0, 2.0, 5.0, 9.0]) if name == INDOOR else np.array([10.0, 50.0, 120.0, 250.0])
    drops = cm.generate_drops(name, dist.size, 3, ue_positions=_positions(dist))
    expected = 20 * np.log10(dist) + 20 * np.log10(sc.carrier) - 147.56
    np.testing.assert_allclose(drops.path_loss_db, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cm.path_loss_db(name, dist), expected, rtol=0, atol=1e-9)
    # Every cluster's MPC powers sum to PL * A_VR^2 * A_delay * shadowing (unit-power MPC amplitudes).
    p = np.abs(drops.gain) ** 2
    for i in range(len(drops)):
        for c in np.flatnonzero(drops.cluster_kind[i] >= 0):
            power = p[i, drops.cluster[i] == c].sum()
            model = (10 ** (-drops.path_loss_db[i] / 10) * drops.cluster_vr_gain[i, c] ** 2
                     * drops.cluster_attenuation[i, c] * drops.cluster_shadowing[i, c])
            assert math.isclose(power, model, rel_tol=1e-9)


def test_path_loss_distance_is_clamped():
    drops = cm.generate_drops(INDOOR, 1, 0, ue_positions=[[0.0, 0.0]], min_distance=0.1)
    assert math.isclose(drops.path_loss_db[0], cm.path_loss_db(INDOOR, 0.1), abs_tol=1e-9)


@pytest.mark.parametrize("name", ALL)
def test_cluster_delay_attenuation_law(name):
    sc = cm.SCENARIOS[name]
    # The law itself: k_tau per microsecond of excess delay, flat beyond the cut-off tau_B.
    tau0 = 0.2e-6
    att = cm.cluster_delay_attenuation(name, tau0 + np.array([0.0, 0.1e-6, 0.5e-6]), tau0)
    np.testing.assert_allclose(np.log(att), -sc.delay_attenuation * np.array([0.0, 0.1, 0.5]), atol=1e-12)
    beyond = cm.cluster_delay_attenuation(name, sc.delay_cutoff + np.array([1e-7, 1e-6]), tau0)
    np.testing.assert_allclose(beyond, math.exp(-sc.delay_attenuation * 1e6 * (sc.delay_cutoff - tau0)))
    if name != INDOOR:
        db_per_us = {LOS: 12.1, NLOS: 7.2}[name]
        assert math.isclose(10 * math.log10(cm.cluster_delay_attenuation(name, 1.3e-6, 0.3e-6)), -db_per_us)
    # The drops: attenuation of each far cluster from its delay recomputed from the cluster centres.
    drops = cm.generate_drops(name, 40, 11)
    far = drops.cluster_kind >= cm.KIND_FAR_SINGLE
    bs, ue = drops.bs_position[:, None, :], drops.ue_position[:, None, :]
    tau = (np.linalg.norm(drops.cluster_position_bs - bs, axis=-1) + np.linalg.norm(drops.cluster_position_ms - ue,
           axis=-1)) / cm.SPEED_OF_LIGHT + drops.cluster_link_delay
    tau_los = np.linalg.norm(drops.ue_position - drops.bs_position, axis=1)[:, None] / cm.SPEED_OF_LIGHT
    np.testing.assert_allclose(drops.cluster_delay[far], tau[far], rtol=1e-12)
    law = np.exp(-sc.delay_attenuation * 1e6 * (np.minimum(tau, sc.delay_cutoff) - tau_los))
    np.testing.assert_allclose(drops.cluster_attenuation[far], law[far], rtol=1e-9)
    if name != INDOOR:  # outdoors some clusters lie beyond the cut-off, all with the same attenuation per drop
        cut = far & (tau > sc.delay_cutoff)
        assert cut.any()
        floor = np.exp(-sc.delay_attenuation * 1e6 * (sc.delay_cutoff - tau_los))
        np.testing.assert_allclose(drops.cluster_attenuation[cut], np.broadcast_to(floor, tau.shape)[cut])
    # Twin clusters have a link delay of at least the minimum, single and local clusters none.
    twin = drops.cluster_kind == cm.KIND_FAR_TWIN
    assert np.all(drops.cluster_link_delay[twin] >= sc.link_delay_min)
    assert np.all(drops.cluster_link_delay[~twin] == 0)


@pytest.mark.parametrize("name, n", [(INDOOR, 3000), (LOS, 600), (NLOS, 600)])
def test_active_far_clusters_mean_matches_closed_form(name, n):
    sc = cm.SCENARIOS[name]
    drops = cm.generate_drops(name, n, 2024)
    counts = drops.n_active_clusters
    expected = cm.expected_active_far_clusters(name)
    se = counts.std() / math.sqrt(n)
    assert abs(counts.mean() - expected) < 4 * se, (counts.mean(), expected, se)
    assert counts.min() >= 1
    if name != INDOOR:  # no VR groups: VR density x visible area pi r_c^2 (N_VR rounded)
        assert math.isclose(expected, sc.vr_density * math.pi * sc.vr_radius ** 2, rel_tol=1e-4)
    else:  # VR groups make it a little less than density x area (n_c_far >= 1 and N >= 1 make it more)
        dens_area = sc.n_far_clusters_mean * sc.vr_radius ** 2 / (sc.vr_radius - sc.vr_transition) ** 2
        assert 0.9 * dens_area < expected < 1.05 * dens_area
    # Visible far clusters lie within r_c of the UE: VR gains are in (0, 1).
    far = drops.cluster_kind >= cm.KIND_FAR_SINGLE
    assert np.all((drops.cluster_vr_gain[far] > 0) & (drops.cluster_vr_gain[far] < 1))
    assert np.array_equal(far.sum(axis=1), counts)


def test_no_far_cluster_allowed_when_not_required():
    sc = cm.SCENARIOS[INDOOR]
    n = 2000
    drops = cm.generate_drops(sc, n, 5, require_far_cluster=False)
    # P(no active far cluster) from the closed forms: E[N] = E[N | N >= 1] (1 - P(N = 0)).
    p_none = 1 - cm.expected_active_far_clusters(sc, require_far_cluster=False) / cm.expected_active_far_clusters(sc)
    assert 0.002 < p_none < 0.05
    zeros = np.count_nonzero(drops.n_active_clusters == 0)
    assert abs(zeros - n * p_none) < 5 * math.sqrt(n * p_none)
    assert np.all(drops.n_mpc >= 2 * sc.n_mpc)  # the two local clusters are always there


def test_los_power_share_and_visibility():
    sc = cm.SCENARIOS[LOS]
    drops = cm.generate_drops(LOS, 500, 8)
    assert drops.los_visible.all()  # the 400 m square lies inside d_co and the LOS VR
    p = np.abs(drops.gain) ** 2
    share = p[:, 0] / p.sum(axis=1)
    k = share / (1 - share)
    np.testing.assert_allclose(k, drops.los_power_factor, rtol=1e-9)
    k_db = 10 * np.log10(k)
    assert abs(k_db.mean() - sc.los_power_factor_db_mean) < 4 * sc.los_power_factor_db_std / math.sqrt(500)
    assert abs(k_db.std() - sc.los_power_factor_db_std) < 0.25
    assert np.all(drops.kind[:, 0] == cm.KIND_LOS) and np.all(drops.cluster[:, 0] == -1)
    np.testing.assert_allclose(drops.delay[:, 0], np.linalg.norm(drops.ue_position, axis=1) / cm.SPEED_OF_LIGHT)
    # Beyond the cut-off distance d_co, or outside the LOS VR, no LOS.
    far = cm.generate_drops(LOS, 20, 9, ue_positions=_positions(np.full(20, 355.0)))
    assert not far.los_visible.any() and np.all(far.gain[:, 0] == 0)
    near = cm.generate_drops(LOS, 20, 9, ue_positions=_positions(np.full(20, 300.0)))
    assert near.los_visible.all()
    # With the (published) LOS transition function, the LOS amplitude is scaled by A_LOS <= 1.
    ramp = cm.generate_drops(LOS, 20, 9, ue_positions=_positions(np.full(20, 300.0)), los_transition=True)
    y = np.hypot(*(ramp.ue_position[:, :2] - ramp.los_vr_center).T) - (sc.los_vr_radius - sc.los_vr_transition)
    a_los = 0.5 - np.arctan(2 * math.sqrt(2) * y / math.sqrt(sc.wavelength * sc.los_vr_transition)) / np.pi
    np.testing.assert_allclose(np.abs(ramp.gain[:, 0]), a_los * np.abs(near.gain[:, 0]), rtol=1e-9)
    for name in (INDOOR, NLOS):  # r_l = 0 indoors, d_co = 0 in NLOS
        other = cm.generate_drops(name, 50, 4)
        assert not other.los_visible.any() and np.all(other.gain[:, 0] == 0)


@pytest.mark.parametrize("sign, spacing, axis, elevation", [(-1, 0.5, "x", True), (1, 0.5, "x", True),
                                                          (-1, 0.37, "y", True), (-1, 0.5, "x", False)])
def test_frequency_response_of_single_mpcs_is_closed_form(sign, spacing, axis, elevation):
    drops = cm.generate_drops(LOS, 3, 12)
    n_t, n_f, bw, fc = 8, 64, 20e6, 300e6
    for i, j in [(0, 0), (1, 5), (2, 40)]:  # the LOS, a local-cluster MPC, a far-cluster MPC
        gain = np.zeros_like(drops.gain)
        gain[i, j] = drops.gain[i, j]
        one = dataclasses.replace(drops, gain=gain)
        H = cm.frequency_response(one, n_antennas=n_t, n_subcarriers=n_f, bandwidth=bw, carrier=fc, spacing=spacing,
                                  steering_sign=sign, array_axis=axis, include_elevation=elevation)
        f = fc + (np.arange(n_f) - n_f // 2) * bw / n_f
        np.testing.assert_allclose(f, cm.subcarrier_frequencies(n_f, bw, fc))
        u = (np.cos if axis == "x" else np.sin)(drops.aod[i, j]) * (np.cos(drops.eod[i, j]) if elevation else 1.0)
        steer = np.exp(sign * 2j * np.pi * spacing * np.arange(n_t) * u)
        expected = drops.gain[i, j] * steer[:, None] * np.exp(-2j * np.pi * f[None, :] * drops.delay[i, j])
        assert H.dtype == np.complex64 and H.shape == (3, n_t, n_f)
        np.testing.assert_allclose(H[i], expected, rtol=0, atol=2e-6 * abs(drops.gain[i, j]))
        assert np.all(H[np.arange(3) != i] == 0)
    # Linear in the MPCs: the full response is the sum over MPCs (checked on drop 0).
    full = cm.frequency_response(drops.select([0]), n_antennas=n_t, n_subcarriers=n_f)
    v = np.flatnonzero(drops.valid[0])
    f = cm.subcarrier_frequencies(n_f, cm.SCENARIOS[LOS].default_bandwidth, cm.SCENARIOS[LOS].carrier)
    steer = np.exp(-2j * np.pi * 0.5 * np.arange(n_t)[:, None] * np.cos(drops.eod[0, v]) * np.cos(drops.aod[0, v]))
    direct = (steer * drops.gain[0, v]) @ np.exp(-2j * np.pi * drops.delay[0, v][:, None] * f[None, :])
    np.testing.assert_allclose(full[0], direct, rtol=0, atol=1e-5 * np.abs(direct).max())


@pytest.mark.parametrize("name, sign, axis, elevation", [(INDOOR, -1, "x", True), (NLOS, -1, "x", True),
                                                         (LOS, 1, "y", False)])
def test_angular_delay_response_is_the_truncated_transform_of_the_response(name, sign, axis, elevation):
    """The closed form against an explicit float64 sum over MPCs, antennas and subcarriers, then the
    orthonormal DFT over antennas and IDFT over subcarriers, and against to_angular_delay(frequency_response)."""
    drops = cm.generate_drops(name, 3, 21)
    n_t, n_f, taps = 16, 256, 24
    sc = cm.SCENARIOS[name]
    settings = dict(n_antennas=n_t, n_subcarriers=n_f, steering_sign=sign, array_axis=axis, include_elevation=elevation)
    got = cm.angular_delay_response(drops, taps, chunk=2, **settings)  # chunk 2: drops of a chunk padded alike
    f = cm.subcarrier_frequencies(n_f, sc.default_bandwidth, sc.carrier)
    for i in range(3):
        v = np.flatnonzero(drops.valid[i])
        u = (np.cos if axis == "x" else np.sin)(drops.aod[i, v]) * (np.cos(drops.eod[i, v]) if elevation else 1.0)
        steer = np.exp(sign * 2j * np.pi * 0.5 * np.arange(n_t)[:, None] * u)
        h = (steer * drops.gain[i, v]) @ np.exp(-2j * np.pi * drops.delay[i, v][:, None] * f[None, :])
        exact = np.fft.ifft(np.fft.fft(h, axis=0, norm="ortho"), axis=1, norm="ortho")[:, :taps]
        assert got.dtype == np.complex64 and got.shape == (3, n_t, taps)
        np.testing.assert_allclose(got[i], exact, rtol=0, atol=1e-6 * np.abs(exact).max())
    old = to_angular_delay(cm.frequency_response(drops, **settings), taps)
    np.testing.assert_allclose(got, old, rtol=0, atol=1e-6 * np.abs(old).max())
    with pytest.raises(ValueError, match=r"`n_delay` must be an int in \[1, n_subcarriers=256\]"):
        cm.angular_delay_response(drops, 257, **settings)


@pytest.mark.parametrize("name", ALL)
def test_shard_stability(name):
    whole = cm.generate_drops(name, 30, 77)
    shard = cm.generate_drops(name, 10, 77, start=10)
    assert np.array_equal(shard.index, np.arange(10, 20))
    for k in range(10):
        a, b = shard.drop(k), whole.drop(10 + k)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # Shards put together give the same dataset (and the same frequency responses) as one run.
    parts = cm.Cost2100Drops.concatenate([cm.generate_drops(name, 12, 77), cm.generate_drops(name, 18, 77, start=12)])
    h_parts = cm.frequency_response(parts, n_antennas=8, n_subcarriers=64)
    h_whole = cm.frequency_response(whole, n_antennas=8, n_subcarriers=64)
    np.testing.assert_array_equal(h_parts, h_whole)
    # Another seed gives other drops; a Generator seed is drawn once, so the same state gives the same drops.
    assert not np.array_equal(cm.generate_drops(name, 2, 78).ue_position, whole.ue_position[:2])
    g1 = cm.generate_drops(name, 3, np.random.default_rng(5))
    g2 = cm.generate_drops(name, 3, np.random.default_rng(5))
    np.testing.assert_array_equal(g1.gain, g2.gain)


def test_geometry_and_fields():
    drops = cm.generate_drops(INDOOR, 200, 1)
    assert np.all(np.abs(drops.ue_position[:, :2]) <= 10.0) and np.all(drops.ue_position[:, 2] == 0)
    assert np.all(drops.bs_position == 0)
    v = drops.valid
    assert np.all(drops.kind[v] >= 1)  # no indoor LOS
    assert set(np.unique(drops.kind[v])) <= {cm.KIND_LOCAL, cm.KIND_FAR_TWIN}  # k_sel = 0: all twin
    assert np.array_equal(drops.n_mpc, 3 * (2 + drops.n_active_clusters))
    assert np.all(drops.delay[v] > 0)
    for name in ("aod", "aoa"):
        assert np.all(np.abs(getattr(drops, name)[v]) <= np.pi)
    for name in ("eod", "eoa"):
        assert np.all(np.abs(getattr(drops, name)[v]) <= np.pi / 2)
    # MS local cluster MPCs leave the BS towards the UE (within a few degrees at >= 2 m).
    far_enough = np.linalg.norm(drops.ue_position, axis=1) > 2.0
    ue_az = np.arctan2(drops.ue_position[:, 1], drops.ue_position[:, 0])
    dev = np.angle(np.exp(1j * (drops.aod[:, 1:4] - ue_az[:, None])))
    assert np.all(np.abs(dev[far_enough]) < np.deg2rad(20))
    small = cm.generate_drops(INDOOR, 50, 1, square=4.0, bs_position=(1.0, 2.0, 3.0))
    assert np.all(np.abs(small.ue_position[:, :2] - [1.0, 2.0]) <= 2.0)
    assert np.all(small.bs_position == [1.0, 2.0, 3.0])


def test_bad_arguments_raise_value_error_naming_them():
    drops = cm.generate_drops(INDOOR, 2, 0)
    cases = [
        (lambda: cm.generate_drops("nope", 2, 0), "scenario"),
        (lambda: cm.generate_drops(INDOOR, -1, 0), "n"),
        (lambda: cm.generate_drops(INDOOR, 2.5, 0), "n"),
        (lambda: cm.generate_drops(INDOOR, 2, 0, start=-3), "start"),
        (lambda: cm.generate_drops(INDOOR, 2, -1), "rng"),
        (lambda: cm.generate_drops(INDOOR, 2, 0, square=0), "square"),
        (lambda: cm.generate_drops(INDOOR, 2, 0, bs_position=(0, 0)), "bs_position"),
        (lambda: cm.generate_drops(INDOOR, 2, 0, ue_positions=np.zeros((3, 2))), "ue_positions"),
        (lambda: cm.generate_drops(INDOOR, 2, 0, min_distance=-1.0), "min_distance"),
        (lambda: cm.frequency_response(drops, n_antennas=0), "n_antennas"),
        (lambda: cm.frequency_response(drops, n_subcarriers=0), "n_subcarriers"),
        (lambda: cm.frequency_response(drops, bandwidth=-20e6), "bandwidth"),
        (lambda: cm.frequency_response(drops, carrier=0.0), "carrier"),
        (lambda: cm.frequency_response(drops, spacing=0), "spacing"),
        (lambda: cm.frequency_response(drops, steering_sign=2), "steering_sign"),
        (lambda: cm.frequency_response(drops, array_axis="z"), "array_axis"),
        (lambda: cm.frequency_response(np.zeros(3)), "drops"),
        (lambda: cm.Cost2100Drops.concatenate([]), "parts"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=f"`?{name}`?"):
            call()
    with pytest.raises(TypeError):
        cm.generate_drops(INDOOR, 2, "seed")
    assert cm.frequency_response(drops.select(slice(0, 0))).shape == (0, 32, 1024)
