"""The COST 2100 MIMO channel model in vectorized numpy: scenarios, drops and frequency responses.

Written from the model's published description (Liu et al., "The COST 2100 MIMO channel model",
IEEE Wireless Communications 19(6), 2012; the COST 2100 chapter of Verdone & Zanella (eds.),
"Pervasive Mobile and Ambient Wireless Communications", Springer 2012) and from the parameter values
of the public reference implementation (``cost2100/cost2100`` on GitHub, MATLAB, v3.x); the reference
was read for facts (values, units, quirks), not translated. Only what the CSI-feedback literature
needs is modelled: one BS, one single-antenna UE, one static snapshot per drop, omni antennas; the
BS array is applied afterwards by :func:`frequency_response`.

Scenarios (:data:`SCENARIOS`): ``"indoor_hall_5ghz"`` (CsiNet "indoor", 5.3 GHz, the reference's
``IndoorHall_5GHz``, obstructed LOS), ``"semi_urban_300mhz_los"`` and ``"semi_urban_300mhz_nlos"``
(CsiNet "outdoor", 300 MHz, the reference's ``SemiUrban_300MHz``).

One drop (:func:`generate_drops`) is one independent realization of the whole environment (as if the
reference were run afresh for every sample):

* **Far-cluster visibility regions (VRs).** ``N_VR = round(n_c_far * R^2 / (r_c - l_c)^2)`` VR
  centres lie uniformly in the cell disc of radius ``R`` centred on the BS (VR density
  ``n_c_far / (pi (r_c - l_c)^2)``; ``n_c_far`` is Poisson with at least 1 indoors and fixed
  outdoors). A VR is active when the UE is within ``r_c`` of its centre (``r_c`` includes the
  transition zone ``l_c``); its amplitude gain is
  ``A_VR = 1/2 - arctan(2 sqrt(2) (d - r_c + l_c) / sqrt(lambda l_c)) / pi``. Only the VRs that can
  be active are drawn: their number is Binomial(``N_VR``, ``(r_c / R)^2``), positions uniform in the
  UE's ``r_c`` disc (those falling outside the cell are dropped, which is exact thinning). Indoors
  VRs come in groups (one cluster seen from several VRs, group size ``1 + Poisson(vr_group_mean)``);
  a cluster is counted once, with the largest VR gain of its active VRs, and its geometry is built
  from a reference VR drawn uniformly from its whole group (an inactive member lies uniformly in the
  cell outside the UE's ``r_c`` disc). As the reference stops with "No active cluster! Please
  restart simulation", a drop with no active far cluster is redrawn (``require_far_cluster``).
* **Far clusters**, single (probability ``single_cluster_ratio``) or twin. BS-side centre at
  distance ``U(r_min, r_max)`` from the BS, azimuth = azimuth of the reference VR seen from the BS
  + N(43 deg, 39 deg), elevation N(mean, std). Twin clusters get an MS-side centre at distance
  ``d_BS tan(AoD spread / 2) / tan(AoA spread / 2)`` from the reference VR (azimuth again
  BS-to-VR azimuth + N(43, 39) deg) and an exponential link delay above a minimum. Cluster spreads
  (delay, AoD, EoD, AoA, EoA) and the cluster shadowing are log-normal and cross-correlated
  (Cholesky of the scenario's 6 x 6 matrix, order SF, DS, EoD, AoD, EoA, AoA). Cluster half-sizes:
  ``a = DS c / 2`` (along the cluster-to-BS/VR line), ``b = d tan(AS / 2)`` (horizontal, across),
  ``h = d tan(ES / 2)`` (vertical); single clusters use the BS-side sizes on both sides.
* **MPCs**: ``n_mpc`` per cluster, Gaussian offsets ``N(0, (a/3, b/3, h/3))`` in the cluster's own
  frame, the same draw on both sides of a twin cluster. Amplitudes are complex Gaussian normalized
  to unit total power per cluster. The MPC gain function (MPC visibility: a Gaussian of log-normal
  radius centred uniformly in the VR, MPCs below -10 dB dropped) is implemented but disabled in all
  three scenarios (the reference's ``mpc_gain_mu = Inf``).
* **Local clusters** at the UE (all scenarios) and at the BS (indoor): centred on the terminal,
  ``a = b = DS c / 2``, ``h = a / 20``, no rotation, always visible, no delay attenuation.
* **Cluster delay attenuation** (power): ``exp(-k_tau (min(tau_C, tau_B) - tau_0))`` with ``tau_C``
  the cluster's delay (BS-cluster-UE path through the two centres + link delay), ``tau_0`` the LOS
  delay, ``k_tau`` in 1/us: the attenuation stops growing beyond the cut-off delay ``tau_B``.
* **Path loss**: free space, ``PL = 20 log10(d) + 20 log10(f_c) - 147.56`` dB (+ 30 dB per floor,
  0 floors here) for every component, ``d`` the 3-D BS-UE distance (at least ``min_distance``).
* **LOS**: visible when ``d <= d_co`` and the UE is within ``r_l`` of the LOS VR, whose centre is
  drawn like the reference's (``x, y ~ U(0, d_co - r_l)`` from the BS, redrawn until within
  ``d_co``). Its power is ``K`` times the power of all other components, ``K`` log-normal
  (``K_dB ~ N(mu, sigma)``). Indoors ``r_l = 0`` and outdoor NLOS ``d_co = 0``: no LOS.

MPC amplitudes: ``gain = A_VR sqrt(A_delay * shadowing) * g_MPC * a_MPC * 10^(-PL/20)``.

Reference quirks kept on purpose (the datasets of the literature were made with that code):
the indoor cut-off delay ``tau_B = 30 / 3e8 * 1e6`` is meant in microseconds but used in seconds, so
it never acts indoors; the LOS VR centre lies
in the BS's +x/+y quadrant; the LOS transition function is computed but not applied
(``los_transition=False``; ``True`` applies it); the MS-side cluster is placed from the VR centre, not
the UE; twin-cluster delays are not bounded by the LOS delay (the link delay does not include the
distance between the two centres), so a twin cluster can arrive before the LOS and its delay
attenuation exceed 1; the mean azimuth offset of clusters is +43 deg (not symmetric); the outdoor EoD
spread is 1.578 rad (90 deg) and the outdoor EoA spread 1.578 deg, as written in the reference. The
indoor ``k_tau = 16`` is labelled "lin. [/us]" like the outdoor values (12.1 and 7.2 dB/us converted
to nepers) and is used as 16 per microsecond in the exponent (69 dB/us; if the measurement meant
16 dB/us, the indoor decay is 4.3 times too strong). With it,
the two indoor local clusters carry about 90 % of the power.

Simplifications and what is missing: the reference draws ``n_c_far``, the VR layout, the clusters
and the LOS power factor once per simulation run, and here they are drawn per drop; VR groups use
i.i.d. group sizes (the reference's sequential assignment differs only in the last group); the
BS-side VRs and power slopes (large-array extension), polarization, dense multipath components,
time evolution (UE movement), multi-link common clusters and antenna patterns are not modelled (none
is active in these scenarios for a single static link with omni antennas). The LOS delay uses the
3-D distance (the reference the horizontal one; equal for the default equal heights).

Seeds and shards: drop ``i`` (global index ``start + k``) draws all its randomness from its own
generator ``Generator(PCG64(SeedSequence(entropy, spawn_key=(i,))))`` (the ``i``-th child of
``SeedSequence(entropy).spawn``), with ``entropy`` the int seed (or one integer drawn from a given
``Generator``). So a drop does not depend on the batch it was generated in (bit for bit on one
platform; the tests check it): shards generated on different machines with the same seed form the
same dataset as one run (up to last-bit differences of the platforms' math libraries).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types

import numpy as np

from mimokd.channels.transforms import angular_delay_of_paths
from mimokd.rng import as_generator

__all__ = [
    "SPEED_OF_LIGHT",
    "Cost2100Scenario",
    "SCENARIOS",
    "Cost2100Drops",
    "get_scenario",
    "path_loss_db",
    "cluster_delay_attenuation",
    "expected_active_far_clusters",
    "generate_drops",
    "subcarrier_frequencies",
    "frequency_response",
    "angular_delay_response",
]

#: Wave speed used throughout [m/s] (the reference's ``c0``).
SPEED_OF_LIGHT = 3e8

#: Kinds of MPCs in :class:`Cost2100Drops` (``kind``); padding entries have kind -1.
KIND_LOS, KIND_LOCAL, KIND_FAR_SINGLE, KIND_FAR_TWIN, KIND_PAD = 0, 1, 2, 3, -1

_MAX_ENVIRONMENT_DRAWS = 10_000


def _lognormal_median_db(mean, std):
    """(median, std of 10 log10) of the log-normal with the given mean and standard deviation."""
    s2 = math.log(1.0 + (std / mean) ** 2)
    return math.exp(math.log(mean) - 0.5 * s2), 10.0 * math.log10(math.e) * math.sqrt(s2)


@dataclasses.dataclass(frozen=True)
class Cost2100Scenario:
    """Parameter set of one COST 2100 scenario. Every field carries its unit in the comment.

    ``sources`` maps each group of fields to where its values come from.
    """

    name: str  # key in SCENARIOS
    reference_network: str  # the reference's network name
    reference_scenario: str  # the reference's 'LOS' / 'NLOS' label
    # --- external: frequency, cell, geometry (group "external")
    carrier: float  # carrier frequency [Hz]
    default_bandwidth: float  # default bandwidth of frequency_response [Hz]
    cell_radius: float  # radius of the disc holding the VRs, centred on the BS [m]
    square_side: float  # side of the square the UE is uniform in (CsiNet recipe) [m]
    n_floors: int  # floors between BS and UE (path loss + 30 dB each) [-]
    # --- far-cluster visibility regions (group "vr")
    vr_radius: float  # r_c, VR radius including the transition zone [m]
    vr_transition: float  # l_c, width of the transition zone [m]
    n_far_clusters_mean: float  # n_c_far: far clusters visible per UE before the transition zone [-]
    n_far_clusters_poisson: bool  # n_c_far ~ max(Poisson(mean), 1) per drop (else fixed)
    vr_group_mean: float  # mean extra VRs per VR group (group size 1 + Poisson(.)) [-]
    # --- cluster delay attenuation (group "attenuation")
    delay_attenuation: float  # k_tau, power decay exp(-k_tau * excess delay) [1/us]
    delay_cutoff: float  # tau_B, absolute delay beyond which the decay stops [s]
    # --- LOS (group "los")
    los_cutoff_distance: float  # d_co, no LOS beyond this BS-UE distance [m]
    los_vr_radius: float  # r_l, LOS VR radius [m]
    los_vr_transition: float  # l_l, LOS VR transition zone [m]
    los_power_factor_db_mean: float  # mean of 10 log10 K_LOS [dB]
    los_power_factor_db_std: float  # std of 10 log10 K_LOS [dB]
    # --- clusters (group "clusters")
    bs_local_cluster: bool  # a local cluster around the BS
    ms_local_cluster: bool  # a local cluster around the UE
    single_cluster_ratio: float  # k_sel, probability that a far cluster is single (else twin) [-]
    n_mpc: int  # MPCs per cluster [-]
    cluster_azimuth_offset_deg: tuple  # (mean, std) of the cluster azimuth offset from the VR [deg]
    cluster_elevation_offset_deg: tuple  # (mean, std) of the cluster elevation [deg]
    cluster_distance_range: tuple  # (min, max) of the BS-cluster distance, uniform [m]
    link_delay_mean: float  # mean of the exponential twin-cluster link delay before truncation [s]
    link_delay_min: float  # its minimum: delay = min + Exp(link_delay_mean) (a truncated exponential) [s]
    # --- cluster spreads and shadowing (group "spreads"): 10^(0.1 * std_db * N(0, 1)) * median
    delay_spread_median: float  # [s]
    delay_spread_db_std: float  # [dB]
    aod_spread_median: float  # [deg]
    aod_spread_db_std: float  # [dB]
    eod_spread_median: float  # [deg]
    eod_spread_db_std: float  # [dB]
    aoa_spread_median: float  # [deg]
    aoa_spread_db_std: float  # [dB]
    eoa_spread_median: float  # [deg]
    eoa_spread_db_std: float  # [dB]
    shadowing_db_std: float  # cluster shadow fading std [dB]
    cross_correlation: tuple  # 6 x 6, order (SF, DS, EoD, AoD, EoA, AoA) [-]
    # --- MPC gain functions (group "mpc_gain"): radius ~ lognormal, inf mean = disabled
    mpc_gain_radius_db_mean: float  # mean of 10 log10(radius / 1 m) [dB]
    mpc_gain_radius_db_std: float  # [dB]
    sources: types.MappingProxyType = dataclasses.field(  # group -> where its values come from
        default_factory=lambda: types.MappingProxyType({}), compare=False, hash=False, repr=False)

    @property
    def wavelength(self):
        """Carrier wavelength [m]."""
        return SPEED_OF_LIGHT / self.carrier

    @property
    def n_local_clusters(self):
        """Number of local clusters (UE side first, then BS side)."""
        return int(self.ms_local_cluster) + int(self.bs_local_cluster)

    @property
    def vr_density(self):
        """Mean density of far-cluster VRs for the mean ``n_c_far`` [1/m^2]."""
        return self.n_far_clusters_mean / (math.pi * (self.vr_radius - self.vr_transition) ** 2)


_REF = "cost2100/cost2100 MATLAB reference, get_para.m"
_IDX_TAU = _lognormal_median_db(3e-9, 0.6e-9)
_IDX_AOD = _lognormal_median_db(3.0, 2.0)
_IDX_EOD = _lognormal_median_db(1.5, 1.5)
_IDX_AOA = _lognormal_median_db(4.0, 2.0)
_IDX_EOA = _lognormal_median_db(1.0, 1.0)

INDOOR_HALL_5GHZ = Cost2100Scenario(
    name="indoor_hall_5ghz", reference_network="IndoorHall_5GHz", reference_scenario="LOS",
    carrier=5.3e9, default_bandwidth=20e6, cell_radius=30.0, square_side=20.0, n_floors=0,
    vr_radius=2.72, vr_transition=1.0, n_far_clusters_mean=3.8, n_far_clusters_poisson=True,
    vr_group_mean=4.0,
    delay_attenuation=16.0, delay_cutoff=30.0 / 3e8 * 1e6,
    los_cutoff_distance=30.0, los_vr_radius=0.0, los_vr_transition=0.0,
    los_power_factor_db_mean=-10.0, los_power_factor_db_std=7.2,
    bs_local_cluster=True, ms_local_cluster=True, single_cluster_ratio=0.0, n_mpc=3,
    cluster_azimuth_offset_deg=(43.0, 39.0), cluster_elevation_offset_deg=(0.0, 0.0),
    cluster_distance_range=(0.0, 30.0), link_delay_mean=1.07e-7, link_delay_min=3.36e-8,
    delay_spread_median=_IDX_TAU[0], delay_spread_db_std=_IDX_TAU[1],
    aod_spread_median=_IDX_AOD[0], aod_spread_db_std=_IDX_AOD[1],
    eod_spread_median=_IDX_EOD[0], eod_spread_db_std=_IDX_EOD[1],
    aoa_spread_median=_IDX_AOA[0], aoa_spread_db_std=_IDX_AOA[1],
    eoa_spread_median=_IDX_EOA[0], eoa_spread_db_std=_IDX_EOA[1],
    shadowing_db_std=0.0, cross_correlation=tuple(tuple(float(i == j) for j in range(6)) for i in range(6)),
    mpc_gain_radius_db_mean=math.inf, mpc_gain_radius_db_std=0.0,
    sources=types.MappingProxyType({
        "external": "5.3 GHz and 20 MHz: the reference's demo band [5.29, 5.31] GHz; cell radius 30 m: "
                    f"{_REF}; 20 m square: CsiNet recipe (REFERENCE.md / issue 3).",
        "vr": f"{_REF} (Aalto obstructed-LOS measurements, Poutanen et al., EuCAP 2011): r_c 2.72 m, "
              "l_c 1 m, n_c_far ~ Poisson(3.8) >= 1, MS_common = 4 (VR groups).",
        "attenuation": f"{_REF}: k_tau = 16 /us; tau_B = 30/3e8*1e6 = 0.1, commented as us, used as s "
                       "(the cut-off never acts): kept.",
        "los": f"{_REF}: d_co 30 m, r_l = l_l = 0 (so no LOS), K_LOS -10 dB mean, 7.2 dB std.",
        "clusters": f"{_REF}: BS and MS local clusters, k_sel 0 (all twin), 3 MPCs, azimuth offset "
                    "N(43, 39) deg, elevation 0, distance U(0, 30) m, link delay 33.6 ns + Exp(107 ns).",
        "spreads": f"{_REF}: log-normal from mean/std DS 3/0.6 ns, AoD 3/2 deg, EoD 1.5/1.5 deg, "
                   "AoA 4/2 deg, EoA 1/1 deg; no shadowing; uncorrelated.",
        "mpc_gain": f"{_REF}: mpc_gain_mu = Inf (MPC gain functions disabled).",
    }),
)

_OUTDOOR_COMMON = dict(
    reference_network="SemiUrban_300MHz", carrier=300e6, default_bandwidth=20e6, cell_radius=500.0,
    square_side=400.0, n_floors=0, n_far_clusters_mean=6.0, n_far_clusters_poisson=False,
    vr_group_mean=0.0, bs_local_cluster=False, ms_local_cluster=True,
    cluster_azimuth_offset_deg=(43.0, 39.0), cluster_elevation_offset_deg=(0.0, 0.0),
    cluster_distance_range=(0.0, 500.0),
    eod_spread_median=1.578 / math.pi * 180.0, eod_spread_db_std=0.0,
    eoa_spread_median=1.578, eoa_spread_db_std=0.0,
    mpc_gain_radius_db_mean=math.inf, mpc_gain_radius_db_std=0.0,
)
_OUTDOOR_SOURCES = {
    "external": "300 MHz: CsiNet ('outdoor rural 300 MHz'; the reference's demo band is [275, 295] MHz, "
                f"20 MHz wide); cell radius 500 m: {_REF}; 400 m square: CsiNet recipe.",
    "vr": f"{_REF} (Zhu, Eriksson, Tufvesson, IEEE TWC 2013, 300 MHz measurements): n_c_far = 6 fixed, "
          "single link so MS_common = 0 (no VR groups).",
    "mpc_gain": f"{_REF}: mpc_gain_mu = Inf (MPC gain functions disabled).",
}

SEMI_URBAN_300MHZ_LOS = Cost2100Scenario(
    name="semi_urban_300mhz_los", reference_scenario="LOS",
    vr_radius=32.8, vr_transition=16.8,
    delay_attenuation=math.log(10 ** 1.21), delay_cutoff=2.4e-6,
    los_cutoff_distance=350.0, los_vr_radius=343.0, los_vr_transition=93.0,
    los_power_factor_db_mean=-4.7, los_power_factor_db_std=2.0,
    single_cluster_ratio=0.1, n_mpc=27, link_delay_mean=8.54e-7, link_delay_min=4.79e-8,
    delay_spread_median=1.39e-7, delay_spread_db_std=3.66,
    aod_spread_median=0.255 / math.pi * 180.0, aod_spread_db_std=2.43,
    aoa_spread_median=0.2575 / math.pi * 180.0, aoa_spread_db_std=2.68,
    shadowing_db_std=2.05,
    cross_correlation=((1.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.9, 0.0, 0.9),
                       (0.0, 0.0, 1.0, 0.0, 0.0, 0.0), (0.0, 0.9, 0.0, 1.0, 0.0, 0.9),
                       (0.0, 0.0, 0.0, 0.0, 1.0, 0.0), (0.0, 0.9, 0.0, 0.9, 0.0, 1.0)),
    sources=types.MappingProxyType({
        **_OUTDOOR_SOURCES,
        "vr": _OUTDOOR_SOURCES["vr"] + " LOS: r_c 32.8 m, l_c 16.8 m.",
        "attenuation": f"{_REF}: k_tau = ln(10^(12.1/10)) /us (12.1 dB/us), tau_B = 2.4 us.",
        "los": f"{_REF}: d_co 350 m, r_l 343 m, l_l 93 m, K_LOS -4.7 dB mean, 2.0 dB std.",
        "clusters": f"{_REF}: MS local cluster only, k_sel 0.1, 27 MPCs, azimuth offset N(43, 39) deg, "
                    "elevation 0, distance U(0, 500) m, link delay 47.9 ns + Exp(854 ns).",
        "spreads": f"{_REF}: medians DS 139 ns, AoD 0.255 rad, EoD 1.578 rad, AoA 0.2575 rad, EoA 1.578 "
                   "(deg, as written); dB stds 3.66, 2.43, 0, 2.68, 0; shadowing 2.05 dB; DS-AoD-AoA "
                   "correlation 0.9.",
    }),
    **_OUTDOOR_COMMON,
)

SEMI_URBAN_300MHZ_NLOS = Cost2100Scenario(
    name="semi_urban_300mhz_nlos", reference_scenario="NLOS",
    vr_radius=24.5, vr_transition=12.2,
    delay_attenuation=math.log(10 ** 0.72), delay_cutoff=4.2e-6,
    los_cutoff_distance=0.0, los_vr_radius=0.0, los_vr_transition=0.0,
    los_power_factor_db_mean=0.0, los_power_factor_db_std=0.0,
    single_cluster_ratio=0.2, n_mpc=48, link_delay_mean=1.02e-6, link_delay_min=5.24e-8,
    delay_spread_median=3.17e-7, delay_spread_db_std=2.5,
    aod_spread_median=0.3254 / math.pi * 180.0, aod_spread_db_std=2.02,
    aoa_spread_median=0.3318 / math.pi * 180.0, aoa_spread_db_std=2.03,
    shadowing_db_std=2.27,
    cross_correlation=((1.0, -0.1, 0.0, -0.1, 0.0, -0.1), (-0.1, 1.0, 0.0, 0.9, 0.0, 0.9),
                       (0.0, 0.0, 1.0, 0.0, 0.0, 0.0), (-0.1, 0.9, 0.0, 1.0, 0.0, 0.9),
                       (0.0, 0.0, 0.0, 0.0, 1.0, 0.0), (-0.1, 0.9, 0.0, 0.9, 0.0, 1.0)),
    sources=types.MappingProxyType({
        **_OUTDOOR_SOURCES,
        "vr": _OUTDOOR_SOURCES["vr"] + " NLOS: r_c 24.5 m, l_c 12.2 m.",
        "attenuation": f"{_REF}: k_tau = ln(10^(7.2/10)) /us (7.2 dB/us), tau_B = 4.2 us.",
        "los": f"{_REF}: d_co = r_l = l_l = 0 (no LOS).",
        "clusters": f"{_REF}: MS local cluster only, k_sel 0.2, 48 MPCs, azimuth offset N(43, 39) deg, "
                    "elevation 0, distance U(0, 500) m, link delay 52.4 ns + Exp(1.02 us).",
        "spreads": f"{_REF}: medians DS 317 ns, AoD 0.3254 rad, EoD 1.578 rad, AoA 0.3318 rad, EoA 1.578 "
                   "(deg, as written); dB stds 2.5, 2.02, 0, 2.03, 0; shadowing 2.27 dB; SF -0.1 and "
                   "DS-AoD-AoA 0.9 correlations.",
    }),
    **_OUTDOOR_COMMON,
)

#: The parameter sets, by name.
SCENARIOS = {
    s.name: s for s in (INDOOR_HALL_5GHZ, SEMI_URBAN_300MHZ_LOS, SEMI_URBAN_300MHZ_NLOS)
}


def get_scenario(scenario):
    """A :class:`Cost2100Scenario` from itself or its name in :data:`SCENARIOS`.

    Raises:
        ValueError: unknown name (the message names ``scenario``).
    """
    if isinstance(scenario, Cost2100Scenario):
        return scenario
    if isinstance(scenario, str) and scenario in SCENARIOS:
        return SCENARIOS[scenario]
    raise ValueError(f"Unknown COST 2100 scenario; expected one of {list(SCENARIOS)}. Received: scenario={scenario!r}")


def path_loss_db(scenario, distance):
    """Free-space path loss of the scenario [dB]: ``20 log10(d) + 20 log10(f_c) - 147.56 + 30 n_floors``.

    Args:
        scenario: a :class:`Cost2100Scenario` or its name.
        distance: BS-UE distance [m], array-like, > 0.
    """
    sc = get_scenario(scenario)
    d = np.asarray(distance, dtype=np.float64)
    return 20.0 * np.log10(d) + 20.0 * math.log10(sc.carrier) - 147.56 + 30.0 * sc.n_floors


def cluster_delay_attenuation(scenario, cluster_delay, los_delay):
    """Power attenuation of a cluster by its delay: ``exp(-k_tau * (min(tau, tau_B) - tau_0))``.

    Args:
        scenario: a :class:`Cost2100Scenario` or its name.
        cluster_delay: the cluster's delay ``tau`` [s] (array-like).
        los_delay: the LOS delay ``tau_0`` [s] (array-like, broadcast).

    Returns:
        float64 array, linear power factor.
    """
    sc = get_scenario(scenario)
    tau = np.minimum(np.asarray(cluster_delay, dtype=np.float64), sc.delay_cutoff)
    return np.exp(-sc.delay_attenuation * 1e6 * (tau - np.asarray(los_delay, dtype=np.float64)))


def _n_vr(sc, n_c_far):
    """Number of VRs in the cell, rounded half away from zero like the reference."""
    return int(math.floor(n_c_far * sc.cell_radius ** 2 / (sc.vr_radius - sc.vr_transition) ** 2 + 0.5))


def _n_c_far_pmf(sc):
    """(values, probabilities) of n_c_far."""
    if not sc.n_far_clusters_poisson:
        return np.array([sc.n_far_clusters_mean]), np.array([1.0])
    lam = sc.n_far_clusters_mean
    k = np.arange(0, int(lam + 20 * math.sqrt(lam) + 20))
    logp = k * math.log(lam) - lam - np.array([math.lgamma(i + 1.0) for i in k])
    p = np.exp(logp)
    values = np.maximum(k, 1)
    return values.astype(np.float64), p / p.sum()


def expected_active_far_clusters(scenario, *, require_far_cluster=True):
    """Closed-form mean number of active far clusters for a UE whose ``r_c`` disc lies in the cell.

    With ``N_VR`` VRs in the cell, each VR is active with probability ``p = (r_c / R)^2``
    independently. Without VR groups the mean is ``N_VR p`` (VR density times visible area
    ``pi r_c^2``); with groups of size ``1 + Poisson(m)`` (about ``N_VR / (1 + m)`` groups) a group
    is active unless all its VRs are inactive: ``N_VR / (1 + m) * (1 - (1 - p) exp(-m p))``. Averaged
    over ``n_c_far``; with ``require_far_cluster`` divided by ``P(at least one active VR)``.
    """
    sc = get_scenario(scenario)
    values, probs = _n_c_far_pmf(sc)
    p = (sc.vr_radius / sc.cell_radius) ** 2
    m = sc.vr_group_mean
    n_vr = np.array([_n_vr(sc, v) for v in values], dtype=np.float64)
    if m > 0:
        mean_given = n_vr / (1.0 + m) * (1.0 - (1.0 - p) * math.exp(-m * p))
    else:
        mean_given = n_vr * p
    mean = float(np.sum(probs * mean_given))
    if require_far_cluster:
        p_none = float(np.sum(probs * (1.0 - p) ** n_vr))
        mean /= 1.0 - p_none
    return mean


# --------------------------------------------------------------------------------------------------
# Drops
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Cost2100Drops:
    """Struct of arrays of ``n`` drops (one static link each), MPC axis padded to ``L``.

    MPC layout per drop: entry 0 is the LOS path, then ``n_mpc`` entries per cluster in cluster
    order (UE local cluster, BS local cluster if any, then the active far clusters); padding
    entries (``kind == -1``) have zero gain. MPC ``j`` of cluster ``c`` is entry ``1 + c * n_mpc + j``.

    Per MPC (``[n, L]``): ``delay`` [s] (absolute, BS-cluster-UE path length / c + link delay),
    ``aod``, ``eod`` (azimuth, elevation of the departure direction at the BS [rad]; azimuth from
    the +x axis counter-clockwise, elevation from the horizontal plane), ``aoa``, ``eoa`` (same, at
    the UE: the direction the wave comes from), ``gain`` (complex amplitude, path loss and all
    attenuations included; 0 for an invisible LOS, a dropped MPC or padding), ``cluster`` (int32,
    index into the cluster arrays, -1 for the LOS, -2 for padding), ``kind`` (int8: 0 LOS, 1 local,
    2 far single, 3 far twin, -1 padding).

    Per cluster (``[n, C]``, C = local + far, padded with kind -1): ``cluster_kind``,
    ``cluster_delay`` (delay through the cluster centres + link delay [s]), ``cluster_link_delay``
    [s], ``cluster_attenuation`` (delay attenuation, power, 1 for local clusters),
    ``cluster_vr_gain`` (VR gain, amplitude, 1 for local clusters), ``cluster_shadowing`` (power),
    ``cluster_position_bs``, ``cluster_position_ms`` (``[n, C, 3]`` centres [m]).

    Per drop (``[n]`` or ``[n, 3]``): ``index`` (global drop index), ``bs_position``,
    ``ue_position`` [m], ``n_active_clusters`` (active far clusters), ``vr_density`` [1/m^2],
    ``path_loss_db``, ``los_visible``, ``los_power_factor`` (linear ``K``, drawn for every drop, used
    where visible), ``los_vr_center`` (``[n, 2]`` [m]).
    """

    scenario: str
    index: np.ndarray
    delay: np.ndarray
    aod: np.ndarray
    eod: np.ndarray
    aoa: np.ndarray
    eoa: np.ndarray
    gain: np.ndarray
    cluster: np.ndarray
    kind: np.ndarray
    n_active_clusters: np.ndarray
    bs_position: np.ndarray
    ue_position: np.ndarray
    vr_density: np.ndarray
    path_loss_db: np.ndarray
    los_visible: np.ndarray
    los_power_factor: np.ndarray
    los_vr_center: np.ndarray
    cluster_kind: np.ndarray
    cluster_delay: np.ndarray
    cluster_link_delay: np.ndarray
    cluster_attenuation: np.ndarray
    cluster_vr_gain: np.ndarray
    cluster_shadowing: np.ndarray
    cluster_position_bs: np.ndarray
    cluster_position_ms: np.ndarray

    _MPC_FIELDS = ("delay", "aod", "eod", "aoa", "eoa", "gain", "cluster", "kind")
    _CLUSTER_FIELDS = ("cluster_kind", "cluster_delay", "cluster_link_delay", "cluster_attenuation",
                       "cluster_vr_gain", "cluster_shadowing", "cluster_position_bs", "cluster_position_ms")
    _PAD = {"cluster": -2, "kind": KIND_PAD, "cluster_kind": KIND_PAD}

    def __len__(self):
        return int(self.index.shape[0])

    @property
    def valid(self):
        """bool ``[n, L]``: the MPCs that exist (not padding, nonzero gain)."""
        return (self.kind >= 0) & (self.gain != 0)

    @property
    def n_mpc(self):
        """int ``[n]``: number of MPCs with nonzero gain, the LOS included when visible."""
        return self.valid.sum(axis=1)

    def select(self, rows):
        """The drops ``rows`` (an index array, a slice or a boolean mask) as a new object."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v if f.name == "scenario" else v[rows]
        return Cost2100Drops(**out)

    def drop(self, i):
        """Drop ``i`` as a dict of trimmed arrays (padding removed), for inspection and comparisons."""
        keep = self.kind[i] >= 0
        n_c = int(np.sum(self.cluster_kind[i] >= 0))
        out = {name: getattr(self, name)[i][keep] for name in self._MPC_FIELDS}
        out.update({name: getattr(self, name)[i][:n_c] for name in self._CLUSTER_FIELDS})
        for name in ("index", "n_active_clusters", "bs_position", "ue_position", "vr_density", "path_loss_db",
                     "los_visible", "los_power_factor", "los_vr_center"):
            out[name] = getattr(self, name)[i]
        return out

    @classmethod
    def concatenate(cls, parts):
        """Drops of several batches (same scenario) as one object, padded to the widest."""
        parts = list(parts)
        if not parts:
            raise ValueError("`parts` must hold at least one Cost2100Drops. Received: parts=[]")
        names = {p.scenario for p in parts}
        if len(names) != 1:
            raise ValueError(f"`parts` must share one scenario. Received scenarios: {sorted(names)}")
        width = max(p.gain.shape[1] for p in parts)
        n_cl = max(p.cluster_kind.shape[1] for p in parts)
        out = {"scenario": parts[0].scenario}
        for f in dataclasses.fields(cls):
            if f.name == "scenario":
                continue
            arrays = []
            for p in parts:
                v = getattr(p, f.name)
                target = width if f.name in cls._MPC_FIELDS else n_cl if f.name in cls._CLUSTER_FIELDS else None
                if target is not None and v.shape[1] < target:
                    pad = np.full((v.shape[0], target - v.shape[1]) + v.shape[2:], cls._PAD.get(f.name, 0),
                                  dtype=v.dtype)
                    v = np.concatenate([v, pad], axis=1)
                arrays.append(v)
            out[f.name] = np.concatenate(arrays, axis=0)
        return cls(**out)


# --------------------------------------------------------------------------------------------------
# Per-drop random draws (a Python loop over drops; each drop vectorized inside)
# --------------------------------------------------------------------------------------------------
def _drop_generator(entropy, index):
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=(int(index),))))


def _disc_points(g, m, center, radius):
    u = g.random((m, 2))
    r = radius * np.sqrt(u[:, 0])
    a = 2.0 * np.pi * u[:, 1]
    pts = np.empty((m, 2))
    pts[:, 0] = center[0] + r * np.cos(a)
    pts[:, 1] = center[1] + r * np.sin(a)
    return pts, r


def _outside_points(g, m, cell_xy, cell_r, ue_xy, r_c):
    """``m`` points uniform in the cell disc outside the UE's ``r_c`` disc (rejection)."""
    got = np.empty((0, 2))
    while got.shape[0] < m:
        pts, _ = _disc_points(g, 2 * m + 4, cell_xy, cell_r)
        keep = (pts[:, 0] - ue_xy[0]) ** 2 + (pts[:, 1] - ue_xy[1]) ** 2 >= r_c ** 2
        got = np.concatenate([got, pts[keep]], axis=0)
    return got[:m]


def _active_far_vrs(g, sc, ue_xy, cell_xy, n_vr):
    """Active far VRs of one drop, one row per active cluster.

    Returns (effective VR centre [C, 2], UE distance to it [C], reference VR centre [C, 2]).
    """
    r_c, cell_r = sc.vr_radius, sc.cell_radius
    k = int(g.binomial(n_vr, min(1.0, (r_c / cell_r) ** 2)))
    pos, dist = _disc_points(g, k, ue_xy, r_c)
    inside = (pos[:, 0] - cell_xy[0]) ** 2 + (pos[:, 1] - cell_xy[1]) ** 2 < cell_r ** 2
    if not inside.all():
        pos, dist = pos[inside], dist[inside]
    k = dist.size
    if sc.vr_group_mean <= 0 or k == 0:
        return pos, dist, pos
    # Which VR slots (of n_vr) the active VRs are (distinct), and the groups they fall in: groups are
    # consecutive runs of slots with i.i.d. sizes 1 + Poisson(vr_group_mean).
    slots = g.integers(0, n_vr, k)
    while len(set(slots.tolist())) < k:
        seen, dup = set(), []
        for i, s in enumerate(slots.tolist()):
            if s in seen:
                dup.append(i)
            seen.add(s)
        slots[dup] = g.integers(0, n_vr, len(dup))
    sizes = 1 + g.poisson(sc.vr_group_mean, int(n_vr / (1.0 + sc.vr_group_mean) + 5.0 * math.sqrt(n_vr) + 10))
    ends = np.cumsum(sizes)
    while ends[-1] < n_vr:
        sizes = np.concatenate([sizes, 1 + g.poisson(sc.vr_group_mean, 16)])
        ends = np.cumsum(sizes)
    group = np.searchsorted(ends, slots, side="right")
    size_of = np.minimum(ends[group], n_vr) - (ends[group] - sizes[group])  # the last group is cut at n_vr
    order = np.lexsort((dist, group))  # by group, nearest VR first
    group, pos, dist, size_of = group[order], pos[order], dist[order], size_of[order]
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    counts = np.diff(np.r_[first, k])
    eff, eff_d = pos[first], dist[first]
    # Reference VR: uniform among the group's members; members 0..h-1 are its h active VRs.
    member = np.floor(g.random(first.size) * size_of[first]).astype(np.int64)
    is_active = member < counts
    ref = np.empty_like(eff)
    ref[is_active] = pos[first[is_active] + member[is_active]]
    n_out = int(np.count_nonzero(~is_active))
    if n_out:
        ref[~is_active] = _outside_points(g, n_out, cell_xy, cell_r, ue_xy, r_c)
    return eff, eff_d, ref


def _los_vr_center(g, sc, bs_xy):
    span = sc.los_cutoff_distance - sc.los_vr_radius
    while True:
        xy = g.random(2) * span
        if math.hypot(xy[0], xy[1]) <= sc.los_cutoff_distance:
            return bs_xy + xy


def _far_normals(sc):
    return 10 + 6 * sc.n_mpc  # 6 correlated, 4 angle offsets, 3n positions, 2n amplitudes, n gain radii


def _far_uniforms(sc):
    return 3 + 2 * sc.n_mpc  # type, distance, link delay, 2n gain centres


def _local_normals(sc):
    return 6 + 6 * sc.n_mpc  # 6 correlated, 3n positions, 2n amplitudes, n gain radii


def _draw_drop(g, sc, bs, ue_given, square, require_far_cluster):
    """All random draws of one drop, in a fixed order, from its own generator ``g``."""
    u = g.random(2)
    if ue_given is None:
        ue = np.array([bs[0] + (u[0] - 0.5) * square, bs[1] + (u[1] - 0.5) * square, 0.0])
    else:
        ue = ue_given
    for _ in range(_MAX_ENVIRONMENT_DRAWS):
        if sc.n_far_clusters_poisson:
            n_c_far = float(max(int(g.poisson(sc.n_far_clusters_mean)), 1))
        else:
            n_c_far = float(sc.n_far_clusters_mean)
        eff, dist, ref = _active_far_vrs(g, sc, ue[:2], bs[:2], _n_vr(sc, n_c_far))
        if dist.size or not require_far_cluster:
            break
    else:
        raise RuntimeError(f"No active far cluster in {_MAX_ENVIRONMENT_DRAWS} environments at ue_position={ue}")
    n_c = dist.size
    return dict(
        ue=ue, n_c_far=n_c_far, eff=eff, dist=dist, ref=ref,
        far_n=g.standard_normal((n_c, _far_normals(sc))),
        far_u=g.random((n_c, _far_uniforms(sc))),
        local_n=g.standard_normal((sc.n_local_clusters, _local_normals(sc))),
        los_n=float(g.standard_normal()),
        los_vr=_los_vr_center(g, sc, bs[:2]),
    )


# --------------------------------------------------------------------------------------------------
# Vectorized geometry
# --------------------------------------------------------------------------------------------------
def _unit(az, el):
    ce = np.cos(el)
    return np.stack([ce * np.cos(az), ce * np.sin(az), np.sin(el)], axis=-1)


def _az_el(v):
    return np.arctan2(v[..., 1], v[..., 0]), np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1]))


def _frame(az, el):
    """Axes (radial, horizontal-across, vertical) of a cluster whose radial axis points at (az, el)."""
    e_r = _unit(az, el)
    e_b = np.stack([-np.sin(az), np.cos(az), np.zeros_like(az)], axis=-1)
    e_h = np.stack([-np.sin(el) * np.cos(az), -np.sin(el) * np.sin(az), np.cos(el)], axis=-1)
    return e_r, e_b, e_h


def _mpc_positions(center, offsets, sizes, az, el):
    """center [T, 3] + offsets [T, n, 3] * sizes [T, 3] / 3 in the frame (az, el) [T]."""
    e_r, e_b, e_h = _frame(az, el)
    o = offsets * (sizes[:, None, :] / 3.0)
    return (center[:, None, :] + o[..., 0:1] * e_r[:, None, :] + o[..., 1:2] * e_b[:, None, :]
            + o[..., 2:3] * e_h[:, None, :])


def _correlate(normals, chol):
    """Rows of ``normals @ chol.T`` as explicit sums (no BLAS: the same bits for any number of rows)."""
    z = np.zeros(normals.shape[:1] + chol.shape[:1])
    for j in range(chol.shape[1]):
        z += normals[:, j:j + 1] * chol[:, j]
    return z


def _spreads(sc, z):
    """Correlated cluster parameters from standard normals z [T, 6] (already correlated)."""
    shadow = 10.0 ** (0.1 * sc.shadowing_db_std * z[:, 0])
    tau = sc.delay_spread_median * 10.0 ** (0.1 * sc.delay_spread_db_std * z[:, 1])
    eod = sc.eod_spread_median * 10.0 ** (0.1 * sc.eod_spread_db_std * z[:, 2])
    aod = sc.aod_spread_median * 10.0 ** (0.1 * sc.aod_spread_db_std * z[:, 3])
    eoa = sc.eoa_spread_median * 10.0 ** (0.1 * sc.eoa_spread_db_std * z[:, 4])
    aoa = sc.aoa_spread_median * 10.0 ** (0.1 * sc.aoa_spread_db_std * z[:, 5])
    return shadow, tau, eod, aod, eoa, aoa


def _mpc_amplitudes(sc, normals):
    """Complex MPC amplitudes [T, n] from 2n normals: unit total power (Rayleigh) or equal power."""
    n = sc.n_mpc
    p = normals[:, :n] + 1j * normals[:, n:2 * n]
    if math.isinf(sc.mpc_gain_radius_db_mean):
        return p / np.sqrt(np.sum(np.abs(p) ** 2, axis=1, keepdims=True))
    return np.sqrt(1.0 / n) * np.exp(1j * np.angle(p))


def _mpc_gain(sc, centers, radius_normals, ue_xy, clip):
    """MPC gain function (amplitude) [T, n]; 1 where the scenario disables it."""
    if math.isinf(sc.mpc_gain_radius_db_mean):
        return np.ones(radius_normals.shape)
    k = math.log(10.0) / 10.0
    radius = np.exp(radius_normals * sc.mpc_gain_radius_db_std * k + sc.mpc_gain_radius_db_mean * k)
    if clip:
        radius = np.clip(radius, sc.vr_transition, sc.vr_radius)
    d2 = np.sum((centers - ue_xy[:, None, :]) ** 2, axis=-1)
    gain = np.exp(-d2 / (2.0 * radius ** 2))
    return np.where(gain ** 2 < 0.1, 0.0, gain)  # MPCs below -10 dB are dropped


def _direction_fields(m_bs, m_ms, bs, ue):
    aod, eod = _az_el(m_bs - bs[:, None, :])
    aoa, eoa = _az_el(m_ms - ue[:, None, :])
    return aod, eod, aoa, eoa


def _far_clusters(sc, d, bs, ue, pl_amp, tau0, chol):
    """MPCs and cluster records of all far clusters of the batch, flat over clusters [T]."""
    fn, fu, n = d["far_n"], d["far_u"], sc.n_mpc
    z = _correlate(fn[:, :6], chol)
    shadow, tau_c, eod_s, aod_s, eoa_s, aoa_s = _spreads(sc, z)
    single = fu[:, 0] < sc.single_cluster_ratio
    r_min, r_max = sc.cluster_distance_range
    r1 = r_min + fu[:, 1] * (r_max - r_min)
    az_m, az_s = sc.cluster_azimuth_offset_deg
    el_m, el_s = sc.cluster_elevation_offset_deg
    ref = d["ref"]
    phi0 = np.arctan2(ref[:, 1] - bs[:, 1], ref[:, 0] - bs[:, 0])
    phi1 = phi0 + np.deg2rad(az_m + az_s * fn[:, 6])
    th1 = np.deg2rad(el_m + el_s * fn[:, 7])
    c_bs = bs + r1[:, None] * _unit(phi1, th1)
    half = np.deg2rad(0.5)
    d_tau = tau_c * SPEED_OF_LIGHT / 2.0
    size_bs = np.stack([d_tau, r1 * np.tan(aod_s * half), r1 * np.tan(eod_s * half)], axis=1)
    d_ms = r1 * np.tan(aod_s * half) / np.tan(aoa_s * half)
    phi2 = phi0 + np.deg2rad(az_m + az_s * fn[:, 8])
    th2 = np.deg2rad(el_m + el_s * fn[:, 9])
    ref3 = np.concatenate([ref, np.zeros((ref.shape[0], 1))], axis=1)
    c_ms = np.where(single[:, None], c_bs, ref3 + d_ms[:, None] * _unit(phi2, th2))
    size_ms = np.where(single[:, None], size_bs,
                       np.stack([d_tau, d_ms * np.tan(aoa_s * half), d_ms * np.tan(eoa_s * half)], axis=1))
    link = np.where(single, 0.0, sc.link_delay_min - sc.link_delay_mean * np.log1p(-fu[:, 2]))
    # MPC positions: same Gaussian draw on both sides; BS side in the frame pointing at the BS,
    # MS side in the frame pointing at the (reference) VR centre.
    offsets = fn[:, 10:10 + 3 * n].reshape(-1, n, 3)
    az_b, el_b = _az_el(bs - c_bs)
    m_bs = _mpc_positions(c_bs, offsets, size_bs, az_b, el_b)
    az_v, el_v = _az_el(ref3 - c_ms)
    m_ms = np.where(single[:, None, None], m_bs, _mpc_positions(c_ms, offsets, size_ms, az_v, el_v))
    delay = (np.linalg.norm(m_bs - bs[:, None, :], axis=-1) + np.linalg.norm(m_ms - ue[:, None, :], axis=-1)
             ) / SPEED_OF_LIGHT + link[:, None]
    aod, eod, aoa, eoa = _direction_fields(m_bs, m_ms, bs, ue)
    # Powers: VR gain (amplitude), delay attenuation and shadowing (power), MPC gains.
    cl_delay = (np.linalg.norm(c_bs - bs, axis=-1) + np.linalg.norm(c_ms - ue, axis=-1)) / SPEED_OF_LIGHT + link
    att = cluster_delay_attenuation(sc, cl_delay, tau0)
    if sc.vr_transition > 0:
        y = d["dist"] - (sc.vr_radius - sc.vr_transition)
        a_vr = 0.5 - np.arctan(2.0 * math.sqrt(2.0) * y / math.sqrt(sc.wavelength * sc.vr_transition)) / np.pi
    else:
        a_vr = np.ones_like(d["dist"])
    ang = 2.0 * np.pi * fu[:, 3 + n:3 + 2 * n]
    rad = sc.vr_radius * np.sqrt(fu[:, 3:3 + n])
    centers = d["eff"][:, None, :] + np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=-1)
    g_mpc = _mpc_gain(sc, centers, fn[:, 10 + 5 * n:10 + 6 * n], ue[:, :2], clip=True)
    amp = _mpc_amplitudes(sc, fn[:, 10 + 3 * n:10 + 5 * n])
    gain = (a_vr * np.sqrt(att * shadow) * pl_amp)[:, None] * g_mpc * amp
    kind = np.where(single, KIND_FAR_SINGLE, KIND_FAR_TWIN).astype(np.int8)
    return dict(delay=delay, aod=aod, eod=eod, aoa=aoa, eoa=eoa, gain=gain, kind=kind, cl_delay=cl_delay,
                link=link, att=att, a_vr=a_vr, shadow=shadow, c_bs=c_bs, c_ms=c_ms)


def _local_clusters(sc, local_n, bs, ue, pl_amp, tau0, chol, at_bs):
    """MPCs and records of one local cluster per drop [n] (at the UE, or at the BS)."""
    n = sc.n_mpc
    z = _correlate(local_n[:, :6], chol)
    shadow, tau_c, *_ = _spreads(sc, z)
    d_tau = tau_c * SPEED_OF_LIGHT / 2.0
    center = bs if at_bs else ue
    sizes = np.stack([d_tau, d_tau, d_tau / 20.0], axis=1)
    offsets = local_n[:, 6:6 + 3 * n].reshape(-1, n, 3) * (sizes[:, None, :] / 3.0)
    m = center[:, None, :] + offsets  # no rotation for local clusters
    delay = (np.linalg.norm(m - bs[:, None, :], axis=-1) + np.linalg.norm(m - ue[:, None, :], axis=-1)
             ) / SPEED_OF_LIGHT
    aod, eod, aoa, eoa = _direction_fields(m, m, bs, ue)
    if at_bs:
        g_mpc = np.ones((center.shape[0], n))
    else:
        g_mpc = _mpc_gain(sc, m[..., :2], local_n[:, 6 + 5 * n:6 + 6 * n], ue[:, :2], clip=False)
    amp = _mpc_amplitudes(sc, local_n[:, 6 + 3 * n:6 + 5 * n])
    gain = (np.sqrt(shadow) * pl_amp)[:, None] * g_mpc * amp
    cl_delay = (np.linalg.norm(center - bs, axis=-1) + np.linalg.norm(center - ue, axis=-1)) / SPEED_OF_LIGHT
    ones = np.ones(center.shape[0])
    return dict(delay=delay, aod=aod, eod=eod, aoa=aoa, eoa=eoa, gain=gain, kind=np.full(center.shape[0], KIND_LOCAL,
                np.int8), cl_delay=cl_delay, link=0.0 * ones, att=ones, a_vr=ones, shadow=shadow, c_bs=center,
                c_ms=center)


def _check_positive(name, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive finite number. Received: {name}={value!r}")
    return float(value)


def _entropy(rng):
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise ValueError(f"`rng` must be a non-negative int seed or a numpy Generator. Received: rng={rng!r}")
        return int(rng)
    return int(as_generator(rng).integers(0, 2 ** 63))


def generate_drops(scenario, n, rng, *, start=0, bs_position=(0.0, 0.0, 0.0), ue_positions=None, square=None,
                   require_far_cluster=True, los_transition=False, min_distance=0.1):
    """Draws ``n`` independent drops (static single-link snapshots) of a COST 2100 scenario.

    Geometry of the CsiNet recipe: the BS at ``bs_position``, the UE uniform in the square of side
    ``square`` centred on the BS, at height 0; the VR cell is the disc of ``scenario.cell_radius``
    centred on the BS.

    Args:
        scenario: a :class:`Cost2100Scenario` or its name in :data:`SCENARIOS`.
        n: number of drops, int >= 0.
        rng: int seed (>= 0) or ``numpy.random.Generator`` (one integer is drawn from it as the
            seed). Drop ``i`` uses ``SeedSequence(seed, spawn_key=(i,))``: shard-stable.
        start: global index of the first drop (drops ``start .. start + n - 1``), int >= 0.
        bs_position: BS position ``(x, y, z)`` [m].
        ue_positions: optional ``[n, 2]`` or ``[n, 3]`` UE positions [m] (z = 0 when 2 columns);
            ``None`` draws them in the square.
        square: side of the UE square [m]; default ``scenario.square_side`` (20 m indoor, 400 m
            outdoor).
        require_far_cluster: redraw the environment of a drop until it has an active far cluster (the
            reference stops with an error otherwise).
        los_transition: scale the LOS amplitude by its VR transition function (the published model);
            the reference computes it but does not apply it (default False).
        min_distance: smallest BS-UE distance used in the path loss [m] (the free-space formula
            diverges at 0).

    Returns:
        :class:`Cost2100Drops` with ``n`` drops.

    Raises:
        ValueError: a bad argument (the message names it).
    """
    sc = get_scenario(scenario)
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
        raise ValueError(f"`n` must be an int >= 0. Received: n={n!r}")
    if not isinstance(start, numbers.Integral) or isinstance(start, bool) or start < 0:
        raise ValueError(f"`start` must be an int >= 0. Received: start={start!r}")
    n, start = int(n), int(start)
    bs = np.asarray(bs_position, dtype=np.float64)
    if bs.shape != (3,) or not np.all(np.isfinite(bs)):
        raise ValueError(f"`bs_position` must be 3 finite numbers (x, y, z) [m]. Received: bs_position={bs_position!r}")
    square = sc.square_side if square is None else _check_positive("square", square)
    min_distance = _check_positive("min_distance", min_distance)
    ues = None
    if ue_positions is not None:
        ues = np.asarray(ue_positions, dtype=np.float64)
        if ues.ndim != 2 or ues.shape[0] != n or ues.shape[1] not in (2, 3) or not np.all(np.isfinite(ues)):
            raise ValueError(f"`ue_positions` must be finite, of shape [n, 2] or [n, 3] with n={n}. "
                             f"Received: ue_positions of shape {ues.shape}")
        if ues.shape[1] == 2:
            ues = np.concatenate([ues, np.zeros((n, 1))], axis=1)
    entropy = _entropy(rng)
    chol = np.linalg.cholesky(np.asarray(sc.cross_correlation, dtype=np.float64))

    draws = [_draw_drop(_drop_generator(entropy, start + k), sc, bs, None if ues is None else ues[k], square,
                        require_far_cluster) for k in range(n)]

    n_local, n_mpc = sc.n_local_clusters, sc.n_mpc
    n_far = np.array([d["dist"].size for d in draws], dtype=np.int64)
    n_cl = n_local + (int(n_far.max()) if n else 0)
    width = 1 + n_cl * n_mpc
    ue = np.array([d["ue"] for d in draws]).reshape(n, 3)
    bs_all = np.broadcast_to(bs, (n, 3)).copy()
    dist3 = np.linalg.norm(ue - bs_all, axis=1)
    pl_db = path_loss_db(sc, np.maximum(dist3, min_distance))
    pl_amp = 10.0 ** (-pl_db / 20.0)
    tau0 = dist3 / SPEED_OF_LIGHT

    out = {name: np.zeros((n, width)) for name in ("delay", "aod", "eod", "aoa", "eoa")}
    out["gain"] = np.zeros((n, width), dtype=np.complex128)
    out["cluster"] = np.full((n, width), -2, dtype=np.int32)
    out["kind"] = np.full((n, width), KIND_PAD, dtype=np.int8)
    cl = {"cluster_kind": np.full((n, n_cl), KIND_PAD, dtype=np.int8)}
    for name in ("cluster_delay", "cluster_link_delay", "cluster_attenuation", "cluster_vr_gain", "cluster_shadowing"):
        cl[name] = np.zeros((n, n_cl))
    cl["cluster_position_bs"] = np.zeros((n, n_cl, 3))
    cl["cluster_position_ms"] = np.zeros((n, n_cl, 3))

    def put(rows, slot, res):
        """Writes clusters ``res`` (flat over ``rows``) into cluster slot(s) ``slot``."""
        cols = 1 + slot[:, None] * n_mpc + np.arange(n_mpc)[None, :]
        r2 = rows[:, None]
        for name in ("delay", "aod", "eod", "aoa", "eoa", "gain"):
            out[name][r2, cols] = res[name]
        out["cluster"][r2, cols] = slot[:, None]
        out["kind"][r2, cols] = res["kind"][:, None]
        cl["cluster_kind"][rows, slot] = res["kind"]
        for name, key in (("cluster_delay", "cl_delay"), ("cluster_link_delay", "link"),
                          ("cluster_attenuation", "att"), ("cluster_vr_gain", "a_vr"), ("cluster_shadowing", "shadow"),
                          ("cluster_position_bs", "c_bs"), ("cluster_position_ms", "c_ms")):
            cl[name][rows, slot] = res[key]

    rows_all = np.arange(n)
    local_n = np.array([d["local_n"] for d in draws]).reshape(n, n_local, _local_normals(sc))
    slot = 0
    for at_bs, active in ((False, sc.ms_local_cluster), (True, sc.bs_local_cluster)):
        if active:
            res = _local_clusters(sc, local_n[:, slot], bs_all, ue, pl_amp, tau0, chol, at_bs)
            put(rows_all, np.full(n, slot), res)
            slot += 1
    if n_far.sum():
        rows = np.repeat(rows_all, n_far)
        j = np.arange(rows.size) - np.repeat(np.cumsum(n_far) - n_far, n_far)
        keys = ("eff", "dist", "ref", "far_n", "far_u")
        flat = {key: np.concatenate([d[key] for d in draws], axis=0) for key in keys}
        res = _far_clusters(sc, flat, bs_all[rows], ue[rows], pl_amp[rows], tau0[rows], chol)
        put(rows, n_local + j, res)

    # LOS: entry 0; power K times the power of everything else.
    los_vr = np.array([d["los_vr"] for d in draws]).reshape(n, 2)
    k_los = 10.0 ** ((sc.los_power_factor_db_mean + sc.los_power_factor_db_std * np.array(
        [d["los_n"] for d in draws])) / 10.0)
    d_vr = np.hypot(*(ue[:, :2] - los_vr).T)
    visible = (dist3 <= sc.los_cutoff_distance) & (d_vr <= sc.los_vr_radius)
    # Per-cluster sums, then a sequential sum over clusters: the padding cannot change the result,
    # so a drop is bit-identical whatever batch it is generated in.
    per_cluster = np.sum((np.abs(out["gain"][:, 1:]) ** 2).reshape(n, n_cl, n_mpc), axis=2)
    p_other = np.cumsum(per_cluster, axis=1)[:, -1] if n_cl else np.zeros(n)
    amp = np.where(visible, np.sqrt(k_los * p_other), 0.0)
    if los_transition and sc.los_vr_transition > 0:
        y = d_vr - (sc.los_vr_radius - sc.los_vr_transition)
        ramp = 2.0 * math.sqrt(2.0) * y / math.sqrt(sc.wavelength * sc.los_vr_transition)
        amp = amp * (0.5 - np.arctan(ramp) / np.pi)
    out["gain"][:, 0] = amp
    out["delay"][:, 0] = tau0
    out["aod"][:, 0], out["eod"][:, 0] = _az_el(ue - bs_all)
    out["aoa"][:, 0], out["eoa"][:, 0] = _az_el(bs_all - ue)
    out["cluster"][:, 0] = -1
    out["kind"][:, 0] = KIND_LOS

    vr_density = np.array([d["n_c_far"] for d in draws]) / (math.pi * (sc.vr_radius - sc.vr_transition) ** 2)
    return Cost2100Drops(
        scenario=sc.name, index=np.arange(start, start + n, dtype=np.int64), **out,
        n_active_clusters=n_far, bs_position=bs_all, ue_position=ue, vr_density=vr_density.reshape(n),
        path_loss_db=pl_db, los_visible=visible, los_power_factor=k_los.reshape(n), los_vr_center=los_vr, **cl,
    )


# --------------------------------------------------------------------------------------------------
# Frequency response of a ULA at the BS
# --------------------------------------------------------------------------------------------------
def subcarrier_frequencies(n_subcarriers, bandwidth, carrier):
    """Absolute subcarrier frequencies [Hz]: ``f_m = carrier + (m - n // 2) * bandwidth / n``, m = 0..n-1."""
    m = np.arange(n_subcarriers, dtype=np.float64)
    return carrier + (m - n_subcarriers // 2) * (bandwidth / n_subcarriers)


def _array_settings(drops, n_antennas, n_subcarriers, bandwidth, carrier, spacing, steering_sign, array_axis):
    """The checked ``(bandwidth, carrier, spacing)`` of :func:`frequency_response`'s arguments."""
    if not isinstance(drops, Cost2100Drops):
        raise ValueError(f"`drops` must be a Cost2100Drops. Received: drops of type {type(drops).__name__}")
    sc = get_scenario(drops.scenario)
    for name, value in (("n_antennas", n_antennas), ("n_subcarriers", n_subcarriers)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    bandwidth = sc.default_bandwidth if bandwidth is None else _check_positive("bandwidth", bandwidth)
    carrier = sc.carrier if carrier is None else _check_positive("carrier", carrier)
    spacing = _check_positive("spacing", spacing)
    if steering_sign not in (1, -1) or isinstance(steering_sign, bool):
        raise ValueError(f"`steering_sign` must be +1 or -1. Received: steering_sign={steering_sign!r}")
    if array_axis not in ("x", "y"):
        raise ValueError(f"`array_axis` must be 'x' or 'y'. Received: array_axis={array_axis!r}")
    return bandwidth, carrier, spacing


def _array_projection(aod, eod, array_axis, include_elevation):
    """Direction cosine of departures ``[..., L]`` on the array axis (see :func:`frequency_response`)."""
    u = np.cos(aod) if array_axis == "x" else np.sin(aod)
    return u * np.cos(eod) if include_elevation else u


def frequency_response(drops, n_antennas=32, n_subcarriers=1024, bandwidth=None, carrier=None, spacing=0.5,
                       steering_sign=-1, *, array_axis="x", include_elevation=True, chunk_bytes=8 << 20):
    """Frequency response of a BS uniform linear array to a single-antenna UE, complex64 ``[n, N_t, N_f]``.

    ``H[i, t, m] = sum_k gain_k * a_t(aod_k, eod_k) * exp(-j 2 pi f_m delay_k)`` with

    * ``f_m = carrier + (m - N_f // 2) * bandwidth / N_f``, ``m = 0 .. N_f - 1``: absolute
      frequencies, as the reference's own frequency responses (so the LOS and every MPC keep the phase
      ``-2 pi f_m tau`` of their absolute delay);
    * ``a_t = exp(steering_sign * j 2 pi spacing t u_k)``, ``t = 0 .. N_t - 1``: element ``t`` at
      ``t * spacing * lambda_c`` from the BS position along the array axis; azimuths are measured from
      the +x axis counter-clockwise. ``array_axis="x"`` (default, the axis of the reference's array
      helpers and large arrays): ``u = cos(aod)``; ``"y"``: ``u = sin(aod)`` (angle from broadside
      +x). ``include_elevation`` multiplies ``u`` by ``cos(eod)`` (the exact plane-wave projection;
      the reference's array helper uses the azimuth only). ``steering_sign=+1`` is the physical sign
      for this layout and the ``exp(-j 2 pi f tau)`` convention; -1 (default, the convention of the
      reference's ``exp(-j pi (n-1) cos(AoD))``) is the same array mirrored. The steering uses the
      carrier wavelength on every subcarrier (narrowband array: no beam squint).

    Args:
        drops: :class:`Cost2100Drops`.
        n_antennas: ``N_t``, int >= 1.
        n_subcarriers: ``N_f``, int >= 1.
        bandwidth: [Hz]; default the scenario's ``default_bandwidth``: 20 MHz for both, the width of
            the reference's demo bands (5.29-5.31 GHz, 275-295 MHz); the CsiNet authors never
            published theirs.
        carrier: [Hz]; default the scenario's carrier (5.3 GHz, 300 MHz).
        spacing: element spacing in carrier wavelengths, > 0.
        steering_sign: +1 or -1.
        array_axis: ``"x"`` or ``"y"``.
        include_elevation: project on the array axis with the elevation (True) or the azimuth only.
        chunk_bytes: memory budget of one chunk of drops for the ``[L, N_f]`` phase matrices.

    Cost: one complex64 ``[N_t, L] x [L, N_f]`` product per drop (``L`` its MPCs: about 34 indoors,
    700 / 1200 outdoors LOS / NLOS). The products are small: run with one BLAS thread per process
    (``OPENBLAS_NUM_THREADS=1``, one process per core); multi-threaded OpenBLAS was 5-50 times slower
    on them on a loaded 2-core machine.

    Returns:
        complex64 ``[n, n_antennas, n_subcarriers]``.
    """
    bandwidth, carrier, spacing = _array_settings(drops, n_antennas, n_subcarriers, bandwidth, carrier, spacing,
                                                  steering_sign, array_axis)
    n, n_t, n_f = len(drops), int(n_antennas), int(n_subcarriers)
    H = np.zeros((n, n_t, n_f), dtype=np.complex64)
    if n == 0:
        return H
    df = bandwidth / n_f
    f0 = carrier - (n_f // 2) * df
    block = int(math.ceil(math.sqrt(n_f)))
    coarse = f0 + np.arange(block) * block * df  # f_m = coarse[a] + fine[b], m = a * block + b
    fine = np.arange(block) * df
    t = np.arange(n_t)
    # Work on the valid MPCs only, moved to the front, with drops sorted by their number of MPCs so
    # that a chunk pads little.
    valid = drops.valid
    counts = valid.sum(axis=1)
    front = np.argsort(~valid, axis=1, kind="stable")[:, :max(1, int(counts.max()))]
    order = np.argsort(counts, kind="stable")
    lo = 0
    while lo < n:
        width = max(1, int(counts[order[lo]]))
        chunk = max(1, int(chunk_bytes // (width * block * block * 8)))
        hi = min(n, lo + chunk)
        width = max(1, int(counts[order[hi - 1]]))
        rows = order[lo:hi]
        cols = front[rows, :width]
        keep = np.arange(width)[None, :] < counts[rows][:, None]
        g = np.where(keep, np.take_along_axis(drops.gain[rows], cols, axis=1), 0.0)
        tau = np.take_along_axis(drops.delay[rows], cols, axis=1)
        aod = np.take_along_axis(drops.aod[rows], cols, axis=1)
        u = _array_projection(aod, np.take_along_axis(drops.eod[rows], cols, axis=1), array_axis, include_elevation)
        steer = np.exp(1j * steering_sign * 2.0 * np.pi * spacing * t[None, :, None] * u[:, None, :])
        weights = (steer * g[:, None, :]).astype(np.complex64)  # [c, N_t, L]
        p = np.exp(-2j * np.pi * (tau[..., None] * coarse)).astype(np.complex64)  # [c, L, block]
        q = np.exp(-2j * np.pi * (tau[..., None] * fine)).astype(np.complex64)
        e = (p[..., :, None] * q[..., None, :]).reshape(hi - lo, width, block * block)[..., :n_f]
        H[rows] = np.matmul(weights, e)
        lo = hi
    return H


def angular_delay_response(drops, n_delay=32, n_antennas=32, n_subcarriers=1024, bandwidth=None, carrier=None,
                           spacing=0.5, steering_sign=-1, *, array_axis="x", include_elevation=True, chunk=16):
    """The first ``n_delay`` taps of the angular-delay matrix of :func:`frequency_response`, in closed form.

    Equal, to float32 precision, to ``to_angular_delay(frequency_response(drops, n_antennas, n_subcarriers,
    ...), n_delay)`` (angle order ``"dft"``) without building the ``[N_t, N_f]`` response: each MPC is a
    plane wave of spatial frequency ``steering_sign * spacing * u_k`` and delay ``delay_k * bandwidth``
    taps, with the first subcarrier at ``carrier - (N_f // 2) * bandwidth / N_f``, which
    :func:`mimokd.channels.transforms.angular_delay_of_paths` turns into the angular-delay matrix
    directly. Outdoors (700-1200 MPCs) this is the dataset generator's fast path: about ``N_f /
    (N_t + n_delay)`` times fewer operations per drop than the response and its FFTs.

    Args:
        drops: :class:`Cost2100Drops`.
        n_delay: taps kept, ``1 <= n_delay <= n_subcarriers``.
        n_antennas, n_subcarriers, bandwidth, carrier, spacing, steering_sign, array_axis,
            include_elevation: as :func:`frequency_response`.
        chunk: drops per step: small enough that its ``[chunk, L, N_t]`` kernels stay in the CPU cache (16
            was twice as fast as 64 outdoors; memory about ``chunk * L * (N_t + 3 n_delay) * 8`` bytes).

    Returns:
        complex64 ``[n, n_antennas, n_delay]`` = ``[drop, angle, delay]``.
    """
    bandwidth, carrier, spacing = _array_settings(drops, n_antennas, n_subcarriers, bandwidth, carrier, spacing,
                                                  steering_sign, array_axis)
    if not isinstance(n_delay, numbers.Integral) or isinstance(n_delay, bool) or not 1 <= n_delay <= n_subcarriers:
        raise ValueError(f"`n_delay` must be an int in [1, n_subcarriers={n_subcarriers}]. "
                         f"Received: n_delay={n_delay!r}")
    first_frequency = carrier / bandwidth - (n_subcarriers // 2) / n_subcarriers
    out = np.zeros((len(drops), n_antennas, n_delay), np.complex64)
    for lo in range(0, len(drops), chunk):
        part = slice(lo, lo + chunk)
        valid = drops.valid[part]
        width = max(1, int(valid.sum(axis=1).max()))
        front = np.argsort(~valid, axis=1, kind="stable")[:, :width]  # valid MPCs first
        keep = np.take_along_axis(valid, front, axis=1)

        def take(field):
            return np.where(keep, np.take_along_axis(field[part], front, axis=1), 0)

        u = _array_projection(take(drops.aod), take(drops.eod), array_axis, include_elevation)
        out[part] = angular_delay_of_paths(take(drops.gain), steering_sign * spacing * u, take(drops.delay) * bandwidth,
                                           n_antennas, n_subcarriers, n_delay, first_frequency)
    return out
