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
    qc = tf.cast(q, HD.dtype)
    eye = tf.eye(n, dtype=HD.dtype)
    M = tf.cast(np.float64(noise), HD.dtype) * eye + tf.matmul(HD * qc[:, None, :], HD, adjoint_b=True)
    V = tf.linalg.solve(M, HD)
    sq = tf.reduce_sum(tf.math.real(V) ** 2 + tf.math.imag(V) ** 2, axis=1, keepdims=True)
    return V / tf.cast(tf.sqrt(sq + NORM_EPSILON), V.dtype)


class _RecoveryBase(keras.layers.Layer):
    def __init__(self, power, noise, linalg_dtype="float64", **kwargs):
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
    """Eq. (7) in the REFERENCE form (uplink-downlink duality): ``(h, p, q) -> W``.

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
        return self._out(V * tf.cast(tf.sqrt(p), V.dtype)[:, None, :])

    def compute_output_shape(self, input_shape):
        h = input_shape[0]
        return (h[0], h[2], h[1], 2)


def _reduction_basis(HD):
    """``B = H_D U Lambda^(-1/2)`` (``[b, Nt, K]``, orthonormal columns) from ``H_D^H H_D = U Lambda U^H``."""
    gram = tf.matmul(HD, HD, adjoint_a=True)
    gram = 0.5 * (gram + tf.linalg.adjoint(gram))
    lam, U = tf.linalg.eigh(gram)
    lam = tf.math.real(lam)
    return tf.matmul(HD, U) * tf.cast(tf.math.rsqrt(lam + NORM_EPSILON), HD.dtype)[:, None, :]


@keras.saving.register_keras_serializable(package="mimokd")
class ReducedBeamformingRecovery(_RecoveryBase):
    """Eq. (20)-(23): the recovery of eq. (7) with a ``K x K`` solve instead of ``Nt x Nt``.

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
        V = _duality_directions(G, q, self.noise) * tf.cast(tf.sqrt(p), HD.dtype)[:, None, :]
        return self._out(tf.matmul(B, V))

    def compute_output_shape(self, input_shape):
        h = input_shape[0]
        return (h[0], h[2], h[1], 2)


@keras.saving.register_keras_serializable(package="mimokd")
class ZFRecovery(_RecoveryBase):
    """Zero-forcing beamforming of eq. (24): ``h -> W = d H_D (H_D^H H_D)^(-1)``.

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
        return self._out(W0 * tf.cast(d, W0.dtype)[:, None, None])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], input_shape[1], 2)


# ----------------------------------------------------------------------------- sum rate


def miso_sum_rate_tf(h, W, noise):
    """Differentiable sum rate ``sum_k log2(1 + gamma_k)`` of eq. (2), ``[batch]`` in bits/s/Hz.

    Args:
        h: float ``[batch, K, Nt, 2]`` (real-stored) or complex ``[batch, K, Nt]``.
        W: float ``[batch, Nt, K, 2]`` or complex ``[batch, Nt, K]`` (its power taken as given).
        noise: ``sigma^2`` (linear), a scalar or ``[batch]``.

    Computed in real arithmetic in the dtype of ``h`` (float32 for complex64, float64 for
    complex128); equals :func:`mimokd.classical.miso.miso_sum_rate`.
    """
    h = tf.convert_to_tensor(h)
    W = tf.convert_to_tensor(W)
    if h.dtype.is_complex:
        h = tf.stack([tf.math.real(h), tf.math.imag(h)], axis=-1)
    if W.dtype.is_complex:
        W = tf.stack([tf.math.real(W), tf.math.imag(W)], axis=-1)
    W = tf.cast(W, h.dtype)
    hr, hi = h[..., 0], h[..., 1]  # [b, K, Nt]
    wr, wi = W[..., 0], W[..., 1]  # [b, Nt, K]
    # h_k^H w_j = sum_n conj(h_kn) w_nj
    re = tf.einsum("bkn,bnj->bkj", hr, wr) + tf.einsum("bkn,bnj->bkj", hi, wi)
    im = tf.einsum("bkn,bnj->bkj", hr, wi) - tf.einsum("bkn,bnj->bkj", hi, wr)
    gains = re**2 + im**2  # [b, K(k), K(j)]
    sig = tf.linalg.diag_part(gains)
    interf = tf.reduce_sum(gains, axis=2) - sig
    if not tf.is_tensor(noise):
        noise = np.asarray(noise, np.float64)  # a Python float would go through float32 in tf.cast
    noise = tf.reshape(tf.cast(noise, h.dtype), [-1, 1])
    rates = tf.math.log(1.0 + sig / (interf + noise)) / tf.cast(np.log(2.0), h.dtype)
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
                    dropout=POWER_NET_CNN_DROPOUT, name="power_net"):
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

    Returns:
        ``keras.Model``: float32 ``[batch, K, Nt, 2]`` -> float32 ``[batch, 2K]``, a softmax over all
        ``2K`` entries (sums to 1). ``p_hat = y[:, :K]``, ``q_hat = y[:, K:]`` (:func:`split_powers`);
        train against :func:`power_targets` ``= [p; q] / (2P)``.
    """
    _check_positive_int(Nt=Nt, K=K)
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
    outputs = keras.layers.Dense(2 * K, activation="softmax", name="powers")(x)
    return keras.Model(inputs, outputs, name=name)


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
    "ReducedBeamformingRecovery",
    "ZFRecovery",
    "build_csi_net",
    "build_power_net",
    "miso_sum_rate_tf",
    "power_targets",
    "split_powers",
    "to_complex",
    "to_real",
]
