"""The built-in clustered multipath channel generator, eq. (1)-(2) of Cui et al.

A 32-antenna half-wavelength ULA at the BS, a single-antenna UE and ``Nsub = 1024`` OFDM subcarriers
``f_n = n * df``, ``df = bandwidth / Nsub``, ``n = 0 .. Nsub - 1``. The channel of subcarrier ``n``
is eq. (1),

    ``h_n = sum_c sum_s g_{c,s,n} a(theta_{c,s})``,  ``g_{c,s,n} = beta_{c,s} exp(-j 2 pi n df tau_{c,s})``,

with the steering vector of eq. (2), ``a(theta)_t = exp(j 2 pi t (d / lambda) sin theta)``. Each
sample draws a random number of clusters; each cluster a mean angle and an excess delay; each
subpath a Laplacian angular offset and an exponential intra-cluster delay. Cluster powers follow an
exponential power-delay profile with log-normal shadowing, and subpath gains ``beta`` are circular
complex Gaussian (Rayleigh fading within a cluster).

The angular-delay matrix (eq. 4, the convention of :func:`mimokd.channels.transforms.to_angular_delay`)
is computed in closed form rather than by building the 32 x 1024 frequency response and taking its
FFT: the DFT of a sum of complex exponentials is a sum of Dirichlet kernels,

    ``sum_{i=0}^{n-1} exp(j 2 pi i w / n) = exp(j pi (n-1) w / n) sin(pi w) / sin(pi w / n)``,

so ``H[k, m] = sum_p beta_p D_Nt(Nt (d/lambda) sin theta_p - k) D_Nsub(m - tau_p * bandwidth) /
sqrt(Nt Nsub)``, evaluated for the 32 kept delay taps only. :func:`paths_to_frequency` builds the
explicit frequency response, for checks and for frequency-domain uses.

Scaling to [0, 1]: each sample is scaled by :func:`mimokd.channels.transforms.peak_scale`, so that
its largest ``|Re|`` or ``|Im|`` maps to 0 or 1 (``x = 0.5 + 0.5 * H / max(|Re H|, |Im H|)``).
The generator models no path loss, so the absolute level of a sample carries no information;
NMSE is a per-sample ratio and rho a cosine, so neither depends on the per-sample scale; and the
scale uses the whole [0, 1] range without ever clipping. (The public COST2100 files use one scale
for the whole set, so their values crowd around 0.5 more than these do.)
"""

from __future__ import annotations

import dataclasses
import numbers
import zlib
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from mimokd.channels.layout import NUM_ANTENNAS, NUM_DELAY_TAPS
from mimokd.channels.transforms import angular_delay_of_paths, complex_to_csi, peak_scale

# Samples drawn from one random generator: block b uses SeedSequence(seed, spawn_key=(scenario, b)).
# Fixed, so that a sample depends only on (seed, scenario, its index), never on how many are asked for.
_BLOCK = 1000


@dataclasses.dataclass(frozen=True)
class ScenarioConfig:
    """A scenario of the built-in generator, as plain data.

    Attributes:
        name: the scenario's name (it also keys the random streams).
        carrier_frequency_hz: carrier frequency. With the antenna spacing given in wavelengths and
            eq. (2) evaluated at the carrier, it does not enter the channel; kept as a record.
        bandwidth_hz: system bandwidth; the delay-tap spacing is ``1 / bandwidth_hz``.
        num_subcarriers: OFDM subcarriers ``Nsub``.
        num_antennas: BS antennas ``Nt`` of the ULA.
        num_delay_taps: leading delay taps kept.
        antenna_spacing: ``d / lambda``.
        min_clusters, max_clusters: the number of clusters is uniform on ``[min, max]``.
        subpaths_per_cluster: subpaths ``Ns`` per cluster.
        cluster_angle_range_deg: cluster mean angles of departure are uniform on this range.
        angular_spread_deg: rms of the Laplacian subpath angle offsets around a cluster's angle.
        first_arrival_max_s: delay of the first cluster, uniform on ``[0, first_arrival_max_s]``
            (a fraction of a tap, so that paths fall between taps).
        max_excess_delay_s: the other clusters' excess delays are uniform on ``[0, max_excess_delay_s]``.
        intra_cluster_delay_spread_s: mean of the exponential subpath delays within a cluster.
        power_decay_s: cluster power ``~ exp(-excess_delay / power_decay_s)``, the exponential
            power-delay profile.
        shadowing_std_db: standard deviation of the log-normal cluster shadowing.
    """

    name: str
    carrier_frequency_hz: float
    bandwidth_hz: float
    min_clusters: int
    max_clusters: int
    subpaths_per_cluster: int
    cluster_angle_range_deg: tuple
    angular_spread_deg: float
    first_arrival_max_s: float
    max_excess_delay_s: float
    intra_cluster_delay_spread_s: float
    power_decay_s: float
    shadowing_std_db: float = 3.0
    num_subcarriers: int = 1024
    num_antennas: int = NUM_ANTENNAS
    num_delay_taps: int = NUM_DELAY_TAPS
    antenna_spacing: float = 0.5

    def __post_init__(self):
        for field in ("min_clusters", "max_clusters", "subpaths_per_cluster", "num_subcarriers",
                      "num_antennas", "num_delay_taps"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"ScenarioConfig `{field}` must be a positive integer. Received: {field}={value!r}")
        if self.min_clusters > self.max_clusters:
            raise ValueError(
                "ScenarioConfig needs min_clusters <= max_clusters. "
                f"Received: min_clusters={self.min_clusters}, max_clusters={self.max_clusters}"
            )
        if self.num_delay_taps > self.num_subcarriers:
            raise ValueError(
                "ScenarioConfig needs num_delay_taps <= num_subcarriers. "
                f"Received: num_delay_taps={self.num_delay_taps}, num_subcarriers={self.num_subcarriers}"
            )
        low, high = self.cluster_angle_range_deg
        if not -90.0 <= low <= high <= 90.0:
            raise ValueError(
                "ScenarioConfig `cluster_angle_range_deg` must be (low, high) with -90 <= low <= high <= 90. "
                f"Received: cluster_angle_range_deg={self.cluster_angle_range_deg!r}"
            )
        for field in ("carrier_frequency_hz", "bandwidth_hz", "antenna_spacing", "power_decay_s"):
            if not getattr(self, field) > 0:
                raise ValueError(
                    f"ScenarioConfig `{field}` must be positive. Received: {field}={getattr(self, field)!r}"
                )
        for field in ("angular_spread_deg", "first_arrival_max_s", "max_excess_delay_s",
                      "intra_cluster_delay_spread_s", "shadowing_std_db"):
            if not getattr(self, field) >= 0:
                raise ValueError(f"ScenarioConfig `{field}` must be >= 0. Received: {field}={getattr(self, field)!r}")

    @property
    def num_paths(self):
        """Paths per sample (inactive clusters included, with zero gain): ``max_clusters * Ns``."""
        return self.max_clusters * self.subpaths_per_cluster

    @property
    def tap_spacing_s(self):
        """Delay between two taps of the angular-delay matrix, ``1 / bandwidth``."""
        return 1.0 / self.bandwidth_hz


#: Indoor picocell at 5.3 GHz, 20 MHz: 3-6 clusters spread over the sector, excess delays within
#: 150 ns (3 taps of 50 ns), so that the energy sits in the first few delay taps (about 97 % in
#: the first 4 on average).
INDOOR = ScenarioConfig(
    name="indoor",
    carrier_frequency_hz=5.3e9,
    bandwidth_hz=20e6,
    min_clusters=3,
    max_clusters=6,
    subpaths_per_cluster=10,
    cluster_angle_range_deg=(-75.0, 75.0),
    angular_spread_deg=5.0,
    first_arrival_max_s=20e-9,
    max_excess_delay_s=150e-9,
    intra_cluster_delay_spread_s=10e-9,
    power_decay_s=40e-9,
)

#: Outdoor rural at 300 MHz, 20 MHz: 1-3 narrow clusters with excess delays up to 1.2 us (24 taps)
#: and a slow power decay (1 us), so that the energy spreads over the 32 kept taps (about a quarter
#: of it beyond tap 8 on average, against under 1 % indoors).
OUTDOOR = ScenarioConfig(
    name="outdoor",
    carrier_frequency_hz=300e6,
    bandwidth_hz=20e6,
    min_clusters=1,
    max_clusters=3,
    subpaths_per_cluster=10,
    cluster_angle_range_deg=(-60.0, 60.0),
    angular_spread_deg=2.0,
    first_arrival_max_s=50e-9,
    max_excess_delay_s=1.2e-6,
    intra_cluster_delay_spread_s=50e-9,
    power_decay_s=1.0e-6,
)

#: The presets of :func:`generate_csi`, by name.
SCENARIOS = {config.name: config for config in (INDOOR, OUTDOOR)}


class Paths(NamedTuple):
    """The multipath components of a batch of channels (eq. 1), inactive clusters with zero gain.

    Attributes:
        gains: complex128 ``[batch, paths]``, ``beta`` of eq. (1); expected total power 1 per sample
            (the cluster powers sum to 1, the subpaths are Rayleigh around them).
        angles: float64 ``[batch, paths]``, angles of departure ``theta`` in radians.
        delays: float64 ``[batch, paths]``, delays ``tau`` in seconds.
    """

    gains: np.ndarray
    angles: np.ndarray
    delays: np.ndarray


def get_scenario(scenario):
    """Returns the :class:`ScenarioConfig` named ``scenario`` (or ``scenario`` itself if it is one)."""
    if isinstance(scenario, ScenarioConfig):
        return scenario
    if isinstance(scenario, str) and scenario in SCENARIOS:
        return SCENARIOS[scenario]
    raise ValueError(
        f"Unknown scenario; expected one of {sorted(SCENARIOS)} or a ScenarioConfig. Received: scenario={scenario!r}"
    )


def draw_paths(config, rng, num_samples):
    """Draws the clusters and subpaths of ``num_samples`` channels.

    Args:
        config: a :class:`ScenarioConfig`.
        rng: a ``numpy.random.Generator``.
        num_samples: batch size.

    Returns:
        :class:`Paths` with ``[num_samples, config.num_paths]`` arrays, paths ordered cluster-major.
    """
    b, c, s = num_samples, config.max_clusters, config.subpaths_per_cluster
    n_clusters = rng.integers(config.min_clusters, config.max_clusters + 1, size=b)
    active = np.arange(c)[None, :] < n_clusters[:, None]  # [b, c]

    low, high = np.deg2rad(config.cluster_angle_range_deg)
    cluster_angles = rng.uniform(low, high, size=(b, c))
    # Laplacian of rms `angular_spread`: scale = rms / sqrt(2).
    offsets = rng.laplace(0.0, np.deg2rad(config.angular_spread_deg) / np.sqrt(2.0), size=(b, c, s))
    angles = np.clip(cluster_angles[:, :, None] + offsets, -np.pi / 2, np.pi / 2)

    first = rng.uniform(0.0, config.first_arrival_max_s, size=(b, 1))
    excess = rng.uniform(0.0, config.max_excess_delay_s, size=(b, c))
    excess[:, 0] = 0.0  # cluster 0 is the first arrival
    intra = rng.exponential(1.0, size=(b, c, s)) * config.intra_cluster_delay_spread_s
    delays = (first + excess)[:, :, None] + intra

    shadowing = 10.0 ** (rng.normal(0.0, config.shadowing_std_db, size=(b, c)) / 10.0)
    power = np.exp(-excess / config.power_decay_s) * shadowing * active
    power /= power.sum(axis=1, keepdims=True)
    fading = (rng.standard_normal((b, c, s)) + 1j * rng.standard_normal((b, c, s))) / np.sqrt(2.0)
    gains = np.sqrt(power / s)[:, :, None] * fading

    return Paths(gains=gains.reshape(b, -1), angles=angles.reshape(b, -1), delays=delays.reshape(b, -1))


def paths_to_frequency(paths, config):
    """The spatial-frequency channel of eq. (1)-(2), explicitly, on all subcarriers.

    Args:
        paths: :class:`Paths` with ``[batch, paths]`` arrays.
        config: the :class:`ScenarioConfig` they were drawn for.

    Returns:
        complex128 ``[batch, num_antennas, num_subcarriers]`` = ``[batch, antenna, subcarrier]``.
    """
    t = np.arange(config.num_antennas)
    n = np.arange(config.num_subcarriers)
    df = config.bandwidth_hz / config.num_subcarriers
    steering = np.exp(2j * np.pi * config.antenna_spacing * np.sin(paths.angles)[:, :, None] * t)  # eq. (2)
    subcarrier_gains = paths.gains[:, :, None] * np.exp(-2j * np.pi * df * paths.delays[:, :, None] * n)
    return np.einsum("bpt,bpn->btn", steering, subcarrier_gains)  # eq. (1)


def paths_to_angular_delay(paths, config):
    """The truncated angular-delay matrix of eq. (4) for :class:`Paths`, in closed form.

    Equal (to float32 precision) to ``to_angular_delay(paths_to_frequency(paths, config),
    config.num_delay_taps)``, without building the frequency response: the paths' spatial
    frequencies ``(d / lambda) sin theta_p`` and delays ``tau_p * bandwidth`` (in taps) go through
    :func:`mimokd.channels.transforms.angular_delay_of_paths`.

    Args:
        paths: :class:`Paths` with ``[batch, paths]`` arrays.
        config: the :class:`ScenarioConfig` they were drawn for.

    Returns:
        complex64 ``[batch, num_antennas, num_delay_taps]`` = ``[batch, angle, delay]``.
    """
    return angular_delay_of_paths(paths.gains, config.antenna_spacing * np.sin(paths.angles),
                                  paths.delays * config.bandwidth_hz, config.num_antennas,
                                  config.num_subcarriers, config.num_delay_taps)


def _block_rng(seed, config, block):
    key = zlib.crc32(config.name.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key, block)))


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")
    return int(seed)


def _generate(num_samples, scenario, seed, progress, scaled):
    """Fills ``[num_samples, 32, 32]`` complex64 (``scaled=False``) or ``[num_samples, 2, 32, 32]``
    float32 CSI (``scaled=True``) block by block."""
    config = get_scenario(scenario)
    num_samples = _check_count(num_samples, "num_samples")
    seed = _check_seed(seed)
    grid = (config.num_antennas, config.num_delay_taps)
    out = np.empty((num_samples, 2, *grid), np.float32) if scaled else np.empty((num_samples, *grid), np.complex64)
    with tqdm(total=num_samples, disable=not progress, desc=f"builtin-{config.name}", unit="sample") as bar:
        for block, start in enumerate(range(0, num_samples, _BLOCK)):
            count = min(_BLOCK, num_samples - start)
            # Always draw a whole block, so that a sample never depends on num_samples.
            paths = draw_paths(config, _block_rng(seed, config, block), _BLOCK)
            h = paths_to_angular_delay(Paths(*(field[:count] for field in paths)), config)
            out[start:start + count] = complex_to_csi(h, peak_scale(h)) if scaled else h
            bar.update(count)
    return out


def generate_angular_delay(num_samples, scenario="indoor", seed=0, progress=False):
    """Complex angular-delay channels of the built-in generator (before scaling to [0, 1]).

    The samples of :func:`generate_csi` with the same arguments, unscaled.

    Args:
        num_samples: number of channels.
        scenario: ``"indoor"``, ``"outdoor"`` or a :class:`ScenarioConfig`.
        seed: non-negative integer; sample ``i`` depends only on ``(seed, scenario name, i)``.
        progress: show a tqdm progress bar.

    Returns:
        complex64 ``[num_samples, 32, 32]`` = ``[batch, angle, delay]`` in the orthonormal DFT
        convention of :func:`~mimokd.channels.transforms.to_angular_delay`, path gains of expected
        total power 1 (so about ``Nt * Nsub`` energy per matrix before truncation).
    """
    return _generate(num_samples, scenario, seed, progress, scaled=False)


def generate_csi(num_samples, scenario="indoor", seed=0, progress=True):
    """CSI tensors of the built-in clustered multipath ULA generator (eq. 1, 2 and 4 of Cui et al.).

    Args:
        num_samples: number of samples.
        scenario: ``"indoor"`` (5.3 GHz picocell, short delays), ``"outdoor"`` (300 MHz rural,
            delays over the 32 taps) or a :class:`ScenarioConfig`.
        seed: non-negative integer. The same seed gives the same data on any machine; a sample
            depends only on ``(seed, scenario name, its index)``, so ``generate_csi(n)`` is the
            first ``n`` samples of ``generate_csi(m)`` for ``m > n``.
        progress: show a tqdm progress bar.

    Returns:
        float32 ``[num_samples, 2, 32, 32]`` = ``[batch, plane, angle, delay]``, values in [0, 1],
        0.5 = zero, each sample scaled by its largest ``|Re|`` / ``|Im|`` (see the module docstring).

    Examples:
        >>> csi = generate_csi(1000, "indoor", seed=0, progress=False)
        >>> csi.shape, csi.dtype
        ((1000, 2, 32, 32), dtype('float32'))
    """
    return _generate(num_samples, scenario, seed, progress, scaled=True)
