"""3GPP TR 38.901 channels for Cui et al.'s scenario datasets: UMi-Street Canyon LOS / NLOS, InH-Office LOS.

The stochastic drop-based model of TR 38.901 Sec. 7.5 (steps 1-11, step 12 optional), with the
spatial consistency procedure of Sec. 7.6.3.1, written in numpy. The parameter values are those of
TR 38.901 **V16.1.0** (the release QuaDRiGa's ``3GPP_38.901_*`` configurations implement, which is
what the paper used; Rel-19 changed several UMi values):

* Table 7.4.1-1: path loss and shadow-fading standard deviation;
* Table 7.5-6 (Part-1 UMi-Street Canyon, Part-2 InH-Office): LSP distributions, their
  cross-correlations and correlation distances, delay scaling ``r_tau``, number of clusters,
  cluster delay spread ``c_DS``, cluster ASD ``c_ASD``, per-cluster shadowing ``zeta``;
* Table 7.5-8 (UMi) / 7.5-10 (InH): ZSD and ZOD offset;
* Tables 7.5-2 / 7.5-4: the scaling factors ``C_phi^NLOS`` / ``C_theta^NLOS``;
* Tables 7.5-3 / 7.5-5: ray offset angles and the sub-cluster mapping of the two strongest clusters;
* Table 7.6.3.1-2: correlation distance of the cluster- and ray-specific random variables
  (UMi LOS 12 m, the "correlation distance" of the paper's Table I; UMi NLOS 15 m; indoor 10 m).

Geometry (step 1): the BS at the origin, height ``bs_height_m``, with a half-wavelength ULA of
omnidirectional, vertically polarized elements along the y axis (element ``s`` at
``y = s * antenna_spacing * lambda``); the UE has one omnidirectional, vertically polarized antenna
at height ``ue_height_m``, dropped uniformly over the annulus ``min_distance_m <= d2D <=
cell_radius_m`` (or over a disc ``region``). The propagation condition (step 2) is fixed by the
scenario (the paper's LOS and NLOS datasets), not drawn from the LOS probability.

What is left out, exactly: with one omnidirectional UE antenna and vertical polarization at both
ends, eq. (7.5-22) reduces to ``sqrt(P_n / M) exp(j Phi_nm) exp(j 2 pi r_tx . d_tx / lambda)``:
arrival angles (AOA, ZOA, ASA, ZSA), the XPR and the three cross-polar phases do not enter the
channel, so they are not generated (the LSP vector keeps the SF, K, DS, ASD and ZSD entries of
Table 7.5-6 and their cross-correlation sub-matrix, which is the exact joint law of those five).
The UE is static (no Doppler term), and there is no oxygen absorption, blockage or O2I loss.

Randomness, and why a drop does not depend on the batching:

* ``seed`` and the drop's absolute index ``i`` give the generator
  ``SeedSequence(seed, spawn_key=(0, i))``; it draws the UE position, and, without spatial
  consistency, every other random variable of the drop.
* With ``spatial_consistency=True`` (the default, as in the paper), the LSPs (step 4) and the
  cluster / ray random variables (steps 5-10: cluster delays, shadowing, angle signs and offsets,
  ray coupling, initial phases) are values at the UE position of standard Gaussian random fields
  over the horizontal plane with the exponential autocorrelation ``exp(-d / d_corr)`` of 38.901,
  made by a sum of sinusoids (the method QuaDRiGa uses). The fields are one "environment" fixed by
  ``environment_seed`` (``SeedSequence(environment_seed, spawn_key=(1,))``), shared by all drops,
  seeds, train / test splits and regions of a scenario. A uniform variable is ``Phi(z)`` of a field
  ``z`` (``Phi`` the standard normal CDF), a sign is ``sign(z)``, and the ray coupling is the
  ordering of 20 fields. Each field is a deterministic function of the position, and every array
  operation below works drop by drop (elementwise products, sums over non-batch axes, row-wise
  sorts; no BLAS, whose results for one row can change with the number of rows), so drop ``i``
  is bit-identical whatever ``n`` and ``start`` are.
* The exponential autocorrelation is rough at small distances (increments grow like
  ``sqrt(distance)``): two drops 1 cm apart in UMi NLOS have a channel cosine similarity of about
  0.8, 5 cm apart about 0.4, and co-located drops the same channel.

Output (:func:`generate_frequency_response`): complex64 ``[n, num_antennas, num_subcarriers]``,
``H[s, k] = sum_p g_p exp(j 2 pi s (d / lambda) sin(ZOD_p) sin(AOD_p)) exp(-j 2 pi k df tau_p)``
with ``df = bandwidth / num_subcarriers`` and delays relative to the first arrival: the
spatial-frequency matrix that :func:`mimokd.channels.transforms.to_angular_delay` takes (a ray of
direction cosine ``u`` lands in angular bin ``u * Nt`` mod ``Nt``, a delay ``tau`` in tap
``tau * bandwidth``). By default path loss and shadow fading are left out (``include_path_loss=False``:
the channel of step 11, total power 1 per antenna pair on average); ``include_path_loss=True``
applies step 12, amplitude ``10 ** ((-PL + SF) / 20)`` (``SF > 0`` is a stronger signal, the
convention under which Table 7.5-6 correlates SF negatively with DS).

Public API: :data:`SCENARIOS_38901`, :class:`Scenario38901`, :func:`get_scenario_38901`,
:func:`generate_frequency_response`, :func:`generate_rays` / :class:`Rays` /
:func:`rays_to_frequency` (the ray level, for checks), :func:`ue_positions`, :func:`path_loss_db`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr
from tqdm.auto import tqdm

#: Speed of light [m/s].
SPEED_OF_LIGHT = 299_792_458.0

# Table 7.5-3: ray offset angles alpha_m of rays m = 1..20 (rms angle spread normalized to 1).
_RAY_OFFSETS = np.repeat([0.0447, 0.1413, 0.2492, 0.3715, 0.5129, 0.6797, 0.8844, 1.1481, 1.5195, 2.1551], 2)
_RAY_OFFSETS[1::2] *= -1
_NUM_RAYS = _RAY_OFFSETS.size
# Table 7.5-5: sub-cluster (0, 1, 2) of rays 1..20 in the two strongest clusters, and its delay in c_DS.
_SUBCLUSTER = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 0, 0])
_SUBCLUSTER_DELAY = np.array([0.0, 1.28, 2.56])
# Number of sinusoids of each spatially consistent random field.
_SOS_TERMS = 128
# Drops generated together, and sinusoids summed together (memory only: results do not depend on them).
_CHUNK = 256
_TERM_BLOCK = 16
# spawn_key[0] of the drops' and of the environment's random streams.
_DROP_STREAM, _ENVIRONMENT_STREAM = 0, 1


# --------------------------------------------------------------------------------------------------
# TR 38.901 V16.1.0 parameter tables
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Tables:
    """One (scenario, condition) column of TR 38.901 Tables 7.5-6, 7.5-2, 7.5-4, 7.6.3.1-2.

    ``lg_ds`` / ``lg_asd`` are ``(a, b, c, e)``: ``mu = a x + b``, ``sigma = c x + e`` with
    ``x = log10(1 + fc / 1 GHz)`` and ``fc`` raised to ``min_fc_ghz`` (the table's notes).
    """

    lsps: tuple  # order of the LSP vector of step 4 (a subset of sf, k, ds, asd, zsd)
    correlation: dict  # cross-correlations of Table 7.5-6, {(lsp, lsp): value}
    correlation_distance_m: tuple  # of each LSP, Table 7.5-6
    lg_ds: tuple
    lg_asd: tuple
    k_db: tuple | None  # (mu, sigma) of the Ricean K-factor, LOS only
    sf_db: float  # shadow-fading std, Table 7.4.1-1
    r_tau: float
    num_clusters: int
    cluster_ds_s: float  # c_DS; 3.91 ns where Table 7.5-6 has N/A (step 11)
    cluster_asd_deg: float
    cluster_shadowing_db: float  # zeta
    c_phi_nlos: float  # Table 7.5-2 at num_clusters
    c_theta_nlos: float  # Table 7.5-4 at num_clusters
    sc_distance_m: float  # Table 7.6.3.1-2
    min_fc_ghz: float

    def correlation_matrix(self):
        """The cross-correlation matrix of ``lsps``."""
        size = len(self.lsps)
        matrix = np.eye(size)
        for i in range(size):
            for j in range(i + 1, size):
                pair = (self.lsps[i], self.lsps[j])
                value = self.correlation.get(pair, self.correlation.get(pair[::-1], 0.0))
                matrix[i, j] = matrix[j, i] = value
        return matrix


_TABLES = {
    ("umi", True): _Tables(
        lsps=("sf", "k", "ds", "asd", "zsd"),
        correlation={("asd", "ds"): 0.5, ("ds", "sf"): -0.4, ("asd", "sf"): -0.5, ("asd", "k"): -0.2,
                     ("ds", "k"): -0.7, ("sf", "k"): 0.5, ("zsd", "asd"): 0.5},
        correlation_distance_m=(10.0, 15.0, 7.0, 8.0, 12.0),
        lg_ds=(-0.24, -7.14, 0.0, 0.38), lg_asd=(-0.05, 1.21, 0.0, 0.41), k_db=(9.0, 5.0), sf_db=4.0,
        r_tau=3.0, num_clusters=12, cluster_ds_s=5e-9, cluster_asd_deg=3.0, cluster_shadowing_db=3.0,
        c_phi_nlos=1.146, c_theta_nlos=1.104, sc_distance_m=12.0, min_fc_ghz=2.0,
    ),
    ("umi", False): _Tables(
        lsps=("sf", "ds", "asd", "zsd"),
        correlation={("ds", "sf"): -0.7, ("zsd", "ds"): -0.5, ("zsd", "asd"): 0.5},
        correlation_distance_m=(13.0, 10.0, 10.0, 10.0),
        lg_ds=(-0.24, -6.83, 0.16, 0.28), lg_asd=(-0.23, 1.53, 0.11, 0.33), k_db=None, sf_db=7.82,
        r_tau=2.1, num_clusters=19, cluster_ds_s=11e-9, cluster_asd_deg=10.0, cluster_shadowing_db=3.0,
        c_phi_nlos=1.273, c_theta_nlos=1.184, sc_distance_m=15.0, min_fc_ghz=2.0,
    ),
    ("inh", True): _Tables(
        lsps=("sf", "k", "ds", "asd", "zsd"),
        correlation={("asd", "ds"): 0.6, ("ds", "sf"): -0.8, ("asd", "sf"): -0.4, ("ds", "k"): -0.5,
                     ("sf", "k"): 0.5, ("zsd", "sf"): 0.2, ("zsd", "ds"): 0.1, ("zsd", "asd"): 0.5},
        correlation_distance_m=(10.0, 4.0, 8.0, 7.0, 4.0),
        lg_ds=(-0.01, -7.692, 0.0, 0.18), lg_asd=(0.0, 1.60, 0.0, 0.18), k_db=(7.0, 4.0), sf_db=3.0,
        r_tau=3.6, num_clusters=15, cluster_ds_s=3.91e-9, cluster_asd_deg=5.0, cluster_shadowing_db=6.0,
        c_phi_nlos=1.211, c_theta_nlos=1.1088, sc_distance_m=10.0, min_fc_ghz=6.0,
    ),
}


def _lg_zsd(environment, los, x, d2d, h_bs, h_ut):
    """``(mu_lgZSD, sigma_lgZSD, mu_offset,ZOD [deg])`` of Table 7.5-8 (UMi) / 7.5-10 (InH)."""
    zeros = np.zeros_like(d2d)
    if environment == "inh":
        return zeros + (-1.43 * x + 2.228), zeros + (0.13 * x + 0.30), zeros
    if los:
        return np.maximum(-0.21, -14.8 * d2d / 1000 + 0.01 * abs(h_ut - h_bs) + 0.83), zeros + 0.35, zeros
    mu = np.maximum(-0.5, -3.1 * d2d / 1000 + 0.01 * max(h_ut - h_bs, 0.0) + 0.2)
    offset = -(10.0 ** (-1.5 * np.log10(np.maximum(10.0, d2d)) + 3.3))
    return mu, zeros + 0.35, offset


def _path_loss(environment, los, d2d, d3d, fc_hz, h_bs, h_ut):
    """Path loss [dB] of Table 7.4.1-1 (UMi-Street Canyon LOS / NLOS, InH-Office LOS)."""
    fc_ghz = fc_hz / 1e9
    if environment == "inh":
        return 32.4 + 17.3 * np.log10(d3d) + 20 * np.log10(fc_ghz)
    breakpoint_m = 4 * (h_bs - 1.0) * (h_ut - 1.0) * fc_hz / SPEED_OF_LIGHT  # d'_BP, h_E = 1 m
    pl1 = 32.4 + 21 * np.log10(d3d) + 20 * np.log10(fc_ghz)
    pl2 = (32.4 + 40 * np.log10(d3d) + 20 * np.log10(fc_ghz)
           - 9.5 * np.log10(breakpoint_m ** 2 + (h_bs - h_ut) ** 2))
    pl_los = np.where(d2d <= breakpoint_m, pl1, pl2)
    if los:
        return pl_los
    pl_nlos = 35.3 * np.log10(d3d) + 22.4 + 21.3 * np.log10(fc_ghz) - 0.3 * (h_ut - 1.5)
    return np.maximum(pl_los, pl_nlos)


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------
def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _check_seed(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer. Received: {name}={value!r}")
    return int(value)


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < value < math.inf):
        raise ValueError(f"`{name}` must be a finite positive number. Received: {name}={value!r}")


# --------------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Scenario38901:
    """A TR 38.901 scenario and its deployment, as plain data (:data:`SCENARIOS_38901` names them).

    Attributes:
        name: the scenario's name.
        environment: ``"umi"`` (UMi-Street Canyon) or ``"inh"`` (InH-Office), TR 38.901 Sec. 7.2.
        los: the propagation condition of every drop (the paper's LOS / NLOS datasets).
        carrier_frequency_hz: ``fc``. The LSP tables use ``max(fc, 2 GHz)`` (UMi) or
            ``max(fc, 6 GHz)`` (InH), as their notes say.
        bandwidth_hz: width of the subcarrier grid; subcarrier ``k`` is at ``k * bandwidth / num_subcarriers``
            from the first one, so delay tap spacing is ``1 / bandwidth``.
        num_subcarriers: number of subcarriers ``Nsub``.
        num_antennas: number of BS ULA elements ``Nt``.
        antenna_spacing: ULA element spacing, in wavelengths.
        bs_height_m, ue_height_m: antenna heights.
        cell_radius_m, min_distance_m: UE drops are uniform over ``min_distance_m <= d2D <= cell_radius_m``.
        region: ``None``, or ``(x_m, y_m, radius_m)``: drops uniform over that disc instead (BS at
            the origin, the ULA along the y axis, so azimuth 0 is broadside); the disc must lie in
            the cell annulus.
        spatial_consistency: LSPs and cluster / ray random variables as spatially correlated fields
            (Sec. 7.5 step 4 and Sec. 7.6.3.1); ``False``: independent per drop.
        environment_seed: seed of those fields (the "environment"), the same for every split.
        include_path_loss: multiply by path loss and shadow fading (step 12).
        description: one line for listings.
    """

    name: str
    environment: str
    los: bool
    carrier_frequency_hz: float = 2.655e9
    bandwidth_hz: float = 70e6
    num_subcarriers: int = 32
    num_antennas: int = 32
    antenna_spacing: float = 0.5
    bs_height_m: float = 10.0
    ue_height_m: float = 1.5
    cell_radius_m: float = 100.0
    min_distance_m: float = 10.0
    region: tuple | None = None
    spatial_consistency: bool = True
    environment_seed: int = 0
    include_path_loss: bool = False
    description: str = ""

    def __post_init__(self):
        if (self.environment, bool(self.los)) not in _TABLES:
            known = [f"{env} {'LOS' if los else 'NLOS'}" for env, los in _TABLES]
            raise ValueError(f"No TR 38.901 tables for environment={self.environment!r}, los={self.los!r}; "
                             f"known: {known}")
        for field in ("carrier_frequency_hz", "bandwidth_hz", "antenna_spacing", "bs_height_m", "ue_height_m",
                      "cell_radius_m"):
            _check_positive(getattr(self, field), field)
        for field in ("num_subcarriers", "num_antennas"):
            _check_count(getattr(self, field), field)
        _check_seed(self.environment_seed, "environment_seed")
        if not (isinstance(self.min_distance_m, numbers.Real) and 0 <= self.min_distance_m < self.cell_radius_m):
            raise ValueError("`min_distance_m` must be in [0, cell_radius_m). "
                             f"Received: min_distance_m={self.min_distance_m!r}, cell_radius_m={self.cell_radius_m!r}")
        if self.region is not None:
            object.__setattr__(self, "region", self._checked_region())

    def _checked_region(self):
        try:
            x, y, radius = (float(v) for v in self.region)
        except (TypeError, ValueError):
            raise ValueError(
                f"`region` must be (x_m, y_m, radius_m) or None. Received: region={self.region!r}") from None
        centre = math.hypot(x, y)
        if not (math.isfinite(centre) and radius > 0 and centre - radius >= self.min_distance_m
                and centre + radius <= self.cell_radius_m):
            raise ValueError(
                f"`region` must be a disc of positive radius inside the cell annulus {self.min_distance_m:g} m "
                f"<= d2D <= {self.cell_radius_m:g} m (its centre is {centre:g} m from the BS). "
                f"Received: region={self.region!r}")
        return (x, y, radius)

    @property
    def tables(self):
        """The TR 38.901 V16.1.0 parameters of this scenario (private layout; for inspection)."""
        return _TABLES[(self.environment, bool(self.los))]

    @property
    def subcarrier_spacing_hz(self):
        return self.bandwidth_hz / self.num_subcarriers

    @property
    def wavelength_m(self):
        return SPEED_OF_LIGHT / self.carrier_frequency_hz


# UMi: the paper's Table I (and TR 38.901 Table 7.2-1: BS 10 m, minimum BS-UT distance 10 m).
_UMI = dict(environment="umi", carrier_frequency_hz=2.655e9, bandwidth_hz=70e6, bs_height_m=10.0,
            ue_height_m=1.5, cell_radius_m=100.0, min_distance_m=10.0)
# InH: the paper gives no indoor settings. BS / UE heights 3 m / 1 m and a 20 m cell (the indoor
# office layout's ISD is 20 m), TR 38.901 Table 7.2-2; the UMi carrier (the InH LSP tables use
# 6 GHz for any carrier below 6 GHz, so only the optional path loss depends on it).
_INH = dict(environment="inh", los=True, carrier_frequency_hz=2.655e9, bs_height_m=3.0, ue_height_m=1.0,
            cell_radius_m=20.0, min_distance_m=1.0)

#: The named scenarios: Table I of Cui et al. (UMi LOS / NLOS), two 10 m areas of UMi NLOS
#: (Table X), InH-Office LOS at 40 MHz and 10 MHz with 32 subcarriers (Table XI, "Indoor LOS").
SCENARIOS_38901 = {
    scenario.name: scenario
    for scenario in (
        Scenario38901("umi-los", los=True, **_UMI,
                      description="Cui et al. Table I: TR 38.901 UMi-Street Canyon LOS, 2.655 GHz, 70 MHz"),
        Scenario38901("umi-nlos", los=False, **_UMI,
                      description="TR 38.901 UMi-Street Canyon NLOS, Table I settings (Table IX dataset 2)"),
        Scenario38901("umi-nlos-area1", los=False, region=(50.0, 0.0, 10.0), **_UMI,
                      description="UMi NLOS, UEs within 10 m of (50 m, 0 m) (Table X dataset 1)"),
        Scenario38901("umi-nlos-area2", los=False, region=(35.0, 35.0, 10.0), **_UMI,
                      description="UMi NLOS, UEs within 10 m of (35 m, 35 m) (Table X dataset 2)"),
        Scenario38901("inh-los-40mhz", bandwidth_hz=40e6, **_INH,
                      description="TR 38.901 InH-Office LOS, 40 MHz, 32 subcarriers (Table XI dataset 1)"),
        Scenario38901("inh-los-10mhz", bandwidth_hz=10e6, **_INH,
                      description="TR 38.901 InH-Office LOS, 10 MHz, 32 subcarriers (Table XI dataset 2)"),
    )
}


def get_scenario_38901(scenario, **overrides):
    """A :class:`Scenario38901` from a name of :data:`SCENARIOS_38901` (or an instance), with overrides.

    Args:
        scenario: a name of :data:`SCENARIOS_38901` or a :class:`Scenario38901`.
        **overrides: fields of :class:`Scenario38901` to replace, e.g. ``region=(50, 0, 10)``,
            ``bandwidth_hz=40e6``, ``include_path_loss=True``.

    Raises:
        ValueError: unknown scenario name or field, or an invalid value.
    """
    if isinstance(scenario, Scenario38901):
        base = scenario
    elif isinstance(scenario, str) and scenario in SCENARIOS_38901:
        base = SCENARIOS_38901[scenario]
    else:
        raise ValueError(f"Unknown TR 38.901 scenario; expected one of {list(SCENARIOS_38901)} or a "
                         f"Scenario38901. Received: scenario={scenario!r}")
    fields = {f.name for f in dataclasses.fields(Scenario38901)} - {"name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"Unknown Scenario38901 field(s) {unknown}; expected some of {sorted(fields)}")
    return dataclasses.replace(base, **overrides) if overrides else base


# --------------------------------------------------------------------------------------------------
# Random variables: per drop, or spatially consistent fields
# --------------------------------------------------------------------------------------------------
def _num_ssp_fields(tables):
    """Cluster variables (delay, shadowing, AOD sign / offset, ZOD sign / offset) and ray variables
    (initial phase, coupling key) of steps 5-10."""
    return tables.num_clusters * (6 + 2 * _NUM_RAYS)


class _Fields(NamedTuple):
    """Sum-of-sinusoids random fields ``z(x) = sqrt(2 / S) sum_s cos(k_s . x + psi_s)``.

    With wave numbers ``|k| = sqrt((1 - u)^-2 - 1) / d_corr`` (``u`` uniform) and uniform directions,
    ``E[z(x) z(x + r)] = exp(-|r| / d_corr)``, the 2D exponential autocorrelation of TR 38.901.
    Group ``g < L`` is the field of LSP ``g`` (its own correlation distance); group ``L`` is shared
    by the cluster / ray fields (one correlation distance, Table 7.6.3.1-2), which differ in ``psi``.
    """

    wavevectors: np.ndarray  # [L + 1, S, 2] rad/m
    lsp_phases: np.ndarray  # [L, S]
    ssp_weights: np.ndarray  # [2 S, F]: cos(k.x + psi) = cos(k.x) cos(psi) - sin(k.x) sin(psi)


def _random_fields(scenario):
    tables = scenario.tables
    rng = np.random.default_rng(np.random.SeedSequence(scenario.environment_seed, spawn_key=(_ENVIRONMENT_STREAM,)))
    distances = np.array([*tables.correlation_distance_m, tables.sc_distance_m])
    u = rng.random((distances.size, _SOS_TERMS))
    wavenumber = np.sqrt(1.0 / (1.0 - u) ** 2 - 1.0) / distances[:, None]
    direction = rng.uniform(0.0, 2 * np.pi, u.shape)
    wavevectors = np.stack([wavenumber * np.cos(direction), wavenumber * np.sin(direction)], axis=-1)
    lsp_phases = rng.uniform(0.0, 2 * np.pi, (len(tables.lsps), _SOS_TERMS))
    psi = rng.uniform(0.0, 2 * np.pi, (_num_ssp_fields(tables), _SOS_TERMS))
    weights = np.sqrt(2.0 / _SOS_TERMS) * np.concatenate([np.cos(psi).T, -np.sin(psi).T])
    return _Fields(wavevectors, lsp_phases, np.ascontiguousarray(weights))


def _field_values(fields, positions):
    """Standard normal field values at ``positions [B, 2]``: LSP ``[B, L]`` and cluster / ray ``[B, F]``.

    Plain elementwise products and sums over a middle axis (no BLAS), so that a drop's values are
    bit-identical whatever the other drops of the batch.
    """
    k = fields.wavevectors
    phase = positions[:, None, None, 0] * k[None, ..., 0] + positions[:, None, None, 1] * k[None, ..., 1]
    num_lsps = fields.lsp_phases.shape[0]
    z_lsp = np.sqrt(2.0 / _SOS_TERMS) * np.cos(phase[:, :num_lsps] + fields.lsp_phases).sum(axis=-1)
    shared = phase[:, num_lsps]
    trig = np.concatenate([np.cos(shared), np.sin(shared)], axis=-1)
    z_ssp = np.zeros((len(positions), fields.ssp_weights.shape[1]))
    for lo in range(0, trig.shape[1], _TERM_BLOCK):
        z_ssp += (trig[:, lo:lo + _TERM_BLOCK, None] * fields.ssp_weights[None, lo:lo + _TERM_BLOCK]).sum(axis=1)
    return z_lsp, z_ssp


def _drop_rng(seed, index):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DROP_STREAM, index)))


def _position(scenario, rng):
    """A uniform UE position [m] over the cell annulus, or over ``scenario.region``."""
    u, v = rng.random(2)
    if scenario.region is None:
        r_min, r_max = scenario.min_distance_m, scenario.cell_radius_m
        radius, centre = np.sqrt(r_min ** 2 + u * (r_max ** 2 - r_min ** 2)), (0.0, 0.0)
    else:
        *centre, disc = scenario.region
        radius = disc * np.sqrt(u)
    return np.array([centre[0] + radius * np.cos(2 * np.pi * v), centre[1] + radius * np.sin(2 * np.pi * v)])


def _draw(scenario, seed, indices, fields):
    """UE positions ``[B, 2]`` and the standard normals ``[B, L]``, ``[B, F]`` of drops ``indices``:
    field values at the positions, or (no spatial consistency) drawn by each drop's generator."""
    rngs = [_drop_rng(seed, index) for index in indices]
    positions = np.stack([_position(scenario, rng) for rng in rngs])
    if fields is not None:
        return (positions, *_field_values(fields, positions))
    num_lsps = len(scenario.tables.lsps)
    normals = np.stack([rng.standard_normal(num_lsps + _num_ssp_fields(scenario.tables)) for rng in rngs])
    return positions, normals[:, :num_lsps], normals[:, num_lsps:]


# --------------------------------------------------------------------------------------------------
# Steps 1-11
# --------------------------------------------------------------------------------------------------
class Rays(NamedTuple):
    """The rays of ``B`` drops (LOS ray first in LOS scenarios, then cluster-major, 20 rays each).

    Attributes:
        gains: complex128 ``[B, P]``, ray amplitudes with the initial phases (eq. 7.5-22 / 7.5-29 /
            7.5-30), times ``10 ** ((-PL + SF) / 20)`` when the path loss is included.
        delays_s: float64 ``[B, P]``, delays relative to the first cluster (LOS ray at 0).
        aod_deg: float64 ``[B, P]``, azimuth of departure (0 = ULA broadside, the x axis).
        zod_deg: float64 ``[B, P]``, zenith of departure (90 = horizontal).
        positions_m: float64 ``[B, 2]``, UE ``(x, y)`` (BS at the origin).
    """

    gains: np.ndarray
    delays_s: np.ndarray
    aod_deg: np.ndarray
    zod_deg: np.ndarray
    positions_m: np.ndarray


class _SmallScale(NamedTuple):
    delay: np.ndarray  # [B, N] unsorted cluster variables...
    shadowing: np.ndarray
    aod_sign: np.ndarray
    aod_offset: np.ndarray
    zod_sign: np.ndarray
    zod_offset: np.ndarray
    phase: np.ndarray  # [B, N, 20] ray variables
    coupling: np.ndarray


def _split_small_scale(z, num_clusters):
    cluster = z[:, : 6 * num_clusters].reshape(len(z), 6, num_clusters).transpose(1, 0, 2)
    ray = z[:, 6 * num_clusters:].reshape(len(z), 2, num_clusters, _NUM_RAYS).transpose(1, 0, 2, 3)
    return _SmallScale(*cluster, *ray)


def _large_scale(scenario, z_lsp, d2d):
    """Step 4: the LSPs, ``dict`` of arrays ``[B]`` (``ds`` [s], ``asd`` / ``zsd`` [deg], ``sf`` / ``k``
    [dB], plus ``mu_lgzsd`` and ``zod_offset`` [deg])."""
    tables = scenario.tables
    x = np.log10(1.0 + max(scenario.carrier_frequency_hz / 1e9, tables.min_fc_ghz))
    root = np.linalg.cholesky(tables.correlation_matrix())
    s = dict(zip(tables.lsps, (z_lsp[:, None, :] * root[None]).sum(axis=-1).T))
    a, b, c, e = tables.lg_ds
    lsp = {"ds": 10.0 ** (a * x + b + (c * x + e) * s["ds"])}
    a, b, c, e = tables.lg_asd
    lsp["asd"] = np.minimum(10.0 ** (a * x + b + (c * x + e) * s["asd"]), 104.0)
    mu, sigma, lsp["zod_offset"] = _lg_zsd(scenario.environment, scenario.los, x, d2d, scenario.bs_height_m,
                                           scenario.ue_height_m)
    lsp["mu_lgzsd"] = mu
    lsp["zsd"] = np.minimum(10.0 ** (mu + sigma * s["zsd"]), 52.0)
    lsp["sf"] = tables.sf_db * s["sf"]
    if tables.k_db is not None:
        lsp["k"] = tables.k_db[0] + tables.k_db[1] * s["k"]
    return lsp


def _sorted_by_delay(tables, ds, small):
    """Step 5 delays (before the LOS scaling), and the cluster / ray variables in the same order
    (Sec. 7.6.3.1: the variables belong to a cluster before the delays are sorted)."""
    uniform = np.clip(ndtr(small.delay), np.finfo(float).tiny, 1.0)
    delays = -tables.r_tau * ds[:, None] * np.log(uniform)
    order = np.argsort(delays, axis=1, kind="stable")
    delays = np.take_along_axis(delays, order, axis=1)
    rays = order[..., None]
    small = _SmallScale(*(np.take_along_axis(v, order if v.ndim == 2 else rays, axis=1) for v in small))
    return delays - delays[:, :1], small


def _powers(tables, delays, ds, shadowing):
    """Step 6, eq. (7.5-5, 7.5-6): cluster powers, clusters 25 dB below the strongest set to 0."""
    r = tables.r_tau
    powers = np.exp(-delays * (r - 1) / (r * ds[:, None])) * 10.0 ** (-tables.cluster_shadowing_db * shadowing / 10)
    powers = powers / powers.sum(axis=1, keepdims=True)
    return np.where(powers < powers.max(axis=1, keepdims=True) * 10.0 ** -2.5, 0.0, powers)


def _los_scalings(k_db):
    """``C_tau``, ``C_phi^LOS / C_phi^NLOS``, ``C_theta^LOS / C_theta^NLOS`` of eq. (7.5-3, 7.5-10, 7.5-15).

    The cubics are evaluated at ``max(K, 0 dB)``: the one of ``C_theta`` crosses zero at
    ``K = -10 dB`` (3.8 sigma below the UMi mean), where the ZOAs / ZODs would diverge.
    """
    k = np.maximum(k_db, 0.0)
    c_tau = 0.7705 - 0.0433 * k + 0.0002 * k ** 2 + 0.000017 * k ** 3
    c_phi = 1.1035 - 0.028 * k - 0.002 * k ** 2 + 0.0001 * k ** 3
    c_theta = 1.3086 + 0.0339 * k - 0.0077 * k ** 2 + 0.0002 * k ** 3
    return c_tau, c_phi, c_theta


def _cluster_angles(spread, log_ratio, sign, offset, scale, gaussian):
    """Eq. (7.5-9, 7.5-11) (``gaussian``: azimuth) or (7.5-14, 7.5-16) (zenith), before the LOS direction."""
    spread = spread[:, None]
    if gaussian:
        primed = 2 * (spread / 1.4) * np.sqrt(-log_ratio) / scale[:, None]
    else:
        primed = -spread * log_ratio / scale[:, None]
    return np.where(sign >= 0, 1.0, -1.0) * primed + spread / 7 * offset


def _coupled_offsets(strong, keys):
    """Step 8: the ZOD ray offset index coupled to each AOD ray, a permutation (by the order of
    ``keys``) within each cluster, or within each sub-cluster of the two strongest clusters."""
    groups = np.where(strong[..., None], _SUBCLUSTER, 0)
    canonical = np.argsort(groups * _NUM_RAYS + np.arange(_NUM_RAYS), axis=-1, kind="stable")
    shuffled = np.argsort(groups * 1e6 + keys, axis=-1, kind="stable")
    coupled = np.empty_like(canonical)
    np.put_along_axis(coupled, canonical, shuffled, axis=-1)
    return coupled


def _wrap_zenith(theta_deg):
    theta = np.mod(theta_deg, 360.0)
    return np.where(theta > 180.0, 360.0 - theta, theta)


class _Geometry(NamedTuple):
    """Step 1: distances [m] and LOS departure angles [deg] of ``B`` drops."""

    d2d: np.ndarray
    d3d: np.ndarray
    aod_los: np.ndarray
    zod_los: np.ndarray


def _geometry(scenario, positions):
    d2d = np.hypot(positions[:, 0], positions[:, 1])
    height = scenario.bs_height_m - scenario.ue_height_m
    aod_los = np.degrees(np.arctan2(positions[:, 1], positions[:, 0]))
    return _Geometry(d2d, np.hypot(d2d, height), aod_los, 90.0 + np.degrees(np.arctan2(height, d2d)))


def _cluster_directions(scenario, geometry, lsp, powers, small):
    """Step 7: cluster AODs / ZODs [deg] ``[B, N]``, and the delay scaling of eq. (7.5-4) (1 in NLOS)."""
    tables = scenario.tables
    c_phi, c_theta = np.full(len(powers), tables.c_phi_nlos), np.full(len(powers), tables.c_theta_nlos)
    c_tau = np.ones(len(powers))
    if scenario.los:
        k_linear = 10.0 ** (lsp["k"] / 10)
        c_tau, phi_factor, theta_factor = _los_scalings(lsp["k"])
        c_phi, c_theta = c_phi * phi_factor, c_theta * theta_factor
        powers = powers / (k_linear[:, None] + 1)  # eq. (7.5-8)
        powers[:, 0] += k_linear / (k_linear + 1)
    ratio = powers / powers.max(axis=1, keepdims=True)
    log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))  # removed clusters: any angle, no power
    aod = _cluster_angles(lsp["asd"], log_ratio, small.aod_sign, small.aod_offset, c_phi, gaussian=True)
    zod = _cluster_angles(lsp["zsd"], log_ratio, small.zod_sign, small.zod_offset, c_theta, gaussian=False)
    if scenario.los:  # eq. (7.5-12, 7.5-17): the first cluster in the LOS direction
        aod, zod = aod - aod[:, :1], zod - zod[:, :1]
    else:  # eq. (7.5-11, 7.5-19)
        zod = zod + lsp["zod_offset"][:, None]
    return aod + geometry.aod_los[:, None], zod + geometry.zod_los[:, None], c_tau


class _Drops(NamedTuple):
    """The rays of ``B`` drops, cluster by cluster (what :class:`Rays` flattens)."""

    gains: np.ndarray  # [B, N, 20] complex (NLOS part, scaled by 1 / sqrt(K_R + 1) in LOS)
    aod_deg: np.ndarray  # [B, N, 20]
    zod_deg: np.ndarray  # [B, N, 20]
    cluster_delays_s: np.ndarray  # [B, N]
    strongest: np.ndarray  # [B, 2] indices of the two strongest clusters (three sub-clusters each)
    los: tuple | None  # (gain, aod_deg, zod_deg), each [B], of the LOS ray
    positions_m: np.ndarray  # [B, 2]
    cluster_ds_s: float  # c_DS of the sub-cluster delays, eq. (7.5-26)


def _strongest(powers):
    """Indices ``[B, 2]`` of the two strongest clusters (split into three sub-clusters in step 11)."""
    return np.argsort(-powers, axis=1, kind="stable")[:, :2]


def _strong_mask(strongest, num_clusters):
    mask = np.zeros((len(strongest), num_clusters), bool)
    np.put_along_axis(mask, strongest, True, axis=1)
    return mask


def _ray_directions(tables, lsp, aod, zod, strongest, coupling):
    """Eq. (7.5-13, 7.5-20): ray AODs / ZODs [deg] ``[B, N, 20]``, ZODs coupled to AODs by step 8."""
    strong = _strong_mask(strongest, aod.shape[1])
    zod_spread = 3 / 8 * 10.0 ** lsp["mu_lgzsd"][:, None, None]
    zod_offsets = _RAY_OFFSETS[_coupled_offsets(strong, coupling)]
    return (aod[..., None] + tables.cluster_asd_deg * _RAY_OFFSETS,
            _wrap_zenith(zod[..., None] + zod_spread * zod_offsets))


def _los_ray(scenario, geometry, k_db, gains):
    """Eq. (7.5-29, 7.5-30): the NLOS gains scaled by ``1 / sqrt(K_R + 1)``, and the LOS ray."""
    k_linear = 10.0 ** (k_db / 10)
    los_gain = np.sqrt(k_linear / (k_linear + 1)) * np.exp(-2j * np.pi * geometry.d3d / scenario.wavelength_m)
    return gains / np.sqrt(k_linear + 1)[:, None, None], (los_gain, geometry.aod_los, geometry.zod_los)


def _drops(scenario, positions, z_lsp, z_ssp):
    """Steps 1-11 (and 12 with ``include_path_loss``) for drops at ``positions`` with the given
    standard normals (LSP ``[B, L]``, cluster / ray ``[B, F]``)."""
    tables = scenario.tables
    geometry = _geometry(scenario, positions)
    lsp = _large_scale(scenario, z_lsp, geometry.d2d)
    delays, small = _sorted_by_delay(tables, lsp["ds"], _split_small_scale(z_ssp, tables.num_clusters))
    powers = _powers(tables, delays, lsp["ds"], small.shadowing)
    aod, zod, c_tau = _cluster_directions(scenario, geometry, lsp, powers, small)
    strongest = _strongest(powers)
    ray_aod, ray_zod = _ray_directions(tables, lsp, aod, zod, strongest, small.coupling)
    gains = np.sqrt(powers / _NUM_RAYS)[..., None] * np.exp(1j * (2 * np.pi * ndtr(small.phase) - np.pi))  # step 10
    los = None
    if scenario.los:
        gains, los = _los_ray(scenario, geometry, lsp["k"], gains)
    if scenario.include_path_loss:  # step 12
        loss_db = _path_loss(scenario.environment, scenario.los, geometry.d2d, geometry.d3d,
                             scenario.carrier_frequency_hz, scenario.bs_height_m, scenario.ue_height_m)
        amplitude = 10.0 ** ((-loss_db + lsp["sf"]) / 20)
        gains = gains * amplitude[:, None, None]
        los = None if los is None else (los[0] * amplitude, *los[1:])
    return _Drops(gains, ray_aod, ray_zod, delays / c_tau[:, None], strongest, los, positions, tables.cluster_ds_s)


def _flatten(drops):
    """:class:`Rays` of :class:`_Drops`: per-ray delays with the sub-cluster offsets of eq. (7.5-26)."""
    batch = len(drops.gains)
    strong = _strong_mask(drops.strongest, drops.cluster_delays_s.shape[1])
    offsets = np.where(strong[..., None], _SUBCLUSTER_DELAY[_SUBCLUSTER], 0.0) * drops.cluster_ds_s
    rays = [v.reshape(batch, -1) for v in (drops.gains, drops.cluster_delays_s[..., None] + offsets,
                                           drops.aod_deg, drops.zod_deg)]
    if drops.los is not None:
        gain, aod, zod = drops.los
        rays = [np.concatenate([first[:, None], rest], axis=1)
                for first, rest in zip((gain, np.zeros(batch), aod, zod), rays)]
    return Rays(*rays, drops.positions_m)


def _steering(scenario, aod_deg, zod_deg):
    """``exp(j 2 pi s (d / lambda) sin(ZOD) sin(AOD))``, ``s = 0 .. Nt - 1``, on a new last axis."""
    cosine = scenario.antenna_spacing * np.sin(np.radians(zod_deg)) * np.sin(np.radians(aod_deg))
    return _powers_of(np.exp(2j * np.pi * cosine), scenario.num_antennas)


def _powers_of(z, count):
    """``z[..., None] ** arange(count)`` by a running product (exact enough, several times faster)."""
    out = np.empty((*z.shape, count), complex)
    out[..., 0] = 1.0
    np.cumprod(np.broadcast_to(z[..., None], (*z.shape, count - 1)), axis=-1, out=out[..., 1:])
    return out


def _to_frequency(scenario, vectors, delays_s):
    """``H[b] = sum_q vectors[b, q] (x) exp(-j 2 pi k df delays[b, q])``: ``[B, Q, Nt]``, ``[B, Q]`` ->
    complex64 ``[B, Nt, Nsub]``. Summed term by term (no BLAS: bit-identical whatever the batch,
    and BLAS threads on tiny per-drop products are slower than this on a busy machine)."""
    tones = _powers_of(np.exp(-2j * np.pi * scenario.subcarrier_spacing_hz * delays_s), scenario.num_subcarriers)
    out = np.zeros((len(vectors), scenario.num_antennas, scenario.num_subcarriers), complex)
    for q in range(vectors.shape[1]):
        out += vectors[:, q, :, None] * tones[:, q, None, :]
    return out.astype(np.complex64)


def _drops_to_frequency(scenario, drops):
    """:func:`rays_to_frequency` of :func:`_flatten` ``(drops)``, with the rays of equal delay summed
    first: one term per cluster, two more per strong cluster (its sub-clusters 2 and 3), the LOS ray."""
    contributions = drops.gains[..., None] * _steering(scenario, drops.aod_deg, drops.zod_deg)
    parts = [contributions[:, :, _SUBCLUSTER == i].sum(axis=2) for i in range(3)]  # [B, N, Nt] each
    strong = _strong_mask(drops.strongest, drops.cluster_delays_s.shape[1])
    vectors = [np.where(strong[..., None], parts[0], parts[0] + parts[1] + parts[2])]
    delays = [drops.cluster_delays_s]
    strong_delays = np.take_along_axis(drops.cluster_delays_s, drops.strongest, axis=1)
    for i in (1, 2):
        vectors.append(np.take_along_axis(parts[i], drops.strongest[..., None], axis=1))
        delays.append(strong_delays + _SUBCLUSTER_DELAY[i] * drops.cluster_ds_s)
    if drops.los is not None:
        gain, aod, zod = drops.los
        vectors.insert(0, (gain[:, None] * _steering(scenario, aod, zod))[:, None])
        delays.insert(0, np.zeros((len(gain), 1)))
    return _to_frequency(scenario, np.concatenate(vectors, axis=1), np.concatenate(delays, axis=1))


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------
def _chunks(scenario, n, seed, start):
    """Yields ``(offset, _Drops)`` of drops ``start .. start + n - 1``, ``_CHUNK`` at a time."""
    n = _check_count(n, "n")
    seed, start = _check_seed(seed, "seed"), _check_seed(start, "start")
    fields = _random_fields(scenario) if scenario.spatial_consistency else None
    for offset in range(0, n, _CHUNK):
        indices = range(start + offset, start + min(n, offset + _CHUNK))
        yield offset, _drops(scenario, *_draw(scenario, seed, indices, fields))


def generate_rays(scenario, n, seed, *, start=0, **overrides):
    """The rays of UE drops ``start .. start + n - 1`` (TR 38.901 Sec. 7.5 steps 1-11 / 12).

    Args:
        scenario: a name of :data:`SCENARIOS_38901` or a :class:`Scenario38901`.
        n: number of drops (positive integer).
        seed: non-negative integer seed of the drops; drop ``i`` depends only on
            ``(seed, start + i, scenario)``.
        start: absolute index of the first drop.
        **overrides: fields of :class:`Scenario38901` to replace.

    Returns:
        :class:`Rays`, ``P = 1 + 20 N`` rays (LOS) or ``20 N`` (NLOS), ``N`` clusters of Table 7.5-6.
    """
    scenario = get_scenario_38901(scenario, **overrides)
    parts = [_flatten(drops) for _, drops in _chunks(scenario, n, seed, start)]
    return Rays(*(np.concatenate(field) for field in zip(*parts)))


def rays_to_frequency(rays, scenario, **overrides):
    """The spatial-frequency channel of :class:`Rays` on the scenario's ULA and subcarriers.

    ``H[b, s, k] = sum_p g_p exp(j 2 pi s (d / lambda) sin(ZOD_p) sin(AOD_p)) exp(-j 2 pi k df tau_p)``,
    eq. (7.5-22) with the array term ``exp(j 2 pi r_tx . d_tx,s / lambda)`` of the ULA along y.

    Args:
        rays: :class:`Rays` (``gains``, ``delays_s``, ``aod_deg``, ``zod_deg`` ``[B, P]``).
        scenario: a name of :data:`SCENARIOS_38901` or a :class:`Scenario38901`.
        **overrides: fields of :class:`Scenario38901` to replace.

    Returns:
        complex64 ``[B, num_antennas, num_subcarriers]``.
    """
    scenario = get_scenario_38901(scenario, **overrides)
    steering = _steering(scenario, np.asarray(rays.aod_deg), np.asarray(rays.zod_deg))
    return _to_frequency(scenario, np.asarray(rays.gains)[..., None] * steering, np.asarray(rays.delays_s))


def generate_frequency_response(scenario, n, seed, *, start=0, progress=False, **overrides):
    """Spatial-frequency CSI of ``n`` UE drops of a TR 38.901 scenario (see the module docstring).

    Args:
        scenario: a name of :data:`SCENARIOS_38901` (``"umi-los"``, ``"umi-nlos"``,
            ``"umi-nlos-area1"``, ``"umi-nlos-area2"``, ``"inh-los-40mhz"``, ``"inh-los-10mhz"``)
            or a :class:`Scenario38901`.
        n: number of drops (positive integer).
        seed: non-negative integer seed of the drops. Drop ``i`` of the result is the drop of
            absolute index ``start + i``: it depends only on ``(seed, start + i, scenario)``, never on
            ``n`` or how the drops are split into calls.
        start: absolute index of the first drop (for shards).
        progress: show a tqdm progress bar.
        **overrides: fields of :class:`Scenario38901` to replace, e.g. ``region=(x, y, radius)``,
            ``include_path_loss=True``, ``spatial_consistency=False``, ``environment_seed=1``.

    Returns:
        complex64 ``[n, num_antennas, num_subcarriers]`` (``[n, 32, 32]`` for the named scenarios):
        ``[drop, BS antenna, subcarrier]``, path loss excluded unless ``include_path_loss=True``.

    Raises:
        ValueError: unknown scenario or override, bad ``n`` / ``seed`` / ``start``, bad ``region``.

    Examples:
        >>> from mimokd.channels.transforms import to_angular_delay
        >>> h = generate_frequency_response("umi-los", 100, seed=0)
        >>> h.shape, h.dtype
        ((100, 32, 32), dtype('complex64'))
        >>> to_angular_delay(h, n_delay=32).shape
        (100, 32, 32)
    """
    scenario = get_scenario_38901(scenario, **overrides)
    n = _check_count(n, "n")
    out = np.empty((n, scenario.num_antennas, scenario.num_subcarriers), np.complex64)
    with tqdm(total=n, disable=not progress, desc=scenario.name, unit="drop") as bar:
        for offset, drops in _chunks(scenario, n, seed, start):
            out[offset:offset + len(drops.gains)] = _drops_to_frequency(scenario, drops)
            bar.update(len(drops.gains))
    return out


def ue_positions(scenario, n, seed, *, start=0, **overrides):
    """UE positions ``float64 [n, 2]`` = ``(x, y)`` in metres of the drops of :func:`generate_frequency_response`."""
    scenario = get_scenario_38901(scenario, **overrides)
    n = _check_count(n, "n")
    seed, start = _check_seed(seed, "seed"), _check_seed(start, "start")
    return np.stack([_position(scenario, _drop_rng(seed, start + i)) for i in range(n)])


def path_loss_db(scenario, distance_2d_m, **overrides):
    """Path loss [dB] of TR 38.901 Table 7.4.1-1 at 2D distances (no shadow fading).

    UMi-Street Canyon LOS: ``32.4 + 21 log10(d3D) + 20 log10(fc)`` up to the breakpoint
    ``d'_BP = 4 (h_BS - 1) (h_UT - 1) fc / c``, then ``32.4 + 40 log10(d3D) + 20 log10(fc) -
    9.5 log10(d'_BP^2 + (h_BS - h_UT)^2)``; NLOS: ``max(PL_LOS, 35.3 log10(d3D) + 22.4 +
    21.3 log10(fc) - 0.3 (h_UT - 1.5))``; InH-Office LOS: ``32.4 + 17.3 log10(d3D) + 20 log10(fc)``
    (``fc`` in GHz, distances in m).

    Args:
        scenario: a name of :data:`SCENARIOS_38901` or a :class:`Scenario38901`.
        distance_2d_m: array of positive 2D BS-UE distances [m].
        **overrides: fields of :class:`Scenario38901` to replace.

    Returns:
        float64 array of the shape of ``distance_2d_m``.
    """
    scenario = get_scenario_38901(scenario, **overrides)
    d2d = np.asarray(distance_2d_m, dtype=np.float64)
    if not (np.all(np.isfinite(d2d)) and np.all(d2d > 0)):
        raise ValueError(f"`distance_2d_m` must be finite and positive. Received: distance_2d_m={distance_2d_m!r}")
    d3d = np.hypot(d2d, scenario.bs_height_m - scenario.ue_height_m)
    return _path_loss(scenario.environment, scenario.los, d2d, d3d, scenario.carrier_frequency_hz,
                      scenario.bs_height_m, scenario.ue_height_m)
