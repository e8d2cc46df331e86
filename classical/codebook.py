"""Codebook limited feedback of Kong et al., Sec. II-B: channel bases, distances, eq. (2), Lloyd codebooks.

User ``k`` estimates its channel ``H_tilde_k`` (``M x N``), takes the unitary factor of its compact
SVD, ``H_tilde_k = U_k Sigma_k^(1/2) W_k^H`` with ``U_k`` in ``C^{M x N}``, ``U_k^H U_k = I_N``
(:func:`channel_basis`; the paper reuses the letter ``H_tilde_k`` for this factor), and feeds back
the index of the nearest codeword,

    ``q_k = argmin_j d(A_{k,j}, H_tilde_k)``,                                               (2)

the codewords ``A_{k,j}`` being semi-unitary ``M x N`` matrices (:func:`quantize`). Two distance
measures ``d`` are given:

- ``"chordal"``: the chordal distance between the column spaces (Ravindran & Jindal, the paper's
  [2]), ``d_c(A, U)^2 = N - ||A^H U||_F^2`` (:func:`chordal_distance`). It depends only on the
  subspace of ``H_tilde_k``.
- ``"expected_sinr"``: the measure Kong et al. use for their BD / RBD baselines (Sec. IV-A: "the
  expected SINR proposed in [3]", Min, Jeon and Im, IEEE TWC 2016). The paper does not write it
  out, and Min et al.'s exact formula could not be found in any source at hand; what is
  implemented is a reconstruction from the BD interference analysis, documented in
  :func:`expected_sinr_distance`. It uses the whole channel (singular values included) and the
  power ``P``.

Layouts (numpy): codewords / codebooks ``[count, M, N]`` (``count = 2**B``), per-user codebooks
``[K, count, M, N]``; channels ``[batch, M, N]`` or ``[batch, K, M, N]`` (``H_k = H[:, k]``, as in
:mod:`mimokd.classical.mimo`); distances ``[batch, count]``. Complex outputs are complex64, distances
float64; the linear algebra is done in complex128.

Codebooks come from the Lloyd algorithm (Sec. IV-A, the paper's [24]; :func:`lloyd_codebook`) or
are random (:func:`random_semi_unitary`, random vector quantization).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from mimokd.classical.checks import check_channel, check_power
from mimokd.classical.mimo import _positive_int
from mimokd.rng import as_generator

DISTANCES = ("chordal", "expected_sinr")


# ---------------------------------------------------------------------------------------------
# validation helpers


def _check_matrices(name, x, min_ndim=2):
    """A finite numeric array ``[..., M, N]`` (channels or codewords)."""
    x = np.asarray(x)
    if x.ndim < min_ndim or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"`{name}` must be a numeric array [..., M, N]. Received: {name}.shape={x.shape}")
    return check_channel(name, x)


def _hermitian(x):
    return np.swapaxes(x.conj(), -1, -2)


# ---------------------------------------------------------------------------------------------
# codewords and channel bases


def random_semi_unitary(count, M, N, rng):
    """``count`` independent isotropic (Haar) semi-unitary matrices, a random codebook.

    The Q factor of a complex Gaussian ``M x N`` matrix with the phases of ``diag(R)`` moved into
    ``Q`` (so that the distribution is exactly the Haar measure on the Stiefel manifold).

    Args:
        count: number of matrices (``2**B`` for a ``B``-bit random codebook).
        M, N: size, ``N <= M``.
        rng: a ``numpy.random.Generator`` or an int seed.

    Returns:
        complex64 ``[count, M, N]`` with ``A^H A = I_N``.
    """
    count, M, N = (_positive_int(n, v) for n, v in (("count", count), ("M", M), ("N", N)))
    if N > M:
        raise ValueError(f"A semi-unitary M x N matrix needs N <= M. Received: M={M}, N={N}")
    rng = as_generator(rng)
    g = (rng.standard_normal((count, M, N)) + 1j * rng.standard_normal((count, M, N))) / np.sqrt(2.0)
    q, r = np.linalg.qr(g)
    d = np.diagonal(r, axis1=-2, axis2=-1)
    q = q * (d / np.abs(d))[:, None, :]
    return q.astype(np.complex64)


def channel_basis(H_hat, *, return_singular_values=False):
    """The unitary factor of the compact SVD that a user feeds back (Sec. II-B).

    ``H_hat = U S W^H`` with ``U`` in ``C^{M x N}`` (left singular vectors, singular values in
    decreasing order), ``S = Sigma^(1/2)`` in the paper's notation. ``U`` spans the column space of
    ``H_hat`` (its "channel direction information"); it is defined up to a right unitary rotation
    (here: up to a phase per column), which no distance in this module sees.

    Args:
        H_hat: complex channels ``[..., M, N]``, ``N <= M`` (e.g. ``[batch, K, M, N]``).
        return_singular_values: also return the singular values.

    Returns:
        complex64 ``[..., M, N]`` with ``U^H U = I_N``; with ``return_singular_values``, also
        float64 ``[..., N]`` (decreasing).
    """
    H = _check_matrices("H_hat", H_hat)
    if H.shape[-1] > H.shape[-2]:
        raise ValueError(f"`H_hat` must be [..., M, N] with N <= M. Received: H_hat.shape={H.shape}")
    U, s, _ = np.linalg.svd(H.astype(np.complex128), full_matrices=False)
    U = U.astype(np.complex64)
    return (U, s) if return_singular_values else U


# ---------------------------------------------------------------------------------------------
# distances


def _flatten(x):
    """``[..., M, N]`` -> (``[n, M, N]`` complex128, leading shape)."""
    return x.reshape((-1,) + x.shape[-2:]).astype(np.complex128), x.shape[:-2]


def _check_pair(A, H):
    A = _check_matrices("A", A)
    H = _check_matrices("H", H)
    if A.shape[-2:] != H.shape[-2:]:
        raise ValueError(
            f"Codewords and channels must both be M x N. Received: A.shape={A.shape}, H.shape={H.shape}"
        )
    return A, H


def chordal_distance(A, H, *, squared=False):
    """Chordal distance between the column spaces of codewords and channel bases.

    ``d_c(A, U) = sqrt(N - ||A^H U||_F^2) = ||A A^H - U U^H||_F / sqrt(2)`` (Ravindran & Jindal,
    the paper's [2]), for semi-unitary ``A`` and ``U``: 0 when they span the same subspace, at
    most ``sqrt(N)``, and unchanged by ``A -> A Q1``, ``U -> U Q2`` for unitary ``Q1``, ``Q2``.

    Args:
        A: semi-unitary codewords, complex ``[count, M, N]`` (or one ``[M, N]``).
        H: semi-unitary channel bases ``U`` (:func:`channel_basis`), complex ``[batch, M, N]``
            (or one ``[M, N]``). A non-orthonormal ``H`` is not orthonormalized here: pass
            ``channel_basis(H)``, or use :func:`quantize`, which does.
        squared: return ``d_c^2``, the distortion the Lloyd algorithm minimizes.

    Returns:
        float64 ``[batch, count]`` (``H.shape[:-2] + A.shape[:-2]``).
    """
    A, H = _check_pair(A, H)
    a, a_lead = _flatten(A)
    h, h_lead = _flatten(H)
    N = A.shape[-1]
    captured = np.abs(np.einsum("cmn,bmp->bcnp", a.conj(), h)) ** 2
    d2 = np.maximum(N - captured.sum(axis=(-2, -1)), 0.0)
    out = d2 if squared else np.sqrt(d2)
    return out.reshape(h_lead + a_lead)


def _log2det(x):
    """``log2 det`` of Hermitian positive definite ``x [..., n, n]``; closed forms for ``n <= 2``."""
    n = x.shape[-1]
    if n == 1:
        det = x[..., 0, 0].real
    elif n == 2:
        det = x[..., 0, 0].real * x[..., 1, 1].real - np.abs(x[..., 0, 1]) ** 2
    else:
        return np.linalg.slogdet(x)[1] / np.log(2.0)
    return np.log2(det)


def expected_sinr_distance(A, H, P, *, K=None):
    """The expected-SINR distance used with BD / RBD in Kong et al. (their ref. [3]), reconstructed.

    **What could not be found.** Kong et al. (Sec. IV-A) quantize with "the expected SINR proposed
    in [3]" (M. Min, Y.-S. Jeon and G.-H. Im, "On achievable multiplexing gain of BD in MIMO
    broadcast channels with limited feedback", IEEE TWC 15(2), 2016). Neither paper's text nor any
    code found by searching (web pages, documentation, public code) gives its formula; the
    closest published relatives are the maximum-expected-SINR codeword selection of Trivellato,
    Boccardi and Huang (IEEE JSAC 26(8), 2008; as implemented in E. Björnson's public code
    ``emilbjornson/one-or-multiple-streams``, ``functionRVQfeedback_ZF_MESC.m``: signal
    ``P_s H^H c c^H H``, interference ``P_s H^H (I - c c^H) H``) and the expected-SINR quantizer
    for BD of Moon, Lee, Kim and Lee (JCN 16(1), 2014; abstract only). The measure below is the
    multi-stream BD analogue of those, derived here; it is **not** verified to be Min et al.'s.

    **Derivation.** User ``k`` with channel ``H`` (``M x N``; the estimate ``H_tilde_k`` with its
    singular values) feeds back the codeword ``A``. Under BD the other users' precoders ``V_l``
    (``tr V_l^H V_l = N``) are built orthogonal to ``A``; from user ``k``'s side, with the other
    users' channels isotropic, each ``V_l`` is isotropic in the ``(M - N)``-dimensional complement
    of ``A``, so ``E[V_l V_l^H] = N / (M - N) (I - A A^H)``. With the ``P / M`` scaling of eq. (1),
    the expected interference covariance and the signal seen along the fed-back subspace are

        ``E[I] = rho_i H^H (I - A A^H) H``,  ``rho_i = (P / M) (K - 1) N / (M - N)``,
        ``S    = rho_s H^H A A^H H``,        ``rho_s = P / M``,

    and the expected rate ("SINR" of eq. (1) with the expected matrices) is

        ``R(A) = log2 det(I + S + E[I]) - log2 det(I + E[I])``.

    The distance is the loss against a codeword spanning the channel, ``d(A, H) =
    log2 det(I_N + rho_s H^H H) - R(A)``; ``d = 0`` when ``A`` spans ``H``. At full load
    (``K = M / N``, all of Kong et al.'s simulations) ``rho_i = rho_s`` and ``S + E[I]`` no longer
    depends on ``A``, so ``d(A, H) = log2 det(I_N + (P/M) H^H (I - A A^H) H)`` exactly: the
    Jensen bound on BD's rate loss from quantization (as in Ravindran & Jindal's analysis).
    Properties: it depends on the singular values of ``H``, not only on its subspace; for
    ``P -> 0`` it is ``(P / M) / ln 2 (||H||_F^2 - ||A^H H||_F^2)``, a gain-weighted chordal
    distance; for ``N = 1`` it is increasing in the chordal distance, so it picks the same
    codeword.

    Args:
        A: semi-unitary codewords, complex ``[count, M, N]`` (or one ``[M, N]``).
        H: channels (not bases: the singular values matter), complex ``[batch, M, N]`` (or one
            ``[M, N]``).
        P: linear total transmit power of eq. (1) (``db_to_linear(P_dB)``).
        K: number of users served by BD, ``1 <= K <= M / N``; default ``M // N`` (full load).

    Returns:
        float64 ``[batch, count]`` (``H.shape[:-2] + A.shape[:-2]``), ``>= 0`` at full load.
    """
    A, H = _check_pair(A, H)
    P = check_power("P", P, scalar=True)
    M, N = A.shape[-2:]
    if M <= N:
        raise ValueError(f"The expected-SINR distance needs M > N (Sec. II-A). Received: M={M}, N={N}")
    K = M // N if K is None else _positive_int("K", K)
    if K * N > M:
        raise ValueError(f"BD serves at most M / N users. Received: K={K}, M={M}, N={N}")
    rho_s = P / M
    rho_i = rho_s * (K - 1) * N / (M - N)
    a, a_lead = _flatten(A)
    h, h_lead = _flatten(H)
    G = np.einsum("cmn,bmp->bcnp", a.conj(), h)  # A^H H, [batch, count, N, N]
    S = _hermitian(G) @ G  # H^H A A^H H
    T = (_hermitian(h) @ h)[:, None]  # H^H H, [batch, 1, N, N]
    eye = np.eye(N)
    interference = rho_i * (T - S)
    rate = _log2det(eye + rho_s * S + interference) - _log2det(eye + interference)
    d = _log2det(eye + rho_s * T) - rate
    return d.reshape(h_lead + a_lead)


_CHUNK = 4096  # channels per distance evaluation (bounds the [chunk, count, N, N] temporaries)


def _chunked(fn):
    def wrapped(A, H):
        if len(H) <= _CHUNK:
            return fn(A, H)
        return np.concatenate([fn(A, H[i : i + _CHUNK]) for i in range(0, len(H), _CHUNK)], axis=0)

    return wrapped


def _distance_fn(distance, P, K):
    """A function ``(codebook [count, M, N], H [n, M, N]) -> [n, count]`` to minimize, and whether
    it takes channel bases (True) or whole channels (False)."""
    if callable(distance):
        return distance, False
    if distance == "chordal":
        return _chunked(lambda A, H: chordal_distance(A, H, squared=True)), True
    if distance == "expected_sinr":
        if P is None:
            raise ValueError("The expected-SINR distance needs the linear power `P`. Received: P=None")
        P = check_power("P", P, scalar=True)
        return _chunked(lambda A, H: expected_sinr_distance(A, H, P, K=K)), False
    raise ValueError(f"`distance` must be one of {DISTANCES} or a callable. Received: distance={distance!r}")


# ---------------------------------------------------------------------------------------------
# quantization, eq. (2)


def quantize(H, codebook, *, distance="chordal", P=None, K=None):
    """Codeword selection of eq. (2): ``q_k = argmin_j d(A_{k,j}, H_tilde_k)``.

    Args:
        H: the users' estimated channels ``H_tilde_k``, complex ``[..., M, N]`` (e.g. ``[batch, M,
            N]`` or ``[batch, K, M, N]``). For ``"chordal"`` they are reduced to their bases with
            :func:`channel_basis` first (passing bases is fine too); ``"expected_sinr"`` uses the
            whole channels.
        codebook: semi-unitary codewords, complex ``[count, M, N]`` shared by all users, or
            ``[K, count, M, N]``, one codebook ``C_k`` per user (then ``H`` must be
            ``[batch, K, M, N]``).
        distance: ``"chordal"``, ``"expected_sinr"`` or a callable ``(codebook [count, M, N],
            H [n, M, N]) -> [n, count]`` (smaller is nearer; it gets ``H`` as given).
        P: linear power, needed by ``"expected_sinr"``.
        K: users served, for ``"expected_sinr"`` (default ``M // N``).

    Returns:
        ``(indices, codewords)``: int64 ``H.shape[:-2]`` (``q_k``, 0-based) and the chosen
        codewords ``H_hat_k = A_{k, q_k}``, complex64 ``[..., M, N]``.
    """
    H = _check_matrices("H", H)
    codebook = _check_matrices("codebook", codebook, min_ndim=3)
    if codebook.shape[-2:] != H.shape[-2:]:
        raise ValueError(
            f"Codewords and channels must both be M x N. Received: codebook.shape={codebook.shape}, H.shape={H.shape}"
        )
    fn, wants_basis = _distance_fn(distance, P, K)
    if wants_basis:
        H = channel_basis(H)
    if codebook.ndim == 3:
        flat = H.reshape((-1,) + H.shape[-2:])
        idx = np.argmin(fn(codebook, flat), axis=-1).reshape(H.shape[:-2])
        return idx.astype(np.int64), codebook[idx].astype(np.complex64)
    if codebook.ndim != 4 or H.ndim != 4 or H.shape[1] != codebook.shape[0]:
        raise ValueError(
            f"Per-user codebooks [K, count, M, N] need channels [batch, K, M, N] with the same K. "
            f"Received: codebook.shape={codebook.shape}, H.shape={H.shape}"
        )
    idx = np.stack([np.argmin(fn(codebook[k], H[:, k]), axis=-1) for k in range(H.shape[1])], axis=1)
    words = codebook[np.arange(H.shape[1])[None, :], idx]
    return idx.astype(np.int64), words.astype(np.complex64)


# ---------------------------------------------------------------------------------------------
# Lloyd codebook design


def _dominant_subspaces(X, cells, count, N):
    """Top-``N`` eigenvectors of ``sum_{t in cell c} X_t X_t^H`` for every cell, ``[count, M, N]``."""
    T, M, _ = X.shape
    outer = (X @ _hermitian(X)).reshape(T, M * M)
    onehot = np.zeros((count, T))
    onehot[cells, np.arange(T)] = 1.0
    S = (onehot @ outer).reshape(count, M, M)
    S = 0.5 * (S + _hermitian(S))
    _, vecs = np.linalg.eigh(S)  # ascending eigenvalues
    return vecs[..., ::-1][..., :N]


def lloyd_codebook(training, bits, distance="chordal", iterations=20, rng=0, *, P=None, K=None,
                   progress=True, return_history=False):
    """A ``B``-bit codebook from the Lloyd algorithm (Sec. IV-A; the paper's [24], Xia & Giannakis).

    Alternates (i) the nearest-codeword partition of the training set under ``distance`` (eq. 2)
    and (ii) the centroid of every cell: the dominant ``N``-dimensional subspace of the cell's sum
    of projection matrices, i.e. the top-``N`` eigenvectors of ``sum U U^H`` (``U`` the training
    bases) for ``"chordal"``, for which it is the exact minimizer of the cell's summed ``d_c^2``;
    for ``"expected_sinr"`` the sum is over ``H H^H`` (the whole channels, so strong channels weigh
    more), the exact minimizer of its low-``P`` limit.

    The average distortion never increases: a centroid candidate replaces a codeword only if it
    does not increase its cell's total distortion (for ``"chordal"`` it never does), and an empty
    cell's codeword is re-seeded with the basis of the worst-quantized training sample, which
    cannot increase it either. Initialization: the bases of ``2**bits`` distinct training samples.

    Args:
        training: training channels ``[T, M, N]`` (or ``[..., M, N]``, flattened), ``T >= 2**bits``;
            reduced to bases for ``"chordal"``.
        bits: ``B``, feedback bits; the codebook has ``2**B`` codewords.
        distance: ``"chordal"`` or ``"expected_sinr"`` (see :func:`quantize`).
        iterations: Lloyd iterations (partition + centroid update).
        rng: a ``numpy.random.Generator`` or an int seed (initialization).
        P, K: for ``"expected_sinr"`` (see :func:`expected_sinr_distance`).
        progress: show a tqdm progress bar.
        return_history: also return the average distortion before every iteration and after the
            last, float64 ``[iterations + 1]``.

    Returns:
        complex64 ``[2**bits, M, N]``, semi-unitary codewords (and the history, if asked).
    """
    X = _check_matrices("training", training)
    bits = _positive_int("bits", bits)
    iterations = _positive_int("iterations", iterations)
    if callable(distance):
        raise ValueError("lloyd_codebook needs a named distance, one of "
                         f"{DISTANCES}. Received: distance={distance!r}")
    fn, wants_basis = _distance_fn(distance, P, K)
    X = X.reshape((-1,) + X.shape[-2:]).astype(np.complex128)
    if X.shape[-1] > X.shape[-2]:
        raise ValueError(f"`training` must be [T, M, N] with N <= M. Received: training.shape={X.shape}")
    if wants_basis:
        X = channel_basis(X).astype(np.complex128)
    T, M, N = X.shape
    count = 2**bits
    if T < count:
        raise ValueError(
            f"The Lloyd algorithm needs at least 2**bits training samples. Received: T={T}, bits={bits}"
        )
    rng = as_generator(rng)
    codebook = channel_basis(X[rng.choice(T, size=count, replace=False)]).astype(np.complex128)

    history = []
    with tqdm(total=iterations, disable=not progress, desc=f"lloyd {bits} bit {distance}", unit="it") as bar:
        for _ in range(iterations):
            D = fn(codebook, X)  # [T, count]
            cells = np.argmin(D, axis=1)
            best = D[np.arange(T), cells]
            history.append(float(best.mean()))
            old_cost = np.bincount(cells, weights=best, minlength=count)
            occupied = np.bincount(cells, minlength=count) > 0

            candidate = _dominant_subspaces(X, cells, count, N)
            new_cost = np.bincount(cells, weights=fn(candidate, X)[np.arange(T), cells], minlength=count)
            accept = occupied & (new_cost <= old_cost)
            codebook = np.where(accept[:, None, None], candidate, codebook)

            empty = np.flatnonzero(~occupied)
            if empty.size:
                worst = np.argsort(best)[::-1][: empty.size]
                codebook[empty] = channel_basis(X[worst]).astype(np.complex128)
            bar.update(1)
            bar.set_postfix(distortion=f"{history[-1]:.4g}")
    history.append(float(fn(codebook, X).min(axis=1).mean()))
    codebook = codebook.astype(np.complex64)
    return (codebook, np.asarray(history)) if return_history else codebook
