"""Tests of the COST 2100 per-drop statistics and of the Octave reference fixture."""

import dataclasses
import json

import numpy as np
import pytest
import scipy.io

from mimokd.channels import cost2100_stats as cs

B = 20e6           # bandwidth of the defaults
FC = 5.3e9
NT, NSUB, ND = 32, 1024, 32


def one_path(delay, aod, amp=1.0 + 0j, kind=cs.KIND_FAR_TWIN):
    return cs.Drop(delay=[delay], aod=[aod], amplitude=[amp], kind=[kind], cluster=[1])


# --------------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------------
def test_single_mpc_has_zero_spreads():
    s = cs.drop_statistics(one_path(123e-9, 0.7, 0.3 - 0.2j), FC)
    assert s["rms_delay_spread"] == 0.0
    assert s["azimuth_spread"] == pytest.approx(0.0, abs=1e-7)
    assert s["los_power_share"] == 0.0
    assert s["n_mpc"] == 1 and s["n_active_clusters"] == 1


def test_los_share_as_constructed():
    d = cs.Drop(delay=[50e-9, 80e-9], aod=[0.1, 2.0], amplitude=[1.0, np.sqrt(3) * 1j],
                kind=[cs.KIND_LOS, cs.KIND_LOCAL_MS], cluster=[-1, -3])
    s = cs.drop_statistics(d, FC)
    assert s["los_power_share"] == pytest.approx(0.25)
    assert s["n_mpc"] == 1                   # the LOS is not counted
    assert s["n_active_clusters"] == 0       # local clusters are not far clusters
    assert cs.drop_extras(d)["local_ms_power_share"] == pytest.approx(0.75)


def test_invisible_los_is_ignored():
    d = cs.Drop(delay=[50e-9, 80e-9], aod=[0.1, 2.0], amplitude=[0.0, 1.0],
                kind=[cs.KIND_LOS, cs.KIND_FAR_SINGLE], cluster=[-1, 4])
    s = cs.drop_statistics(d, FC)
    assert s["rms_delay_spread"] == 0.0 and s["los_power_share"] == 0.0
    assert s["n_mpc"] == 1 and s["n_active_clusters"] == 1


def test_two_equal_mpcs_delay_spread_is_half_the_difference():
    d = cs.Drop(delay=[100e-9, 340e-9], aod=[0.3, 0.3], amplitude=[2.0, -2j])
    assert cs.drop_statistics(d, FC)["rms_delay_spread"] == pytest.approx(120e-9, rel=1e-9)


def test_rms_delay_spread_weighted():
    # powers 1 and 3 at 0 and 4 ns: mean 3, variance (1*9 + 3*1) / 4 = 3
    assert cs.rms_delay_spread([0.0, 4e-9], [1.0, 3.0]) == pytest.approx(np.sqrt(3) * 1e-9)


@pytest.mark.parametrize("center", [0.0, np.pi, -3.0])
def test_two_equal_mpcs_azimuth_spread_circular(center):
    delta = 0.2
    d = cs.Drop(delay=[1e-7, 2e-7], aod=[center - delta, center + delta], amplitude=[1.0, 1.0])
    expected = np.sqrt(-2 * np.log(np.cos(delta)))
    assert cs.drop_statistics(d, FC)["azimuth_spread"] == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(delta, rel=0.01)   # ~ linear RMS for small spreads


@pytest.mark.parametrize("tap,angle_bin", [(0, 0), (3, 4), (17, 28), (31, 16)])
def test_on_grid_path_concentrates_in_one_entry(tap, angle_bin):
    c = -2.0 * angle_bin / NT                     # exp(-j pi n c) -> fft bin -16 c mod 32
    c = (c + 1) % 2 - 1                           # into [-1, 1)
    aod = np.arccos(c)
    s = cs.drop_statistics(one_path(tap / B, aod, 0.5 + 0.5j), FC)
    assert s["n90"] == 1
    assert s["energy_first_taps"] == pytest.approx(1.0, abs=1e-9)
    assert np.argmax(s["delay_profile"]) == tap and s["delay_profile"][tap] == pytest.approx(1.0, abs=1e-9)
    assert np.argmax(s["angle_profile"]) == angle_bin
    assert s["angle_profile"][angle_bin] == pytest.approx(1.0, abs=1e-9)
    assert s["delay_profile"].shape == (ND,) and s["angle_profile"].shape == (NT,)


def test_off_grid_path_leaks_and_late_path_is_outside_the_first_taps():
    s = cs.drop_statistics(one_path(2.5 / B, 0.4), FC)
    assert s["n90"] > 1 and s["energy_first_taps"] < 1.0
    late = cs.drop_statistics(one_path(100 / B, 0.4), FC)
    assert late["energy_first_taps"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("absolute_phase", [True, False])
@pytest.mark.parametrize("sign,func", [(-1, "cos"), (1, "sin")])
def test_frequency_response_of_one_mpc_is_closed_form(absolute_phase, sign, func):
    tau, phi, a = 437.3e-9, 1.1, 0.8 * np.exp(0.3j)
    h = cs.frequency_response(one_path(tau, phi, a), FC, steering_sign=sign, angle_function=func,
                              absolute_phase=absolute_phase)
    n = np.arange(NT)[:, None]
    k = np.arange(NSUB)[None, :]
    f = (FC - B / 2 if absolute_phase else 0.0) + k * B / NSUB
    u = np.cos(phi) if func == "cos" else np.sin(phi)
    expected = a * np.exp(sign * 1j * np.pi * n * u) * np.exp(-2j * np.pi * f * tau)
    assert h.shape == (NT, NSUB)
    np.testing.assert_allclose(h, expected, atol=1e-9)


def test_angular_delay_is_unitary():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((NT, NSUB)) + 1j * rng.standard_normal((NT, NSUB))
    assert np.sum(np.abs(cs.angular_delay(h)) ** 2) == pytest.approx(np.sum(np.abs(h) ** 2))


def test_n_entries_for_energy():
    assert cs.n_entries_for_energy(np.sqrt([1.0, 4.0, 2.0, 3.0])) == 3   # 4 + 3 + 2 = 90 %
    assert cs.n_entries_for_energy(np.zeros((2, 2))) == 0
    assert cs.n_entries_for_energy(np.ones(10)) == 9


def test_bad_arguments():
    with pytest.raises(ValueError, match="same length"):
        cs.Drop(delay=[1e-7, 2e-7], aod=[0.0], amplitude=[1.0, 1.0])
    with pytest.raises(ValueError, match="Unknown settings"):
        cs.drop_statistics(one_path(1e-7, 0.0), FC, bandwith=1e6)
    with pytest.raises(ValueError, match="steering_sign"):
        cs.steering_matrix([0.0], steering_sign=2)


# --------------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------------
def _fake_stats(rng, n, shift=0.0):
    prof = rng.dirichlet(np.ones(ND), size=n)
    if shift:
        prof[:, 0] += shift
        prof /= prof.sum(axis=1, keepdims=True)
    return {
        "n_active_clusters": rng.poisson(5 + 10 * shift, n).astype(float),
        "n_mpc": rng.poisson(30, n).astype(float),
        "rms_delay_spread": rng.lognormal(np.log(30e-9) + 3 * shift, 0.3, n),
        "azimuth_spread": rng.uniform(0, 1, n),
        "los_power_share": np.zeros(n),
        "energy_first_taps": rng.uniform(0.9, 1.0, n),
        "n90": rng.integers(1, 60, n).astype(float),
        "delay_profile": prof,
        "angle_profile": rng.dirichlet(np.ones(NT), size=n),
    }


def test_compare_identical_samples():
    a = _fake_stats(np.random.default_rng(1), 200)
    for method in ("ks", "ad"):
        r = cs.compare(a, a, method=method)
        assert r["passed"] and not r["failed"]
        if method == "ks":
            assert all(p == pytest.approx(1.0) for p in r["p_values"].values())
    assert r["profile_max_abs_diff"]["delay_profile"] == 0.0
    assert r["threshold"] == pytest.approx(0.01 / 9)


def test_compare_same_distribution_passes_and_different_fails():
    a = _fake_stats(np.random.default_rng(2), 300)
    b = _fake_stats(np.random.default_rng(3), 300)
    assert cs.compare(a, b)["passed"]
    c = _fake_stats(np.random.default_rng(4), 300, shift=0.5)
    r = cs.compare(a, c)
    assert not r["passed"]
    assert r["p_values"]["rms_delay_spread"] < 1e-10
    assert r["p_values"]["n_active_clusters"] < 1e-10
    assert r["p_values"]["delay_profile"] < 1e-10
    assert r["p_values"]["azimuth_spread"] > 1e-3      # unchanged statistic
    assert set(r["failed"]) >= {"rms_delay_spread", "n_active_clusters", "delay_profile"}


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------
def test_load_reference_drops_reads_the_driver_layout(tmp_path):
    # two drops in the flat layout of generate_reference.m (written here with scipy)
    rows = {"mpc_drop": [1, 1, 1, 2, 2], "mpc_delay": [1e-7, 2e-7, 5e-8, 3e-7, 1e-7],
            "mpc_aod": [0.1, 0.2, 0.3, 0.4, 0.5], "mpc_eod": [0.0] * 5, "mpc_aoa": [0.0] * 5,
            "mpc_eoa": [0.0] * 5, "mpc_amp_re": [1.0, 0.5, 0.0, 1.0, 2.0],
            "mpc_amp_im": [0.0, 0.5, 0.0, 1.0, 0.0], "mpc_cluster": [3, -3, -1, 7, -1],
            "mpc_kind": [2, 4, 0, 1, 0]}
    m = {k: np.array(v, float)[:, None] for k, v in rows.items()}
    m.update(n_active=np.array([[1.0], [1.0]]), ms_pos=np.array([[1.0, 2, 0], [3, 4, 0]]),
             bs_pos=np.zeros((2, 3)), seconds=np.array([[0.5], [0.7]]), n_retries=np.zeros((2, 1)),
             los_power_factor=np.array([[0.1], [0.2]]), n_far_total=np.array([[100.0], [90.0]]),
             n_twin_active=np.array([[1.0], [0.0]]), label_mismatch=np.zeros((2, 1)))
    path = tmp_path / "drops.mat"
    scipy.io.savemat(path, m)
    drops = cs.load_reference_drops(path)
    assert len(drops) == 2
    assert drops[0].amplitude.tolist() == [1.0, 0.5 + 0.5j, 0.0]
    assert drops[1].kind.tolist() == [1, 0] and drops[1].n_active == 1
    assert drops[1].info["ms_pos"].tolist() == [3.0, 4.0, 0.0] and drops[1].info["seconds"] == 0.7
    s = cs.statistics(drops, FC)
    assert s["los_power_share"][0] == 0.0
    assert s["los_power_share"][1] == pytest.approx(4.0 / 6.0)
    assert s["delay_profile"].shape == (2, ND)


def test_fixture_loads_with_documented_keys():
    stats, meta = cs.load_reference_stats()
    assert meta["settings"] == json.loads(json.dumps(cs.DEFAULT_SETTINGS))
    assert meta["reference_commit"] and meta["octave_version"]
    assert set(stats) == set(cs.REFERENCE_SCENARIOS) == set(meta["scenarios"])
    for scen, s in stats.items():
        m = meta["scenarios"][scen]
        n = m["drops"]
        assert n >= 20 and m["seconds_per_drop_mean"] > 0
        assert m["carrier_hz"] == cs.REFERENCE_SCENARIOS[scen]
        for k in cs.SCALAR_STATS + cs.EXTRA_STATS:
            assert s[k].shape == (n,), (scen, k)
            assert np.all(np.isfinite(s[k]))
        assert s["delay_profile"].shape == (n, ND) and s["angle_profile"].shape == (n, NT)
        np.testing.assert_allclose(s["delay_profile"].sum(axis=1), 1.0, atol=1e-4)
        assert np.all(s["n_active_clusters"] >= 1)          # the reference rejects drops without
        assert np.all((s["los_power_share"] >= 0) & (s["los_power_share"] < 1))
        assert np.all((s["energy_first_taps"] > 0) & (s["energy_first_taps"] <= 1))
    # facts of the reference's parameter tables, visible in the statistics
    assert np.all(stats["IndoorHall_5GHz"]["los_power_share"] == 0)      # LOS VR radius 0
    assert np.all(stats["SemiUrban_300MHz_NLOS"]["los_power_share"] == 0)
    assert np.all(stats["SemiUrban_300MHz_LOS"]["los_power_share"] > 0)
    # the fixture compared with itself passes
    s = stats["IndoorHall_5GHz"]
    assert cs.compare(s, s)["passed"]


def test_delay_phases_match_the_direct_exponential():
    rng = np.random.default_rng(5)
    tau = rng.uniform(0, 3e-6, 40)
    for n in (1, 7, 1000, NSUB):
        f = FC - B / 2 + np.arange(n) * B / n
        direct = np.exp(-2j * np.pi * np.outer(tau, f))
        np.testing.assert_allclose(cs.delay_phases(tau, f[0], B / n, n), direct, atol=1e-6)
        assert cs.delay_phases(tau, f[0], B / n, n).shape == (tau.size, n)


# --------------------------------------------------------------------------------------------------
# Angular-delay power maps
# --------------------------------------------------------------------------------------------------
def test_power_map_of_an_on_grid_path_is_one_entry():
    angle_bin, tap = 4, 3
    aod = np.arccos(-2.0 * angle_bin / NT)
    m = cs.drop_power_map(one_path(tap / B, aod, 3.0 - 1j), FC)
    assert m.shape == (NT, ND)
    assert m[angle_bin, tap] == pytest.approx(1.0, abs=1e-9)
    assert m.sum() == pytest.approx(1.0)
    assert np.all(cs.drop_power_map(one_path(tap / B, aod, 0.0), FC) == 0)   # no energy: zeros, not NaN


def test_mean_power_map_marginals_are_the_mean_profiles():
    rng = np.random.default_rng(6)
    drops = [cs.Drop(delay=rng.uniform(0, 1e-6, 5), aod=rng.uniform(-np.pi, np.pi, 5),
                     amplitude=rng.standard_normal(5) + 1j * rng.standard_normal(5)) for _ in range(4)]
    m = cs.mean_power_map(drops, FC)
    s = cs.statistics(drops, FC)
    np.testing.assert_allclose(m.sum(axis=0), s["delay_profile"].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(m.sum(axis=1), s["angle_profile"].mean(axis=0), atol=1e-12)
    # each drop weighs the same: scaling one drop's amplitudes changes nothing
    drops[0] = cs.Drop(delay=drops[0].delay, aod=drops[0].aod, amplitude=1e-3 * drops[0].amplitude)
    np.testing.assert_allclose(cs.mean_power_map(drops, FC), m, atol=1e-12)
    assert cs.power_maps(drops, FC, n_delay=8).shape == (4, NT, 8)
    with pytest.raises(ValueError, match="empty"):
        cs.mean_power_map([], FC)


def test_compare_maps_noise_ratio():
    rng = np.random.default_rng(7)
    a = rng.dirichlet(np.ones(16), size=(400, 4)).reshape(400, 4, 16)
    b = rng.dirichlet(np.ones(16), size=(400, 4)).reshape(400, 4, 16)
    ref = {"mean": b.mean(axis=0), "variance": b.var(axis=0, ddof=1), "drops": 400}
    same = cs.compare_maps(b, ref)
    assert same["noise_ratio"] == 0.0 and same["relative_error"] == 0.0
    assert same["correlation"] == pytest.approx(1.0)
    r = cs.compare_maps(a, ref)                 # same distribution: differences are noise
    assert 0.7 < r["noise_ratio"] < 1.3
    shifted = a.copy()
    shifted[:, 0, 0] += 0.1                     # a 0.1 bias in one entry of 64
    assert cs.compare_maps(shifted, ref)["noise_ratio"] > 5
    with pytest.raises(ValueError, match="same shape|shape S"):
        cs.compare_maps(a[:, :2], ref)


# --------------------------------------------------------------------------------------------------
# The port's drops
# --------------------------------------------------------------------------------------------------
def _hand_built_indoor():
    """One indoor port drop with one MPC of every kind and a padding entry (UE local = slot 0, BS local = 1)."""
    from mimokd.channels import cost2100_model as cm

    base = cm.generate_drops("indoor_hall_5ghz", 1, 0)
    return dataclasses.replace(
        base,
        delay=np.array([[40e-9, 41e-9, 42e-9, 90e-9, 120e-9, 0.0]]),
        aod=np.array([[0.5, 0.6, -2.0, 1.0, 1.5, 0.0]]),
        eod=np.full((1, 6), 0.3), aoa=np.zeros((1, 6)), eoa=np.zeros((1, 6)),
        gain=np.array([[0.0, 1.0 + 1j, 0.5, 0.2j, -0.1, 0.0]]),
        cluster=np.array([[-1, 0, 1, 2, 3, -2]], np.int32),
        kind=np.array([[cm.KIND_LOS, cm.KIND_LOCAL, cm.KIND_LOCAL, cm.KIND_FAR_SINGLE, cm.KIND_FAR_TWIN,
                        cm.KIND_PAD]], np.int8),
        n_active_clusters=np.array([2]),
    )


def test_drops_from_model_hand_built():
    (d,) = cs.drops_from_model(_hand_built_indoor())
    assert d.kind.tolist() == [cs.KIND_LOS, cs.KIND_LOCAL_MS, cs.KIND_LOCAL_BS, cs.KIND_FAR_SINGLE, cs.KIND_FAR_TWIN]
    assert d.cluster.tolist() == [-1, -3, -2, 1, 2]
    np.testing.assert_array_equal(d.delay, [40e-9, 41e-9, 42e-9, 90e-9, 120e-9])       # s, unchanged
    np.testing.assert_array_equal(d.aod, [0.5, 0.6, -2.0, 1.0, 1.5])                    # rad, unchanged
    np.testing.assert_array_equal(d.amplitude, [0.0, 1.0 + 1j, 0.5, 0.2j, -0.1])
    assert d.n_active == 2
    s = cs.drop_statistics(d, FC)
    assert s["n_mpc"] == 4                      # the invisible LOS row is kept but not counted
    assert s["los_power_share"] == 0.0
    e = cs.drop_extras(d)
    assert e["local_ms_power_share"] == pytest.approx(2.0 / 2.3)
    assert e["local_bs_power_share"] == pytest.approx(0.25 / 2.3)


def test_drops_from_model_generated_indoor_sides_and_counts():
    from mimokd.channels import cost2100_model as cm

    port = cm.generate_drops("indoor_hall_5ghz", 20, 3)
    drops = cs.drops_from_model(port)
    assert len(drops) == 20
    n_mpc = cm.SCENARIOS["indoor_hall_5ghz"].n_mpc
    for i, d in enumerate(drops):
        ms, bs = d.kind == cs.KIND_LOCAL_MS, d.kind == cs.KIND_LOCAL_BS
        assert ms.sum() == bs.sum() == n_mpc and np.sum(d.kind == cs.KIND_LOS) == 1
        assert np.all(d.cluster[ms] == -3) and np.all(d.cluster[bs] == -2)
        assert np.sum(d.kind == cs.KIND_FAR_TWIN) == n_mpc * d.n_active             # indoor: all twin
        assert sorted(set(d.cluster[d.kind == cs.KIND_FAR_TWIN])) == list(range(1, d.n_active + 1))
        # the side is physical: UE-local MPCs leave the BS towards the UE (the LOS direction), the
        # BS-local ones lie around the BS and arrive with about the LOS delay
        ue, los_aod = port.ue_position[i], d.aod[d.kind == cs.KIND_LOS][0]
        if np.hypot(*ue[:2]) > 3.0:
            assert np.all(np.abs(np.angle(np.exp(1j * (d.aod[ms] - los_aod)))) < 0.3)
        los_delay = d.delay[d.kind == cs.KIND_LOS][0]
        assert np.all(np.abs(d.delay[bs] - los_delay) < 10e-9)
        assert cs.drop_statistics(d, FC)["n_mpc"] == port.n_mpc[i] - int(port.los_visible[i])
        assert d.info["index"] == i and np.array_equal(d.info["ms_pos"], ue)


def test_drops_from_model_generated_outdoor_los():
    from mimokd.channels import cost2100_model as cm

    port = cm.generate_drops("semi_urban_300mhz_los", 6, 4)
    drops = cs.drops_from_model(port)
    for i, d in enumerate(drops):
        valid = port.kind[i] >= 0
        for port_kind, kind in ((cm.KIND_FAR_SINGLE, cs.KIND_FAR_SINGLE), (cm.KIND_FAR_TWIN, cs.KIND_FAR_TWIN),
                                (cm.KIND_LOCAL, cs.KIND_LOCAL_MS), (cm.KIND_LOS, cs.KIND_LOS)):
            assert np.sum(port.kind[i][valid] == port_kind) == np.sum(d.kind == kind)
        assert not np.any(d.kind == cs.KIND_LOCAL_BS)          # outdoor: no BS local cluster
        assert d.amplitude[0] == port.gain[i, 0] and (d.amplitude[0] != 0) == port.los_visible[i]
    assert any(np.any(d.kind == cs.KIND_FAR_SINGLE) for d in drops)


def test_drops_from_model_rejects_bad_input():
    with pytest.raises(ValueError, match="Cost2100Drops"):
        cs.drops_from_model([one_path(1e-7, 0.0)])
    bad = _hand_built_indoor()
    bad.kind[0, 3] = 7
    with pytest.raises(ValueError, match=r"kinds.*7"):
        cs.drops_from_model(bad)
    bad = _hand_built_indoor()
    bad.cluster[0, 2] = 5                     # a local cluster outside the two local slots
    with pytest.raises(ValueError, match="local cluster slots"):
        cs.drops_from_model(bad)


def test_fixture_mean_power_maps():
    stats, meta = cs.load_reference_stats()
    for scen in cs.REFERENCE_SCENARIOS:
        ref = cs.reference_map_moments(scen)
        assert ref["mean"].shape == ref["variance"].shape == (NT, ND) and ref["mean"].dtype == np.float32
        assert ref["drops"] == meta["scenarios"][scen]["power_map_drops"] >= 20
        assert ref["mean"].sum() == pytest.approx(1.0, abs=1e-5) and np.all(ref["variance"] >= 0)
        # the map's marginals are the mean profiles of the same drops (stored separately)
        if ref["drops"] == meta["scenarios"][scen]["drops"]:
            np.testing.assert_allclose(ref["mean"].sum(axis=0), stats[scen]["delay_profile"].mean(axis=0), atol=1e-5)
            np.testing.assert_allclose(ref["mean"].sum(axis=1), stats[scen]["angle_profile"].mean(axis=0), atol=1e-5)
    np.testing.assert_array_equal(cs.reference_mean_map("indoor_hall_5ghz"), cs.reference_mean_map("IndoorHall_5GHz"))
    with pytest.raises(ValueError, match="Unknown scenario"):
        cs.reference_mean_map("indoor")
