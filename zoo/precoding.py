"""Kong et al.'s end-to-end limited-feedback precoding: receiver DNNs (UE), transmitter DNN (BS).

Section III of Kong et al. ("Knowledge distillation-aided end-to-end learning for linear precoding
in multiuser MIMO downlink systems with finite-rate feedback"):

- **Receiver** (UE, eq. 4): received pilots of one user, as reals ``r_k = [Re(vec Y_k); Im(vec Y_k)]``
  float32 ``[batch, 2NL]`` -> dense ReLU layers (eq. 3; 640 -> 480 -> 320 = 40MN, 30MN, 20MN at
  M=8, N=2) -> dense ``B`` (the pre-binarization output ``u_k``, layer ``"logits"``) -> binarization
  (layer ``"binarize"``) -> feedback bits float32 ``[batch, B]`` in {-1, +1}.
- **Transmitter** (BS, eq. 5): the ``K`` users' bits concatenated user-major, float32 ``[batch, K*B]``
  (user ``k`` at ``[k*B, (k+1)*B)``), and optionally the power ``P`` in dB ``[batch, 1]`` -> dense
  ReLU 1280 -> 1920 -> 2560 (20MNK, 30MNK, 40MNK) -> dense ``2MNK`` -> ``h(.)``: rearranged to
  the ``M x NK`` precoding matrix ``V = [V_1 ... V_K]`` and every column normalized to unit norm.
  The output is **real**, float32 ``[batch, M, K*N, 2]`` (last axis: real, imaginary part), so that
  SavedModel / ONNX / TFLite exports need no complex tensors; :func:`to_complex` turns it into the
  complex64 ``[batch, M, K*N]`` that ``mimokd.classical.sum_rate`` takes (user ``k``'s precoder
  ``V_k`` = columns ``[k*N, (k+1)*N)``).
- **Auxiliary transmitter** (eq. 9): the transmitter's architecture, fed the receivers'
  pre-binarization outputs ``u_k`` instead of the bits (training only).

All dense layers: He-normal kernels, zero biases (as in the authors' code). The networks and their
layers are plain Keras (``keras.ops``): they build, train, save and load under the TensorFlow, JAX
and PyTorch backends (``tests/test_backends.py``); Algorithm 1's trainer (:mod:`mimokd.train.joint`)
and its sum rate are TensorFlow.

Binarizations, selectable by name (:data:`BINARIZATIONS`):

- ``"tanh-ste"`` (:class:`TanhSTE`, eq. 4 and 8): forward ``sign(tanh(u))``, backward ``d tanh(u)/du``
  (the authors' code: ``tanh`` then ``sign`` with an identity gradient).
- ``"sigmoid-ste"`` (:class:`SigmoidSTE`, Sohrabi et al., ref. [15] of Kong et al.): forward
  ``sign(u)``, backward the derivative of ``2 sigmoid(a u) - 1``, i.e. ``2a sigmoid(au)(1 - sigmoid(au))``,
  with a non-trainable slope ``a`` that the trainer anneals (``mimokd.train.joint.SlopeSchedule``).

Receiver outputs: the deployable receiver outputs the bits only. Its pre-binarization output ``u``
is :func:`receiver_logits` ``(receiver)``, a second model over the same layers (same weights).
For deployment the binarization's inference form is :class:`HardSign` (``u -> sign(u)``, no
straight-through arithmetic): see :func:`mimokd.export.systems.hard_receiver`.

Examples:
    >>> system = KongSystem.build(num_users=4, num_tx=8, num_rx=2, pilot_length=8, bits=6)
    >>> bits = system.receiver(pilots_real[:, 0])          # UE: [batch, 32] -> [batch, 6]
    >>> v = to_complex(system.transmitter([feedback, p_db]))  # BS: -> complex64 [batch, 8, 8]
"""

import keras
import numpy as np
from keras import ops

RECEIVER_HIDDEN = (640, 480, 320)  # 40MN, 30MN, 20MN at M=8, N=2 (Kong et al. Sec. IV-A)
TRANSMITTER_HIDDEN = (1280, 1920, 2560)  # 20MNK, 30MNK, 40MNK at M=8, N=2, K=4
POWER_SCALE = 0.1  # the transmitter's P input: dB / 10 (0-30 dB -> 0-3, the size of the ±1 bits)
NORM_EPSILON = 1e-12  # added to the squared column norm of h(.), against a division by zero


def _hard_sign(x):
    """+1 where ``x >= 0``, -1 elsewhere (0 maps to +1: the feedback is always ±1)."""
    return ops.where(x >= 0, ops.ones_like(x), -ops.ones_like(x))


def _straight_through(hard, soft):
    """``hard`` in the forward pass (exactly: ``soft - stop_gradient(soft)`` is 0), ``d soft`` backward."""
    return hard + (soft - ops.stop_gradient(soft))


@keras.saving.register_keras_serializable(package="mimokd")
class TanhSTE(keras.layers.Layer):
    """``sign(tanh(u))`` with the gradient of ``tanh(u)``: Kong et al. eq. (4) and (8).

    Input: float32 ``[batch, B]`` (``u``); output: float32 ``[batch, B]`` in {-1, +1}.
    """

    def call(self, inputs):
        soft = ops.tanh(inputs)
        return _straight_through(_hard_sign(soft), soft)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mimokd")
class SigmoidSTE(keras.layers.Layer):
    """Sohrabi et al.'s sigmoid-adjusted straight-through estimator.

    Forward ``sign(u)``; backward the gradient of ``2 sigmoid(a u) - 1``, i.e.
    ``2a sigmoid(au) (1 - sigmoid(au))``. The slope ``a`` is a non-trainable weight (``self.slope``,
    saved with the weights) that the trainer assigns every step from its annealing schedule.

    Input: float32 ``[batch, B]`` (``u``); output: float32 ``[batch, B]`` in {-1, +1}.

    Args:
        initial_slope: the slope ``a`` at build time (> 0).
    """

    def __init__(self, initial_slope=1.0, **kwargs):
        super().__init__(**kwargs)
        if not initial_slope > 0:
            raise ValueError(f"`initial_slope` must be > 0. Received: initial_slope={initial_slope}")
        self.initial_slope = float(initial_slope)

    def build(self, input_shape):
        self.slope = self.add_weight(
            name="slope",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_slope),
            trainable=False,
        )

    def call(self, inputs):
        soft = 2.0 * ops.sigmoid(ops.cast(self.slope, inputs.dtype) * inputs) - 1.0
        return _straight_through(_hard_sign(inputs), soft)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initial_slope": self.initial_slope}


@keras.saving.register_keras_serializable(package="mimokd")
class HardSign(keras.layers.Layer):
    """The inference form of every binarization: ``+1`` where ``u >= 0``, ``-1`` elsewhere (eq. 4).

    The forward pass of :class:`TanhSTE` and :class:`SigmoidSTE` without their straight-through
    terms (``sign(tanh(u)) = sign(u)``): the exported receiver computes its bits with a comparison and
    a select: every runtime and precision keeps the bits exact given ``u``.

    Input: float32 ``[batch, B]`` (``u``); output: float32 ``[batch, B]`` in {-1, +1}.
    """

    def call(self, inputs):
        return _hard_sign(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


BINARIZATIONS = {"tanh-ste": TanhSTE, "sigmoid-ste": SigmoidSTE}


def make_binarization(kind, **kwargs):
    """A binarization layer by name (:data:`BINARIZATIONS`); ``kwargs`` (``name``, ``initial_slope``)
    go to its constructor."""
    if kind not in BINARIZATIONS:
        raise ValueError(
            f"Unknown binarization. Expected one of {sorted(BINARIZATIONS)}. Received: binarization={kind!r}"
        )
    return BINARIZATIONS[kind](**kwargs)


@keras.saving.register_keras_serializable(package="mimokd")
class UnitColumns(keras.layers.Layer):
    """Normalize every column of a real-stored complex matrix to unit norm (part of ``h`` in eq. 5).

    Input / output: float32 ``[batch, M, C, 2]`` (real, imaginary last); output column ``c`` is
    ``x[:, :, c, :] / ||x[:, :, c, :]||`` over the ``M`` rows and both parts.
    """

    def call(self, inputs):
        squared = ops.sum(ops.square(inputs), axis=(1, 3), keepdims=True)
        return inputs * ops.rsqrt(squared + NORM_EPSILON)

    def compute_output_shape(self, input_shape):
        return input_shape


def _check_positive_int(**values):
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{key}` must be a positive integer. Received: {key}={value!r}")


def _check_hidden(hidden, key):
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError(f"`{key}` needs at least one hidden layer. Received: {key}={hidden}")
    _check_positive_int(**{f"{key}[{i}]": h for i, h in enumerate(hidden)})
    return hidden


def _dense(units, name, activation=None):
    return keras.layers.Dense(
        units, activation=activation, kernel_initializer="he_normal", bias_initializer="zeros", name=name
    )


def build_receiver(input_dim, bits, hidden=RECEIVER_HIDDEN, binarization="tanh-ste", name="receiver",
                   binarization_kwargs=None):
    """The receiver DNN of one user, eq. (4): received pilots -> ``B`` feedback bits.

    Args:
        input_dim: ``2NL``, the reals of the ``N x L`` received pilots ``r_k``.
        bits: ``B``, feedback bits per user.
        hidden: widths of the ReLU layers (``40MN, 30MN, 20MN`` in the paper).
        binarization: a name of :data:`BINARIZATIONS`.
        name: the model's name.
        binarization_kwargs: constructor arguments of the binarization layer (``initial_slope``).

    Returns:
        ``keras.Model``: float32 ``[batch, 2NL]`` -> float32 ``[batch, B]`` in {-1, +1}; its layer
        ``"logits"`` outputs ``u`` (:func:`receiver_logits`).
    """
    _check_positive_int(input_dim=input_dim, bits=bits)
    hidden = _check_hidden(hidden, "hidden")
    binarize = make_binarization(binarization, name="binarize", **(binarization_kwargs or {}))
    inputs = keras.Input((input_dim,), name="pilots")
    x = inputs
    for i, units in enumerate(hidden):
        x = _dense(units, f"dense_{i + 1}", "relu")(x)
    u = _dense(bits, "logits")(x)
    return keras.Model(inputs, binarize(u), name=name)


def receiver_logits(receiver):
    """The receiver's pre-binarization output ``u_k = FC_k^Rx(r_k)`` as a model over the same layers.

    Args:
        receiver: a model from :func:`build_receiver`.

    Returns:
        ``keras.Model``: float32 ``[batch, 2NL]`` -> float32 ``[batch, B]`` (real-valued ``u``),
        sharing the receiver's weights (training one trains the other).
    """
    return keras.Model(receiver.input, receiver.get_layer("logits").output, name=f"{receiver.name}_logits")


def build_transmitter(num_users, bits, num_tx, num_rx, hidden=TRANSMITTER_HIDDEN, power_input=True,
                      name="transmitter"):
    """The transmitter DNN, eq. (5): ``V = h(FC^Tx(q_1, ..., q_K, P))``.

    Args:
        num_users: ``K``.
        bits: ``B`` per user (the input holds ``K*B`` values: bits, or ``u`` for the auxiliary one).
        num_tx: ``M`` BS antennas.
        num_rx: ``N`` antennas per user.
        hidden: widths of the ReLU layers (``20MNK, 30MNK, 40MNK`` in the paper).
        power_input: feed ``P`` as the paper does (eq. 5): a second input, ``P`` in **dB**
            ``[batch, 1]``, scaled by ``POWER_SCALE`` inside the model. ``False``: the feedback
            alone, as the authors' code (one network per ``P``).
        name: the model's name.

    Returns:
        ``keras.Model``: ``feedback`` float32 ``[batch, K*B]`` (and ``power_db`` float32
        ``[batch, 1]``) -> ``V`` float32 ``[batch, M, K*N, 2]`` with unit-norm columns
        (:func:`to_complex` for complex64 ``[batch, M, K*N]``).
    """
    _check_positive_int(num_users=num_users, bits=bits, num_tx=num_tx, num_rx=num_rx)
    hidden = _check_hidden(hidden, "hidden")
    columns = num_users * num_rx
    feedback = keras.Input((num_users * bits,), name="feedback")
    inputs = [feedback]
    x = feedback
    if power_input:
        power_db = keras.Input((1,), name="power_db")
        inputs.append(power_db)
        x = keras.layers.Concatenate(name="with_power")(
            [feedback, keras.layers.Rescaling(POWER_SCALE, name="power_scale")(power_db)]
        )
    for i, units in enumerate(hidden):
        x = _dense(units, f"dense_{i + 1}", "relu")(x)
    x = _dense(2 * num_tx * columns, "precoder")(x)
    # column c of V: reals then imaginaries of its M entries (the authors' code's arrangement)
    x = keras.layers.Reshape((columns, 2, num_tx), name="to_columns")(x)
    x = keras.layers.Permute((3, 1, 2), name="to_matrix")(x)  # [batch, M, KN, 2]
    outputs = UnitColumns(name="unit_columns")(x)
    return keras.Model(inputs if power_input else feedback, outputs, name=name)


def to_complex(v):
    """Real-stored precoders ``[..., 2]`` (real, imaginary) -> complex64 ``[...]``.

    A tensor goes to TensorFlow whatever the Keras backend: its only consumer is the TensorFlow sum
    rate :func:`mimokd.classical.sum_rate.sum_rate_tf` that Algorithm 1 trains on (the networks
    themselves are plain Keras and run on every backend).

    Args:
        v: float32 ``[batch, M, K*N, 2]`` (a tensor or a numpy array).

    Returns:
        complex64 ``[batch, M, K*N]``: a numpy array for a numpy input, else a ``tf.Tensor``.
    """
    if isinstance(v, np.ndarray):
        return (v[..., 0] + 1j * v[..., 1]).astype(np.complex64)
    import tensorflow as tf

    v = tf.cast(v, tf.float32)
    return tf.complex(v[..., 0], v[..., 1])


def transmitter_has_power_input(transmitter):
    """Whether ``transmitter`` takes ``[feedback, power_db]`` (else the feedback alone)."""
    return len(transmitter.inputs) == 2


def transmit(transmitter, feedback, power_db, training=False):
    """Call ``transmitter`` on ``feedback`` float32 ``[batch, K*B]`` at ``power_db`` (a scalar in dB,
    or float32 ``[batch]`` / ``[batch, 1]``), feeding the power only if it takes it.

    Returns:
        float32 ``[batch, M, K*N, 2]``.
    """
    feedback = ops.convert_to_tensor(feedback, dtype="float32")
    if not transmitter_has_power_input(transmitter):
        return transmitter(feedback, training=training)
    power = ops.cast(ops.convert_to_tensor(power_db), feedback.dtype)
    power = ops.reshape(power, (-1, 1)) * ops.ones((ops.shape(feedback)[0], 1), dtype=feedback.dtype)
    return transmitter([feedback, power], training=training)


class KongSystem:
    """The receivers, the transmitter and the auxiliary transmitter of Kong et al. (Fig. 1).

    Attributes:
        receivers: tuple of ``K`` receiver models (:func:`build_receiver`); with a shared receiver
            (the authors' code) the same model ``K`` times, else one per user (the paper).
        transmitter: the BS model (:func:`build_transmitter`), fed the bits.
        aux_transmitter: the auxiliary transmitter (eq. 9), fed the pre-binarization ``u``.
        receiver_logits: tuple of ``K`` models pilots -> ``u`` sharing the receivers' layers.
        num_users, num_tx, num_rx, pilot_length, bits: ``K, M, N, L, B``, read from the models.
        shared_receiver: whether one receiver serves every user.

    Build a fresh one with :meth:`build`; ``KongSystem(receivers, transmitter, aux_transmitter)``
    joins existing (e.g. loaded) models.
    """

    def __init__(self, receivers, transmitter, aux_transmitter):
        receivers = tuple(receivers)
        if not receivers:
            raise ValueError("`receivers` must hold at least one receiver model. Received: receivers=()")
        unique = _unique(receivers)
        self.shared_receiver = len(unique) == 1
        input_dim = receivers[0].input_shape[-1]
        bits = receivers[0].output_shape[-1]
        for r in receivers:
            if r.input_shape[-1] != input_dim or r.output_shape[-1] != bits:
                raise ValueError(
                    "Every receiver must map the same pilots [batch, 2NL] to the same bits [batch, B]. "
                    f"Received: {[(r.input_shape, r.output_shape) for r in receivers]}"
                )
        feedback_dim = transmitter.inputs[0].shape[-1]
        num_users = len(receivers)
        if self.shared_receiver and num_users == 1 and feedback_dim != bits:
            num_users = feedback_dim // bits  # one shared receiver passed once
            receivers = receivers * num_users
        if feedback_dim != num_users * bits:
            raise ValueError(
                f"The transmitter takes {feedback_dim} feedback values, not K*B = {num_users}*{bits}. "
                f"Received: transmitter input {transmitter.inputs[0].shape}"
            )
        if tuple(aux_transmitter.output_shape) != tuple(transmitter.output_shape) or [
            tuple(x.shape) for x in aux_transmitter.inputs
        ] != [tuple(x.shape) for x in transmitter.inputs]:
            raise ValueError(
                "The auxiliary transmitter must have the transmitter's inputs and output. Received: "
                f"{[x.shape for x in aux_transmitter.inputs]} -> {aux_transmitter.output_shape}, "
                f"{[x.shape for x in transmitter.inputs]} -> {transmitter.output_shape}"
            )
        _, num_tx, columns, _ = transmitter.output_shape
        self.receivers = receivers
        self.transmitter = transmitter
        self.aux_transmitter = aux_transmitter
        logits = {id(r): receiver_logits(r) for r in _unique(receivers)}
        self.receiver_logits = tuple(logits[id(r)] for r in receivers)
        self.num_users = num_users
        self.bits = bits
        self.num_tx = num_tx
        self.num_rx = columns // num_users
        self.pilot_length = input_dim // (2 * self.num_rx)
        self.power_input = transmitter_has_power_input(transmitter)

    @classmethod
    def build(
        cls,
        *,
        num_users,
        num_tx,
        num_rx,
        pilot_length,
        bits,
        shared_receiver=True,
        binarization="tanh-ste",
        binarization_kwargs=None,
        receiver_hidden=None,
        transmitter_hidden=None,
        power_input=True,
    ):
        """A fresh system (call ``keras.utils.set_random_seed`` first for reproducible weights).

        Args:
            num_users, num_tx, num_rx, pilot_length, bits: ``K, M, N, L, B``.
            shared_receiver: one receiver for every user (the authors' code), else one per user
                (the paper's ``Theta_k^Rx``).
            binarization: a name of :data:`BINARIZATIONS`; ``binarization_kwargs`` its arguments.
            receiver_hidden: default the paper's ``(40MN, 30MN, 20MN)``.
            transmitter_hidden: default the paper's ``(20MNK, 30MNK, 40MNK)`` (both transmitters).
            power_input: the transmitters take ``P`` in dB (:func:`build_transmitter`).
        """
        _check_positive_int(num_users=num_users, num_tx=num_tx, num_rx=num_rx, pilot_length=pilot_length, bits=bits)
        mn, mnk = num_tx * num_rx, num_tx * num_rx * num_users
        receiver_hidden = receiver_hidden or (40 * mn, 30 * mn, 20 * mn)
        transmitter_hidden = transmitter_hidden or (20 * mnk, 30 * mnk, 40 * mnk)
        input_dim = 2 * num_rx * pilot_length

        def receiver(name):
            return build_receiver(input_dim, bits, receiver_hidden, binarization, name, binarization_kwargs)

        if shared_receiver:
            receivers = (receiver("receiver"),) * num_users
        else:
            receivers = tuple(receiver(f"receiver_{k}") for k in range(num_users))
        kwargs = dict(hidden=transmitter_hidden, power_input=power_input)
        return cls(
            receivers,
            build_transmitter(num_users, bits, num_tx, num_rx, name="transmitter", **kwargs),
            build_transmitter(num_users, bits, num_tx, num_rx, name="aux_transmitter", **kwargs),
        )

    @property
    def receiver(self):
        """The shared receiver (UE part). Per-user receivers: use ``receivers[k]``."""
        if not self.shared_receiver:
            raise ValueError("This system has one receiver per user: use `system.receivers[k]`.")
        return self.receivers[0]

    @property
    def unique_receivers(self):
        """The distinct receiver models (one when shared)."""
        return _unique(self.receivers)

    def feedback(self, pilots, training=False):
        """The users' feedback bits, concatenated: float32 ``[batch, K, 2NL]`` -> ``[batch, K*B]``."""
        return self._per_user(self.receivers, pilots, training)

    def logits(self, pilots, training=False):
        """The users' pre-binarization ``u``, concatenated: ``[batch, K, 2NL]`` -> ``[batch, K*B]``."""
        return self._per_user(self.receiver_logits, pilots, training)

    def _per_user(self, models, pilots, training):
        pilots = ops.convert_to_tensor(pilots, dtype="float32")
        if self.shared_receiver:  # one call on [batch*K, 2NL]
            flat = ops.reshape(pilots, (-1, 2 * self.num_rx * self.pilot_length))
            return ops.reshape(models[0](flat, training=training), (-1, self.num_users * self.bits))
        return ops.concatenate([m(pilots[:, k], training=training) for k, m in enumerate(models)], axis=-1)

    def precoders(self, pilots, power_db, training=False):
        """The deployed path: pilots float32 ``[batch, K, 2NL]`` -> bits -> transmitter -> ``V``
        float32 ``[batch, M, K*N, 2]``."""
        return transmit(self.transmitter, self.feedback(pilots, training), power_db, training)

    def aux_precoders(self, pilots, power_db, training=False):
        """The lossless path of eq. (9): pilots -> ``u`` -> auxiliary transmitter -> ``V``."""
        return transmit(self.aux_transmitter, self.logits(pilots, training), power_db, training)


def _unique(models):
    seen = {}
    for m in models:
        seen.setdefault(id(m), m)
    return list(seen.values())


__all__ = [
    "BINARIZATIONS",
    "HardSign",
    "KongSystem",
    "SigmoidSTE",
    "TanhSTE",
    "UnitColumns",
    "build_receiver",
    "build_transmitter",
    "make_binarization",
    "receiver_logits",
    "to_complex",
    "transmit",
    "transmitter_has_power_input",
]
