"""Pruning and quantization-aware training of the UE encoder with tfmot, through a Keras 2 bridge.

Why a bridge: the TensorFlow Model Optimization Toolkit (``tensorflow_model_optimization``,
"tfmot": magnitude pruning, quantization-aware training) wraps and clones *Keras 2* layers only,
while the mimokd zoo is Keras 3. Keras 3's own ``model.quantize("int8")`` is post-training
weight quantization: no pruning and no quantization-aware training. So this module

1. rebuilds a Keras 3 functional model in ``tf_keras`` (Keras 2) layer by layer
   (:func:`to_tf_keras`): it walks the functional config in topological order, translates each
   layer's config where the two Keras versions differ (dtype-policy objects -> policy names,
   Keras 3 serialized objects -> Keras 2 ``{"class_name", "config"}`` dicts, LeakyReLU
   ``negative_slope`` -> ``alpha``, options set to ``None`` dropped: that is their default in
   both versions or an unused Keras-3-only option such as Dense's ``quantization_config``), calls
   the layer on the rebuilt tensors and copies the weights (BatchNorm moving statistics included);
2. lets tfmot prune / quantize and fine-tune the ``tf_keras`` twin;
3. copies the weights back into a Keras 3 model of the same graph (:func:`from_tf_keras`), so a
   pruned encoder is a plain zoo encoder again (``model.export``, ``.keras`` files), or converts
   the quantization-aware model to an int8 TFLite flatbuffer.

Fine-tuning is self-distillation with the codeword-mimic loss: the MSE between the compressed
encoder's codeword and the original float encoder's codeword on the training CSI. The BS decoder
expects the original codewords, so it needs no change. BatchNorm layers are frozen during the
fine-tune (inference mode, moving statistics kept): the batches are small and the aim is to adapt
the weights to the mask / the quantization grid, not to re-estimate the statistics.

How tfmot picks its Keras (``tensorflow_model_optimization/python/core/keras/compat.py``): at import
it sets ``os.environ["TF_USE_LEGACY_KERAS"] = "1"`` for the whole process and then reads
``tf.keras.version()``; if ``tf.keras`` is Keras 3 it uses ``import tf_keras``, otherwise
``tf.keras``. TensorFlow resolves its lazy ``tf.keras`` attribute on first use, from that same
environment variable: had ``tf.keras`` not been used before tfmot's import, it would become
``tf_keras`` for the rest of the process. :func:`_import_tfmot` therefore resolves ``tf.keras``
first (to Keras 3, as in the rest of the process), imports tfmot (which then takes ``tf_keras``),
and restores ``TF_USE_LEGACY_KERAS`` to its previous value, so ``import keras`` and ``tf.keras``
stay Keras 3 and subprocesses do not inherit the flag. tfmot keeps its own reference to
``tf_keras`` and does not read the variable again.

tfmot and ``tf_keras`` are the optional ``compress`` extra (``pip install "mimokd[compress]"``):
they pin ``absl-py`` and tie each TensorFlow minor version to a ``tf_keras`` release, so the rest of
mimokd does not depend on them. Without them, importing this module raises an ``ImportError`` that
names the missing package and the pip command.

Supported layer classes (exact classes, no subclasses): those of :data:`SUPPORTED_LAYERS`.
``BinarizedDense`` (BCRNet) is refused: see :func:`to_tf_keras`.

Examples:
    >>> model = create_model("crnet_se", cr=4)           # trained
    >>> pruned = prune_encoder(model.encoder, train_csi, sparsity=0.5)
    >>> pruned.encoder.export("encoder_pruned")          # Keras 3 SavedModel
    >>> qat = quantization_aware_encoder(model.encoder, train_csi)
    >>> open("encoder_int8.tflite", "wb").write(qat.tflite)
"""

import logging
import math
import os
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from mimokd.zoo.autoencoder import copy_model
from mimokd.zoo.layers import BinarizedDense, ReZero

logger = logging.getLogger(__name__)


#: The ``compress`` extra: import name -> PyPI package (``pip install "mimokd[compress]"`` installs both).
COMPRESS_PACKAGES = {"tensorflow_model_optimization": "tensorflow-model-optimization", "tf_keras": "tf_keras"}


def _import_tfmot():
    """Import tfmot bound to ``tf_keras`` while keeping ``tf.keras`` on Keras 3 (module docstring).

    Raises:
        ImportError: if ``tensorflow-model-optimization`` or ``tf_keras`` is not installed (they are
            the optional ``compress`` extra), naming the missing package and the pip command.
    """
    getattr(tf.keras, "version", None)  # resolve TensorFlow's lazy `tf.keras` before tfmot sets the flag
    previous = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        import tensorflow_model_optimization as tfmot
        import tf_keras
    except ImportError as err:
        if err.name not in COMPRESS_PACKAGES:  # an installed package that is broken: its own error
            raise
        raise ImportError(
            f"Pruning and quantization-aware training (mimokd.export.compress, `mimokd compress`) need the "
            f"optional package {COMPRESS_PACKAGES[err.name]}, which is not installed: "
            f'pip install "mimokd[compress]" (in a checkout: pip install -e ".[compress]")',
            name=err.name,
        ) from None
    finally:
        if previous is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = previous
    return tfmot, tf_keras


tfmot, tf_keras = _import_tfmot()


class TfKerasReZero(tf_keras.layers.Layer):
    """``tf_keras`` twin of :class:`mimokd.zoo.layers.ReZero`: ``inputs + a * residual``.

    Called on ``[inputs, residual]``, two float32 tensors of the same shape; returns that shape.
    """

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + self.scale * residual

    def compute_output_shape(self, input_shape):
        return input_shape[0]


SUPPORTED_LAYERS = {
    keras.layers.Permute: tf_keras.layers.Permute,
    keras.layers.Conv2D: tf_keras.layers.Conv2D,
    keras.layers.BatchNormalization: tf_keras.layers.BatchNormalization,
    keras.layers.LeakyReLU: tf_keras.layers.LeakyReLU,
    keras.layers.Concatenate: tf_keras.layers.Concatenate,
    keras.layers.Add: tf_keras.layers.Add,
    keras.layers.Flatten: tf_keras.layers.Flatten,
    keras.layers.Reshape: tf_keras.layers.Reshape,
    keras.layers.Dense: tf_keras.layers.Dense,
    keras.layers.Activation: tf_keras.layers.Activation,
    ReZero: TfKerasReZero,
}
"""Keras 3 layer class -> its ``tf_keras`` twin (``InputLayer`` is handled by ``tf_keras.Input``)."""

_RENAMED_ARGUMENTS = {keras.layers.LeakyReLU: {"negative_slope": "alpha"}}
_KERAS_TENSOR = "__keras_tensor__"  # how Keras 3 functional configs serialize a symbolic tensor
_PRUNABLE = {"dense": keras.layers.Dense, "conv": keras.layers.Conv2D}


def _check_supported(model):
    """Raise a ValueError naming the first layer of ``model`` that has no ``tf_keras`` twin."""
    for layer in model.layers:
        if isinstance(layer, BinarizedDense):
            raise ValueError(
                f"Layer {layer.name!r} is a BinarizedDense (BCRNet): its forward pass uses the 1-bit "
                "kernel sign(W) * mean|W|, which tfmot cannot prune or quantize meaningfully (a "
                "pruned latent weight still binarizes to +-mean|W|, and the kernel is already "
                "below 8 bits). Compress a float encoder instead."
            )
        if type(layer) is not keras.layers.InputLayer and type(layer) not in SUPPORTED_LAYERS:
            supported = sorted(["InputLayer"] + [cls.__name__ for cls in SUPPORTED_LAYERS])
            raise ValueError(
                f"Layer {layer.name!r} of class {type(layer).__name__} has no tf_keras twin; the "
                f"supported layer classes are {supported}. Received: model {model.name!r}"
            )


def _tf_keras_config(value, renamed=None):
    """Translate a Keras 3 layer config (or part of one) into the ``tf_keras`` format.

    Serialized objects become ``{"class_name", "config"}`` (a dtype policy its name), keys are
    renamed by ``renamed`` (top level only) and keys set to ``None`` are dropped.
    """
    if isinstance(value, dict):
        if "class_name" in value and "config" in value:  # a serialized Keras 3 object
            if value["class_name"] == "DTypePolicy":
                return value["config"]["name"]
            return {"class_name": value["class_name"], "config": _tf_keras_config(value["config"])}
        renamed = renamed or {}
        return {renamed.get(k, k): _tf_keras_config(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return type(value)(_tf_keras_config(v) for v in value)
    return value


def _lookup(structure, tensors):
    """Replace the tensor references of a functional config by the rebuilt ``tf_keras`` tensors.

    A reference is ``[layer_name, node_index, tensor_index]`` (model inputs / outputs) or a
    serialized Keras tensor whose ``keras_history`` is that triple (node arguments).
    """
    if isinstance(structure, dict):
        if structure.get("class_name") == _KERAS_TENSOR:
            return tensors[tuple(structure["config"]["keras_history"])]
        return {k: _lookup(v, tensors) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        if len(structure) == 3 and isinstance(structure[0], str):
            return tensors[tuple(structure)]
        return type(structure)(_lookup(v, tensors) for v in structure)
    return structure


def to_tf_keras(model):
    """Rebuild a Keras 3 functional model in ``tf_keras`` (Keras 2) with the same weights.

    The layers keep their names, configs and weights (BatchNorm moving statistics included), so
    the twin computes the same function (equal up to float32 rounding).

    Args:
        model: flat functional ``keras.Model`` (Keras 3) made of the layer classes of
            :data:`SUPPORTED_LAYERS`, e.g. a zoo encoder (CSI ``[batch, 2, H, W]`` -> codeword
            ``[batch, D]``) or decoder (codeword -> CSI).

    Returns:
        ``tf_keras.Model`` with the same inputs, outputs, layer names and weights.

    Raises:
        ValueError: for a ``BinarizedDense`` layer (its 1-bit kernel cannot be pruned or 8-bit
            quantized meaningfully), any layer class without a twin (nested models included), or
            a layer using a Keras-3-only option (e.g. LoRA, ``layer.quantize``).
    """
    _check_supported(model)
    config = model.get_config()
    tensors = {}  # (layer name, node index, tensor index) -> tf_keras tensor
    for layer_config in config["layers"]:
        layer = model.get_layer(layer_config["name"])
        if type(layer) is keras.layers.InputLayer:
            tensors[(layer.name, 0, 0)] = tf_keras.Input(
                batch_shape=layer_config["config"]["batch_shape"],
                dtype=layer_config["config"]["dtype"],
                name=layer.name,
            )
            continue
        twin_config = _tf_keras_config(layer_config["config"], _RENAMED_ARGUMENTS.get(type(layer)))
        try:
            twin = SUPPORTED_LAYERS[type(layer)].from_config(twin_config)
        except TypeError as error:  # a Keras-3-only option in use, e.g. LoRA or a quantized layer
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) uses an option tf_keras does not have: {error}"
            ) from error
        for node_index, node in enumerate(layer_config["inbound_nodes"]):
            kwargs = {k: v for k, v in node["kwargs"].items() if v is not None}  # None: the default
            outputs = twin(*_lookup(node["args"], tensors), **_lookup(kwargs, tensors))
            for tensor_index, output in enumerate(tf.nest.flatten(outputs)):
                tensors[(layer.name, node_index, tensor_index)] = output
        twin.set_weights(layer.get_weights())
    return tf_keras.Model(
        _lookup(config["input_layers"], tensors), _lookup(config["output_layers"], tensors), name=model.name
    )


def from_tf_keras(tf_keras_model, keras3_model):
    """Copy the weights of a ``tf_keras`` twin back into a Keras 3 model of the same graph.

    Layers are matched by name, so a pruned twin must first go through
    ``tfmot.sparsity.keras.strip_pruning`` (which restores the original layers and names).

    Args:
        tf_keras_model: ``tf_keras.Model`` with a layer of the same name and weight shapes for
            every Keras 3 layer that has weights (e.g. from :func:`to_tf_keras`, fine-tuned).
        keras3_model: the Keras 3 model to write into (modified in place).

    Returns:
        ``keras3_model``, now with the twin's weights.

    Raises:
        ValueError: if a Keras 3 layer with weights has no twin of the same name.
    """
    twins = {layer.name: layer for layer in tf_keras_model.layers}
    for layer in keras3_model.layers:
        if not layer.weights:
            continue
        if layer.name not in twins:
            raise ValueError(
                f"The tf_keras model has no layer named {layer.name!r} (a pruning wrapper must be "
                f"removed with tfmot.sparsity.keras.strip_pruning first). Its layers: {sorted(twins)}"
            )
        layer.set_weights(twins[layer.name].get_weights())
    return keras3_model


def _prunable_kinds(layers):
    """Normalize ``layers`` ("all" or a tuple of "dense" / "conv") to a tuple of Keras 3 classes."""
    kinds = tuple(_PRUNABLE) if layers == "all" else tuple(layers)
    unknown = [kind for kind in kinds if kind not in _PRUNABLE]
    if unknown or not kinds:
        raise ValueError(
            f"`layers` must be 'all' or a non-empty tuple of {sorted(_PRUNABLE)}. Received: layers={layers!r}"
        )
    return tuple(_PRUNABLE[kind] for kind in kinds)


def _trainable_except_batchnorm(tf_keras_model):
    """Make the layers of a ``tf_keras`` model trainable, except BatchNorm: frozen, it runs in
    inference mode with the original moving statistics."""
    for layer in tf_keras_model.layers:
        layer.trainable = not isinstance(layer, tf_keras.layers.BatchNormalization)


def _codeword_mse(model, csi, codewords, batch_size):
    """Mean squared error between ``model(csi)`` and ``codewords`` (float32 ``[n, D]``)."""
    predicted = model.predict(csi, batch_size=batch_size, verbose=0)
    return float(np.mean((predicted - codewords) ** 2))


def _fine_tune(tf_keras_model, csi, codewords, *, epochs, batch_size, learning_rate, label, callbacks=()):
    """Fit a ``tf_keras`` encoder to mimic ``codewords``; returns the per-epoch loss history.

    Logs one line per epoch (``label``, the epoch, the codeword MSE) to this module's logger."""
    progress = tf_keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logger.info(
        "%s: epoch %d/%d, codeword MSE %.3g", label, epoch + 1, epochs, logs["loss"]))
    tf_keras_model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate), loss="mse")
    history = tf_keras_model.fit(
        csi, codewords, epochs=epochs, batch_size=batch_size, callbacks=[*callbacks, progress], verbose=0
    )
    return history.history


@dataclass
class PrunedEncoder:
    """Result of :func:`prune_encoder`.

    Attributes:
        encoder: Keras 3 encoder with the original architecture, CSI ``[batch, 2, H, W]`` ->
            codeword ``[batch, D]``, its pruned kernels holding exact zeros.
        sparsity: pruned layer name -> measured fraction of exact zeros in its kernel.
        mse: codeword MSE to the original encoder on the training CSI after the fine-tune.
        mse_one_shot: the same for one-shot magnitude pruning of the original weights to the
            same sparsity, without fine-tuning (the reference the fine-tune should improve on).
        history: the fine-tune's per-epoch ``loss`` (codeword MSE, training mode).
    """

    encoder: keras.Model
    sparsity: dict
    mse: float
    mse_one_shot: float
    history: dict = field(default_factory=dict)


def _one_shot_pruned(encoder, layer_names, sparsity):
    """A copy of a Keras 3 encoder with the smallest-magnitude kernel entries of the layers zeroed."""
    clone = copy_model(encoder)
    for name in layer_names:
        layer = clone.get_layer(name)
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        smallest = np.argsort(np.abs(kernel), axis=None)[: int(round(sparsity * kernel.size))]
        kernel.flat[smallest] = 0.0
        layer.kernel.assign(kernel)
    return clone


def prune_encoder(
    encoder, train_csi, *, sparsity=0.5, epochs=6, batch_size=50, learning_rate=1e-4, layers=("dense",)
):
    """Magnitude-prune an encoder with tfmot, fine-tuned to mimic its own codewords.

    The kernels of the chosen layers are pruned gradually with
    ``tfmot.sparsity.keras.PolynomialDecay`` from 0 to ``sparsity`` over the fine-tuning steps
    (``epochs * ceil(n / batch_size)``; the mask is updated every step, the last update at the last
    step), with the ``UpdatePruningStep`` callback; the loss is the MSE between the pruned
    encoder's codeword and the original encoder's codeword on ``train_csi``. The other weights
    (biases, unpruned kernels) are fine-tuned too, BatchNorm is frozen (module docstring), and
    ``encoder`` itself is left unchanged.

    Args:
        encoder: Keras 3 functional encoder, CSI float32 ``[batch, 2, H, W]`` -> codeword
            ``[batch, D]`` (any zoo encoder except BCRNet's).
        train_csi: float32 ``[n, 2, H, W]`` in ``[0, 1]``, the fine-tuning data.
        sparsity: target fraction of zeros in each pruned kernel, in ``[0, 1)``.
        epochs, batch_size, learning_rate: the fine-tune (Adam).
        layers: ``"all"`` or a tuple of layer kinds to prune: ``"dense"`` (the codeword layer,
            ``2HW x D`` = 4 MB in float32 for CRNet at 1/4, most of the encoder) and/or
            ``"conv"`` (the Conv2D kernels).

    Returns:
        :class:`PrunedEncoder`.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"`sparsity` must be in [0, 1). Received: sparsity={sparsity!r}")
    classes = _prunable_kinds(layers)
    pruned_names = [layer.name for layer in encoder.layers if type(layer) in classes]
    train_csi = np.asarray(train_csi, dtype="float32")
    codewords = encoder.predict(train_csi, batch_size=batch_size, verbose=0)

    twin = to_tf_keras(encoder)
    _trainable_except_batchnorm(twin)
    steps = epochs * math.ceil(len(train_csi) / batch_size)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=steps, frequency=1
    )

    def wrap(layer):
        if layer.name in pruned_names:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruning = tf_keras.models.clone_model(twin, clone_function=wrap)
    history = _fine_tune(
        pruning, train_csi, codewords, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        label=f"pruning to sparsity {sparsity:g}", callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    pruned = from_tf_keras(tfmot.sparsity.keras.strip_pruning(pruning), copy_model(encoder))
    measured = {
        name: float(np.mean(keras.ops.convert_to_numpy(pruned.get_layer(name).kernel) == 0.0))
        for name in pruned_names
    }
    return PrunedEncoder(
        encoder=pruned,
        sparsity=measured,
        mse=_codeword_mse(pruned, train_csi, codewords, batch_size),
        mse_one_shot=_codeword_mse(
            _one_shot_pruned(encoder, pruned_names, sparsity), train_csi, codewords, batch_size
        ),
        history=history,
    )


@dataclass
class QuantizedEncoder:
    """Result of :func:`quantization_aware_encoder`.

    Attributes:
        tflite: full-integer int8 TFLite flatbuffer of the encoder: float32 input CSI
            ``[batch, 2, H, W]`` (quantized on entry), int8 weights and activations, float32 output
            codeword ``[batch, D]`` (dequantized on exit). Load it with
            ``ai_edge_litert.interpreter.Interpreter(model_content=tflite)``.
        qat_model: the fine-tuned quantization-aware ``tf_keras`` model (fake-quantized, float).
        mse: codeword MSE of ``qat_model`` to the original encoder on the training CSI.
        history: the fine-tune's per-epoch ``loss`` (codeword MSE, training mode).
    """

    tflite: bytes
    qat_model: tf_keras.Model
    mse: float
    history: dict = field(default_factory=dict)


def quantization_aware_encoder(
    encoder, train_csi, *, epochs=6, batch_size=50, learning_rate=1e-4, representative=None
):
    """Quantization-aware fine-tune of an encoder with tfmot, converted to an int8 TFLite model.

    The ``tf_keras`` twin of ``encoder`` goes through ``tfmot.quantization.keras.quantize_model``
    (the default 8-bit scheme: per-channel int8 Conv2D kernels, each Conv2D and its BatchNorm
    fake-quantized as one unit (folded by the converter), per-tensor int8 Dense kernel, int8
    activations; Permute, Flatten and Reshape pass their input's quantization through). That
    scheme supports every layer of the float zoo encoders, so the whole model is annotated; a
    layer it does not support (e.g. ReZero, which only the decoders use) makes tfmot raise. The
    model is then fine-tuned with the codeword MSE to the original encoder and converted with
    ``tf.lite.TFLiteConverter.from_keras_model``, ``optimizations=[tf.lite.Optimize.DEFAULT]`` and
    int8-only builtin ops (the conversion fails rather than fall back to float kernels), keeping
    float32 input and output. ``encoder`` itself is left unchanged.

    Args:
        encoder: Keras 3 functional encoder, CSI float32 ``[batch, 2, H, W]`` -> codeword
            ``[batch, D]`` (any zoo encoder except BCRNet's).
        train_csi: float32 ``[n, 2, H, W]`` in ``[0, 1]``, the fine-tuning data.
        epochs, batch_size, learning_rate: the fine-tune (Adam; the defaults took CRNet-SE 1/4 from
            0.71 dB lost by post-training int8 to 0.26 dB, see the README).
        representative: float32 ``[m, 2, H, W]``, the converter's representative dataset (fed one
            sample at a time; required by the converter for full-integer output, while the ranges
            of the fake-quantized tensors come from the QAT model); default: the first 100
            samples of ``train_csi``.

    Returns:
        :class:`QuantizedEncoder`.
    """
    train_csi = np.asarray(train_csi, dtype="float32")
    representative = train_csi[:100] if representative is None else np.asarray(representative, dtype="float32")
    codewords = encoder.predict(train_csi, batch_size=batch_size, verbose=0)

    twin = to_tf_keras(encoder)
    _trainable_except_batchnorm(twin)
    qat_model = tfmot.quantization.keras.quantize_model(twin)
    history = _fine_tune(
        qat_model, train_csi, codewords, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        label="quantization-aware training",
    )

    converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: ([sample[None]] for sample in representative)
    return QuantizedEncoder(
        tflite=converter.convert(),
        qat_model=qat_model,
        mse=_codeword_mse(qat_model, train_csi, codewords, batch_size),
        history=history,
    )
