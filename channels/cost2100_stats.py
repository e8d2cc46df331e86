"""Per-drop statistics of COST 2100 channels, to compare a port with the Octave reference.

A *drop* is one static link: one environment, one UE position, one time sample, described at the
level of its multipath components (MPCs): for every MPC its delay, BS-side azimuth (AoD), complex
amplitude and a label (LOS / far single / far twin / BS local / UE local cluster). The reference
drops come from the public MATLAB implementation run under GNU Octave by our driver
``tools/cost2100_reference/generate_reference.m`` (see the README there); the numpy port
(:mod:`mimokd.channels.cost2100_model`) produces the same MPC lists, converted by
:func:`drops_from_model`, and both go through :func:`statistics` -> :func:`compare` and
:func:`power_maps` -> :func:`compare_maps` (against the fixture's :func:`reference_map_moments`).

Array model (the defaults follow the reference's own array helpers):

* BS: ``n_antennas`` omni elements, spacing ``spacing`` wavelengths (0.5), array axis = x axis;
  element ``n = 0 .. Nt-1`` of a plane wave leaving at azimuth ``phi`` has the phase
  ``exp(steering_sign * j 2 pi spacing n f(phi))`` with ``f = cos`` and ``steering_sign = -1``, the
  convention of the reference's ``create_IR_omni_MIMO`` / ``get_dipole_G``
  (``exp(-j pi (n-1) cos(AOD))``). ``angle_function="sin"`` measures the angle from broadside
  instead (the convention of eq. 2 of Cui et al., with ``steering_sign=+1``). Elevation is ignored
  (the reference's outdoor clusters have large elevation spreads; an omni element in azimuth with
  a horizontal array axis sees ``cos(phi) cos(theta)`` in reality, we follow the reference's helper
  which uses ``cos(phi)`` only).
* UE: one omni antenna.
* Subcarriers: ``f_k = carrier - bandwidth / 2 + k * bandwidth / n_subcarriers``,
  ``k = 0 .. n_subcarriers - 1`` (the reference's ``create_IR_*`` grid ``freq(1):delta_f:...``), and
  ``H[n, k] = sum_l a_l s_n(phi_l) exp(-j 2 pi f_k tau_l)`` with the *absolute* frequency when
  ``absolute_phase=True`` (as the reference does; the carrier phase ``2 pi carrier tau_l`` then
  differs between MPCs) or the baseband offset ``f_k - carrier + bandwidth / 2`` when False.
* Angular-delay domain (the CsiNet recipe, same convention as
  :func:`mimokd.channels.transforms.to_angular_delay`): orthonormal DFT over the antennas
  (``numpy.fft.fft``), orthonormal *inverse* DFT over the subcarriers (``numpy.fft.ifft``), so that a
  path of delay ``tau`` lands in tap ``tau * bandwidth`` (mod ``n_subcarriers``) and the earliest
  paths fill the first taps; keep the first ``n_delay = 32`` taps.

Statistics of one drop (:data:`SCALAR_STATS`, :data:`PROFILE_STATS`); MPC power = ``|a|^2``, MPCs of
zero amplitude (e.g. an invisible LOS) are ignored:

* ``n_active_clusters``: number of active (visible) far clusters (from the simulator's record when
  given, else the number of distinct far-cluster labels with power).
* ``n_mpc``: number of non-LOS MPCs with non-zero amplitude (far + local clusters).
* ``rms_delay_spread``: power-weighted RMS delay spread over all MPCs incl. LOS [s],
  ``sqrt(sum p tau^2 / P - (sum p tau / P)^2)``.
* ``azimuth_spread``: power-weighted *circular* standard deviation of the BS azimuths [rad],
  ``sqrt(-2 ln R)`` with ``R = |sum p exp(j phi)| / P``; it is wrap-invariant and equals the linear
  RMS spread for small spreads (two equal MPCs at ``+-d`` give ``sqrt(-2 ln cos d)``).
* ``los_power_share``: LOS power / total power.
* ``energy_first_taps``: energy of the first ``n_delay`` taps of the full (Nt x n_subcarriers)
  angular-delay matrix / its total energy (Parseval: = energy of ``H``).
* ``n90``: the least number of entries of the truncated ``Nt x n_delay`` matrix holding 90 % of its
  energy.
* ``delay_profile`` ``(n_delay,)``: power per delay tap of the truncated matrix, summed over angle
  bins, normalised to sum 1.
* ``angle_profile`` ``(Nt,)``: power per angle bin of the truncated matrix, summed over the kept
  taps, normalised to sum 1 (bin order of ``numpy.fft.fft``).

Mean angular-delay power map (:func:`mean_power_map`): the mean over drops of the truncated
``Nt x n_delay`` energy ``|AD|^2``, each drop normalised to sum 1 (its marginals are the mean
profiles). :func:`compare_maps` reports the correlation and relative Frobenius error of two mean maps
and the *noise ratio* ``||a - b||_F^2 / sum(var_a / n_a + var_b / n_b)``, about 1 when both samples
come from one distribution whatever their sizes.

Comparison (:func:`compare`), tolerance policy:

* every scalar statistic: two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``). KS is
  distribution-free, needs no binning and gives p = 1 for identical samples; its p-values are
  exact/asymptotic for continuous data and conservative (too large) for the integer statistics with
  ties (``n_active_clusters``, ``n_mpc``, ``n90``), so a failure there is real. The Anderson-Darling
  k-sample test (``method="ad"``) is more sensitive in the tails but scipy caps its p-value to
  [0.001, 0.25], so it cannot show p ~ 1.
* every profile: the mean profiles of the two samples are compared bin by bin with a two-sample z
  statistic (difference of means / pooled standard error); the profile's p-value is the Bonferroni
  bound over its bins, ``min(1, bins * 2 * (1 - Phi(max |z|)))``. The plain distance
  ``max |mean_a - mean_b|`` is reported too.
* pass when every p-value (scalars and profiles) is ``> alpha / m`` with ``alpha = 0.01`` and ``m``
  the number of tested statistics (Bonferroni over the family, so a correct port fails one
  scenario's comparison with probability <= 1 %).

Examples:
    >>> import numpy as np
    >>> drop = Drop(delay=np.array([1e-7]), aod=np.array([0.3]), amplitude=np.array([1 + 0j]),
    ...             kind=np.array([KIND_LOS]))
    >>> s = drop_statistics(drop, carrier=5.3e9)
    >>> float(s["rms_delay_spread"]), float(s["los_power_share"]), int(s["n90"]) >= 1
    (0.0, 1.0, True)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: MPC kinds (``Drop.kind``), as written by the Octave driver.
KIND_LOS = 0
KIND_FAR_SINGLE = 1
KIND_FAR_TWIN = 2
KIND_LOCAL_BS = 3
KIND_LOCAL_MS = 4
KIND_UNKNOWN = -9

#: Per-drop scalar statistics, in the order of the fixture.
SCALAR_STATS = (
    "n_active_clusters",
    "n_mpc",
    "rms_delay_spread",
    "azimuth_spread",
    "los_power_share",
    "energy_first_taps",
    "n90",
)
#: Per-drop profiles (1-D arrays normalised to sum 1).
PROFILE_STATS = ("delay_profile", "angle_profile")

#: Scenarios of the reference fixture and their default carrier frequency [Hz].
REFERENCE_SCENARIOS = {
    "IndoorHall_5GHz": 5.3e9,
    "SemiUrban_300MHz_LOS": 300e6,
    "SemiUrban_300MHz_NLOS": 300e6,
}

#: Scenario names of the numpy port (:mod:`mimokd.channels.cost2100_model`) -> reference scenario names.
MODEL_TO_REFERENCE = {
    "indoor_hall_5ghz": "IndoorHall_5GHz",
    "semi_urban_300mhz_los": "SemiUrban_300MHz_LOS",
    "semi_urban_300mhz_nlos": "SemiUrban_300MHz_NLOS",
}

#: Default array / OFDM settings of the statistics (those of the reference fixture).
DEFAULT_SETTINGS = {
    "n_antennas": 32,
    "n_subcarriers": 1024,
    "bandwidth": 20e6,
    "n_delay": 32,
    "spacing": 0.5,
    "steering_sign": -1,
    "angle_function": "cos",
    "absolute_phase": True,
}

FIXTURE_PATH = Path(__file__).resolve().parent / "reference" / "cost2100_reference_stats.npz"  # package data


@dataclass
class Drop:
    """The MPC-level description of one drop (``L`` MPCs).

    Attributes:
        delay: float ``(L,)``, absolute delay of each MPC [s].
        aod: float ``(L,)``, BS-side azimuth [rad] (x axis = 0, counter-clockwise).
        amplitude: complex ``(L,)``, amplitude incl. path loss and all attenuations.
        kind: int ``(L,)``, one of the ``KIND_*`` codes (default: all far twin).
        cluster: int ``(L,)``, far-cluster index (>= 1), -1 LOS, -2 BS local, -3 UE local.
        n_active: number of active far clusters recorded by the simulator, or None.
        info: free-form per-drop extras (positions, seconds, ...).
    """

    delay: np.ndarray
    aod: np.ndarray
    amplitude: np.ndarray
    kind: np.ndarray | None = None
    cluster: np.ndarray | None = None
    n_active: int | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.delay = np.asarray(self.delay, dtype=np.float64).reshape(-1)
        self.aod = np.asarray(self.aod, dtype=np.float64).reshape(-1)
        self.amplitude = np.asarray(self.amplitude, dtype=np.complex128).reshape(-1)
        n = self.delay.shape[0]
        if self.aod.shape[0] != n or self.amplitude.shape[0] != n:
            raise ValueError(
                "`delay`, `aod` and `amplitude` must have the same length. Received: "
                f"{self.delay.shape[0]}, {self.aod.shape[0]}, {self.amplitude.shape[0]}"
            )
        self.kind = (np.full(n, KIND_FAR_TWIN, np.int64) if self.kind is None
                     else np.asarray(self.kind, dtype=np.int64).reshape(-1))
        self.cluster = (np.ones(n, np.int64) if self.cluster is None
                        else np.asarray(self.cluster, dtype=np.int64).reshape(-1))
        if self.kind.shape[0] != n or self.cluster.shape[0] != n:
            raise ValueError("`kind` and `cluster` must have one entry per MPC.")


# --------------------------------------------------------------------------------------------------
# Array response
# --------------------------------------------------------------------------------------------------
def steering_matrix(aod, n_antennas=32, *, spacing=0.5, steering_sign=-1, angle_function="cos"):
    """ULA response to plane waves at azimuths ``aod``.

    ``S[n, l] = exp(steering_sign * j 2 pi spacing n f(aod_l))``, ``f`` = cos (angle from the array
    axis, reference convention) or sin (angle from broadside).

    Args:
        aod: float ``(L,)`` azimuths [rad].
        n_antennas: number of elements ``Nt``.
        spacing: element spacing in wavelengths.
        steering_sign: +1 or -1.
        angle_function: ``"cos"`` or ``"sin"``.

    Returns:
        complex128 ``(Nt, L)``.
    """
    if steering_sign not in (1, -1):
        raise ValueError(f"`steering_sign` must be +1 or -1. Received: {steering_sign!r}")
    if angle_function not in ("cos", "sin"):
        raise ValueError(f"`angle_function` must be 'cos' or 'sin'. Received: {angle_function!r}")
    f = np.cos if angle_function == "cos" else np.sin
    u = f(np.asarray(aod, dtype=np.float64).reshape(-1))
    n = np.arange(n_antennas, dtype=np.float64)[:, None]
    return np.exp(steering_sign * 2j * np.pi * spacing * n * u[None, :])


def subcarrier_frequencies(carrier, bandwidth=20e6, n_subcarriers=1024, *, absolute_phase=True):
    """The frequencies ``f_k`` used in the phase ``exp(-j 2 pi f_k tau)``, float ``(n_subcarriers,)``.

    ``f_k = carrier - bandwidth / 2 + k bandwidth / n_subcarriers`` when ``absolute_phase``, else
    ``k bandwidth / n_subcarriers`` (baseband offsets from the band edge).
    """
    k = np.arange(n_subcarriers, dtype=np.float64)
    offsets = k * (bandwidth / n_subcarriers)
    return (carrier - bandwidth / 2 + offsets) if absolute_phase else offsets


def frequency_response(drop, carrier, *, n_antennas=32, n_subcarriers=1024, bandwidth=20e6, spacing=0.5,
                       steering_sign=-1, angle_function="cos", absolute_phase=True):
    """Frequency response of a drop for the BS ULA and a single-antenna UE.

    ``H[n, k] = sum_l a_l S[n, l] exp(-j 2 pi f_k tau_l)`` (see :func:`steering_matrix`,
    :func:`subcarrier_frequencies`).

    Args:
        drop: a :class:`Drop`.
        carrier: carrier (centre) frequency [Hz].
        (others: see the module docstring; defaults = :data:`DEFAULT_SETTINGS`.)

    Returns:
        complex128 ``(n_antennas, n_subcarriers)``.
    """
    s = steering_matrix(drop.aod, n_antennas, spacing=spacing, steering_sign=steering_sign,
                        angle_function=angle_function)
    f0 = subcarrier_frequencies(carrier, bandwidth, n_subcarriers, absolute_phase=absolute_phase)[0]
    phase = delay_phases(drop.delay, f0, bandwidth / n_subcarriers, n_subcarriers)
    return (s * drop.amplitude[None, :]) @ phase


def delay_phases(delay, f0, df, n):
    """``exp(-j 2 pi (f0 + k df) tau_l)`` on a uniform grid of ``n`` frequencies, complex128 ``(L, n)``.

    Computed as the product of ``ceil(sqrt(n))`` coarse and as many fine phases (``k = a * block + b``),
    each reduced modulo one turn before the exponential (the absolute frequency times the delay is
    hundreds of turns): ~2 sqrt(n) exponentials per MPC instead of n, exact to rounding.

    Args:
        delay: float ``(L,)`` delays [s].
        f0: first frequency [Hz].
        df: frequency step [Hz].
        n: number of frequencies.
    """
    delay = np.asarray(delay, np.float64).reshape(-1)
    block = math.isqrt(n - 1) + 1 if n > 1 else 1
    steps = np.arange(block, dtype=np.float64)

    def turns(freqs):
        cycles = np.outer(delay, freqs)
        return np.exp(-2j * np.pi * (cycles - np.round(cycles)))

    coarse = turns(f0 + steps * block * df)
    fine = turns(steps * df)
    return (coarse[:, :, None] * fine[:, None, :]).reshape(delay.size, block * block)[:, :n]


def angular_delay(h_freq):
    """Full angular-delay matrix: orthonormal DFT over antennas, orthonormal inverse DFT over subcarriers.

    Args:
        h_freq: complex ``(..., Nt, Nsub)``.

    Returns:
        complex128 ``(..., Nt, Nsub)`` = ``[..., angle bin, delay tap]`` (not truncated).
    """
    a = np.fft.fft(np.asarray(h_freq, dtype=np.complex128), axis=-2, norm="ortho")
    return np.fft.ifft(a, axis=-1, norm="ortho")


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------
def rms_delay_spread(delay, power):
    """Power-weighted RMS delay spread [s] (0 for a single MPC or zero total power)."""
    p = np.asarray(power, np.float64)
    total = p.sum()
    if total <= 0:
        return 0.0
    t = np.asarray(delay, np.float64)
    t = t - np.sum(p * t) / total  # centre first: better conditioned than E[t^2] - E[t]^2
    return float(np.sqrt(max(np.sum(p * t * t) / total, 0.0)))


def circular_azimuth_spread(aod, power):
    """Power-weighted circular standard deviation ``sqrt(-2 ln R)`` of the azimuths [rad]."""
    p = np.asarray(power, np.float64)
    total = p.sum()
    if total <= 0:
        return 0.0
    r = abs(np.sum(p * np.exp(1j * np.asarray(aod, np.float64)))) / total
    r = min(max(r, 1e-300), 1.0)
    return float(np.sqrt(-2.0 * np.log(r)))


def n_entries_for_energy(matrix, fraction=0.9):
    """Least number of entries of ``matrix`` whose energy reaches ``fraction`` of its total (0 if empty)."""
    e = np.sort(np.abs(np.asarray(matrix)).ravel() ** 2)[::-1]
    total = e.sum()
    if total <= 0:
        return 0
    c = np.cumsum(e) / total
    # tolerance: a matrix holding exactly 90 % in k entries counts k despite rounding
    return int(np.searchsorted(c, fraction - 1e-12) + 1)


def _settings(settings):
    """:data:`DEFAULT_SETTINGS` updated with ``settings`` (a dict); unknown names raise ValueError."""
    cfg = dict(DEFAULT_SETTINGS)
    unknown = set(settings) - set(cfg)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)}; expected some of {sorted(cfg)}")
    cfg.update(settings)
    return cfg


def drop_statistics(drop, carrier, **settings):
    """Statistics of one drop (definitions in the module docstring).

    Args:
        drop: a :class:`Drop`.
        carrier: carrier frequency [Hz].
        **settings: overrides of :data:`DEFAULT_SETTINGS`.

    Returns:
        dict: the :data:`SCALAR_STATS` as Python floats/ints, ``delay_profile`` float ``(n_delay,)``,
        ``angle_profile`` float ``(n_antennas,)``.
    """
    cfg = _settings(settings)
    n_delay = cfg.pop("n_delay")

    power = np.abs(drop.amplitude) ** 2
    on = power > 0
    los = drop.kind == KIND_LOS
    total = power.sum()
    far = on & ((drop.kind == KIND_FAR_SINGLE) | (drop.kind == KIND_FAR_TWIN))
    if drop.n_active is not None:
        n_active = int(drop.n_active)
    else:
        n_active = int(np.unique(drop.cluster[far]).size)

    h = frequency_response(drop, carrier, **cfg)
    ad = angular_delay(h)
    energy = np.abs(ad) ** 2
    e_total = energy.sum()
    kept = energy[:, :n_delay]
    e_kept = kept.sum()
    delay_prof = kept.sum(axis=0) / e_kept if e_kept > 0 else np.zeros(n_delay)
    angle_prof = kept.sum(axis=1) / e_kept if e_kept > 0 else np.zeros(kept.shape[0])
    return {
        "n_active_clusters": n_active,
        "n_mpc": int(np.count_nonzero(on & ~los)),
        "rms_delay_spread": rms_delay_spread(drop.delay[on], power[on]),
        "azimuth_spread": circular_azimuth_spread(drop.aod[on], power[on]),
        "los_power_share": float(power[los].sum() / total) if total > 0 else 0.0,
        "energy_first_taps": float(e_kept / e_total) if e_total > 0 else 0.0,
        "n90": n_entries_for_energy(ad[:, :n_delay], 0.9),
        "delay_profile": delay_prof,
        "angle_profile": angle_prof,
    }


#: Extra per-drop diagnostics kept in the fixture (not tested by default): power shares per MPC kind.
EXTRA_STATS = ("far_power_share", "local_bs_power_share", "local_ms_power_share")


def drop_extras(drop):
    """Power shares of the far clusters, the BS local cluster and the UE local cluster, as floats."""
    power = np.abs(drop.amplitude) ** 2
    total = power.sum()
    if total <= 0:
        return {k: 0.0 for k in EXTRA_STATS}
    far = (drop.kind == KIND_FAR_SINGLE) | (drop.kind == KIND_FAR_TWIN)
    return {
        "far_power_share": float(power[far].sum() / total),
        "local_bs_power_share": float(power[drop.kind == KIND_LOCAL_BS].sum() / total),
        "local_ms_power_share": float(power[drop.kind == KIND_LOCAL_MS].sum() / total),
    }


def statistics(drops, carrier, **settings):
    """Statistics of many drops, stacked.

    Returns:
        dict: each scalar statistic float64 ``(D,)``, ``delay_profile`` ``(D, n_delay)``,
        ``angle_profile`` ``(D, n_antennas)``.
    """
    rows = [drop_statistics(d, carrier, **settings) for d in drops]
    if not rows:
        raise ValueError("`drops` is empty.")
    out = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in SCALAR_STATS}
    for k in PROFILE_STATS:
        out[k] = np.stack([r[k] for r in rows]).astype(np.float64)
    return out


def drop_power_map(drop, carrier, **settings):
    """Normalised angular-delay power map of one drop.

    ``|AD[:, :n_delay]|^2`` of the drop's angular-delay matrix (:func:`frequency_response`,
    :func:`angular_delay`), divided by its sum (all zeros when the kept taps hold no energy).

    Returns:
        float64 ``(n_antennas, n_delay)`` = ``[angle bin, delay tap]``, summing to 1.
    """
    cfg = _settings(settings)
    n_delay = cfg.pop("n_delay")
    kept = np.abs(angular_delay(frequency_response(drop, carrier, **cfg))[:, :n_delay]) ** 2
    total = kept.sum()
    return kept / total if total > 0 else kept


def power_maps(drops, carrier, **settings):
    """:func:`drop_power_map` of every drop, float64 ``(D, n_antennas, n_delay)``."""
    drops = list(drops)
    if not drops:
        raise ValueError("`drops` is empty.")
    return np.stack([drop_power_map(d, carrier, **settings) for d in drops])


def mean_power_map(drops, carrier, **settings):
    """Mean angular-delay power map: the mean over drops of :func:`drop_power_map`.

    Each drop weighs the same, whatever its path loss. The map's sums over angle bins / delay taps
    are the means of the ``delay_profile`` / ``angle_profile`` statistics.

    Args:
        drops: non-empty sequence of :class:`Drop` (e.g. from :func:`drops_from_model`).
        carrier: carrier frequency [Hz].
        **settings: overrides of :data:`DEFAULT_SETTINGS`.

    Returns:
        float64 ``(n_antennas, n_delay)``, summing to 1.
    """
    return power_maps(drops, carrier, **settings).mean(axis=0)


def compare_maps(maps, reference):
    """Compares per-drop power maps (e.g. of the port) with a reference's mean map.

    Statistics of the two mean maps ``a`` (of ``maps``) and ``b`` (``reference["mean"]``):

    * ``correlation``: Pearson correlation of their entries;
    * ``relative_error``: ``||a - b||_F / ||b||_F``;
    * ``noise_ratio``: ``||a - b||_F^2`` divided by its expectation when both samples come from one
      distribution, ``sum(var_a / n_a + var_b / n_b)`` over the entries (per-entry variances over
      drops, ``ddof=1``). About 1 when the maps differ by sampling noise only, whatever the number of
      drops; the correlation and the relative error depend on it.

    Args:
        maps: float ``(D, n_antennas, n_delay)`` per-drop maps (:func:`power_maps`), D >= 2.
        reference: dict with ``mean`` and ``variance`` (``(n_antennas, n_delay)``) and ``drops``
            (their number of drops), as returned by :func:`reference_map_moments`.

    Returns:
        dict with ``correlation``, ``relative_error``, ``noise_ratio`` (floats).
    """
    maps = np.asarray(maps, np.float64)
    b = np.asarray(reference["mean"], np.float64)
    b_var = np.asarray(reference["variance"], np.float64)
    n_b = int(reference["drops"])
    if maps.ndim != 3 or maps.shape[0] < 2 or maps.shape[1:] != b.shape or b_var.shape != b.shape or n_b < 2:
        raise ValueError(f"`maps` must be (D >= 2, *S) and the reference's mean and variance of shape S, from >= 2 "
                         f"drops. Received: maps {maps.shape}, mean {b.shape}, variance {b_var.shape}, drops {n_b}")
    a = maps.mean(axis=0)
    diff = a - b
    null = np.sum(maps.var(axis=0, ddof=1) / maps.shape[0] + b_var / n_b)
    return {
        "correlation": float(np.corrcoef(a.ravel(), b.ravel())[0, 1]),
        "relative_error": float(np.linalg.norm(diff) / np.linalg.norm(b)),
        "noise_ratio": float(np.sum(diff * diff) / null),
    }


# --------------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------------
def _profile_p_value(a, b):
    """Bonferroni-bounded p-value of the largest per-bin z statistic between two samples of profiles."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    se2 = a.var(axis=0, ddof=1) / a.shape[0] + b.var(axis=0, ddof=1) / b.shape[0]
    diff = a.mean(axis=0) - b.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se2 > 0, np.abs(diff) / np.sqrt(se2), np.where(np.abs(diff) > 0, np.inf, 0.0))
    zmax = float(np.max(z))
    p_bin = math.erfc(zmax / math.sqrt(2.0))  # two-sided normal tail
    return min(1.0, diff.size * p_bin), zmax


def compare(stats_a, stats_b, *, alpha=0.01, method="ks", keys=None):
    """Two-sample comparison of two sets of per-drop statistics (e.g. port vs reference).

    Args:
        stats_a, stats_b: dicts as returned by :func:`statistics` (or loaded from the fixture).
        alpha: family-wise significance level; each p-value must exceed ``alpha / m``.
        method: ``"ks"`` (``scipy.stats.ks_2samp``, default) or ``"ad"``
            (``scipy.stats.anderson_ksamp``, p-value capped to [0.001, 0.25] by scipy).
        keys: statistics to compare (default: all of :data:`SCALAR_STATS` and :data:`PROFILE_STATS`
            present in both).

    Returns:
        dict with ``p_values`` {stat: p}, ``profile_max_abs_diff`` {profile: max |mean_a - mean_b|},
        ``profile_max_z`` {profile: largest per-bin |z|}, ``threshold`` (``alpha / m``),
        ``failed`` (list of statistics with p <= threshold) and ``passed`` (bool).
    """
    from scipy import stats as sps

    if method not in ("ks", "ad"):
        raise ValueError(f"`method` must be 'ks' or 'ad'. Received: {method!r}")
    if keys is None:
        keys = [k for k in SCALAR_STATS + PROFILE_STATS if k in stats_a and k in stats_b]
    p_values, dist, zmax = {}, {}, {}
    for k in keys:
        a = np.asarray(stats_a[k], np.float64)
        b = np.asarray(stats_b[k], np.float64)
        if k in PROFILE_STATS:
            if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
                raise ValueError(f"Profiles `{k}` must be (D, bins) with equal bins. Received: {a.shape}, {b.shape}")
            dist[k] = float(np.max(np.abs(a.mean(axis=0) - b.mean(axis=0))))
            p_values[k], zmax[k] = _profile_p_value(a, b)
        elif method == "ks":
            p_values[k] = float(sps.ks_2samp(a, b).pvalue)
        else:
            if np.unique(np.concatenate([a, b])).size < 2:
                p_values[k] = 1.0
            else:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    p_values[k] = float(sps.anderson_ksamp([a, b]).pvalue)
    threshold = alpha / max(len(keys), 1)
    failed = [k for k in keys if not p_values[k] > threshold]
    return {
        "p_values": p_values,
        "profile_max_abs_diff": dist,
        "profile_max_z": zmax,
        "threshold": threshold,
        "failed": failed,
        "passed": not failed,
    }


# --------------------------------------------------------------------------------------------------
# Drops of the numpy port
# --------------------------------------------------------------------------------------------------
def drops_from_model(drops):
    """The drops of the numpy port as :class:`Drop` objects in the reference driver's conventions.

    Mapping from :class:`mimokd.channels.cost2100_model.Cost2100Drops` (per MPC ``[n, L]``):

    * MPCs: the non-padding entries of each drop (port kind >= 0), in the port's order. The LOS entry
      is kept when invisible (amplitude 0), as the driver always writes its LOS row; the statistics
      ignore zero amplitudes, so ``n_mpc`` counts the non-LOS MPCs of non-zero amplitude on both
      sides (the port's own ``Cost2100Drops.n_mpc`` counts a visible LOS too).
    * kind: port 0 LOS -> :data:`KIND_LOS`, 2 far single -> :data:`KIND_FAR_SINGLE`, 3 far twin ->
      :data:`KIND_FAR_TWIN`, 1 local -> :data:`KIND_LOCAL_MS` in the UE local cluster's slot (cluster
      0 when the scenario has one) and :data:`KIND_LOCAL_BS` in the BS local cluster's slot (the next
      one): the port orders its clusters UE local, BS local, far.
    * cluster: -1 LOS, -2 BS local, -3 UE local, far clusters 1, 2, ... in the port's order of active
      far clusters (the reference numbers them in its list of all clusters of the environment; the
      statistics only use their distinctness).
    * delay [s], aod (BS azimuth from +x, counter-clockwise [rad]) and the complex amplitude (path
      loss and every attenuation included) are the same quantities in the same units on both sides
      and are copied; elevations and UE-side angles are dropped (the statistics use the BS azimuth
      only, like the reference's array helpers).
    * ``n_active`` = ``n_active_clusters``; ``info`` holds ``index`` (global drop index),
      ``ms_pos`` and ``bs_pos`` (float ``(3,)`` [m]).

    Args:
        drops: a ``Cost2100Drops`` of ``n`` drops.

    Returns:
        list of ``n`` :class:`Drop`.
    """
    from mimokd.channels import cost2100_model as cm

    if not isinstance(drops, cm.Cost2100Drops):
        raise ValueError(f"`drops` must be a Cost2100Drops. Received: drops of type {type(drops).__name__}")
    sc = cm.get_scenario(drops.scenario)
    k = np.asarray(drops.kind, np.int64)
    c = np.asarray(drops.cluster, np.int64)
    kind = np.full(k.shape, KIND_UNKNOWN, np.int64)
    cluster = np.zeros(k.shape, np.int64)
    ms_local = (k == cm.KIND_LOCAL) & sc.ms_local_cluster & (c == 0)
    bs_local = (k == cm.KIND_LOCAL) & sc.bs_local_cluster & (c == int(sc.ms_local_cluster))
    far = (k == cm.KIND_FAR_SINGLE) | (k == cm.KIND_FAR_TWIN)
    for mask, code, ident in ((k == cm.KIND_LOS, KIND_LOS, -1), (ms_local, KIND_LOCAL_MS, -3),
                              (bs_local, KIND_LOCAL_BS, -2), (k == cm.KIND_FAR_SINGLE, KIND_FAR_SINGLE, 0),
                              (k == cm.KIND_FAR_TWIN, KIND_FAR_TWIN, 0)):
        kind[mask] = code
        cluster[mask] = ident
    cluster[far] = c[far] - sc.n_local_clusters + 1
    keep = k >= 0
    if np.any(keep & (kind == KIND_UNKNOWN)):
        known = [cm.KIND_PAD, cm.KIND_LOS, cm.KIND_LOCAL, cm.KIND_FAR_SINGLE, cm.KIND_FAR_TWIN]
        raise ValueError(f"`drops` must hold the port's MPC kinds {known}, local clusters in the scenario's "
                         f"local slots. Received kinds: {sorted(set(k[keep].tolist()))}, local cluster slots: "
                         f"{sorted(set(c[k == cm.KIND_LOCAL].tolist()))}")
    out = []
    for i in range(len(drops)):
        sel = keep[i]
        out.append(Drop(delay=drops.delay[i][sel], aod=drops.aod[i][sel], amplitude=drops.gain[i][sel],
                        kind=kind[i][sel], cluster=cluster[i][sel], n_active=int(drops.n_active_clusters[i]),
                        info={"index": int(drops.index[i]), "ms_pos": np.asarray(drops.ue_position[i], np.float64),
                              "bs_pos": np.asarray(drops.bs_position[i], np.float64)}))
    return out


# --------------------------------------------------------------------------------------------------
# Files: the driver's .mat output and the reference fixture
# --------------------------------------------------------------------------------------------------
def load_reference_drops(path):
    """Reads the ``.mat`` written by ``generate_reference.m`` into a list of :class:`Drop`.

    Drop ``info`` holds ``ms_pos``, ``bs_pos`` (float ``(3,)``), ``seconds``, ``n_retries``,
    ``los_power_factor``, ``n_far_total``, ``n_twin_active``, ``label_mismatch``.
    """
    import scipy.io

    m = scipy.io.loadmat(str(path), squeeze_me=False)

    def col(name):
        return np.asarray(m[name]).reshape(-1)

    idx = col("mpc_drop").astype(np.int64)
    amp = col("mpc_amp_re") + 1j * col("mpc_amp_im")
    n_drops = col("n_active").size
    drops = []
    for d in range(1, n_drops + 1):
        sel = idx == d
        info = {
            "ms_pos": np.asarray(m["ms_pos"])[d - 1].astype(np.float64),
            "bs_pos": np.asarray(m["bs_pos"])[d - 1].astype(np.float64),
        }
        for k in ("seconds", "n_retries", "los_power_factor", "n_far_total", "n_twin_active", "label_mismatch"):
            if k in m:
                info[k] = float(col(k)[d - 1])
        drops.append(Drop(delay=col("mpc_delay")[sel], aod=col("mpc_aod")[sel], amplitude=amp[sel],
                          kind=col("mpc_kind")[sel], cluster=col("mpc_cluster")[sel],
                          n_active=int(col("n_active")[d - 1]), info=info))
    return drops


def load_reference_stats(path=FIXTURE_PATH):
    """Loads the reference fixture.

    The ``.npz`` holds, per scenario ``S`` of :data:`REFERENCE_SCENARIOS`, the arrays
    ``"S__<stat>"`` for every statistic of :data:`SCALAR_STATS` (``(D,)``) and
    :data:`PROFILE_STATS` (``(D, bins)``), the extras, ``"S__mean_power_map"`` and
    ``"S__power_map_variance"`` (float32 ``(n_antennas, n_delay)``, see :func:`reference_map_moments`),
    plus ``"metadata"``: a JSON string.

    Returns:
        ``(stats, metadata)``: ``stats[S][stat]`` arrays, ``metadata`` dict (its ``"scenarios"``
        entry has per scenario the drops, seconds per drop, carrier, driver settings, ...).
    """
    with np.load(path, allow_pickle=False) as z:
        metadata = json.loads(str(z["metadata"]))
        stats = {}
        for key in z.files:
            if "__" not in key:
                continue
            scen, stat = key.split("__", 1)
            stats.setdefault(scen, {})[stat] = np.asarray(z[key])
    return stats, metadata


def reference_map_moments(scenario, path=FIXTURE_PATH):
    """The reference's mean angular-delay power map of a scenario, its per-entry variance and drops.

    Args:
        scenario: a reference name (:data:`REFERENCE_SCENARIOS`) or a port name
            (:data:`MODEL_TO_REFERENCE`).
        path: the fixture.

    Returns:
        dict: ``mean`` (:func:`mean_power_map` of the reference drops) and ``variance`` (per entry,
        over drops, ``ddof=1``), float32 ``(n_antennas, n_delay)`` (32 x 32 in the committed fixture);
        ``drops``: the number of reference drops behind them (int).
    """
    name = MODEL_TO_REFERENCE.get(scenario, scenario)
    if name not in REFERENCE_SCENARIOS:
        raise ValueError(f"Unknown scenario; expected one of {list(REFERENCE_SCENARIOS)} or "
                         f"{list(MODEL_TO_REFERENCE)}. Received: scenario={scenario!r}")
    keys = [f"{name}__mean_power_map", f"{name}__power_map_variance"]
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise ValueError(f"The fixture {path} has no {missing}; rebuild it with "
                             "tools/cost2100_reference/build_fixture.py.")
        metadata = json.loads(str(z["metadata"]))
        return {"mean": np.asarray(z[keys[0]]), "variance": np.asarray(z[keys[1]]),
                "drops": int(metadata["scenarios"][name]["power_map_drops"])}


def reference_mean_map(scenario, path=FIXTURE_PATH):
    """The reference's mean angular-delay power map, float32 ``(n_antennas, n_delay)``.

    See :func:`reference_map_moments` (``["mean"]``) and :func:`mean_power_map`.
    """
    return reference_map_moments(scenario, path)["mean"]
