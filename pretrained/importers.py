"""Importers of the field's published checkpoints into zoo models.

Two sources, each mapped weight by weight onto the layers of a :func:`~mimokd.zoo.create_model`
model, after checking the architecture and every shape (an error names the layer or key and the
shape expected and received):

- **The CsiNet authors' Keras 2 files** (``model_CsiNet_{indoor,outdoor}_dim{32,64,128}.json`` +
  ``.h5``: ``model_from_json`` + ``load_weights``, Keras 2.0.9, ``channels_first`` tensors
  ``[batch, 2, 32, 32]``) -> the ``csinet_authors`` preset (:class:`~mimokd.zoo.CsiNet` with
  ``batchnorm="columns"``): their BatchNorm layers keep Keras' ``axis=-1`` on channels-first
  tensors, so they hold one statistic per delay column (``[32]``), epsilon 1e-3.
  :func:`import_csinet_keras`.
- **PyTorch state dicts** (``.pth`` / ``.pt`` of ``torch.save``, or ``.safetensors``) of the
  public CRNet code (Lu, Wang, Song: ``encoder1.conv3x3_bn.conv.weight``, ``encoder_fc.weight``,
  ``decoder_feature.CRBlock1.path1.conv3x3.bn.running_mean``, ...) -> ``crnet``, and of the public
  BCRNet inference code of Lu et al.'s codeword-mimic paper (the same module names, the encoder's
  linear layer named ``encoder_binary_fc``) -> ``bcrnet``. :func:`import_torch_state_dict`.

Layout conversions (pure transpositions, so an import is exact to float32 rounding):

============================  ================================  ===============================
weight                        source layout                     Keras layout
============================  ================================  ===============================
Keras 2 Conv2D kernel         ``[K_H, K_W, C_in, C_out]`` (HWIO  the same (our models run
                              even with ``channels_first``)     channels-last with the same
                                                                kernels)
PyTorch Conv2d weight         ``[C_out, C_in, K_H, K_W]`` OIHW  transposed to HWIO
PyTorch Linear weight         ``[out, in]``                     transposed to ``[in, out]``
dense input / output          flattened channels-first          ``flatten_channels_first`` /
                              (``Reshape`` / ``view(n, -1)``)   ``unflatten_channels_last``
PyTorch BatchNorm2d           ``weight, bias, running_mean,     ``gamma, beta, moving_mean,
                              running_var`` (eps 1e-5)          moving_variance`` (eps 1e-5);
                                                                ``num_batches_tracked`` dropped
============================  ================================  ===============================

BCRNet: the reference stores the real-valued (latent) weight of ``encoder_binary_fc`` and
binarizes it once before inference, ``W_b = sign(W) * ||W||_1 / numel(W)``; our
:class:`~mimokd.zoo.BinarizedDense` keeps the same latent kernel and binarizes it in its forward
pass (``sign(W) * mean|W|``), so the latent weight is imported as is (a checkpoint saved after the
reference's binarization imports to the same model). The one difference: ``torch.sign(0) = 0``
where ours gives +1 (a weight of exactly 0 does not occur in a trained kernel). A CRNet-layout
state dict (``encoder_fc``) imported as ``bcrnet`` is binarized the same way.

Reading PyTorch files never unpickles arbitrary objects: ``torch.load(..., weights_only=True)``
(tensors, containers and primitives only). The reference trainers also store their best results as
a ``namedtuple`` (``utils.solver.Result``) beside ``state_dict``; such foreign classes are replaced
by inert placeholders (our own class, which only stores its arguments), so no foreign code runs.

Examples:
    >>> from mimokd.pretrained.importers import import_csinet_keras, import_torch_state_dict
    >>> model = import_csinet_keras("model_CsiNet_indoor_dim128.json", "model_CsiNet_indoor_dim128.h5")
    >>> model.name, model.cr                      # ('csinet_authors_cr16', 16)
    >>> crnet = import_torch_state_dict("in_04.pth", model="crnet")         # cr inferred: 4
    >>> bcrnet = import_torch_state_dict("bcrnet.pth", model="bcrnet", cr=8)
    >>> csi_hat = crnet.predict(csi)              # [batch, 2, 32, 32] -> [batch, 2, 32, 32]
"""

import json
import math
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mimokd.zoo.registry import create_model

KERAS_PRESET = "csinet_authors"
TORCH_MODELS = ("crnet", "bcrnet")
TORCH_BN_EPSILON = 1e-5  # nn.BatchNorm2d's default, which the reference code keeps
KERAS_BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default, which the authors kept
LEAKY_SLOPE = 0.3

# weight order of each Keras layer class, by the short names Keras 2 and Keras 3 both use
_KERAS_WEIGHTS = {
    "Conv2D": ("kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}
_TORCH_BN = ("weight", "bias", "running_mean", "running_var")  # -> gamma, beta, moving_*
_STATE_DICT_KEYS = ("state_dict", "model_state_dict")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel, torch.compile


class CheckpointError(ValueError):
    """A file that cannot be imported: it names the file, the layer or key, and what was expected."""


def _problems_error(header, problems, limit=20):
    shown = problems[:limit]
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return CheckpointError(header + "\n  " + "\n  ".join(shown) + more)


def _shape(shape):
    return tuple(int(d) for d in shape)


# ---------------------------------------------------------------------------------------------
# The CsiNet authors' Keras 2 files
# ---------------------------------------------------------------------------------------------


class _AnyOf:
    """An expected config value that may take any of several forms (e.g. BN ``axis`` -1 or 3)."""

    def __init__(self, *values):
        self.values = values

    def __repr__(self):
        return " or ".join(repr(v) for v in self.values)


def _same(got, want):
    if isinstance(want, _AnyOf):
        return any(_same(got, w) for w in want.values)
    if isinstance(want, float):
        return isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-6)
    if isinstance(want, (list, tuple)):
        return isinstance(got, (list, tuple)) and len(got) == len(want) and all(
            _same(g, w) for g, w in zip(got, want)
        )
    return got == want


_CONV = dict(kernel_size=[3, 3], strides=[1, 1], padding="same", data_format="channels_first",
             dilation_rate=[1, 1], use_bias=True)
_BN = dict(axis=_AnyOf(-1, 3, [-1], [3]), epsilon=KERAS_BN_EPSILON, center=True, scale=True)
_LRELU = dict(alpha=LEAKY_SLOPE)


def _authors_layers(height, width):
    """The authors' CsiNet graph as a list of expected layers.

    Each entry: ``class`` (Keras 2 class name), ``checks`` (config values), ``target`` (``(part,
    our layer name)`` for a layer with weights, else None) and ``inputs`` (indices of the layers
    feeding it). ``2 * height * width`` is the flattened CSI size; the codeword size (the first
    Dense's ``units``) is read from the file.
    """
    size = 2 * height * width
    layers = []

    def add(cls, target=None, inputs=None, **checks):
        index = len(layers)
        layers.append(dict(cls=cls, target=target, checks=checks,
                           inputs=[index - 1] if inputs is None else inputs))
        return index

    add("InputLayer", inputs=[])
    add("Conv2D", ("encoder", "enc_head_conv"), filters=2, activation="linear", **_CONV)
    add("BatchNormalization", ("encoder", "enc_head_bn"), **_BN)
    add("LeakyReLU", **_LRELU)
    add("Reshape", target_shape=[size])
    add("Dense", ("encoder", "enc_dense"), activation="linear", use_bias=True)
    add("Dense", ("decoder", "dec_dense"), units=size, activation="linear", use_bias=True)
    block_input = add("Reshape", target_shape=[2, height, width])
    for block in (1, 2):
        for i, filters in enumerate((8, 16, 2)):
            add("Conv2D", ("decoder", f"refine{block}_{i}_conv"), filters=filters, activation="linear", **_CONV)
            bn = add("BatchNormalization", ("decoder", f"refine{block}_{i}_bn"), **_BN)
            if i < 2:
                add("LeakyReLU", **_LRELU)
        add("Add", inputs=[block_input, bn])
        block_input = add("LeakyReLU", **_LRELU)
    add("Conv2D", ("decoder", "dec_tail_conv"), filters=2, activation="sigmoid", **_CONV)
    return layers


def _read_model_json(path):
    """The layer list of a Keras 2 ``model.to_json()`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No Keras model JSON at {path}")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{path} is not JSON ({err}); expected the Keras 2 model config that "
            "`model_from_json` reads (model_CsiNet_*.json)"
        ) from None
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list) or not layers or not all(isinstance(l, dict) for l in layers):
        keys = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(
            f"{path} is JSON but not a Keras functional model config (expected "
            f"{{'class_name': 'Model', 'config': {{'layers': [...]}}}}; found {keys})"
        )
    return config, layers


def _inbound_names(layer):
    """Names of the layers feeding ``layer`` (Keras 2 format ``[[[name, node, tensor, {}], ...]]``)."""
    nodes = layer.get("inbound_nodes", [])
    if not nodes:
        return []
    try:
        if len(nodes) == 1 and all(isinstance(entry[0], str) for entry in nodes[0]):
            return [entry[0] for entry in nodes[0]]
    except (TypeError, IndexError, KeyError):
        pass
    raise CheckpointError(f"layer {layer.get('name')!r}: unsupported inbound_nodes {nodes!r} "
                          "(expected the Keras 2 format [[[name, 0, 0, {}], ...]], one node)")


def _input_geometry(path, layer):
    config = layer.get("config") or {}
    shape = config.get("batch_input_shape", config.get("batch_shape"))
    if layer.get("class_name") != "InputLayer" or not isinstance(shape, list) or len(shape) != 4 or shape[1] != 2:
        raise CheckpointError(
            f"{path}: the first layer must be the input [None, 2, H, W] (channels_first CSI); "
            f"got {layer.get('class_name')} {layer.get('name')!r} with shape {shape}"
        )
    return int(shape[2]), int(shape[3])


def _check_authors_architecture(path, layers):
    """Check the JSON's layers against the authors' CsiNet; returns ``(height, width, cr)``."""
    height, width = _input_geometry(path, layers[0])
    expected = _authors_layers(height, width)
    problems = []
    if len(layers) != len(expected):
        problems.append(f"expected {len(expected)} layers, got {len(layers)}")
    names = [layer.get("name") for layer in layers]
    for index, (layer, want) in enumerate(zip(layers, expected)):
        label = f"layer {index} {layer.get('name')!r}"
        if layer.get("class_name") != want["cls"]:
            problems.append(f"{label}: expected {want['cls']}, got {layer.get('class_name')}")
            continue
        config = dict(layer.get("config") or {})
        if "alpha" not in config and "negative_slope" in config:  # Keras 3 spelling
            config["alpha"] = config["negative_slope"]
        for key, value in want["checks"].items():
            if not _same(config.get(key), value):
                problems.append(f"{label} ({want['cls']}) {key}: expected {value!r}, got {config.get(key)!r}")
        inputs = [names[i] for i in want["inputs"]]
        try:
            found = _inbound_names(layer)
        except CheckpointError as err:
            problems.append(str(err))
            continue
        if found != inputs:
            problems.append(f"{label}: expected inputs {inputs}, got {found}")
    if problems:
        raise _problems_error(f"{path} is not the CsiNet architecture of the authors' Keras code:", problems)
    dim = layers[5]["config"]["units"]
    size = 2 * height * width
    if not isinstance(dim, int) or dim < 1 or size % dim:
        raise CheckpointError(f"{path}: layer 5 {names[5]!r} (Dense, the codeword): units must divide "
                              f"2*H*W = {size}; got units={dim!r}")
    return height, width, size // dim


def _h5_strings(group, key):
    """A Keras 2 string-list attribute (``layer_names``, ``weight_names``), chunked or not; None if absent."""
    if key in group.attrs:
        values = list(group.attrs[key])
    elif f"{key}0" in group.attrs:  # Keras 2 splits attributes over 64 KB into key0, key1, ...
        values, chunk = [], 0
        while f"{key}{chunk}" in group.attrs:
            values += list(group.attrs[f"{key}{chunk}"])
            chunk += 1
    else:
        return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def read_keras2_h5(path):
    """Every weight of a Keras 2 HDF5 weights file (``save_weights``, or ``save``'s ``model_weights``).

    Args:
        path: the ``.h5`` file.

    Returns:
        ``{layer name: {short weight name: float32 array}}`` in the file's layer order, e.g.
        ``{"conv2d_1": {"kernel": [3, 3, 2, 2], "bias": [2]}, "batch_normalization_1": {"gamma":
        [32], ...}}`` (short name = the last path component without ``:0``).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No Keras weights file at {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise CheckpointError(f"{path} is not a readable HDF5 file ({err}); expected Keras 2 weights "
                              "(model_CsiNet_*.h5)") from None
    weights = {}
    try:
        with handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            layer_names = _h5_strings(group, "layer_names")
            if layer_names is None:
                raise CheckpointError(f"{path} is HDF5 but has no 'layer_names' attribute: not Keras 2 "
                                      "weights (save_weights / save)")
            for name in layer_names:
                layer = group[name]
                weights[name] = {}
                for weight in _h5_strings(layer, "weight_names") or []:
                    short = weight.split("/")[-1].split(":")[0]
                    weights[name][short] = np.asarray(layer[weight], dtype=np.float32)
    except (OSError, KeyError) as err:
        raise CheckpointError(f"{path}: cannot read the Keras 2 weights ({type(err).__name__}: {err}); "
                              "the file is truncated or corrupt") from None
    return weights


def _keras_layer(model, part, name):
    return getattr(model, part).get_layer(name)


def import_csinet_keras(json_path, h5_path, *, name=None):
    """Load the CsiNet authors' published Keras 2 model (``.json`` + ``.h5``) into a zoo model.

    Args:
        json_path: ``model_CsiNet_<scenario>_dim<D>.json`` (``model.to_json()`` of Keras 2): the
            architecture is checked layer by layer (classes, order, wiring, kernel sizes, filters,
            activations, BatchNorm axis -1 and epsilon 1e-3, LeakyReLU 0.3); the codeword size
            ``D`` (``dense_1`` units) gives the compression ratio ``cr = 2HW / D``.
        h5_path: the weights (``save_weights``: root attribute ``layer_names``, a group per layer
            with ``weight_names``; ``save``'s ``model_weights`` group is accepted too).
        name: the Keras model's name (default ``f"csinet_authors_cr{cr}"``).

    Returns:
        a :class:`~mimokd.zoo.CsiNet` of the ``csinet_authors`` preset (``batchnorm="columns"``),
        CSI ``[batch, 2, H, W]`` -> CSI, computing what the authors' Keras model computes.

    Raises:
        FileNotFoundError: a file is missing.
        CheckpointError (a ValueError): not JSON / not HDF5 / another architecture / a weight
            missing, unexpected or of another shape (``"dense_1/kernel: expected (2048, 128),
            got (2048, 64)"``).
    """
    _, layers = _read_model_json(json_path)
    height, width, cr = _check_authors_architecture(json_path, layers)
    stored = read_keras2_h5(h5_path)
    model = create_model(KERAS_PRESET, cr=cr, height=height, width=width,
                         **({"name": name} if name else {}))

    problems, assignments, used = [], [], set()
    for layer, want in zip(layers, _authors_layers(height, width)):
        if want["target"] is None:
            continue
        source = layer["name"]
        target = _keras_layer(model, *want["target"])
        found = stored.get(source)
        used.add(source)
        if found is None:
            problems.append(f"{source}: no weights in the .h5 (expected {', '.join(_KERAS_WEIGHTS[want['cls']])})")
            continue
        values = []
        for short, variable in zip(_KERAS_WEIGHTS[want["cls"]], target.weights):
            expected = _shape(variable.shape)
            if short not in found:
                problems.append(f"{source}/{short}: missing (expected shape {expected})")
            elif found[short].shape != expected:
                problems.append(f"{source}/{short}: expected {expected}, got {found[short].shape}")
            else:
                values.append(found[short])
        extra = sorted(set(found) - set(_KERAS_WEIGHTS[want["cls"]]))
        if extra:
            problems.append(f"{source}: unexpected weights {extra}")
        assignments.append((target, values))
    for source in stored:
        if source not in used and stored[source]:
            problems.append(f"{source}: weights in the .h5 for a layer that has none in the JSON "
                            f"({sorted(stored[source])})")
    if problems:
        raise _problems_error(f"{h5_path} does not hold the weights of {json_path}:", problems)
    for target, values in assignments:
        target.set_weights(values)
    return model


# ---------------------------------------------------------------------------------------------
# PyTorch state dicts (CRNet, BCRNet)
# ---------------------------------------------------------------------------------------------


def _crnet_modules(fc_name):
    """``[(torch module path, kind, part, our layer name)]`` of the reference CRNet / BCRNet.

    ``kind``: ``"convbn"`` (a ConvBN: ``<path>.conv`` + ``<path>.bn`` -> ``<name>_conv`` +
    ``<name>_bn``) or ``"linear"``.
    """
    modules = [
        ("encoder1.conv3x3_bn", "convbn", "encoder", "enc_b1_3x3"),
        ("encoder1.conv1x9_bn", "convbn", "encoder", "enc_b1_1x9"),
        ("encoder1.conv9x1_bn", "convbn", "encoder", "enc_b1_9x1"),
        ("encoder2", "convbn", "encoder", "enc_b2_3x3"),
        ("encoder_conv.conv1x1_bn", "convbn", "encoder", "enc_merge"),
        (fc_name, "linear", "encoder", "enc_dense"),
        ("decoder_fc", "linear", "decoder", "dec_dense"),
        ("decoder_feature.conv5x5_bn", "convbn", "decoder", "dec_head"),
    ]
    for block in (1, 2):
        prefix = f"decoder_feature.CRBlock{block}"
        for module, ours in (("path1.conv3x3", "p1_3x3"), ("path1.conv1x9", "p1_1x9"), ("path1.conv9x1", "p1_9x1"),
                             ("path2.conv1x5", "p2_1x5"), ("path2.conv5x1", "p2_5x1"), ("conv1x1", "merge")):
            modules.append((f"{prefix}.{module}", "convbn", "decoder", f"crblock{block}_{ours}"))
    return modules


def _torch_tensor_map(model, fc_name):
    """``[(torch key, Keras variable, to_keras)]`` for every weight; ``to_keras`` maps the array."""
    conv = lambda w: np.transpose(w, (2, 3, 1, 0))  # noqa: E731  OIHW -> HWIO
    same = lambda w: w  # noqa: E731
    pairs = []
    for module, kind, part, name in _crnet_modules(fc_name):
        if kind == "linear":
            layer = _keras_layer(model, part, name)
            pairs += [(f"{module}.weight", layer.kernel, np.transpose), (f"{module}.bias", layer.bias, same)]
            continue
        conv_layer, bn = _keras_layer(model, part, f"{name}_conv"), _keras_layer(model, part, f"{name}_bn")
        pairs.append((f"{module}.conv.weight", conv_layer.kernel, conv))
        for key, variable in zip(_TORCH_BN, (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)):
            pairs.append((f"{module}.bn.{key}", variable, same))
    return pairs


def _torch_shape(key, keras_shape):
    """The PyTorch shape of a weight whose Keras variable has ``keras_shape``."""
    if key.endswith(".conv.weight"):
        k_h, k_w, c_in, c_out = keras_shape
        return (c_out, c_in, k_h, k_w)
    if key.endswith("fc.weight"):
        return tuple(reversed(keras_shape))
    return keras_shape


class _Inert:
    """What a foreign class in a PyTorch checkpoint becomes: it stores its arguments, runs nothing."""

    def __new__(cls, *args, **kwargs):
        instance = object.__new__(cls)
        instance.args = args
        return instance

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state


def _torch_message(err):
    """The informative line of a torch.load error (without its advice to load unsafely)."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _torch_load(path):
    """``torch.load(weights_only=True)``, with foreign classes (e.g. a namedtuple of results) inert."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"Reading {path} (a PyTorch checkpoint) needs PyTorch: pip install torch "
            "(or save the state dict as .safetensors, which needs only `pip install safetensors`)"
        ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = err
    except Exception as err:  # noqa: BLE001  (a truncated zip, a text file, ...: torch raises many kinds)
        raise CheckpointError(f"{path} is not a PyTorch checkpoint that torch.load reads "
                              f"({type(err).__name__}: {_torch_message(err)})") from None
    # A refused global: the reference trainers save a namedtuple of results beside the state dict.
    unsafe = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    try:
        names = unsafe(path) if unsafe else []
    except Exception:  # noqa: BLE001  (not a zip checkpoint: report the first error)
        names = []
    if not names:
        raise CheckpointError(f"{path}: torch.load(weights_only=True) refused it: {_torch_message(first)}")
    stand_ins = [(type("Inert", (_Inert,), {}), name) for name in names]
    try:
        with torch.serialization.safe_globals(stand_ins):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as again:  # noqa: BLE001
        raise CheckpointError(f"{path}: torch.load(weights_only=True) refused it: {_torch_message(again)}") from None


def _read_safetensors(path):
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ImportError(f"Reading {path} needs the safetensors package: pip install safetensors") from None
    try:
        return load_file(str(path))
    except Exception as err:  # noqa: BLE001  (safetensors raises its own SafetensorError and others)
        raise CheckpointError(f"{path} is not a readable .safetensors file ({type(err).__name__}: {err})") from None


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.numpy()
    return None


def _strip_wrappers(state):
    """Drop the ``module.`` (DataParallel) / ``_orig_mod.`` (torch.compile) prefix every key has."""
    changed = True
    while changed and state:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def read_state_dict(source):
    """A PyTorch state dict as numpy arrays, from a file or a mapping.

    Args:
        source: a ``.safetensors`` file (read with ``safetensors.numpy``), any other file (read with
            ``torch.load(..., map_location="cpu", weights_only=True)``), or a mapping. A checkpoint
            ``{"state_dict": {...}, "optimizer": ..., ...}`` (what the reference trainers save) is
            unwrapped, and a ``module.`` prefix on every key (DataParallel) is dropped.

    Returns:
        ``{key: numpy array}``, e.g. ``{"encoder_fc.weight": float32 [512, 2048], ...}``.
    """
    if isinstance(source, Mapping):
        obj, label = source, "the state dict"
    else:
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"No checkpoint at {path}")
        obj = _read_safetensors(path) if path.suffix.lower() == ".safetensors" else _torch_load(path)
    if isinstance(obj, Mapping):
        for key in _STATE_DICT_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{label} holds a {type(obj).__name__}, not a state dict "
                              f"(expected {{name: tensor}} or {{'state_dict': {{name: tensor}}, ...}})")
    arrays, others = {}, []
    for key, value in obj.items():
        array = _to_numpy(value)
        if isinstance(key, str) and array is not None:
            arrays[key] = array
        else:
            others.append(repr(key))
    if others:
        raise CheckpointError(f"{label} is not a state dict of tensors: {', '.join(others[:10])} "
                              f"{'are' if len(others) > 1 else 'is'} not a named tensor (expected "
                              "{name: tensor} or {'state_dict': {name: tensor}, ...})")
    return _strip_wrappers(arrays)


def _fc_name(state, model, label):
    names = [n for n in ("encoder_binary_fc", "encoder_fc") if f"{n}.weight" in state]
    if not names:
        raise CheckpointError(f"{label}: no encoder_fc.weight (CRNet) or encoder_binary_fc.weight (BCRNet); "
                              f"this is not a CRNet / BCRNet state dict (keys: {sorted(state)[:8]} ...)")
    if model == "crnet" and names[0] == "encoder_binary_fc":
        raise CheckpointError(f"{label} holds encoder_binary_fc: a BCRNet state dict; import it with "
                              "model='bcrnet' (--model bcrnet)")
    return names[0]


def import_torch_state_dict(source, model="crnet", cr=None, *, height=32, width=32, name=None):
    """Load a PyTorch CRNet / BCRNet state dict of the public reference code into a zoo model.

    Args:
        source: a ``.pth`` / ``.pt`` file (``torch.save``; needs torch), a ``.safetensors`` file,
            or a mapping ``{key: tensor or array}`` (see :func:`read_state_dict`).
        model: ``"crnet"`` (keys ``encoder1.*``, ``encoder2.*``, ``encoder_conv.*``,
            ``encoder_fc.*``, ``decoder_fc.*``, ``decoder_feature.*``) or ``"bcrnet"`` (the same
            with ``encoder_binary_fc.*``, the latent weight of the binarized layer; a CRNet-layout
            ``encoder_fc`` is accepted and binarized).
        cr: compression ratio; inferred from the encoder fc weight ``[2HW/cr, 2HW]`` when None.
        height, width: CSI size (32 x 32 in the reference code).
        name: the Keras model's name (default ``f"{model}_cr{cr}"``).

    Returns:
        the :class:`~mimokd.zoo.CRNet` of preset ``model``, CSI ``[batch, 2, H, W]`` -> CSI,
        computing what the PyTorch model computes in ``eval()`` mode (BatchNorm epsilon 1e-5 in
        both).

    Raises:
        CheckpointError (a ValueError): an unreadable file, a missing or unexpected key, a shape
            that differs (``"encoder_fc.weight: expected (512, 2048), got (256, 2048)"``).
        ImportError: a ``.pth`` without torch installed, or a ``.safetensors`` without safetensors.
    """
    if model not in TORCH_MODELS:
        raise ValueError(f"`model` must be one of {TORCH_MODELS} (the public PyTorch codes). Received: model={model!r}")
    label = "the state dict" if isinstance(source, Mapping) else str(source)
    state = read_state_dict(source)
    fc = _fc_name(state, model, label)
    if cr is None:
        shape = state[f"{fc}.weight"].shape
        size = 2 * height * width
        if len(shape) != 2 or shape[1] != size or not 0 < shape[0] <= size or size % shape[0]:
            raise CheckpointError(
                f"{label}: {fc}.weight has shape {shape}; expected (2HW/cr, 2HW) with 2HW = {size} "
                f"(height={height}, width={width}) and an integer cr"
            )
        cr = size // shape[0]
    built = create_model(model, cr=cr, height=height, width=width, **({"name": name} if name else {}))
    epsilons = {layer.epsilon for part in (built.encoder, built.decoder) for layer in part.layers
                if hasattr(layer, "moving_variance")}
    if epsilons != {TORCH_BN_EPSILON}:  # a zoo change would break exactness: say so
        raise RuntimeError(f"{model}'s BatchNorm epsilon is {epsilons}, not PyTorch's {TORCH_BN_EPSILON}")

    problems, assignments, used = [], [], set()
    for key, variable, to_keras in _torch_tensor_map(built, fc):
        expected = _torch_shape(key, _shape(variable.shape))
        used.add(key)
        if key not in state:
            problems.append(f"{key}: missing (expected shape {expected})")
        elif state[key].shape != expected:
            problems.append(f"{key}: expected {expected}, got {state[key].shape}")
        else:
            assignments.append((variable, to_keras(state[key]).astype(np.float32)))
    unexpected = sorted(k for k in state if k not in used and not k.endswith(".num_batches_tracked"))
    if unexpected:
        problems.append(f"unexpected keys (not in the reference {model}): {', '.join(unexpected)}")
    if problems:
        raise _problems_error(f"{label} does not match the reference {model} at 1/{cr}:", problems)
    for variable, value in assignments:
        variable.assign(value)
    return built


__all__ = [
    "CheckpointError",
    "KERAS_PRESET",
    "TORCH_MODELS",
    "import_csinet_keras",
    "import_torch_state_dict",
    "read_keras2_h5",
    "read_state_dict",
]
