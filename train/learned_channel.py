"""The "learned channel and beamforming" benchmark of Zhang et al. (Sec. VII, the data-driven separate approach).

The downlink channel is first learned by supervision (a CSI-Net trained with ``L_H`` only, e.g. the
CSI-Net of a supervised-only :class:`~mimokd.train.hybrid.HybridBeamformer`); then a second network
maps that learned channel to beamformers and is trained without labels, to maximise the sum rate of
eq. (2). Sec. VII-A: the beamforming network "uses the same neural network as CSI-Net, except that a
batch normalization is included at each layer" (:func:`build_beamforming_net`). Its raw output is
scaled to the power budget, ``W <- sqrt(P) W / ||W||_F`` (the paper does not say how its output meets
``sum_k ||w_k||^2 <= P``; this is the usual projection, and the sum rate is maximised on the sphere).

:class:`LearnedChannelBeamformer` holds the frozen CSI-Net and the trainable beamforming network;
``fit(x=uplink, y=downlink)`` with the loss ``-mean R_sum(h_D, W)`` on the TRUE downlink channels
(as :mod:`mimokd.train.hybrid` does by default). Layouts as :mod:`mimokd.zoo.beamforming`: uplink and
downlink float32 ``[batch, K, Nt, 2]``, ``W`` float32 ``[batch, Nt, K, 2]``.
"""

import keras
import tensorflow as tf
from keras import ops

from mimokd.train.distribute import require_tensorflow
from mimokd.zoo.beamforming import miso_sum_rate_tf


def build_beamforming_net(Nt, K, hidden=None, name="beamforming_net"):
    """Channel -> raw beamformers: the CSI-Net's FC ``tanh`` stack with BatchNorm after each hidden layer.

    Args:
        Nt, K: antennas, users. hidden: hidden widths, default four of ``4 K Nt`` (Sec. VII-A).

    Returns:
        ``keras.Model`` float32 ``[batch, K, Nt, 2] -> [batch, Nt, K, 2]`` (not yet power-normalised).
    """
    hidden = tuple(hidden) if hidden is not None else (4 * K * Nt,) * 4
    if not hidden or any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in hidden):
        raise ValueError(f"`hidden` must be a non-empty sequence of positive ints. Received: hidden={hidden!r}")
    inputs = keras.Input((K, Nt, 2), name="channels")
    x = keras.layers.Reshape((2 * K * Nt,), name="flatten")(inputs)
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, name=f"dense_{i + 1}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_{i + 1}")(x)
        x = keras.layers.Activation("tanh", name=f"tanh_{i + 1}")(x)
    x = keras.layers.Dense(2 * K * Nt, name="output")(x)
    outputs = keras.layers.Reshape((Nt, K, 2), name="beamformers")(x)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="mimokd")
class LearnedChannelBeamformer(keras.Model):
    """Frozen CSI-Net -> beamforming network -> ``sqrt(P) W / ||W||_F``, trained on ``-R_sum``.

    ``call(uplink)`` returns ``W`` float32 ``[batch, Nt, K, 2]`` with ``||W||_F^2 = P``.

    Args:
        csi_net: a trained CSI-Net (``[b, K, Nt, 2] -> [b, K, Nt, 2]``); it is frozen here.
        Nt, K: antennas, users. power, noise: ``P`` and ``sigma^2`` (linear).
        hidden: the beamforming network's hidden widths (default of :func:`build_beamforming_net`).
    """

    def __init__(self, csi_net, Nt, K, power, noise, *, hidden=None, name="learned_channel_beamformer", **kwargs):
        super().__init__(name=name, **kwargs)
        if not (power > 0 and noise > 0):
            raise ValueError(f"`power` and `noise` must be > 0. Received: power={power}, noise={noise}")
        self.Nt, self.K, self.power, self.noise = int(Nt), int(K), float(power), float(noise)
        if tuple(csi_net.output_shape[1:]) != (self.K, self.Nt, 2):
            raise ValueError(f"`csi_net` must output [batch, K={self.K}, Nt={self.Nt}, 2]. "
                             f"Received: output_shape={csi_net.output_shape}")
        self.hidden = None if hidden is None else tuple(hidden)
        self.csi_net = csi_net
        self.csi_net.trainable = False
        self.bf_net = build_beamforming_net(self.Nt, self.K, hidden=self.hidden)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.rate_tracker = keras.metrics.Mean(name="sum_rate")
        self.built = True

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, under the TensorFlow backend only (:data:`~mimokd.train.distribute.TENSORFLOW_ONLY`)."""
        require_tensorflow("zhang")
        return super().fit(*args, **kwargs)

    @property
    def metrics(self):
        return [self.loss_tracker, self.rate_tracker]

    def call(self, inputs, training=False):
        raw = self.bf_net(self.csi_net(inputs, training=False), training=training)
        norm = ops.sqrt(ops.sum(ops.square(raw), axis=(1, 2, 3), keepdims=True) + 1e-12)
        return raw * (self.power ** 0.5) / norm

    def _step_terms(self, data, training):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        rate = ops.mean(miso_sum_rate_tf(ops.cast(y, "float32"), self(x, training=training), self.noise))
        return -rate, rate

    def _update(self, loss, rate):
        self.loss_tracker.update_state(loss)
        self.rate_tracker.update_state(rate)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            loss, rate = self._step_terms(data, training=True)
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return self._update(loss, rate)

    def test_step(self, data):
        return self._update(*self._step_terms(data, training=False))

    def get_config(self):
        return {"name": self.name, "csi_net": keras.saving.serialize_keras_object(self.csi_net), "Nt": self.Nt,
                "K": self.K, "power": self.power, "noise": self.noise,
                "hidden": None if self.hidden is None else list(self.hidden)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["csi_net"] = keras.saving.deserialize_keras_object(config["csi_net"])
        return cls(**config)


__all__ = ["LearnedChannelBeamformer", "build_beamforming_net"]
