"""CsiNet (Wen, Shih, Jin, IEEE WCL 2018), the field's first CSI-feedback autoencoder.

Encoder (UE): Conv2D(2, 3x3, same) -> BN -> LeakyReLU(0.3) -> flatten -> Dense(2HW/cr, linear).
Decoder (BS): Dense(2HW, linear) -> reshape [2, H, W] -> 2 x RefineNet -> Conv2D(2, 3x3) -> sigmoid.
RefineNet: conv 8 -> BN -> LReLU -> conv 16 -> BN -> LReLU -> conv 2 -> BN -> add input -> LReLU
(all 3x3, with bias, as in the authors' Keras code).

BatchNorm comes in two forms (``batchnorm=``):

- ``"channels"`` (default): one statistic per channel (2 / 8 / 16), PyTorch's epsilon 1e-5, as
  every other zoo model (:func:`mimokd.zoo.layers.conv_bn`).
- ``"columns"``: the authors' published Keras 2 code (preset ``csinet_authors``). Their
  ``BatchNormalization()`` layers keep Keras' default ``axis=-1`` on ``channels_first`` tensors
  ``[B, C, H, W]``, so they normalize the LAST axis: one statistic per delay column ``w`` (``W``
  = 32 of them per layer, whatever the channel count), with Keras' epsilon 1e-3. Here the
  tensors are channels-last ``[B, H, W, C]``, so that axis is 2. This is what
  :func:`mimokd.pretrained.importers.import_csinet_keras` builds to run the authors' weights
  exactly. The moving-average momentum stays the zoo's 0.9 (training only; theirs was 0.99).
"""

import keras

from mimokd.zoo.autoencoder import (
    CsiAutoencoder,
    csi_input,
    flatten_channels_first,
    sigmoid_output,
    unflatten_channels_last,
    validate_geometry,
)
from mimokd.zoo.layers import conv_bn, leaky_relu

BATCHNORMS = ("channels", "columns")
COLUMNS_AXIS = 2  # the delay (W) axis of a channels-last [B, H, W, C] tensor
COLUMNS_EPSILON = 1e-3  # Keras' default, which the authors' BatchNormalization layers kept


def _conv_bn(x, filters, name, batchnorm):
    """3x3 Conv2D with bias + BatchNorm of the chosen form, ``[B, H, W, C_in]`` -> ``[B, H, W, filters]``.

    The layers are named ``{name}_conv`` and ``{name}_bn`` in both forms.
    """
    if batchnorm == "channels":
        return conv_bn(x, filters, (3, 3), name, use_bias=True)
    x = keras.layers.Conv2D(
        filters, (3, 3), padding="same", kernel_initializer="glorot_uniform", name=f"{name}_conv"
    )(x)
    return keras.layers.BatchNormalization(
        axis=COLUMNS_AXIS, momentum=0.9, epsilon=COLUMNS_EPSILON, name=f"{name}_bn"
    )(x)


def _refinenet(x, name, batchnorm):
    """RefineNet block, ``[B, H, W, 2]`` -> ``[B, H, W, 2]``."""
    y = x
    for i, filters in enumerate((8, 16)):
        y = leaky_relu(_conv_bn(y, filters, f"{name}_{i}", batchnorm))
    y = _conv_bn(y, 2, f"{name}_2", batchnorm)
    y = keras.layers.Add(name=f"{name}_add")([x, y])
    return leaky_relu(y, name=f"{name}_out")


@keras.saving.register_keras_serializable(package="mimokd")
class CsiNet(CsiAutoencoder):
    """CsiNet autoencoder.

    Args:
        cr: compression ratio 1/gamma (4, 8, 16, 32, 64 in the paper).
        height: angular bins ``H`` of the CSI (32).
        width: delay taps ``W`` of the CSI (32).
        batchnorm: ``"channels"`` (default: per-channel statistics, epsilon 1e-5) or
            ``"columns"`` (the authors' published Keras code: per delay column, i.e. ``W``
            statistics of shape ``[W]`` per layer, epsilon 1e-3; see the module docstring).

    Input: CSI float32 ``[batch, 2, H, W]`` in [0, 1]; output: the same shape and range.

    Examples:
        >>> model = CsiNet(cr=4)
        >>> codeword = model.encoder(csi)      # [batch, 512]
        >>> csi_hat = model.decoder(codeword)  # [batch, 2, 32, 32]
        >>> authors = CsiNet(cr=16, batchnorm="columns")   # runs the authors' published weights
    """

    def __init__(self, *, cr=4, height=32, width=32, batchnorm="channels", **kwargs):
        dim = validate_geometry(cr, height, width)
        if batchnorm not in BATCHNORMS:
            raise ValueError(f"`batchnorm` must be one of {BATCHNORMS}. Received: batchnorm={batchnorm!r}")
        inputs, x = csi_input(height, width, "csi")
        x = leaky_relu(_conv_bn(x, 2, "enc_head", batchnorm))
        x = flatten_channels_first(x, "enc")
        codeword = keras.layers.Dense(dim, name="enc_dense")(x)
        encoder = keras.Model(inputs, codeword, name="encoder")

        code_in = keras.Input((dim,), name="codeword")
        y = keras.layers.Dense(2 * height * width, name="dec_dense")(code_in)
        y = unflatten_channels_last(y, height, width, "dec")
        y = _refinenet(y, "refine1", batchnorm)
        y = _refinenet(y, "refine2", batchnorm)
        y = keras.layers.Conv2D(2, (3, 3), padding="same", name="dec_tail_conv")(y)
        decoder = keras.Model(code_in, sigmoid_output(y, "dec"), name="decoder")

        super().__init__(
            encoder=encoder, decoder=decoder, cr=cr, height=height, width=width, **kwargs
        )
        self.batchnorm = batchnorm

    def get_config(self):
        config = super().get_config()
        config.update(batchnorm=self.batchnorm)
        return config
