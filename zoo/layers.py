"""Small serializable layers shared by the model families.

- :func:`ste_sign`: sign with the straight-through estimator (gradient 1 where |x| <= 1, else 0).
- :class:`BinarizedDense`: dense layer whose kernel is binarized to ``sign(W) * mean|W|``
  (BCRNet, Lu et al. Sec. III-C and Fig. 4; the binarization of Lu, Wang, Song 2021).
- :class:`ReZero`: residual ``x + a * f(x)`` with one trainable scalar ``a`` initialised at 0
  (the ReZero module of each CRBlock in Cui et al. Sec. III-B-1).
- :func:`conv_bn`: Conv2D (no bias, "same" padding) + BatchNorm, the "ConvBN" of CRNet.

All convolutions run channels-last ``[batch, H, W, C]``: TensorFlow's CPU kernels do not support
channels-first convolutions, so the models transpose the public ``[batch, 2, H, W]`` layout once
at the input and once at the output.
"""

import keras
from keras import ops

LEAKY_SLOPE = 0.3  # every LeakyReLU of CsiNet / CRNet uses slope 0.3


def ste_sign(x):
    """Sign in {-1, +1} with a straight-through gradient.

    Forward: ``+1`` where ``x >= 0``, ``-1`` elsewhere (zero maps to +1 so that a binarized
    weight is never 0). Backward: the gradient of ``clip(x, -1, 1)``, i.e. 1 where ``|x| <= 1``
    and 0 elsewhere (the usual masked straight-through estimator).

    Args:
        x: float tensor (or Keras variable) of any shape.

    Returns:
        float tensor of the same shape and dtype, values in {-1, +1}.
    """
    # a Keras Variable is not an array to every backend's ``ones_like`` (JAX refuses it)
    x = ops.convert_to_tensor(x)
    clipped = ops.clip(x, -1.0, 1.0)
    hard = ops.where(x >= 0, ops.ones_like(x), -ops.ones_like(x))
    return clipped + ops.stop_gradient(hard - clipped)


@keras.saving.register_keras_serializable(package="mimokd")
class BinarizedDense(keras.layers.Dense):
    """Dense layer with a binarized kernel: ``y = x @ (sign(W) * alpha) + b``, ``alpha = mean|W|``.

    The real-valued kernel ``W`` is kept as the trainable latent weight; the forward pass uses
    its binarization with one scalar ``alpha`` per layer, and gradients reach ``W`` through
    :func:`ste_sign` (masked to ``|W| <= 1``) and through ``alpha``. The bias stays real and the
    activations are not binarized (Lu et al., BCRNet).

    Input: float32 ``[batch, units_in]``; output: float32 ``[batch, units]``.
    """

    def binarized_kernel(self):
        """The kernel used in the forward pass, float32 ``[units_in, units]``, values ``±mean|W|``."""
        kernel = self.kernel
        alpha = ops.mean(ops.abs(kernel))
        return alpha * ste_sign(kernel)

    def call(self, inputs):
        outputs = ops.matmul(inputs, self.binarized_kernel())
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package="mimokd")
class ReZero(keras.layers.Layer):
    """ReZero residual: ``inputs + a * residual`` with a trainable scalar ``a`` (init 0).

    Called on a list ``[inputs, residual]`` of two tensors of the same shape; returns that shape.
    """

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="zeros")

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + self.scale * residual

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def conv_bn(x, filters, kernel_size, name, use_bias=False):
    """ConvBN: Conv2D ("same" padding, Xavier-uniform kernel) followed by BatchNorm.

    BatchNorm takes PyTorch's defaults (momentum 0.1 there, i.e. 0.9 in Keras; epsilon 1e-5), which
    the reference implementations trained with: Keras' 0.99 makes the moving statistics lag for
    hundreds of steps, so short runs would validate on stale statistics.

    Args:
        x: float32 ``[batch, H, W, C_in]`` (channels last).
        filters: ``C_out``.
        kernel_size: ``(K_H, K_W)``.
        name: prefix of the two layers' names.
        use_bias: whether the convolution has a bias (CRNet's ConvBN has none).

    Returns:
        float32 ``[batch, H, W, C_out]``.
    """
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=use_bias,
        kernel_initializer="glorot_uniform",
        name=f"{name}_conv",
    )(x)
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn")(x)


def leaky_relu(x, name=None):
    """LeakyReLU with the slope 0.3 of CsiNet and CRNet."""
    return keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name)(x)
