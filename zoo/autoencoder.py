"""The CSI-feedback autoencoder: a UE encoder and a BS decoder joined into one Keras model.

Tensor layouts (the same everywhere in mimokd, see ``mimokd.channels.layout``):

- CSI: float32 ``[batch, 2, H, W]`` = real / imaginary plane of the ``H x W`` angular-delay matrix
  (``H`` angular bins = BS antennas, ``W`` delay taps, the last axis), values in ``[0, 1]`` with 0.5
  meaning zero. ``H = W = 32`` for the COST2100 data.
- Codeword: float32 ``[batch, 2 * H * W // cr]``, the encoder's output (what the UE feeds back).

The compression ratio of the papers is ``gamma = 1 / cr`` (eq. 6 of Cui et al.,
``eta = M / (2 N_c N_t)`` in Lu et al.).
"""

import keras

CHANNELS_FIRST_TO_LAST = (2, 3, 1)  # keras.layers.Permute: [B, 2, H, W] -> [B, H, W, 2]
CHANNELS_LAST_TO_FIRST = (3, 1, 2)  # keras.layers.Permute: [B, H, W, 2] -> [B, 2, H, W]


def validate_geometry(cr, height, width):
    """Check the compression ratio and CSI size, returning the codeword length ``2*H*W // cr``."""
    for key, value in (("cr", cr), ("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{key}` must be a positive integer. Received: {key}={value!r}")
    size = 2 * height * width
    if size % cr:
        raise ValueError(
            f"The CSI size 2*height*width={size} must be divisible by the compression ratio "
            f"`cr` (the codeword length is 2*height*width/cr). Received: cr={cr}, "
            f"height={height}, width={width}"
        )
    return size // cr


def flatten_channels_first(x, name):
    """``[B, H, W, C]`` -> ``[B, C*H*W]`` in channels-first order (the reference's flatten order)."""
    x = keras.layers.Permute(CHANNELS_LAST_TO_FIRST, name=f"{name}_to_nchw")(x)
    return keras.layers.Flatten(name=f"{name}_flatten")(x)


def unflatten_channels_last(x, height, width, name):
    """``[B, 2*H*W]`` (channels-first order) -> ``[B, H, W, 2]``."""
    x = keras.layers.Reshape((2, height, width), name=f"{name}_reshape")(x)
    return keras.layers.Permute(CHANNELS_FIRST_TO_LAST, name=f"{name}_to_nhwc")(x)


class CsiAutoencoder(keras.Model):
    """Base class of the CSI-feedback autoencoders: ``decoder(encoder(csi))``.

    A family subclass builds its ``encoder`` (``keras.Model``: CSI ``[batch, 2, H, W]`` -> codeword
    ``[batch, 2HW/cr]``) and ``decoder`` (codeword -> CSI) and passes them here. The autoencoder
    shares their weights, so training it trains both, and ``model.encoder`` / ``model.decoder``
    can be exported or used by KD trainers (the codeword is ``model.encoder(csi)``).

    Subclasses store their constructor arguments and return them from ``get_config``; the base
    ``from_config`` calls the constructor, so ``.keras`` files round-trip.
    """

    def __init__(self, *, encoder, decoder, cr, height, width, **kwargs):
        inputs = keras.Input((2, height, width), name="csi")
        outputs = decoder(encoder(inputs))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.cr = cr
        self.height = height
        self.width = width

    @property
    def codeword_dim(self):
        """Length of the codeword fed back by the UE, ``2 * H * W // cr``."""
        return 2 * self.height * self.width // self.cr

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "cr": self.cr,
            "height": self.height,
            "width": self.width,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="mimokd")
class ComposedAutoencoder(CsiAutoencoder):
    """An autoencoder joined from an encoder and a decoder of any origin.

    What encoder KD fine-tunes (a student's encoder on the teacher's decoder, Cui et al. Fig. 4,
    step 3) and what the two-party variant deploys (the UE's encoder, the BS's decoder). Unlike a
    family class, its config holds the two sub-models, so ``.keras`` files round-trip.

    Args:
        encoder: ``keras.Model``, CSI ``[batch, 2, H, W]`` -> codeword ``[batch, D]``.
        decoder: ``keras.Model``, codeword ``[batch, D]`` -> CSI ``[batch, 2, H, W]``.
    """

    def __init__(self, *, encoder, decoder, name="composed", **kwargs):
        if isinstance(encoder, dict):  # from_config
            encoder = keras.saving.deserialize_keras_object(encoder)
            decoder = keras.saving.deserialize_keras_object(decoder)
        _, two, height, width = encoder.input_shape
        dim = encoder.output_shape[-1]
        if two != 2 or decoder.input_shape[-1] != dim or tuple(decoder.output_shape[1:]) != (2, height, width):
            raise ValueError(
                "The encoder must map CSI [batch, 2, H, W] to a codeword [batch, D] and the decoder "
                f"that codeword back to [batch, 2, H, W]. Received: encoder {encoder.input_shape} -> "
                f"{encoder.output_shape}, decoder {decoder.input_shape} -> {decoder.output_shape}"
            )
        super().__init__(
            encoder=encoder, decoder=decoder, cr=2 * height * width // dim,
            height=height, width=width, name=name, **kwargs,
        )

    @classmethod
    def from_parts(cls, encoder, decoder, name="composed"):
        """Join copies of ``encoder`` and ``decoder`` (training the result leaves the originals)."""
        return cls(encoder=copy_model(encoder), decoder=copy_model(decoder), name=name)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
        }


def check_teacher(teacher, origin=None):
    """Refuse a teacher that is not a zoo autoencoder, saying what was given and what is expected.

    The KD trainers use a teacher's ``.encoder`` (codewords) and ``.decoder`` and its ``cr``, which
    only a :class:`CsiAutoencoder` has; a plain Keras model of the same shapes would fail later
    with an ``AttributeError``.

    Args:
        teacher: the model given as a teacher.
        origin: where it came from (a checkpoint path), named in the message.

    Raises:
        ValueError: ``teacher`` is not a :class:`CsiAutoencoder`.
    """
    if isinstance(teacher, CsiAutoencoder):
        return
    given = f"{type(teacher).__module__}.{type(teacher).__qualname__}"
    if isinstance(teacher, keras.Model):
        given += f" {teacher.name!r} {teacher.input_shape} -> {teacher.output_shape}"
    raise ValueError(
        f"The teacher{f' {origin}' if origin else ''} is not a zoo autoencoder: it is a {given}. Expected a "
        "mimokd.zoo.CsiAutoencoder with .encoder and .decoder (create_model(...), or a best.keras of "
        "`mimokd train` / `mimokd distill`)")


def copy_model(model):
    """A copy of a functional model with its weights (``clone_model`` re-initializes them)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    # a frozen teacher's part is cloned frozen otherwise (setting the model's flag alone leaves
    # the cloned layers' own flags)
    clone.trainable = True
    for layer in clone.layers:
        layer.trainable = True
    return clone


def sigmoid_output(x, name):
    """Decoder head: sigmoid, then back to the public ``[B, 2, H, W]`` layout."""
    x = keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(x)
    return keras.layers.Permute(CHANNELS_LAST_TO_FIRST, name=f"{name}_to_nchw")(x)


def csi_input(height, width, name):
    """The encoder's input in the public layout and its channels-last view."""
    inputs = keras.Input((2, height, width), name=name)
    return inputs, keras.layers.Permute(CHANNELS_FIRST_TO_LAST, name="to_nhwc")(inputs)


__all__ = [
    "ComposedAutoencoder",
    "CsiAutoencoder",
    "copy_model",
    "csi_input",
    "flatten_channels_first",
    "sigmoid_output",
    "unflatten_channels_last",
    "validate_geometry",
]
