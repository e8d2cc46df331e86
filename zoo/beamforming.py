"""Zhang et al.'s model-driven downlink beamforming from uplink CSI: CSI-Net, Power-Net, recovery.

Sec. IV of Zhang et al. ("Model-driven deep learning based downlink beamforming from uplink
channel information"): a **CSI-Net** maps the uplink channel (or the uplink LS estimate) to the
downlink channel, a **Power-Net** predicts the power features ``[p; q]``, and a parameter-free
**beamforming recovery** turns them into the beamformers ``W`` through the optimal structure of
eq. (7); the sum rate of ``W`` on the learned channel is part of the loss (eq. 10).

Layouts (real tensors at every model boundary, complex values as a trailing axis of 2, real part
first, as in :mod:`mimokd.zoo.precoding`; :func:`to_complex` / :func:`to_real` convert):

- channels ``h``: float ``[batch, K, Nt, 2]`` (``h[:, k]`` is user ``k``'s ``h_k``, the layout of
  :mod:`mimokd.classical.miso` with the complex axis split off);
- beamformers ``W``: float ``[batch, Nt, K, 2]`` (``W[:, :, k]`` is ``w_k``);
- powers ``p``, ``q``: float ``[batch, K]``.

Recovery layers (no trainable weights; ``power`` ``P`` and ``noise`` ``sigma^2 = N_0`` are
constructor arguments, linear scalars, the same for the whole batch):

- :class:`BeamformingRecovery`, eq. (7) in the REFERENCE form: ``p`` and ``q`` are each rescaled to
  sum to ``P``, then ``w_k = sqrt(p_k) normalize((sigma^2 I + sum_j q_j h_j h_j^H)^(-1) h_k)``
  (``Nt x Nt`` solve). Equals :func:`mimokd.classical.miso.recover_beamformers`.
- :class:`ReducedBeamformingRecovery`, eq. (20)-(23): with ``H_D^H H_D = U Lambda U^H``, ``B = H_D U
  Lambda^(-1/2)`` (``Nt x K``, orthonormal columns spanning the channels), the reduced channels
  ``g_k = B^H h_k = Lambda^(-1/2) U^H H_D^H h_k`` and eq. (23) ``v_k = sqrt(p_k) normalize((sigma^2
  I_K + sum_j q_j g_j g_j^H)^(-1) g_k)`` (``K x K`` solve); ``w_k = B v_k``. Since ``B`` is an
  isometry and ``h_k = B g_k``, this is **exactly** the ``W`` of eq. (7) (needs ``K <= Nt`` and
  linearly independent channels), so the sum rate is unchanged.
- :class:`ZFRecovery`, eq. (24): ``W = d H_D (H_D^H H_D)^(-1)``, ``d^2 = P / tr((H_D^H H_D)^(-1))``
  (``||W||_F^2 = P``; no ``p``, ``q``). Equals :func:`mimokd.classical.miso.zf_beamformer`.

The paper's eq. (7) prints ``I + sum_j (q_k / N_0) h_j h_j^H``: the same direction as ``sigma^2 I +
sum_j q_j h_j h_j^H`` (the index ``q_k`` read as the typo ``q_j``; see :mod:`mimokd.classical.miso`).
The linear algebra runs in ``linalg_dtype`` (``"float64"`` -> complex128 by default, for agreement
with the numpy reference; ``"float32"`` -> complex64 is faster on accelerators); the output is cast
back to the layer's compute dtype. Gradients flow to ``h``, ``p`` and ``q``.

:func:`miso_sum_rate_tf` is the differentiable sum rate of eq. (2) (``L_R = -R^sum`` in eq. 10), in
real arithmetic; it equals :func:`mimokd.classical.miso.miso_sum_rate`.

Multicell (Sec. VI): a BS's **view** of one network snapshot is ``h`` float ``[batch, K_total, Nt, 2]``,
the downlink channels from that BS to ALL ``K_total = N_c K_c`` users, its own ``K_c =
users_per_cell`` users FIRST (rows ``0..K_c-1``), then every other cell's users; beamformers ``W``
float ``[batch, Nt, K_c, 2]`` (own users only); powers ``p`` ``[batch, K_c]``.

- :class:`SLNRRecovery`, eq. (35): ``p`` rescaled to sum to ``P``, then per own user ``k``
  ``w_k = sqrt(p_k) normalize((I + (p_k / N_0) sum_{all m} g_m g_m^H)^(-1) h_k)`` (``g_m`` every one
  of the ``K_total`` users; one ``Nt x Nt`` solve PER own user, since the matrix depends on
  ``p_k``). Equals :func:`mimokd.classical.slnr.slnr_directions` times ``sqrt(p)``.
- :class:`MulticellZFRecovery`: the multicell "ZF loss" variant (Sec. VII-C): zero-forces every
  user the BS sees, directions the normalized own columns of ``H (H^H H)^(-1)`` (``H`` the
  ``Nt x K_total`` view, needs ``Nt >= K_total``), powers ``p`` rescaled to ``P``.
- :func:`slnr_rate_tf`: the per-view SLNR rate of eq. (27)-(28), ``sum_k log2(1 + gamma_SLNR,k)``
  (or ``log2(gamma_SLNR,k)``, the high-SNR form), differentiable, real arithmetic.

Networks:

- :func:`build_csi_net`: fully connected, ``tanh`` hidden layers, linear output (Sec. VII-A: four
  layers of ``4 K Nt``; Sec. VII-B: three layers of ``2 Nt K``). ``per_user=True`` (default) is the
  paper's single-user CSI-Net: one FC net ``2 Nt -> 2 Nt`` shared by the ``K`` users (Sec. IV-B),
  applied to each ``h[:, k]``; ``per_user=False`` maps the flattened ``2 K Nt`` input jointly.
- :func:`build_power_net`: ``variant="fc"`` (Sec. VII-A: four FC layers of ``4 K Nt``, batch norm,
  ReLU) or ``variant="cnn"`` (Sec. VII-B: two 1-D convolutions with 16 and 8 filters, batch norm,
  ReLU, dropout 0.3, then FC 256 ReLU). Output: a **single softmax over the 2K entries** ``[p_hat;
  q_hat]``, ``[batch, 2K]``, summing to 1 (the paper's softmax output layer). Since the recovery
  rescales ``p`` and ``q`` separately to sum to ``P``, only the ratios within ``p`` and within
  ``q`` matter; the matching supervised target (eq. 9) is ``[p; q] / (2P)`` (:func:`power_targets`,
  which sums to 1 because ``sum p = sum q = P``); :func:`split_powers` gives ``(p, q)`` back.
  ``outputs=K_c`` gives the multicell Power-Net of eq. (37) (a softmax over the own users'
  downlink powers ``p / P`` only).

Backends: CSI-Net and Power-Net are plain Keras layers and run (build, train, save, load) under the
TensorFlow, JAX and PyTorch backends (``tests/test_backends.py``). The recovery layers and the rate
functions are **TensorFlow only**: they are complex linear algebra (``tf.linalg.solve`` / ``eigh``
on complex128, complex gradients), which ``keras.ops`` does not provide on every backend. A recovery
layer built under another Keras backend raises ``NotImplementedError`` saying so; the rate
functions take and return TensorFlow tensors whatever the backend (TensorFlow is a requirement of
mimokd, so this module imports under any backend).
"""

import keras
import numpy as np
import tensorflow as tf

NORM_EPSILON = 1e-30  # added to squared norms and power sums (in linalg_dtype), against 0 / 0
POWER_NET_CNN_FILTERS = (16, 8)  # Sec. VII-B "two 1-D CNN with filter sizes of 16 and 8"
POWER_NET_CNN_DENSE = 256
POWER_NET_CNN_DROPOUT = 0.3
LINALG_DTYPES = ("float32", "float64")


# ----------------------------------------------------------------------------- conversions


def to_complex(x, dtype="float64"):
    """Real-stored ``[..., 2]`` (real, imaginary) -> complex ``[...]`` (complex128 for ``dtype="float64"``,
    complex64 for ``"float32"``); a numpy array for a numpy input, else a ``tf.Tensor``."""
    if isinstance(x, np.ndarray):
        return (x[..., 0] + 1j * x[..., 1]).astype(np.complex128 if dtype == "float64" else np.complex64)
    x = tf.cast(x, dtype)
    return tf.complex(x[..., 0], x[..., 1])


def to_real(z, dtype="float32"):
    """Complex ``[...]`` -> real-stored ``[..., 2]`` (real, imaginary) of ``dtype``; numpy in, numpy out."""
    if isinstance(z, np.ndarray):
        return np.stack([z.real, z.imag], axis=-1).astype(dtype)
    return tf.cast(tf.stack([tf.math.real(z), tf.math.imag(z)], axis=-1), dtype)


# ----------------------------------------------------------------------------- recovery layers


def _check_positive(**values):
    for key, value in values.items():
        value = float(value)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"`{key}` must be positive and finite (linear). Received: {key}={value}")


def _check_linalg_dtype(linalg_dtype):
    if linalg_dtype not in LINALG_DTYPES:
        raise ValueError(f"`linalg_dtype` must be one of {LINALG_DTYPES}. Received: linalg_dtype={linalg_dtype!r}")


def _real_to_complex(x, dtype):
    """Real tensor -> complex ``dtype`` via ``tf.complex`` (its gradient is the real part, without the
    "casting complex to real" warning that the gradient of ``tf.cast`` real -> complex logs)."""
    x = tf.cast(x, dtype.real_dtype)
    return tf.complex(x, tf.zeros_like(x))


def _hd(h_real, dtype):
    """Real ``[b, K, Nt, 2]`` -> complex ``H_D`` ``[b, Nt, K]``."""
    return tf.transpose(to_complex(h_real, dtype), [0, 2, 1])


def _rescale(x, power, dtype):
    """Nonnegative ``[b, K]`` rescaled so each row sums to ``power`` (REFERENCE recovery)."""
    x = tf.cast(x, dtype)
    return x * (power / (tf.reduce_sum(x, axis=1, keepdims=True) + NORM_EPSILON))


def _duality_directions(HD, q, noise):
    """Unit columns ``normalize((sigma^2 I + sum_j q_j h_j h_j^H)^(-1) h_k)`` for ``H_D`` ``[b, n, K]``."""
    n = tf.shape(HD)[1]
    qc = _real_to_complex(q, HD.dtype)
    eye = tf.eye(n, dtype=HD.dtype)
    M = tf.cast(np.float64(noise), HD.dtype) * eye + tf.matmul(HD * qc[:, None, :], HD, adjoint_b=True)
    V = tf.linalg.solve(M, HD)
    sq = tf.reduce_sum(tf.math.real(V) ** 2 + tf.math.imag(V) ** 2, axis=1, keepdims=True)
    return V / _real_to_complex(tf.sqrt(sq + NORM_EPSILON), V.dtype)


class _RecoveryBase(keras.layers.Layer):
    """The recovery layers' shared arguments and output cast. TensorFlow backend only (module docstring)."""

    def __init__(self, power, noise, linalg_dtype="float64", **kwargs):
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(
                f"{type(self).__name__} runs on the TensorFlow backend only (complex linear algebra through "
                f"tf.linalg); this process's Keras backend is {keras.backend.backend()!r}. Set KERAS_BACKEND="
                "tensorflow, or keep the recovery out of the model (CSI-Net and Power-Net run on every backend)."
            )
        super().__init__(**kwargs)
        _check_positive(power=power, noise=noise)
        _check_linalg_dtype(linalg_dtype)
        self.power = float(power)
        self.noise = float(noise)
        self.linalg_dtype = linalg_dtype

    def get_config(self):
        return {**super().get_config(), "power": self.power, "noise": self.noise, "linalg_dtype": self.linalg_dtype}

    def _out(self, W):
        return tf.cast(to_real(W, self.linalg_dtype), self.compute_dtype)


@keras.saving.register_keras_serializable(package="mimokd")
class BeamformingRecovery(_RecoveryBase):
    """Eq. (7) in the REFERENCE form (uplink-downlink duality): ``(h, p, q) -> W``. TensorFlow backend only.

    Inputs ``[h, p, q]``: ``h`` float ``[batch, K, Nt, 2]``; ``p``, ``q`` nonnegative float ``[batch,
    K]`` with a positive sum per sample (e.g. :func:`split_powers` of a Power-Net output), each
    rescaled to sum to ``power``. Output: float ``[batch, Nt, K, 2]`` with ``||w_k||^2 = p_k`` (after
    the rescaling), so ``sum_k ||w_k||^2 = P``. Solves one ``Nt x Nt`` system per sample.

    Args:
        power: total transmit power ``P`` (linear, > 0).
        noise: noise power ``sigma^2 = N_0`` (linear, > 0).
        linalg_dtype: ``"float64"`` (complex128 linear algebra, default) or ``"float32"``.
    """

    def call(self, inputs):
        h, p, q = inputs
        dt = self.linalg_dtype
        p = _rescale(p, self.power, dt)
        q = _rescale(q, self.power, dt)
        V = _duality_directions(_hd(h, dt), q, self.noise)
        return self._out(V * _real_to_complex(tf.sqrt(p), V.dtype)[:, None, :])

    def compute_output_shape(self, input_shape):
        h = input_shape[0]
        return (h[0], h[2], h[1], 2)


def _reduction_basis(HD):
    """``B = H_D U Lambda^(-1/2)`` (``[b, Nt, K]``, orthonormal columns) from ``H_D^H H_D = U Lambda U^H``."""
    gram = tf.matmul(HD, HD, adjoint_a=True)
    gram = 0.5 * (gram + tf.linalg.adjoint(gram))
    lam, U = tf.linalg.eigh(gram)
    lam = tf.math.real(lam)
    return tf.matmul(HD, U) * _real_to_complex(tf.math.rsqrt(lam + NORM_EPSILON), HD.dtype)[:, None, :]


@keras.saving.register_keras_serializable(package="mimokd")
class ReducedBeamformingRecovery(_RecoveryBase):
    """Eq. (20)-(23): the recovery of eq. (7) with a ``K x K`` solve instead of ``Nt x Nt``. TensorFlow only.

    ``B = H_D U Lambda^(-1/2)`` from the eigendecomposition ``H_D^H H_D = U Lambda U^H``, reduced
    channels ``g_k = B^H h_k`` (the paper's ``Lambda^(-1/2) U^H H_D^H h_{D,k}``), ``v_k`` of eq. (23)
    on ``g`` (REFERENCE form, ``p``, ``q`` rescaled to ``P``), and ``w_k = B v_k``. The result is
    identical to :class:`BeamformingRecovery` (``B`` is an isometry onto the span of the channels,
    which contains every ``(sigma^2 I + sum_j q_j h_j h_j^H)^(-1) h_k``); it needs ``K <= Nt`` and
    linearly independent channels. Inputs, output and arguments as :class:`BeamformingRecovery`.
    """

    def call(self, inputs):
        h, p, q = inputs
        dt = self.linalg_dtype
        p = _rescale(p, self.power, dt)
        q = _rescale(q, self.power, dt)
        HD = _hd(h, dt)
        B = _reduction_basis(HD)
        G = tf.matmul(B, HD, adjoint_a=True)  # [b, K, K], column k = g_k
        V = _duality_directions(G, q, self.noise) * _real_to_complex(tf.sqrt(p), HD.dtype)[:, None, :]
        return self._out(tf.matmul(B, V))

    def compute_output_shape(self, input_shape):
        h = input_shape[0]
        return (h[0], h[2], h[1], 2)


@keras.saving.register_keras_serializable(package="mimokd")
class ZFRecovery(_RecoveryBase):
    """Zero-forcing beamforming of eq. (24): ``h -> W = d H_D (H_D^H H_D)^(-1)``. TensorFlow backend only.

    Input: ``h`` float ``[batch, K, Nt, 2]`` (``K <= Nt``, full column rank). Output: float
    ``[batch, Nt, K, 2]`` with ``||W||_F^2 = P`` (``d^2 = P / tr((H_D^H H_D)^(-1))``) and ``h_k^H w_j =
    d delta_kj`` (no inter-user interference). ``noise`` is stored for a uniform interface only (ZF
    does not use it). Arguments as :class:`BeamformingRecovery`.
    """

    def __init__(self, power, noise=1.0, linalg_dtype="float64", **kwargs):
        super().__init__(power, noise, linalg_dtype, **kwargs)

    def call(self, inputs):
        HD = _hd(inputs, self.linalg_dtype)
        gram = tf.matmul(HD, HD, adjoint_a=True)
        W0 = tf.linalg.adjoint(tf.linalg.solve(tf.linalg.adjoint(gram), tf.linalg.adjoint(HD)))  # H_D gram^-1
        sq = tf.reduce_sum(tf.math.real(W0) ** 2 + tf.math.imag(W0) ** 2, axis=(1, 2))
        d = tf.sqrt(self.power / (sq + NORM_EPSILON))
        return self._out(W0 * _real_to_complex(d, W0.dtype)[:, None, None])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], input_shape[1], 2)


# ----------------------------------------------------------------------------- sum rate


def _real_stored(x):
    x = tf.convert_to_tensor(x)
    return tf.stack([tf.math.real(x), tf.math.imag(x)], axis=-1) if x.dtype.is_complex else x


def _beam_gains(h, W):
    """``|h_m^H w_k|^2`` ``[b, M, K]`` in real arithmetic, in ``h``'s real dtype; ``h`` ``[b, M, Nt(, 2)]``,
    ``W`` ``[b, Nt, K(, 2)]``, real-stored or complex."""
    h = _real_stored(h)
    W = tf.cast(_real_stored(W), h.dtype)
    hr, hi = h[..., 0], h[..., 1]
    wr, wi = W[..., 0], W[..., 1]
    # h_m^H w_k = sum_n conj(h_mn) w_nk
    re = tf.einsum("bmn,bnk->bmk", hr, wr) + tf.einsum("bmn,bnk->bmk", hi, wi)
    im = tf.einsum("bmn,bnk->bmk", hr, wi) - tf.einsum("bmn,bnk->bmk", hi, wr)
    return re**2 + im**2


def _off_diagonal_sum(gains, axis):
    """``gains`` ``[b, M, K]`` with the diagonal ``m = k`` masked out, summed over ``axis``: 1 gives
    ``sum_{m != k} gains[:, m, k]`` (a beam's leakage), 2 gives ``sum_{k != m} gains[:, m, k]`` (a user's
    interference). Summed directly with a mask rather than as ``sum - diagonal``: with the path-loss
    dynamic range of multicell views the signal can exceed the interference by 1e8, and the subtraction
    cancels in float32 (even to a negative interference and an infinite / NaN rate)."""
    off = 1.0 - tf.eye(tf.shape(gains)[1], tf.shape(gains)[2], dtype=gains.dtype)
    return tf.reduce_sum(gains * off, axis=axis)


def _noise_column(noise, dtype):
    """``noise`` (scalar or ``[b]``) as ``[b or 1, 1]`` of ``dtype``."""
    if not tf.is_tensor(noise):
        noise = np.asarray(noise, np.float64)  # a Python float would go through float32 in tf.cast
    return tf.reshape(tf.cast(noise, dtype), [-1, 1])


def miso_sum_rate_tf(h, W, noise):
    """Differentiable sum rate ``sum_k log2(1 + gamma_k)`` of eq. (2), ``[batch]`` in bits/s/Hz (TensorFlow ops).

    Args:
        h: float ``[batch, K, Nt, 2]`` (real-stored) or complex ``[batch, K, Nt]``.
        W: float ``[batch, Nt, K, 2]`` or complex ``[batch, Nt, K]`` (its power taken as given).
        noise: ``sigma^2`` (linear), a scalar or ``[batch]``.

    Computed in real arithmetic in the dtype of ``h`` (float32 for complex64, float64 for
    complex128); equals :func:`mimokd.classical.miso.miso_sum_rate`.
    """
    gains = _beam_gains(h, W)  # [b, K, K]
    sig = tf.linalg.diag_part(gains)
    interf = _off_diagonal_sum(gains, axis=2)
    rates = tf.math.log(1.0 + sig / (interf + _noise_column(noise, gains.dtype))) / tf.cast(np.log(2.0), gains.dtype)
    return tf.reduce_sum(rates, axis=1)


# ----------------------------------------------------------------------------- multicell (Sec. VI)


def _check_users_per_cell(users_per_cell):
    if isinstance(users_per_cell, bool) or not isinstance(users_per_cell, (int, np.integer)) or users_per_cell < 1:
        raise ValueError(f"`users_per_cell` must be a positive integer. Received: users_per_cell={users_per_cell!r}")
    return int(users_per_cell)


def _check_view_shapes(h_shape, p_shape, users_per_cell, zf=False):
    """Static checks of a view ``h`` ``[b, K_total, Nt, 2]`` and powers ``[b, K_c]`` (unknown dims skipped)."""
    kt, nt = h_shape[1], h_shape[2]
    if kt is not None and kt < users_per_cell:
        raise ValueError(f"The view has K_total={kt} users, fewer than `users_per_cell`={users_per_cell}.")
    if p_shape is not None and p_shape[-1] is not None and p_shape[-1] != users_per_cell:
        raise ValueError(f"`p` must be [batch, users_per_cell={users_per_cell}]. Received: shape {tuple(p_shape)}")
    if zf and kt is not None and nt is not None and kt > nt:
        raise ValueError(f"Zero-forcing all K_total={kt} users needs Nt >= K_total. Received: Nt={nt}")


@keras.saving.register_keras_serializable(package="mimokd")
class SLNRRecovery(_RecoveryBase):
    """Eq. (35): the multicell SLNR beamformer of one BS from its view and its users' powers. TensorFlow only.

    Inputs ``[h, p]``: ``h`` float ``[batch, K_total, Nt, 2]`` (the BS's view: its own
    ``users_per_cell`` users first, then all other users), ``p`` nonnegative float ``[batch,
    users_per_cell]`` with a positive sum per sample (e.g. a Power-Net softmax), rescaled to sum to
    ``power``. Output: float ``[batch, Nt, users_per_cell, 2]``,

        ``w_k = sqrt(p_k) normalize((I + (p_k / N_0) sum_{m=1}^{K_total} g_m g_m^H)^(-1) h_k)``

    (``g_m = h[:, m]``, the sum over every user including ``k``; by Sherman-Morrison including ``k``
    changes only the length, so this is the max-SLNR direction of eq. 32). The matrix depends on
    ``p_k``, so this solves one ``Nt x Nt`` system per own user and sample. ``||w_k||^2 = p_k``,
    ``sum_k ||w_k||^2 = P``. Equals :func:`mimokd.classical.slnr.slnr_directions` ``(h_own, p, noise,
    leak=h_others)`` times ``sqrt(p)``.

    Args:
        power: per-BS transmit power ``P`` (linear, > 0).
        noise: noise power ``N_0`` (linear, > 0).
        users_per_cell: ``K_c``, the BS's own users (the first ``K_c`` rows of the view).
        linalg_dtype: ``"float64"`` (complex128, default) or ``"float32"``.
    """

    def __init__(self, power, noise, users_per_cell, linalg_dtype="float64", **kwargs):
        super().__init__(power, noise, linalg_dtype, **kwargs)
        self.users_per_cell = _check_users_per_cell(users_per_cell)

    def get_config(self):
        return {**super().get_config(), "users_per_cell": self.users_per_cell}

    def call(self, inputs):
        h, p = inputs
        _check_view_shapes(h.shape, p.shape, self.users_per_cell)
        dt = self.linalg_dtype
        kc = self.users_per_cell
        p = _rescale(p, self.power, dt)  # [b, Kc]
        HD = _hd(h, dt)  # [b, Nt, K_total]
        R = tf.matmul(HD, HD, adjoint_b=True)  # sum_m g_m g_m^H, [b, Nt, Nt]
        eye = tf.eye(tf.shape(HD)[1], dtype=HD.dtype)
        scale = _real_to_complex(p / np.float64(self.noise), HD.dtype)  # p_k / N_0, [b, Kc]
        A = eye + scale[:, :, None, None] * R[:, None]  # [b, Kc, Nt, Nt]
        rhs = tf.transpose(HD[:, :, :kc], [0, 2, 1])[..., None]  # h_k, [b, Kc, Nt, 1]
        V = tf.linalg.solve(A, rhs)[..., 0]  # [b, Kc, Nt]
        sq = tf.reduce_sum(tf.math.real(V) ** 2 + tf.math.imag(V) ** 2, axis=2, keepdims=True)
        V = V * _real_to_complex(tf.sqrt(p[:, :, None] / (sq + NORM_EPSILON)), V.dtype)
        return self._out(tf.transpose(V, [0, 2, 1]))

    def compute_output_shape(self, input_shape):
        h = input_shape[0]
        return (h[0], h[2], self.users_per_cell, 2)


@keras.saving.register_keras_serializable(package="mimokd")
class MulticellZFRecovery(_RecoveryBase):
    """The multicell zero-forcing recovery ("proposed solution based on the ZF loss function", Sec. VII-C).

    TensorFlow backend only (module docstring).

    The ZF counterpart of :class:`SLNRRecovery` for one BS: it zero-forces EVERY user it sees (its
    own and the other cells'), so its beams cause no intra- or inter-cell interference (zero
    leakage; the SLNR becomes the SNR). With ``H`` the ``Nt x K_total`` view (columns ``h_m``):

        ``w_k = sqrt(p_k) c_k / ||c_k||``,  ``c_k`` = column ``k`` of ``H (H^H H)^(-1)``, ``k < K_c``

    so ``h_m^H w_k = 0`` for every ``m != k``. Needs ``Nt >= K_total`` and linearly independent
    channels. Unlike eq. (24) (one common scale ``d``), each own user's column is normalized and
    given its own power, since the per-BS budget is spent on ``K_c`` of the ``K_total`` columns.

    Inputs ``[h, p]``: ``h`` float ``[batch, K_total, Nt, 2]`` (own users first), ``p`` nonnegative
    ``[batch, users_per_cell]``, rescaled to sum to ``power``; or ``h`` alone: equal power
    ``P / K_c`` (with one user per cell, ``p = P`` either way). Output: float ``[batch, Nt,
    users_per_cell, 2]``, ``sum_k ||w_k||^2 = P``. ``noise`` is stored for a uniform interface only.

    Args:
        power: per-BS transmit power ``P``. users_per_cell: ``K_c``.
        noise: unused (default 1). linalg_dtype: ``"float64"`` (default) or ``"float32"``.
    """

    def __init__(self, power, users_per_cell, noise=1.0, linalg_dtype="float64", **kwargs):
        super().__init__(power, noise, linalg_dtype, **kwargs)
        self.users_per_cell = _check_users_per_cell(users_per_cell)

    def get_config(self):
        return {**super().get_config(), "users_per_cell": self.users_per_cell}

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            h, p = inputs
        else:
            h, p = inputs, None
        _check_view_shapes(h.shape, None if p is None else p.shape, self.users_per_cell, zf=True)
        dt = self.linalg_dtype
        kc = self.users_per_cell
        HD = _hd(h, dt)  # [b, Nt, K_total]
        gram = tf.matmul(HD, HD, adjoint_a=True)  # [b, K_total, K_total]
        E = tf.eye(tf.shape(HD)[2], kc, batch_shape=[tf.shape(HD)[0]], dtype=HD.dtype)
        C = tf.matmul(HD, tf.linalg.solve(gram, E))  # own columns of H (H^H H)^-1, [b, Nt, Kc]
        if p is None:
            p = tf.fill([tf.shape(HD)[0], kc], tf.cast(self.power / kc, dt))
        else:
            p = _rescale(p, self.power, dt)
        sq = tf.reduce_sum(tf.math.real(C) ** 2 + tf.math.imag(C) ** 2, axis=1)  # [b, Kc]
        return self._out(C * _real_to_complex(tf.sqrt(p / (sq + NORM_EPSILON)), C.dtype)[:, None, :])

    def compute_output_shape(self, input_shape):
        h = input_shape[0] if isinstance(input_shape, (list, tuple)) and isinstance(input_shape[0], (list, tuple)) \
            else input_shape
        return (h[0], h[2], self.users_per_cell, 2)


def slnr_rate_tf(h, W, noise, users_per_cell, approximate=False):
    """Differentiable per-view SLNR rate of eq. (27)-(28), ``[batch]`` in bits/s/Hz (TensorFlow ops).

    ``sum_{k < K_c} log2(1 + gamma_k)`` (``approximate=False``) or ``sum_k log2(gamma_k)`` (the
    high-SNR form of eq. 28 that the paper optimizes, ``approximate=True``), with

        ``gamma_k = |h_k^H w_k|^2 / (sum_{m != k, m < K_total} |h_m^H w_k|^2 + N_0)``

    (the leakage of own user ``k``'s beam into every other user of every cell).

    Args:
        h: the view, float ``[batch, K_total, Nt, 2]`` or complex ``[batch, K_total, Nt]``, own
            ``users_per_cell`` users first.
        W: float ``[batch, Nt, K_c, 2]`` or complex ``[batch, Nt, K_c]`` (its power taken as given).
        noise: ``N_0`` (linear), a scalar or ``[batch]``.
        users_per_cell: ``K_c`` (must equal ``W``'s user axis).
        approximate: ``log2(gamma)`` instead of ``log2(1 + gamma)`` (``-inf`` where the signal is 0).

    Computed in real arithmetic in the dtype of ``h`` (float32 for complex64, float64 for complex128).
    """
    kc = _check_users_per_cell(users_per_cell)
    W = tf.convert_to_tensor(W)
    if W.shape[2] is not None and W.shape[2] != kc:
        raise ValueError(f"`W` must be [batch, Nt, users_per_cell={kc}, 2]. Received: W.shape={W.shape}")
    h = tf.convert_to_tensor(h)
    if h.shape[1] is not None and h.shape[1] < kc:
        raise ValueError(f"`h` has K_total={h.shape[1]} users, fewer than `users_per_cell`={kc}.")
    gains = _beam_gains(h, W)  # [b, K_total (m), Kc (k)]
    sig = tf.linalg.diag_part(gains[:, :kc, :])  # |h_k^H w_k|^2, [b, Kc]
    gamma = sig / (_off_diagonal_sum(gains, axis=1) + _noise_column(noise, gains.dtype))
    rates = tf.math.log(gamma if approximate else 1.0 + gamma) / tf.cast(np.log(2.0), gains.dtype)
    return tf.reduce_sum(rates, axis=1)


# ----------------------------------------------------------------------------- networks


def _check_positive_int(**values):
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{key}` must be a positive integer. Received: {key}={value!r}")


def _check_hidden(hidden, key="hidden"):
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError(f"`{key}` needs at least one hidden layer. Received: {key}={hidden}")
    _check_positive_int(**{f"{key}[{i}]": h for i, h in enumerate(hidden)})
    return hidden


def build_csi_net(Nt, K, hidden=None, per_user=True, activation="tanh", name="csi_net"):
    """CSI-Net: uplink channel / uplink LS estimate -> downlink channel estimate (Sec. IV-B, VII).

    Args:
        Nt, K: antennas, users.
        hidden: widths of the hidden FC layers; default four layers of ``4 K Nt`` (Sec. VII-A;
            Sec. VII-B uses three of ``2 Nt K``).
        per_user: ``True``: the single-user CSI-Net, one FC net ``2 Nt -> 2 Nt`` shared by all users
            (Dense on the last axis of ``[batch, K, 2 Nt]``); ``False``: one FC net on the flattened
            ``2 K Nt`` input.
        activation: hidden activation (``"tanh"`` in the paper); the output layer is linear.
        name: the model's name.

    Returns:
        ``keras.Model``: float32 ``[batch, K, Nt, 2]`` -> float32 ``[batch, K, Nt, 2]``.
    """
    _check_positive_int(Nt=Nt, K=K)
    hidden = _check_hidden(hidden if hidden is not None else (4 * K * Nt,) * 4)
    inputs = keras.Input((K, Nt, 2), name="uplink")
    x = keras.layers.Reshape((K, 2 * Nt) if per_user else (2 * K * Nt,), name="flatten")(inputs)
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation=activation, name=f"dense_{i + 1}")(x)
    x = keras.layers.Dense(2 * Nt if per_user else 2 * K * Nt, name="output")(x)
    outputs = keras.layers.Reshape((K, Nt, 2), name="downlink")(x)
    return keras.Model(inputs, outputs, name=name)


def build_power_net(Nt, K, hidden=None, variant="fc", filters=POWER_NET_CNN_FILTERS, kernel_size=3,
                    dropout=POWER_NET_CNN_DROPOUT, name="power_net", outputs=None):
    """Power-Net: channels -> softmax power fractions ``[p_hat; q_hat]`` (Sec. IV-B, VII).

    Args:
        Nt, K: antennas, users.
        hidden: ``"fc"``: widths of the FC layers, each Dense -> BatchNorm -> ReLU; default four of
            ``4 K Nt`` (Sec. VII-A). ``"cnn"``: widths of the FC ReLU layers after the convolutions;
            default ``(256,)`` (Sec. VII-B).
        variant: ``"fc"`` or ``"cnn"``. The CNN reads the channels as a length-``Nt`` sequence over
            the antennas with ``2K`` channels (every user's real and imaginary part), then per
            entry of ``filters``: Conv1D (``"same"`` padding, ``kernel_size``) -> BatchNorm -> ReLU ->
            Dropout(``dropout``). The paper's "filter sizes of 16 and 8" is read as 16 and 8
            filters; its kernel size is not given (``kernel_size=3`` here).
        filters, kernel_size, dropout: the CNN's (ignored for ``"fc"``).
        name: the model's name.
        outputs: the softmax's size; default ``2K`` (``[p; q]``). The multicell Power-Net of eq. (37)
            uses ``outputs=users_per_cell`` on a ``K = K_total`` view: the own users' ``p / P``.

    Returns:
        ``keras.Model``: float32 ``[batch, K, Nt, 2]`` -> float32 ``[batch, 2K]``, a softmax over all
        ``2K`` entries (sums to 1). ``p_hat = y[:, :K]``, ``q_hat = y[:, K:]`` (:func:`split_powers`);
        train against :func:`power_targets` ``= [p; q] / (2P)``. With ``outputs``: ``[batch, outputs]``.
    """
    _check_positive_int(Nt=Nt, K=K)
    outputs_count = 2 * K if outputs is None else outputs
    _check_positive_int(outputs=outputs_count)
    if variant not in ("fc", "cnn"):
        raise ValueError(f"`variant` must be 'fc' or 'cnn'. Received: variant={variant!r}")
    inputs = keras.Input((K, Nt, 2), name="channels")
    if variant == "fc":
        hidden = _check_hidden(hidden if hidden is not None else (4 * K * Nt,) * 4)
        x = keras.layers.Flatten(name="flatten")(inputs)
        for i, units in enumerate(hidden):
            x = keras.layers.Dense(units, name=f"dense_{i + 1}")(x)
            x = keras.layers.BatchNormalization(name=f"bn_{i + 1}")(x)
            x = keras.layers.Activation("relu", name=f"relu_{i + 1}")(x)
    else:
        hidden = _check_hidden(hidden if hidden is not None else (POWER_NET_CNN_DENSE,))
        filters = _check_hidden(filters, "filters")
        _check_positive_int(kernel_size=kernel_size)
        if not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        x = keras.layers.Permute((2, 1, 3), name="antenna_major")(inputs)  # [b, Nt, K, 2]
        x = keras.layers.Reshape((Nt, 2 * K), name="sequence")(x)
        for i, f in enumerate(filters):
            x = keras.layers.Conv1D(f, kernel_size, padding="same", name=f"conv_{i + 1}")(x)
            x = keras.layers.BatchNormalization(name=f"bn_{i + 1}")(x)
            x = keras.layers.Activation("relu", name=f"relu_{i + 1}")(x)
            x = keras.layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        for i, units in enumerate(hidden):
            x = keras.layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(x)
    y = keras.layers.Dense(outputs_count, activation="softmax", name="powers")(x)
    return keras.Model(inputs, y, name=name)


def power_targets(p, q, P):
    """Power-Net target ``[p; q] / (2P)``, float32 ``[batch, 2K]`` (sums to 1 when ``sum p = sum q = P``).
    ``p``, ``q``: ``[batch, K]`` (e.g. from :func:`mimokd.classical.miso.wmmse`); ``P`` scalar or ``[batch]``."""
    P = np.reshape(np.asarray(P, np.float64), (-1, 1))
    return (np.concatenate([p, q], axis=1) / (2.0 * P)).astype("float32")


def split_powers(y):
    """``[batch, 2K]`` Power-Net output -> ``(p_hat, q_hat)``, each ``[batch, K]``."""
    K = y.shape[-1] // 2
    return y[..., :K], y[..., K:]


__all__ = [
    "BeamformingRecovery",
    "MulticellZFRecovery",
    "ReducedBeamformingRecovery",
    "SLNRRecovery",
    "ZFRecovery",
    "build_csi_net",
    "build_power_net",
    "miso_sum_rate_tf",
    "power_targets",
    "slnr_rate_tf",
    "split_powers",
    "to_complex",
    "to_real",
]
