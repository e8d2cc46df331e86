"""Uplink / downlink channels, multicell geometry and uplink pilots of Zhang et al.

"Model-driven learning of downlink beamforming from the uplink" (paper text:
``/work/shared/papers/zhang-model-driven-beamforming-uplink.md``). Layouts (numpy):

- channels ``h``: complex64 ``[batch, K, Nt]``; ``h[:, k]`` is user ``k``'s channel to the
  ``Nt``-antenna BS, i.e. column ``k`` of the paper's ``H_U`` / ``H_D`` in ``C^{Nt x K}``
  (``H_U = h.swapaxes(-1, -2)``). Multicell channels may carry more leading axes, e.g.
  ``[batch, num_bs, K_total, Nt]``; every function below works on the last two axes;
- pilots ``X``: complex64 ``[K, L]`` (eq. 11), row ``k`` is user ``k``'s pilot sequence;
- received pilots ``Y``: complex64 ``[..., Nt, L]``, the paper's ``Y = H_U X + N`` (eq. 11, 33);
- LS input and channel estimates: complex64 ``[..., K, Nt]``, the same layout as ``h``
  (the paper's ``Y~ = Y X^H / (L P)`` of eq. 12 / 34, transposed);
- positions: float64 ``[..., 2]`` in metres, BS ``0`` at the origin.

Random draws take a ``numpy.random.Generator`` or an int seed. A CN(0, 1) array of shape ``S`` is
always drawn as ``(g.standard_normal(S) + 1j * g.standard_normal(S)) / sqrt(2)`` in float64, real
parts first (the house convention of :mod:`mimokd.classical.mimo`).
"""

from __future__ import annotations

import numbers

import numpy as np

from mimokd.rng import as_generator, complex_normal

SPEED_OF_LIGHT = 299_792_458.0
"""m/s; converts carrier frequencies to wavelengths in the ULA response of eq. (19)."""


# --------------------------------------------------------------------------------------- helpers


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive finite number. Received: {name}={value!r}")
    return float(value)




def _check_channels(name, h):
    h = np.asarray(h)
    if h.ndim < 2 or not np.iscomplexobj(h):
        raise ValueError(f"`{name}` must be a complex array [..., K, Nt]. Received: dtype={h.dtype}, shape={h.shape}")
    return h


def _check_pilots(pilots):
    pilots = np.asarray(pilots)
    if pilots.ndim != 2:
        raise ValueError(f"`pilots` must be a matrix X [K, L] (one row per user). Received: shape={pilots.shape}")
    return pilots


# ------------------------------------------------------------------------- TDD mismatch, eq. (38)


def haar_unitary(Nt, rng):
    """A Haar-distributed ``Nt x Nt`` unitary matrix (QR of a CN(0, 1) matrix, phases of diag(R) removed).

    Returns complex128 ``[Nt, Nt]``.
    """
    Nt = _positive_int("Nt", Nt)
    g = as_generator(rng)
    q, r = np.linalg.qr(complex_normal(g, (Nt, Nt)))
    d = np.diagonal(r)
    return q * (d / np.abs(d))[None, :]


def make_front_end(Nt, rng):
    """The radio front-end mismatch ``(Phi, c)`` of eq. (38) / (40), to be fixed for a whole dataset.

    ``Phi`` models the BS side (Haar unitary ``Nt x Nt``), ``c ~ CN(0, 1)`` the user side. Both are
    drawn ONCE here and then shared by every sample and every user of the training and test sets,
    so that the uplink-to-downlink mapping the CSI-Net learns is deterministic (Sec. III) and the
    same for all users (the single-user CSI-Net of Sec. IV-B). Draw order: ``Phi`` then ``c``.

    Returns:
        ``(phi, c)``: complex128 ``[Nt, Nt]`` and a Python complex.
    """
    g = as_generator(rng)
    phi = haar_unitary(Nt, g)
    c = complex(complex_normal(g, ())[()])
    return phi, c


def _check_front_end(Nt, phi, c):
    phi = np.asarray(phi)
    if phi.shape != (Nt, Nt):
        raise ValueError(f"`phi` must be an [Nt, Nt] = [{Nt}, {Nt}] matrix. Received: phi.shape={phi.shape}")
    if not np.allclose(phi.conj().T @ phi, np.eye(Nt), atol=1e-5):
        raise ValueError("`phi` must be unitary (phi^H phi = I).")
    if isinstance(c, bool) or not isinstance(c, numbers.Number) or not np.isfinite(c):
        raise ValueError(f"`c` must be a finite complex scalar. Received: c={c!r}")
    return phi, complex(c)


def tdd_mismatch_channels(batch, K, Nt, rng, *, phi=None, c=None):
    """Small-scale TDD channels with front-end mismatch, Sec. VII-A, eq. (38).

    Uplink ``h_U`` has i.i.d. CN(0, 1) entries (Rayleigh, drawn per sample and per user);
    downlink ``h_D = c Phi h_U`` for every user and sample, with the fixed ``(Phi, c)`` of
    :func:`make_front_end`.

    Args:
        batch: samples. K: users. Nt: BS antennas.
        rng: a ``numpy.random.Generator`` or an int seed.
        phi, c: the front-end of :func:`make_front_end`; pass the same pair to the training and
            test sets. When both are ``None`` a fresh pair is drawn from ``rng`` FIRST (so two calls
            then have different front-ends); giving only one of them is an error.

    Returns:
        ``(h_up, h_down)``, complex64 ``[batch, K, Nt]`` each.
    """
    batch, K, Nt = (_positive_int(n, v) for n, v in (("batch", batch), ("K", K), ("Nt", Nt)))
    g = as_generator(rng)
    if (phi is None) != (c is None):
        raise ValueError("Give both `phi` and `c` (from make_front_end) or neither.")
    if phi is None:
        phi, c = make_front_end(Nt, g)
    phi, c = _check_front_end(Nt, phi, c)
    h_up = complex_normal(g, (batch, K, Nt))
    h_down = c * np.einsum("mn,bkn->bkm", phi, h_up)
    return h_up.astype(np.complex64), h_down.astype(np.complex64)


def squared_channels(batch, K, Nt, rng):
    """The uplink-downlink relation of Sec. VII's Fig. 2: ``h_D[i] = (h_U[i])^2`` element-wise.

    Uplink ``h_U`` i.i.d. CN(0, 1) (drawn as in :func:`tdd_mismatch_channels`, no front-end);
    ``E|h_D[i]|^2 = E|h_U[i]|^4 = 2``. A nonlinear mapping that a linear estimator cannot learn.

    Returns:
        ``(h_up, h_down)``, complex64 ``[batch, K, Nt]`` each.
    """
    batch, K, Nt = (_positive_int(n, v) for n, v in (("batch", batch), ("K", K), ("Nt", Nt)))
    h_up = complex_normal(as_generator(rng), (batch, K, Nt))
    return h_up.astype(np.complex64), (h_up ** 2).astype(np.complex64)


# ------------------------------------------------------------------ FDD ULA multipath, eq. (18)-(19), (40)


def ula_steering(theta, Nt, frequency, spacing):
    """ULA response of eq. (19): ``a(theta)[n] = exp(-j 2 pi (spacing / lambda) n sin(theta))``.

    Args:
        theta: angles in radians, any shape ``S``.
        Nt: antennas. frequency: carrier in Hz (``lambda = SPEED_OF_LIGHT / frequency``).
        spacing: antenna spacing ``d`` in metres.

    Returns:
        complex128 ``S + [Nt]``.
    """
    Nt = _positive_int("Nt", Nt)
    frequency = _positive_float("frequency", frequency)
    spacing = _positive_float("spacing", spacing)
    theta = np.asarray(theta, dtype=np.float64)
    n = np.arange(Nt)
    return np.exp(-2j * np.pi * (spacing * frequency / SPEED_OF_LIGHT) * n * np.sin(theta)[..., None])


def fdd_multipath_channels(batch, K, Nt, rng, *, f_up=2.5e9, f_down=2.4e9, paths=4,
                           angle_spread=np.pi / 6, max_delay=1e-4, spacing=None,
                           downlink="eq40", phi=None, c=None, return_paths=False):
    """FDD ULA multipath channels, Sec. V-A eq. (18)-(19) and Sec. VII-B eq. (40).

    Per sample and per user (all drawn independently, in this order): a mean angle
    ``theta_bar ~ U[-pi/2, pi/2]``; per path ``l = 1..paths``: angle
    ``theta_l ~ U[theta_bar - angle_spread/2, theta_bar + angle_spread/2]``, delay
    ``tau_l ~ U[0, max_delay]``, phase ``phi_l ~ U[-pi, pi]``, gain ``alpha_l ~ CN(0, 1)``.
    The SAME angles, delays, phases and gains are used at both frequencies:

    - ``h_U = sum_l alpha_l exp(-j 2 pi f_up tau_l + j phi_l) a_up(theta_l)``  (eq. 18 / 40);
    - ``downlink="eq40"`` (the paper's Sec. VII-B model):
      ``h_D = c Phi sum_l alpha_l^2 exp(-j 2 pi f_down tau_l + j phi_l) a_down(theta_l)``;
    - ``downlink="physical"`` (eq. 18 at ``f_down``, no front-end mismatch):
      ``h_D = sum_l alpha_l exp(-j 2 pi f_down tau_l + j phi_l) a_down(theta_l)``, identical to
      ``h_U`` when ``f_up == f_down``.

    ``a_up`` / ``a_down`` are :func:`ula_steering` at ``f_up`` / ``f_down`` with one physical
    spacing; by default ``spacing = SPEED_OF_LIGHT / (2 f_down)``, half a DOWNLINK wavelength as
    Sec. VII-B states (the uplink array is then ``f_up / f_down`` half-wavelengths apart).
    No power normalisation: ``E|h_U[n]|^2 = paths``.

    Args:
        batch, K, Nt: samples, users, BS antennas. rng: a Generator or an int seed.
        f_up, f_down: carriers in Hz (Sec. VII-B: 2.5 and 2.4 GHz).
        paths: ``L_p`` (not given in the paper; 4 by default).
        angle_spread: ``Delta theta`` in radians (the paper's bound pi/6).
        max_delay: upper end of the delay range in seconds (the paper's ``[0, 1e-4]``).
        spacing: antenna spacing in metres, default half the downlink wavelength.
        downlink: ``"eq40"`` or ``"physical"``, see above.
        phi, c: front-end of :func:`make_front_end` for ``"eq40"``; both ``None`` draws a fresh
            pair from ``rng`` before the paths. Ignored (must be ``None``) for ``"physical"``.
        return_paths: also return a dict of the path parameters (float64 / complex128
            ``[batch, K, paths]``: ``theta``, ``tau``, ``phase``, ``alpha``; ``theta_bar``
            ``[batch, K]``; ``spacing``, ``phi``, ``c``).

    Returns:
        ``(h_up, h_down)`` complex64 ``[batch, K, Nt]``, plus the dict when ``return_paths``.
    """
    batch, K, Nt, paths = (_positive_int(n, v) for n, v in
                           (("batch", batch), ("K", K), ("Nt", Nt), ("paths", paths)))
    f_up, f_down, max_delay = (_positive_float(n, v) for n, v in
                               (("f_up", f_up), ("f_down", f_down), ("max_delay", max_delay)))
    if isinstance(angle_spread, bool) or not isinstance(angle_spread, numbers.Real) \
            or not 0 <= angle_spread <= np.pi:
        raise ValueError(f"`angle_spread` must be a number in [0, pi] radians. Received: angle_spread={angle_spread!r}")
    spacing = SPEED_OF_LIGHT / (2.0 * f_down) if spacing is None else _positive_float("spacing", spacing)
    if downlink not in ("eq40", "physical"):
        raise ValueError(f"`downlink` must be 'eq40' or 'physical'. Received: downlink={downlink!r}")
    g = as_generator(rng)
    if downlink == "eq40":
        if (phi is None) != (c is None):
            raise ValueError("Give both `phi` and `c` (from make_front_end) or neither.")
        if phi is None:
            phi, c = make_front_end(Nt, g)
        phi, c = _check_front_end(Nt, phi, c)
    elif phi is not None or c is not None:
        raise ValueError("`phi` / `c` apply only to downlink='eq40'.")

    theta_bar = g.uniform(-np.pi / 2, np.pi / 2, size=(batch, K))
    theta = theta_bar[..., None] + g.uniform(-angle_spread / 2, angle_spread / 2, size=(batch, K, paths))
    tau = g.uniform(0.0, max_delay, size=(batch, K, paths))
    phase = g.uniform(-np.pi, np.pi, size=(batch, K, paths))
    alpha = complex_normal(g, (batch, K, paths))

    def rotation(f):  # exp(-j 2 pi f tau + j phi); f tau reduced mod 1 in float64 first
        return np.exp(-2j * np.pi * np.mod(f * tau, 1.0) + 1j * phase)

    a_up = ula_steering(theta, Nt, f_up, spacing)          # [batch, K, paths, Nt]
    a_down = ula_steering(theta, Nt, f_down, spacing)
    h_up = np.einsum("bkl,bkln->bkn", alpha * rotation(f_up), a_up)
    if downlink == "eq40":
        h_down = c * np.einsum("mn,bkn->bkm", phi, np.einsum("bkl,bkln->bkn", alpha ** 2 * rotation(f_down), a_down))
    else:
        h_down = np.einsum("bkl,bkln->bkn", alpha * rotation(f_down), a_down)
    out = (h_up.astype(np.complex64), h_down.astype(np.complex64))
    if return_paths:
        info = dict(theta=theta, tau=tau, phase=phase, alpha=alpha, theta_bar=theta_bar, spacing=spacing,
                    phi=phi, c=c)
        return out + (info,)
    return out


# ------------------------------------------------------------------- multicell geometry, Sec. VII-C


def hexagonal_cells(num_cells=7, radius=200.0):
    """BS positions of a hexagonal layout (Fig. 3): cell 0 at the origin, then ring 1, ring 2, ...

    ``radius`` is the hexagon's circumradius (centre to vertex). The hexagons have vertices at
    angles ``0, 60, ..., 300`` degrees, so neighbouring BSs are ``sqrt(3) radius`` apart, ring 1
    at angles ``30, 90, ..., 330`` degrees. ``num_cells`` need not fill a ring: the first
    ``num_cells`` centres in ring order (counter-clockwise within a ring) are returned.

    Returns:
        float64 ``[num_cells, 2]`` in metres.
    """
    num_cells = _positive_int("num_cells", num_cells)
    radius = _positive_float("radius", radius)
    spacing = np.sqrt(3.0) * radius
    # axial lattice basis: e1 at 30 degrees, e2 at 90 degrees
    e1 = spacing * np.array([np.cos(np.pi / 6), np.sin(np.pi / 6)])
    e2 = spacing * np.array([0.0, 1.0])
    centers = [np.zeros(2)]
    ring = 1
    directions = [(1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1)]  # axial unit steps, counter-clockwise
    while len(centers) < num_cells:
        q, r = ring, 0  # start at ring * e1 (angle 30 degrees)
        for i in range(6):
            dq, dr = directions[(i + 2) % 6]
            for _ in range(ring):
                centers.append(q * e1 + r * e2)
                q, r = q + dq, r + dr
        ring += 1
    return np.stack(centers[:num_cells])


def inside_hexagon(offset, radius):
    """True where ``offset`` (``[..., 2]``, relative to the centre) lies in the hexagon of :func:`hexagonal_cells`."""
    offset = np.asarray(offset, dtype=np.float64)
    x, y = np.abs(offset[..., 0]), np.abs(offset[..., 1])
    tol = 1e-9 * radius
    return (y <= np.sqrt(3.0) / 2 * radius + tol) & (np.sqrt(3.0) * x + y <= np.sqrt(3.0) * radius + tol)


def drop_users(batch, users_per_cell, rng, *, num_cells=7, radius=200.0, min_distance=10.0):
    """User positions, uniform over each hexagonal cell minus the disc of ``min_distance`` around its BS.

    Sec. VII-C: radius 200 m, one user per cell, minimum user-BS distance 10 m. Drawn by
    rejection from the hexagon's bounding box (uniform x then y, per round, for all pending slots).

    Returns:
        float64 ``[batch, num_cells, users_per_cell, 2]``; user ``u`` of cell ``i`` is served by
        BS ``i`` of :func:`hexagonal_cells` ``(num_cells, radius)``. Flatten axes 1-2 for the
        ``sum_j K_j`` users of eq. (33).
    """
    batch, users_per_cell, num_cells = (_positive_int(n, v) for n, v in
                                        (("batch", batch), ("users_per_cell", users_per_cell),
                                         ("num_cells", num_cells)))
    radius = _positive_float("radius", radius)
    if isinstance(min_distance, bool) or not isinstance(min_distance, numbers.Real) \
            or not 0 <= min_distance < np.sqrt(3.0) / 2 * radius:
        raise ValueError(f"`min_distance` must be in [0, sqrt(3)/2 * radius). Received: min_distance={min_distance!r}")
    g = as_generator(rng)
    shape = (batch, num_cells, users_per_cell)
    offsets = np.zeros(shape + (2,))
    pending = np.ones(shape, dtype=bool)
    half_h = np.sqrt(3.0) / 2 * radius
    while pending.any():
        n = int(pending.sum())
        cand = np.stack([g.uniform(-radius, radius, n), g.uniform(-half_h, half_h, n)], axis=-1)
        ok = inside_hexagon(cand, radius) & (np.hypot(cand[:, 0], cand[:, 1]) >= min_distance)
        idx = np.flatnonzero(pending)[ok]
        offsets.reshape(-1, 2)[idx] = cand[ok]
        pending.reshape(-1)[idx] = False
    return offsets + hexagonal_cells(num_cells, radius)[None, :, None, :]


def path_loss_db(distance_m, link="up"):
    """Path loss of eq. (42) in dB, ``d`` in km: uplink ``127 + 30 log10 d``, downlink ``128.1 + 37.6 log10 d``.

    Args:
        distance_m: BS-user distance(s) in METRES (converted to km here), any shape, > 0.
        link: ``"up"`` or ``"down"``.

    Returns:
        float64, same shape; the power gain is ``10 ** (-path_loss_db / 10)``.
    """
    d = np.asarray(distance_m, dtype=np.float64)
    if not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ValueError("`distance_m` must be positive and finite (metres).")
    if link == "up":
        p0, beta = 127.0, 30.0
    elif link == "down":
        p0, beta = 128.1, 37.6
    else:
        raise ValueError(f"`link` must be 'up' or 'down'. Received: link={link!r}")
    return p0 + beta * np.log10(d / 1000.0)


def noise_power_w(bandwidth=20e6, density_dbm_hz=-174.0):
    """Thermal noise power in watts: ``10 ** ((density_dbm_hz - 30) / 10) * bandwidth`` (Sec. VII-C)."""
    bandwidth = _positive_float("bandwidth", bandwidth)
    if isinstance(density_dbm_hz, bool) or not isinstance(density_dbm_hz, numbers.Real) \
            or not np.isfinite(density_dbm_hz):
        raise ValueError(f"`density_dbm_hz` must be a finite number. Received: density_dbm_hz={density_dbm_hz!r}")
    return 10.0 ** ((float(density_dbm_hz) - 30.0) / 10.0) * bandwidth


def dbm_to_w(p_dbm):
    """``10 ** ((p_dbm - 30) / 10)``; e.g. the 10 dBm per-BS power of Sec. VII-C is 0.01 W."""
    return 10.0 ** ((np.asarray(p_dbm, dtype=np.float64) - 30.0) / 10.0)


def large_scale_gains(bs_positions, user_positions):
    """Linear path-loss power gains of eq. (42) between every BS and every user.

    Args:
        bs_positions: ``[num_bs, 2]`` metres (e.g. :func:`hexagonal_cells`).
        user_positions: ``[..., num_users, 2]`` metres (e.g. :func:`drop_users` with axes 1-2 flattened).

    Returns:
        ``(gain_up, gain_down, distance)``, float64 ``[..., num_bs, num_users]``; multiply a
        small-scale channel ``h[..., j, u, :]`` (BS ``j``, user ``u``) by ``sqrt(gain)``.
    """
    bs = np.asarray(bs_positions, dtype=np.float64)
    users = np.asarray(user_positions, dtype=np.float64)
    if bs.ndim != 2 or bs.shape[-1] != 2 or users.ndim < 2 or users.shape[-1] != 2:
        raise ValueError(
            f"`bs_positions` must be [num_bs, 2] and `user_positions` [..., num_users, 2]. "
            f"Received: {bs.shape} and {users.shape}"
        )
    diff = users[..., None, :, :] - bs[:, None, :]
    distance = np.hypot(diff[..., 0], diff[..., 1])
    gain_up = 10.0 ** (-path_loss_db(distance, "up") / 10.0)
    gain_down = 10.0 ** (-path_loss_db(distance, "down") / 10.0)
    return gain_up, gain_down, distance


# ----------------------------------------------------------------- uplink pilots, eq. (11)-(17), (33)-(34)


def uplink_pilots(K, L, pilot_power=1.0):
    """Pilots ``X`` of eq. (11) / (33): ``sqrt(P) F[:K, :L]``, ``F`` the ``D x D`` DFT, ``D = max(K, L)``.

    ``F[m, n] = exp(-j 2 pi m n / D)`` (unit-amplitude entries, not normalised). With
    ``L >= K`` the rows are orthogonal, ``X X^H = L P I_K`` (no pilot contamination); with
    ``L < K`` the columns are, ``X^H X = K P I_L``, and users share pilot dimensions.

    Returns:
        complex64 ``[K, L]``.
    """
    K, L = _positive_int("K", K), _positive_int("L", L)
    pilot_power = _positive_float("pilot_power", pilot_power)
    D = max(K, L)
    m = np.arange(K)[:, None]
    n = np.arange(L)[None, :]
    return (np.sqrt(pilot_power) * np.exp(-2j * np.pi * ((m * n) % D) / D)).astype(np.complex64)


def received_uplink(h_up, pilots, noise_power, rng):
    """Received pilots of eq. (11) / (33): ``Y = H_U X + N``, ``N`` i.i.d. CN(0, noise_power).

    Args:
        h_up: complex ``[..., K, Nt]`` (``H_U = h_up^T``; large-scale gains already applied).
        pilots: ``X`` ``[K, L]`` of :func:`uplink_pilots` (power included).
        noise_power: ``sigma_n^2`` (linear, e.g. :func:`noise_power_w`).
        rng: a Generator or an int seed; the noise ``[..., Nt, L]`` is drawn in one call.

    Returns:
        complex64 ``[..., Nt, L]``.
    """
    h = _check_channels("h_up", h_up)
    x = _check_pilots(pilots)
    if x.shape[0] != h.shape[-2]:
        raise ValueError(f"`pilots` has {x.shape[0]} rows but `h_up` has K={h.shape[-2]} users.")
    noise_power = _positive_float("noise_power", noise_power)
    g = as_generator(rng)
    clean = np.einsum("...kn,kl->...nl", h.astype(np.complex128), x.astype(np.complex128))
    noise = np.sqrt(noise_power) * complex_normal(g, clean.shape)
    return (clean + noise).astype(np.complex64)


def ls_input(y, pilots):
    """Least-squares input of eq. (12) / (34): ``Y~ = Y X^H / (L P)``, returned in the ``h`` layout.

    ``P`` is read off the pilots as ``mean |X|^2`` (exact for :func:`uplink_pilots`). For ``L >= K``
    this is ``H_U + N X^H / (L P)``; for ``L < K`` it is ``H_U X X^H / (L P) + ...`` (contaminated).

    Args:
        y: received pilots ``[..., Nt, L]``. pilots: ``X`` ``[K, L]``.

    Returns:
        complex64 ``[..., K, Nt]`` (``Y~^T``).
    """
    y = np.asarray(y)
    x = _check_pilots(pilots)
    if y.ndim < 2 or y.shape[-1] != x.shape[1]:
        raise ValueError(f"`y` must be [..., Nt, L] with L = pilots.shape[1] = {x.shape[1]}. Received: {y.shape}")
    L = x.shape[1]
    power = float(np.mean(np.abs(x.astype(np.complex128)) ** 2))
    yt = np.einsum("...nl,kl->...kn", y.astype(np.complex128), x.conj().astype(np.complex128)) / (L * power)
    return yt.astype(np.complex64)


def uplink_statistics(h_up):
    """Sample mean ``H_bar`` and ``Q = E[dH^H dH]`` of eq. (17) from training channels.

    Args:
        h_up: ``[batch, K, Nt]`` (large-scale gains applied if the estimator should see them).

    Returns:
        ``(mean, Q)``: complex128 ``[K, Nt]`` (``H_bar^T``) and ``[K, K]`` with
        ``Q[a, b] = mean over samples of sum_n conj(dh[a, n]) dh[b, n]``.
    """
    h = _check_channels("h_up", h_up).astype(np.complex128)
    if h.ndim != 3:
        raise ValueError(f"`h_up` must be [batch, K, Nt]. Received: shape={h.shape}")
    mean = h.mean(axis=0)
    dh = h - mean
    q = np.einsum("ban,bcn->ac", dh.conj(), dh) / h.shape[0]
    return mean, q


def lmmse_estimate(y, pilots, noise_power, *, Q=None, mean=None):
    """Linear MMSE estimate of eq. (13)-(17): ``H^_U = H_bar + (Y - H_bar X) R``.

    ``R = (X^H Q X + Nt sigma^2 I_L)^{-1} X^H Q``, ``[L, K]``. The paper prints eq. (15) / (47) as
    ``(X Q X^H + ...)^{-1} X^H Q``, whose sizes do not match for ``X`` ``[K, L]``; minimising the
    MSE (46) gives the form used here. It is the best estimator of the form ``Y R + B`` with one
    ``R`` for all antennas (eq. 13-14): the true LMMSE when the antennas are uncorrelated with
    equal statistics (Rayleigh, optionally with per-user large-scale gains); for spatially
    correlated channels (the ULA model) it is the paper's estimator, not the full vectorised LMMSE.

    Args:
        y: received pilots ``[..., Nt, L]``. pilots: ``X`` ``[K, L]``. noise_power: ``sigma_n^2``.
        Q: ``E[dH_U^H dH_U]``, ``[K, K]`` or ``[..., K, K]`` (per-sample, e.g. ``Nt diag(gains)``).
            Default ``Nt I_K``: i.i.d. CN(0, 1) Rayleigh entries (Sec. VII-A). For the ULA model
            use :func:`uplink_statistics` on training channels.
        mean: ``H_bar^T`` ``[K, Nt]`` (or broadcastable ``[..., K, Nt]``); default 0.

    Returns:
        complex64 ``[..., K, Nt]``.
    """
    y = np.asarray(y).astype(np.complex128)
    x = _check_pilots(pilots).astype(np.complex128)
    K, L = x.shape
    if y.ndim < 2 or y.shape[-1] != L:
        raise ValueError(f"`y` must be [..., Nt, L] with L = pilots.shape[1] = {L}. Received: {y.shape}")
    Nt = y.shape[-2]
    noise_power = _positive_float("noise_power", noise_power)
    q = Nt * np.eye(K) if Q is None else np.asarray(Q).astype(np.complex128)
    if q.ndim < 2 or q.shape[-2:] != (K, K):
        raise ValueError(f"`Q` must be [..., K, K] with K={K}. Received: shape={q.shape}")
    xh = x.conj().T
    a = xh @ q @ x + Nt * noise_power * np.eye(L)          # [..., L, L]
    r = np.linalg.solve(a, np.broadcast_to(xh @ q, a.shape[:-2] + (L, K)))  # [..., L, K]
    if mean is None:
        h_hat_paper = y @ r                                # [..., Nt, K]
    else:
        hbar = np.swapaxes(np.asarray(mean).astype(np.complex128), -1, -2)   # [..., Nt, K]
        h_hat_paper = hbar + (y - hbar @ x) @ r
    return np.swapaxes(h_hat_paper, -1, -2).astype(np.complex64)
