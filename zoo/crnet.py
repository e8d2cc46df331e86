"""CRNet and its variants: the original (Lu, Wang, Song, ICC 2020), the modified CRNet and the
CRNet-SE student of Cui et al. (Fig. 2), and BCRNet (Lu et al., Sec. III-C, Fig. 4).

One class, :class:`CRNet`; the variants are data (constructor arguments), registered as presets
in ``mimokd.zoo.registry``:

=============  ===================  ==============  =============  ======  =========
preset         encoder              encoder width   CRBlock width  ReZero  binarized
=============  ===================  ==============  =============  ======  =========
``crnet``      ``multires``         2               7              no      no
``bcrnet``     ``multires``         2               7              no      yes
``crnet_cui``  ``multires``         16              8              yes     no
``crnet_se``   ``single``           2               8              yes     no
=============  ===================  ==============  =============  ======  =========

Encoder (UE), ``multires``: branch 1 = ConvBN(3x3) -> LReLU -> ConvBN(1x9) -> LReLU -> ConvBN(9x1);
branch 2 = ConvBN(3x3); concat -> LReLU -> ConvBN(1x1, -> 2) -> LReLU -> flatten -> Dense(2HW/cr).
``single`` (CRNet-SE): ConvBN(3x3, 2 -> 2) -> LReLU -> flatten -> Dense(2HW/cr).
With ``binarized=True`` the encoder's dense kernel is ``sign(W) * mean|W|`` (BCRNet).

Decoder (BS): Dense(2HW) -> reshape -> ConvBN(5x5) -> LReLU -> CRBlock -> CRBlock -> sigmoid.
CRBlock: path 1 = ConvBN(3x3) -> LReLU -> ConvBN(1x9) -> LReLU -> ConvBN(9x1); path 2 =
ConvBN(1x5) -> LReLU -> ConvBN(5x1); concat -> LReLU -> 1x1 conv (-> 2) -> residual add -> LReLU.
The original uses ConvBN for the 1x1 conv and a plain residual add; Cui et al. end the block with a
bare 1x1 convolution (no BN / activation, "except for the last convolutional layers in CRBlock")
whose output enters the residual through a ReZero scalar.
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
from mimokd.zoo.layers import BinarizedDense, ReZero, conv_bn, leaky_relu

ENCODERS = ("multires", "single")


def _multires_encoder_features(x, width):
    """CRNet encoder feature extractor, ``[B, H, W, 2]`` -> ``[B, H, W, 2]``."""
    a = leaky_relu(conv_bn(x, width, (3, 3), "enc_b1_3x3"))
    a = leaky_relu(conv_bn(a, width, (1, 9), "enc_b1_1x9"))
    a = conv_bn(a, width, (9, 1), "enc_b1_9x1")
    b = conv_bn(x, width, (3, 3), "enc_b2_3x3")
    x = keras.layers.Concatenate(name="enc_concat")([a, b])
    x = leaky_relu(x)
    return leaky_relu(conv_bn(x, 2, (1, 1), "enc_merge"))


def _single_encoder_features(x, width):
    """CRNet-SE encoder feature extractor, ``[B, H, W, 2]`` -> ``[B, H, W, width]``."""
    return leaky_relu(conv_bn(x, width, (3, 3), "enc_head"))


def _crblock(x, width, rezero, name):
    """CRBlock, ``[B, H, W, 2]`` -> ``[B, H, W, 2]``."""
    a = leaky_relu(conv_bn(x, width, (3, 3), f"{name}_p1_3x3"))
    a = leaky_relu(conv_bn(a, width, (1, 9), f"{name}_p1_1x9"))
    a = conv_bn(a, width, (9, 1), f"{name}_p1_9x1")
    b = leaky_relu(conv_bn(x, width, (1, 5), f"{name}_p2_1x5"))
    b = conv_bn(b, width, (5, 1), f"{name}_p2_5x1")
    y = leaky_relu(keras.layers.Concatenate(name=f"{name}_concat")([a, b]))
    if rezero:
        y = keras.layers.Conv2D(2, (1, 1), name=f"{name}_merge_conv")(y)
        y = ReZero(name=f"{name}_rezero")([x, y])
    else:
        y = conv_bn(y, 2, (1, 1), f"{name}_merge")
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return leaky_relu(y, name=f"{name}_out")


@keras.saving.register_keras_serializable(package="mimokd")
class CRNet(CsiAutoencoder):
    """CRNet-family autoencoder (CRNet, BCRNet, Cui et al.'s CRNet and CRNet-SE).

    Args:
        cr: compression ratio 1/gamma (4, 8, 16, 32, 64).
        height: angular bins ``H`` of the CSI (32).
        width: delay taps ``W`` of the CSI (32).
        encoder: ``"multires"`` (CRNet's two-branch encoder) or ``"single"`` (CRNet-SE's one conv).
        encoder_width: channels of the encoder convolutions (2 original, 16 Cui et al.).
        crblock_width: channels inside each CRBlock (7 original, 8 Cui et al., 16 in their
            generalization experiments).
        rezero: end each CRBlock with a bare 1x1 conv and a ReZero residual (Cui et al.).
        binarized: binarize the encoder's dense kernel (BCRNet).

    Input: CSI float32 ``[batch, 2, H, W]`` in [0, 1]; output: the same shape and range.

    Examples:
        >>> model = CRNet(cr=4)                       # the original CRNet at 1/4
        >>> student = CRNet(cr=4, binarized=True)     # BCRNet
        >>> codeword = student.encoder(csi)           # [batch, 512]
    """

    def __init__(
        self,
        *,
        cr=4,
        height=32,
        width=32,
        encoder="multires",
        encoder_width=2,
        crblock_width=7,
        rezero=False,
        binarized=False,
        **kwargs,
    ):
        dim = validate_geometry(cr, height, width)
        if encoder not in ENCODERS:
            raise ValueError(f"`encoder` must be one of {ENCODERS}. Received: encoder={encoder!r}")
        for key, value in (("encoder_width", encoder_width), ("crblock_width", crblock_width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{key}` must be a positive integer. Received: {key}={value!r}")

        inputs, x = csi_input(height, width, "csi")
        features = _multires_encoder_features if encoder == "multires" else _single_encoder_features
        x = flatten_channels_first(features(x, encoder_width), "enc")
        dense = BinarizedDense if binarized else keras.layers.Dense
        codeword = dense(dim, name="enc_dense")(x)
        encoder_model = keras.Model(inputs, codeword, name="encoder")

        code_in = keras.Input((dim,), name="codeword")
        y = keras.layers.Dense(2 * height * width, name="dec_dense")(code_in)
        y = unflatten_channels_last(y, height, width, "dec")
        y = leaky_relu(conv_bn(y, 2, (5, 5), "dec_head"))
        y = _crblock(y, crblock_width, rezero, "crblock1")
        y = _crblock(y, crblock_width, rezero, "crblock2")
        decoder_model = keras.Model(code_in, sigmoid_output(y, "dec"), name="decoder")

        super().__init__(
            encoder=encoder_model,
            decoder=decoder_model,
            cr=cr,
            height=height,
            width=width,
            **kwargs,
        )
        self.encoder_type = encoder
        self.encoder_width = encoder_width
        self.crblock_width = crblock_width
        self.rezero = rezero
        self.binarized = binarized

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=self.encoder_type,
            encoder_width=self.encoder_width,
            crblock_width=self.crblock_width,
            rezero=self.rezero,
            binarized=self.binarized,
        )
        return config
