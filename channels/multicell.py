"""The multicell massive MIMO dataset of Zhang et al., Sec. VI and VII-C / VII-D.

Paper text: ``/work/shared/papers/zhang-model-driven-beamforming-uplink.md``. Built from the blocks
of :mod:`mimokd.channels.uplink_downlink` (eq. 40 small scale, eq. 42 path loss, the hexagonal
layout, uplink pilots eq. 33-34) and labelled with the distributed SLNR beamformer of
:mod:`mimokd.classical.slnr` (eq. 31-32).

**Layouts** (the multicell layout of :mod:`mimokd.classical.slnr`):

- channels ``h``: complex128 ``[batch, num_cells, K_total, Nt]``; ``h[:, j, u]`` is the channel between
  BS ``j`` and user ``u``, ``K_total = num_cells * users_per_cell``, users cell-major: user ``k`` of
  cell ``i`` is ``u = i * users_per_cell + k`` (BS ``i`` serves it). ``h_up[:, j]`` is the paper's
  ``H_U,j^T`` of eq. (33), ``h_down[:, j, u]`` its ``h_{D,u,j}`` of eq. (25);
- beamformers ``W``: complex128 ``[batch, num_cells, Nt, users_per_cell]``, ``W[:, i, :, k]`` serves
  user ``i * users_per_cell + k``;
- per-BS views for the network: the SAME network serves every BS (Sec. VI-C, "the trained neural
  network's parameters are applicable to all cells"), so BS ``j``'s data are reordered by
  :func:`bs_view_order` (its own users first) and stacked as sample ``sample * num_cells + j``;
  real-stored by :func:`mimokd.zoo.beamforming.to_real`: float32 ``[n * num_cells, K_total, Nt, 2]``.

**Noise normalisation.** Every channel is multiplied by ``sqrt(gain / noise_w)`` (``gain`` the
eq. (42) path-loss gain of its link and direction, ``noise_w`` the thermal noise of Sec. VII-C,
-174 dBm/Hz over 20 MHz, the same at the BSs and at the users), so the noise power is 1 in both
directions and a link with transmit power ``P`` watts has SNR ``P |h|^2``. The small-scale part is
eq. (40) unnormalised, as in :func:`~mimokd.channels.uplink_downlink.fdd_multipath_channels`:
``E|h_U[n]|^2 = paths``, ``E|h_D[n]|^2 = 2 |c|^2 paths`` (``alpha^2`` has ``E|alpha|^4 = 2``).

**Doppler (Sec. VII-D, Fig. 8).** The uplink is measured at ``t``, the downlink is used at
``t + delay_s``, uncompensated. The path gains age by Jakes' correlation
``rho = J0(2 pi doppler_hz delay_s)``: ``alpha' = rho alpha + sqrt(1 - rho^2) e``, ``e ~ CN(0, 1)``
fresh, with the SAME angles, delays, phases and positions (1-20 m/s moves a user 1-20 mm in 1 ms);
the eq. (40) downlink is built from ``alpha'``. The paper gives the Doppler range (10-150 Hz) but no
delay; ``delay_s = 1 ms`` (one LTE subframe, the uplink-to-downlink turnaround of a TDD frame) is
OUR choice, giving ``rho = 0.999`` at 10 Hz and ``rho = 0.79`` at 150 Hz. ``e`` is drawn even when
``rho = 1`` so that one seed gives the same positions, paths, uplink and pilot noise for every
Doppler value of a sweep.

**Draw order** (one ``numpy.random.Generator``): the front-end ``(Phi, c)`` of
:func:`~mimokd.channels.uplink_downlink.make_front_end` when not given; the user positions
(:func:`~mimokd.channels.uplink_downlink.drop_users`); then per chunk of samples
(:data:`CHUNK_ELEMENTS`, a constant, so the draws depend only on the arguments) the eq. (40) paths
of all ``num_cells * K_total`` links (BS-major) and the Doppler innovations ``e``; then, in
:func:`make_multicell_dataset`, the pilot noise of every BS in one call.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.special

from mimokd.channels.uplink_downlink import (
    _positive_float,
    _positive_int,
    dbm_to_w,
    drop_users,
    fdd_multipath_channels,
    hexagonal_cells,
    large_scale_gains,
    ls_input,
    make_front_end,
    noise_power_w,
    received_uplink,
    ula_steering,
    uplink_pilots,
)
from mimokd.rng import as_generator, complex_normal

F_UP = 2.5e9
"""Uplink carrier in Hz (Sec. VII-C)."""
F_DOWN = 2.4e9
"""Downlink carrier in Hz (Sec. VII-C)."""
CHUNK_ELEMENTS = 2 ** 23
"""Samples are generated in chunks whose ``[chunk, links, paths, Nt]`` steering arrays have at most this
many entries (128 MiB complex128), so memory stays bounded; a constant, so results depend on the seed only."""


def _finite_real(name, value, *, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"`{name}` must be a finite number{bound}. Received: {name}={value!r}")
    return float(value)


def _eq40_downlink(info, alpha, Nt, f_down):
    """Downlink of eq. (40) from the paths of ``fdd_multipath_channels(..., return_paths=True)`` with gains ``alpha``.

    ``h_D = c Phi sum_l alpha_l^2 exp(-j 2 pi f_down tau_l + j phi_l) a_down(theta_l)``, the same
    angles / delays / phases / spacing / front-end as ``info``. ``alpha`` complex ``[..., paths]``
    (the aged gains). Returns complex128 ``[..., Nt]``.
    """
    rotation = np.exp(-2j * np.pi * np.mod(f_down * info["tau"], 1.0) + 1j * info["phase"])
    a_down = ula_steering(info["theta"], Nt, f_down, info["spacing"])     # [..., paths, Nt]
    small = np.einsum("...l,...ln->...n", alpha ** 2 * rotation, a_down)
    return info["c"] * np.einsum("mn,...n->...m", info["phi"], small)


def bs_view_order(num_cells, users_per_cell, cell):
    """The users as BS ``cell`` sees them: its own users first, then every other user in increasing index.

    Sec. VI-C: one network is trained once and applied at every BS, so each BS presents its own
    (served) users in the first ``users_per_cell`` slots. ``h[:, cell, bs_view_order(...)]`` is BS
    ``cell``'s view of channels in the layout of the module docstring.

    Returns:
        int64 ``[num_cells * users_per_cell]``, a permutation of ``0 .. K_total - 1``.
    """
    num_cells = _positive_int("num_cells", num_cells)
    users_per_cell = _positive_int("users_per_cell", users_per_cell)
    if isinstance(cell, bool) or not isinstance(cell, numbers.Integral) or not 0 <= cell < num_cells:
        raise ValueError(f"`cell` must be an integer in [0, num_cells) = [0, {num_cells}). Received: cell={cell!r}")
    users = np.arange(num_cells * users_per_cell)
    own = (users // users_per_cell) == int(cell)
    return np.concatenate([users[own], users[~own]])


def multicell_channels(batch, Nt, rng, *, num_cells=7, users_per_cell=1, radius=200.0, min_distance=10.0,
                       front_end=None, paths=4, bandwidth=20e6, noise_density_dbm_hz=-174.0, doppler_hz=0.0,
                       delay_s=1e-3, max_delay=1e-4, return_paths=False):
    """Noise-normalised multicell uplink / downlink channels of Sec. VII-C (eq. 40, 42), with Doppler (Sec. VII-D).

    Small scale: eq. (40) (:func:`~mimokd.channels.uplink_downlink.fdd_multipath_channels`, uplink
    2.5 GHz, downlink 2.4 GHz, ``downlink="eq40"``) drawn independently for every (BS, user) link
    and sample, with ONE front-end ``(Phi, c)`` for all of them (pass the training set's
    ``front_end`` to the test set). Large scale: the eq. (42) path losses of
    :func:`~mimokd.channels.uplink_downlink.large_scale_gains` for users dropped uniformly in the
    hexagonal cells (:func:`~mimokd.channels.uplink_downlink.drop_users`). Each channel is scaled
    by ``sqrt(gain / noise_w)`` (noise power 1, see the module docstring); the downlink gains are
    aged by ``rho = J0(2 pi doppler_hz delay_s)``.

    Args:
        batch: samples. Nt: BS antennas. rng: a ``numpy.random.Generator`` or an int seed.
        num_cells: ``N_c`` (7 in Sec. VII-C). users_per_cell: ``K_i`` (1 in Sec. VII-C).
        radius: cell circumradius in metres (200). min_distance: minimum user-BS distance (10 m).
        front_end: ``(phi, c)`` of :func:`~mimokd.channels.uplink_downlink.make_front_end`, or
            ``None`` to draw one from ``rng`` first.
        paths: ``L_p`` of eq. (40) (not given in the paper; 4).
        max_delay: the path delays' range ``[0, max_delay]`` in seconds (the paper's ``10^-4``, read in
            seconds; see :mod:`mimokd.experiments.zhang` on what it does to the uplink-downlink relation).
        bandwidth: Hz (20 MHz). noise_density_dbm_hz: dBm/Hz (-174).
        doppler_hz: maximum Doppler frequency, >= 0 (Fig. 8: 10-150 Hz; 0 = no aging).
        delay_s: uplink-to-downlink delay in seconds, >= 0 (our choice, 1 ms; see the module docstring).
        return_paths: also return ``"paths"``: a dict of float64 / complex128
            ``[batch, num_cells, K_total, paths]`` arrays ``theta``, ``tau``, ``phase``, ``alpha``
            (uplink gains) and ``alpha_down`` (aged gains), plus ``spacing``.

    Returns:
        dict with ``"h_up"``, ``"h_down"``: complex128 ``[batch, num_cells, K_total, Nt]``
        (noise-normalised); ``"positions"``: float64 ``[batch, num_cells, users_per_cell, 2]`` metres;
        ``"bs_positions"``: float64 ``[num_cells, 2]``; ``"distance"``, ``"gain_up"``,
        ``"gain_down"``: float64 ``[batch, num_cells, K_total]`` (BS ``j``, user ``u``; gains linear,
        eq. 42, before the noise normalisation); ``"front_end"``: ``(phi, c)``; ``"noise_w"``: the
        noise power in watts that was normalised away; ``"rho"``: the Doppler correlation;
        ``"num_cells"``, ``"users_per_cell"``, ``"doppler_hz"``, ``"delay_s"``.
    """
    batch = _positive_int("batch", batch)
    Nt = _positive_int("Nt", Nt)
    num_cells = _positive_int("num_cells", num_cells)
    users_per_cell = _positive_int("users_per_cell", users_per_cell)
    paths = _positive_int("paths", paths)
    doppler_hz = _finite_real("doppler_hz", doppler_hz, minimum=0.0)
    delay_s = _finite_real("delay_s", delay_s, minimum=0.0)
    noise_w = noise_power_w(bandwidth, noise_density_dbm_hz)
    if front_end is not None and (not isinstance(front_end, (tuple, list)) or len(front_end) != 2):
        raise ValueError(f"`front_end` must be a pair (phi, c) from make_front_end, or None. "
                         f"Received: front_end of type {type(front_end).__name__}")
    g = as_generator(rng)
    if front_end is None:
        front_end = make_front_end(Nt, g)
    phi, c = front_end
    k_total = num_cells * users_per_cell
    links = num_cells * k_total
    positions = drop_users(batch, users_per_cell, g, num_cells=num_cells, radius=radius, min_distance=min_distance)
    bs_positions = hexagonal_cells(num_cells, radius)
    gain_up, gain_down, distance = large_scale_gains(bs_positions, positions.reshape(batch, k_total, 2))
    rho = float(scipy.special.j0(2.0 * np.pi * doppler_hz * delay_s))
    innovation = np.sqrt(max(0.0, 1.0 - rho * rho))

    chunk = max(1, CHUNK_ELEMENTS // (links * paths * Nt))
    h_up, h_down, kept = [], [], []
    for start in range(0, batch, chunk):
        size = min(chunk, batch - start)
        up, _, info = fdd_multipath_channels(size, links, Nt, g, f_up=F_UP, f_down=F_DOWN, paths=paths,
                                             max_delay=max_delay, downlink="eq40", phi=phi, c=c, return_paths=True)
        alpha_down = rho * info["alpha"] + innovation * complex_normal(g, info["alpha"].shape)
        h_up.append(up.astype(np.complex128))
        h_down.append(_eq40_downlink(info, alpha_down, Nt, F_DOWN))
        if return_paths:
            kept.append({key: info[key] for key in ("theta", "tau", "phase", "alpha")} | {"alpha_down": alpha_down})
        phi, c = info["phi"], info["c"]  # validated once; identical for every chunk
    shape = (batch, num_cells, k_total, Nt)
    h_up = np.concatenate(h_up).reshape(shape) * np.sqrt(gain_up / noise_w)[..., None]
    h_down = np.concatenate(h_down).reshape(shape) * np.sqrt(gain_down / noise_w)[..., None]
    out = dict(h_up=h_up, h_down=h_down, positions=positions, bs_positions=bs_positions, distance=distance,
               gain_up=gain_up, gain_down=gain_down, front_end=(phi, c), noise_w=noise_w, rho=rho,
               num_cells=num_cells, users_per_cell=users_per_cell, doppler_hz=doppler_hz, delay_s=delay_s)
    if return_paths:
        out["paths"] = {key: np.concatenate([k[key] for k in kept]).reshape(shape[:3] + (paths,)) for key in kept[0]}
        out["paths"]["spacing"] = info["spacing"]
    return out


def make_multicell_dataset(n, Nt, rng, *, power_dbm=10.0, pilot_length=None, pilot_power_dbm=None,
                           channel_scale=None, slnr_labels=True, **channel_kwargs):
    """A multicell training / test set of Sec. VI-B / VI-C: uplink LS inputs, downlink targets, SLNR labels.

    Channels from :func:`multicell_channels` (``channel_kwargs`` go there), noise power 1. Every user
    sends its pilot row of ``X = uplink_pilots(K_total, L, P_pilot)`` (eq. 33, a DFT sub-matrix
    scaled by ``sqrt(P_pilot)``); BS ``j`` receives ``Y_j = H_U,j X + N_j``, ``N_j`` CN(0, 1), and the
    network's input is the LS ``Y~_j = Y_j X^H / (L P_pilot)`` of eq. (34) (pilot-contaminated when
    ``L < K_total``).

    Args:
        n: samples (networks). Nt: BS antennas. rng: a Generator or an int seed.
        power_dbm: per-BS transmit power ``P`` in dBm (10 dBm in Sec. VII-C).
        pilot_length: ``L``, default ``K_total`` (no contamination).
        pilot_power_dbm: per-user pilot power in dBm, default ``power_dbm``.
        channel_scale: ``s`` > 0 dividing every channel of the network views; ``None`` computes
            ``s = sqrt(mean |h_up|^2)`` over the SERVING links (BS ``i`` -> its own users) of THIS set.
            Give a test set the training set's ``s``.
        slnr_labels: compute the SLNR beamformers (eq. 31-32) and Power-Net labels (eq. 37) on the
            TRUE downlink channels.
        **channel_kwargs: ``num_cells``, ``users_per_cell``, ``front_end``, ``doppler_hz``, ... of
            :func:`multicell_channels`.

    Returns:
        dict with every entry of :func:`multicell_channels` (complex, unscaled, noise-normalised) and

        - ``"power"``: ``P`` in watts (noise 1); ``"noise"``: 1.0; ``"power_scaled"``: ``P s^2``, the
          power to use with the scaled views and noise 1 (every SINR is unchanged);
        - ``"pilots"``: ``X`` complex64 ``[K_total, L]``; ``"pilot_length"``; ``"pilot_power"`` (W);
        - ``"ls"``: complex64 ``[n, num_cells, K_total, Nt]``, ``ls[:, j]`` is ``Y~_j^T``;
        - ``"channel_scale"``: ``s``; ``"view_order"``: int64 ``[num_cells, K_total]``, row ``j`` =
          :func:`bs_view_order` ``(..., j)``;
        - ``"uplink"``: float32 ``[n * num_cells, K_total, Nt, 2]``, view ``b * num_cells + j`` is
          ``to_real(ls[b, j, view_order[j]] / s)``; ``"downlink"``: the same for ``h_down``;
        - with ``slnr_labels``: ``"slnr_W"`` complex128 ``[n, num_cells, Nt, users_per_cell]``
          (:func:`~mimokd.classical.slnr.multicell_slnr_beamformer` ``(h_down, P, 1)``, unscaled
          units); ``"powers"`` float32 ``[n * num_cells, users_per_cell]``, ``||w_k||^2 / P`` of the
          view's own users (the eq. 37 Power-Net label; sums to 1); ``"slnr_rate"`` float64 ``[n]``,
          the eq. (26) sum rate (:func:`~mimokd.classical.slnr.multicell_user_rates`) of ``slnr_W``.
    """
    from mimokd.classical.slnr import multicell_slnr_beamformer, multicell_user_rates
    from mimokd.zoo.beamforming import to_real  # imported here: loading this module needs no TensorFlow

    n = _positive_int("n", n)
    Nt = _positive_int("Nt", Nt)
    power_dbm = _finite_real("power_dbm", power_dbm)
    pilot_power_dbm = power_dbm if pilot_power_dbm is None else _finite_real("pilot_power_dbm", pilot_power_dbm)
    if pilot_length is not None:
        pilot_length = _positive_int("pilot_length", pilot_length)
    if channel_scale is not None:
        channel_scale = _positive_float("channel_scale", channel_scale)
    g = as_generator(rng)
    out = multicell_channels(n, Nt, g, **channel_kwargs)
    h_up, h_down = out["h_up"], out["h_down"]
    num_cells, users_per_cell = out["num_cells"], out["users_per_cell"]
    k_total = num_cells * users_per_cell
    power = float(dbm_to_w(power_dbm))

    # uplink pilots and LS input, eq. (33)-(34); noise variance 1 after the normalisation
    L = k_total if pilot_length is None else pilot_length
    pilot_power = float(dbm_to_w(pilot_power_dbm))
    pilots = uplink_pilots(k_total, L, pilot_power)
    ls = ls_input(received_uplink(h_up, pilots, 1.0, g), pilots)

    serving = np.arange(k_total) // users_per_cell  # the BS that serves each user
    if channel_scale is None:
        channel_scale = float(np.sqrt(np.mean(np.abs(h_up[:, serving, np.arange(k_total)]) ** 2)))
        if not (np.isfinite(channel_scale) and channel_scale > 0):
            raise ValueError(f"The serving uplink channels have no energy (channel_scale={channel_scale}); "
                             f"pass `channel_scale` explicitly.")
    order = np.stack([bs_view_order(num_cells, users_per_cell, j) for j in range(num_cells)])

    def views(h):  # [n, num_cells, K_total, Nt] -> real [n * num_cells, K_total, Nt, 2], each BS's own users first
        viewed = np.take_along_axis(h, order[None, :, :, None], axis=2) / channel_scale
        return to_real(viewed.reshape(n * num_cells, k_total, Nt), "float32")

    out.update(power=power, noise=1.0, power_scaled=power * channel_scale ** 2, pilots=pilots, pilot_length=L,
               pilot_power=pilot_power, ls=ls, channel_scale=channel_scale, view_order=order,
               uplink=views(ls), downlink=views(h_down))
    if slnr_labels:
        W = multicell_slnr_beamformer(h_down, power, 1.0, users_per_cell)
        share = np.sum(np.abs(W) ** 2, axis=2) / power  # [n, num_cells, users_per_cell]
        out.update(slnr_W=W, powers=share.reshape(n * num_cells, users_per_cell).astype(np.float32),
                   slnr_rate=multicell_user_rates(h_down, W, 1.0).sum(axis=-1))
    return out
