"""The artifact formats a deployable part is exported to, and how each is written.

Every format goes through Keras 3's own ``model.export``: ``tf_saved_model`` (through
``keras.export.ExportArchive``, for named signatures), ``onnx`` (Keras calls tf2onnx) and
``litert`` (Keras calls the TFLite converter; the converter options below select the precision).

| format         | runtime      | weights | activations | calibration |
|----------------|--------------|---------|-------------|-------------|
| ``savedmodel`` | TensorFlow   | float32 | float32     | no          |
| ``onnx``       | onnxruntime  | float32 | float32     | no          |
| ``tflite-f32`` | LiteRT       | float32 | float32     | no          |
| ``tflite-f16`` | LiteRT       | float16 | float32     | no          |
| ``tflite-int8w``| LiteRT      | int8    | float32 (dynamic-range: activations quantized per call) | no |
| ``tflite-int8``| LiteRT       | int8    | int8 (full-integer, calibrated) | yes |
| ``tflite-int16x8``| LiteRT    | int8    | int16 (integer-only, calibrated; TFLite's 16x8 mode) | yes |

All artifacts take and return float32 in the part's public layout (``[batch, 2, H, W]`` CSI,
``[batch, D]`` codewords); the int8 model quantizes its input and dequantizes its output inside
the graph, so the caller's code does not change with the precision. The batch axis is dynamic in
every format. The TFLite models are limited to LiteRT's builtin operators (no TensorFlow "flex"
ops), so they run on the plain LiteRT interpreter of a device. A part with several inputs (Kong et
al.'s transmitter: ``feedback``, ``power_db``) keeps them as named inputs in every format.

Measured on this project's CPU (README, "Export"): full-integer int8 keeps the UE encoders within
about a dB but costs the BS decoders several dB (their small residual signals around the sigmoid
do not survive 8-bit activations), and the 16x8 mode brings the decoder back within 0.2 dB at the
price of XNNPACK acceleration. :data:`PART_FORMATS` therefore leaves ``tflite-int8`` out of a
decoder's defaults; asking for it anyway runs the parity check, which then fails loudly. The same
rule sets the defaults of Kong et al.'s and Zhang et al.'s networks (:mod:`mimokd.export.systems`),
from what was measured on them (README, "Export"): a receiver's bits must be exact, and full-integer
int8 flipped 6 of 24,000 bits of a paper-size receiver (float16 and int8 weights flipped none), so
``tflite-int8`` is left out of its defaults; the TFLite converter has no 16x8 kernel for the
receiver's sign (``GREATER_EQUAL``) nor for the transmitter's column norm (``SQUARE``), so
``tflite-int16x8`` is left out of both; Zhang et al.'s beamformer (its recovery solves a complex
``Nt x Nt`` system) converts to SavedModel only.
"""

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Endpoint:
    """What a deployable part is called inside its artifacts.

    Attributes:
        signature: SavedModel serving signature (also registered as ``serving_default``).
        input_name: name of the input tensor (SavedModel, ONNX, the TFLite signature).
        output_name: name of the output tensor (SavedModel signature output key).
        extra_inputs: names of further inputs, in the model's input order (Kong et al.'s
            transmitter: ``("power_db",)``); such a part's inputs are a list of arrays.
    """

    signature: str
    input_name: str
    output_name: str
    extra_inputs: tuple = ()

    @property
    def input_names(self):
        """Every input's name, in the model's input order."""
        return (self.input_name, *self.extra_inputs)


@dataclass(frozen=True)
class ArtifactFormat:
    """One export format and the parity it must keep with the Keras model.

    Attributes:
        name: the format's name on the command line.
        suffix: appended to the part's name to form the artifact's file (or folder) name.
        runtime: ``"tensorflow"``, ``"onnxruntime"`` or ``"litert"``.
        rtol: the largest allowed ``max|artifact - keras|`` as a fraction of ``max|keras|`` on the
            check batch.
        max_nmse_loss_db: the largest allowed rise of the autoencoder's NMSE (dB) when this
            artifact replaces the Keras part.
        calibrated: needs representative inputs (full-integer quantization).
    """

    name: str
    suffix: str
    runtime: str
    rtol: float
    max_nmse_loss_db: float
    calibrated: bool = False


FORMATS = {
    f.name: f
    for f in (
        ArtifactFormat("savedmodel", ".savedmodel", "tensorflow", rtol=1e-4, max_nmse_loss_db=0.01),
        ArtifactFormat("onnx", ".onnx", "onnxruntime", rtol=1e-4, max_nmse_loss_db=0.01),
        ArtifactFormat("tflite-f32", ".f32.tflite", "litert", rtol=1e-4, max_nmse_loss_db=0.01),
        ArtifactFormat("tflite-f16", ".f16.tflite", "litert", rtol=2e-2, max_nmse_loss_db=0.1),
        ArtifactFormat("tflite-int8w", ".int8w.tflite", "litert", rtol=0.1, max_nmse_loss_db=1.0),
        ArtifactFormat("tflite-int8", ".int8.tflite", "litert", rtol=0.2, max_nmse_loss_db=1.0, calibrated=True),
        # int8 weights like tflite-int8, so the same worst-case output tolerance: a CPU-trained
        # crnet_se encoder (the main job's distilled student) reached 0.106 of max|output| in 16x8
        # mode with 0.06 dB of NMSE lost; the NMSE check stays the meaningful bound.
        ArtifactFormat("tflite-int16x8", ".int16x8.tflite", "litert", rtol=0.2, max_nmse_loss_db=1.0,
                       calibrated=True),
    )
}

PART_FORMATS = {
    "encoder": tuple(FORMATS),
    "decoder": tuple(name for name in FORMATS if name != "tflite-int8"),
    "receiver": tuple(name for name in FORMATS if name not in ("tflite-int8", "tflite-int16x8")),
    "transmitter": tuple(name for name in FORMATS if name != "tflite-int16x8"),
    "csi_net": tuple(FORMATS),
    "power_net": tuple(FORMATS),
    "beamformer": ("savedmodel",),
}
"""The default formats of each kind of deployable part (see the module docstring)."""


def get_format(name):
    """The :class:`ArtifactFormat` called ``name``, or a ValueError listing the known ones."""
    if name not in FORMATS:
        raise ValueError(f"Unknown export format. Expected one of {list(FORMATS)}. Received: {name!r}")
    return FORMATS[name]


def input_specs(model, endpoint):
    """``tf.TensorSpec`` of each of the model's inputs with a dynamic batch axis, named by ``endpoint``
    (a list, in the model's input order)."""
    import tensorflow as tf

    return [tf.TensorSpec((None, *tensor.shape[1:]), tf.float32, name=name)
            for tensor, name in zip(model.inputs, endpoint.input_names, strict=True)]


def as_inputs(inputs):
    """A part's inputs as a list of float32 arrays ``[N, ...]``: one array, or a list / tuple of them."""
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return [np.asarray(x, dtype=np.float32) for x in inputs]


def _representative(calibration, endpoint):
    """The TFLite converter's calibration generator: one sample at a time, as float32, fed by input
    name (LiteRT orders a model's inputs by name, not as the model does)."""
    if calibration is None or len(as_inputs(calibration)[0]) == 0:
        raise ValueError(
            "Full-integer quantization needs representative inputs to calibrate the activation "
            "ranges: pass `calibration`, float32 [N, ...] in the part's input layout (a few hundred "
            "samples of the dataset)."
        )
    data = as_inputs(calibration)

    def generate():
        for i in range(len(data[0])):
            yield {name: x[i : i + 1] for name, x in zip(endpoint.input_names, data)}

    return generate


def _litert_options(name, calibration, endpoint):
    """Converter options of each TFLite format (see the table in the module docstring)."""
    import tensorflow as tf

    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if name == "tflite-f32":
        return {"target_spec": {"supported_ops": builtins}}
    if name == "tflite-f16":
        return {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_ops": builtins, "supported_types": [tf.float16]},
        }
    if name == "tflite-int8w":
        return {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_ops": builtins}}
    integer_ops = {
        "tflite-int8": tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        "tflite-int16x8": tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
    }
    return {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "representative_dataset": _representative(calibration, endpoint),
        "target_spec": {"supported_ops": [integer_ops[name]]},
    }


# Warnings the converters raise that no user of mimokd can act on, kept off the console: TensorFlow's
# int8 / int16x8 calibration runs the deprecated tf.lite.Interpreter internally (our checks load the
# artifacts in ai_edge_litert), and the tf2onnx that Keras bundles probes numpy's removed `np.object`.
CONVERTER_NOISE = (
    (r"\s*Warning: tf\.lite\.Interpreter is deprecated", UserWarning),
    (r"In the future `np\.object` will be defined", FutureWarning),
)


@contextlib.contextmanager
def quiet_converters():
    """Ignore :data:`CONVERTER_NOISE` inside the block; every other warning passes as before."""
    with warnings.catch_warnings():
        for message, category in CONVERTER_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def write_artifact(model, fmt, path, endpoint, calibration=None):
    """Export ``model`` to ``path`` in format ``fmt`` (written to a temporary path, then moved).

    Args:
        model: a functional ``keras.Model`` (e.g. ``autoencoder.encoder``), with the inputs that
            ``endpoint`` names.
        fmt: an :class:`ArtifactFormat` or its name.
        path: the artifact's file (a folder for ``savedmodel``); replaced only once complete.
        endpoint: the :class:`Endpoint` naming the signature and tensors.
        calibration: float32 ``[N, ...]`` representative inputs (a list of arrays for several
            inputs), for the calibrated formats.

    Returns:
        ``pathlib.Path`` of the artifact.
    """
    from pathlib import Path

    import keras

    from mimokd.fileio import atomic_dir, atomic_path

    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    specs = input_specs(model, endpoint)
    path = Path(path)
    if fmt.name == "savedmodel":
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            endpoint.signature,
            lambda *x: {endpoint.output_name: model(list(x) if len(x) > 1 else x[0], training=False)},
            input_signature=specs,
        )
        with atomic_dir(path) as tmp:
            archive.write_out(str(tmp), verbose=False)
        return path
    signature = specs if len(specs) == 1 else [specs]  # a multi-input model takes its inputs as one list
    with atomic_path(path) as tmp, quiet_converters():
        if fmt.name == "onnx":
            model.export(str(tmp), format="onnx", input_signature=signature, verbose=False)
        else:
            options = _litert_options(fmt.name, calibration, endpoint)
            model.export(str(tmp), format="litert", input_signature=signature, verbose=False, **options)
    return path
