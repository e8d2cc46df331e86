"""CsiNet (Wen, Shih, Jin, IEEE WCL 2018), the field's first CSI-feedback autoencoder.

Encoder (UE): Conv2D(2, 3x3, same) -> BN -> LeakyReLU(0.3) -> flatten -> Dense(2HW/cr, linear).
Decoder (BS): Dense(2HW, linear) -> reshape [2, H, W] -> 2 x RefineNet -> Conv2D(2, 3x3) -> sigmoid.
RefineNet: conv 8 -> BN -> LReLU -> conv 16 -> BN -> LReLU -> conv 2 -> BN -> add input -> LReLU
(all 3x3, with bias, as in the authors' Keras code).
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


def _refinenet(x, name):
    """RefineNet block, ``[B, H, W, 2]`` -> ``[B, H, W, 2]``."""
    y = x
    for i, filters in enumerate((8, 16)):
        y = leaky_relu(conv_bn(y, filters, (3, 3), f"{name}_{i}", use_bias=True))
    y = conv_bn(y, 2, (3, 3), f"{name}_2", use_bias=True)
    y = keras.layers.Add(name=f"{name}_add")([x, y])
    return leaky_relu(y, name=f"{name}_out")


@keras.saving.register_keras_serializable(package="mimokd")
class CsiNet(CsiAutoencoder):
    """CsiNet autoencoder.

    Args:
        cr: compression ratio 1/gamma (4, 8, 16, 32, 64 in the paper).
        height: angular bins ``H`` of the CSI (32).
        width: delay taps ``W`` of the CSI (32).

    Input: CSI float32 ``[batch, 2, H, W]`` in [0, 1]; output: the same shape and range.

    Examples:
        >>> model = CsiNet(cr=4)
        >>> codeword = model.encoder(csi)      # [batch, 512]
        >>> csi_hat = model.decoder(codeword)  # [batch, 2, 32, 32]
    """

    def __init__(self, *, cr=4, height=32, width=32, **kwargs):
        dim = validate_geometry(cr, height, width)
        inputs, x = csi_input(height, width, "csi")
        x = leaky_relu(conv_bn(x, 2, (3, 3), "enc_head", use_bias=True))
        x = flatten_channels_first(x, "enc")
        codeword = keras.layers.Dense(dim, name="enc_dense")(x)
        encoder = keras.Model(inputs, codeword, name="encoder")

        code_in = keras.Input((dim,), name="codeword")
        y = keras.layers.Dense(2 * height * width, name="dec_dense")(code_in)
        y = unflatten_channels_last(y, height, width, "dec")
        y = _refinenet(y, "refine1")
        y = _refinenet(y, "refine2")
        y = keras.layers.Conv2D(2, (3, 3), padding="same", name="dec_tail_conv")(y)
        decoder = keras.Model(code_in, sigmoid_output(y, "dec"), name="decoder")

        super().__init__(
            encoder=encoder, decoder=decoder, cr=cr, height=height, width=width, **kwargs
        )
