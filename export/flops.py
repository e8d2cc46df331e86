"""Complexity of a model by formula, in the conventions of the papers.

Per layer (BatchNorm and activations are ignored, as in both papers):

- ``mults``: multiplications (Lu et al., Table I "mul"). Conv2D: ``H_out W_out C_in K_H K_W C_out``;
  Dense: ``L_in L_out``; a binarized dense (``sign(W) * alpha``) needs only additions for the
  product with ``sign(W)`` and ``L_out`` multiplications by ``alpha``. Conv1D: ``b a C_in C_out``
  for ``b`` output positions and kernel size ``a`` (Zhang et al. Sec. VII-B, ``a_l b c_(l-1) c_l``;
  their Sec. VII-A counts ``M N`` for a dense layer, as here).
- ``flops``: Cui et al. eq. (13) ``2 H_out W_out (C_in K_H K_W + 1) C_out`` for Conv2D (and its
  one-dimensional form ``2 b (C_in a + 1) C_out`` for Conv1D) and eq. (14) ``(2 L_in - 1) L_out`` for
  Dense (binarized or not). Eq. (14) is also Kong et al.'s convention: summed over the receiver's
  layers ``2NL -> 40MN -> 30MN -> 20MN -> B`` it is their ``10MN(16LN + 360MN - 9) + B(40MN - 1)``
  (Sec. IV).
- A Dense layer applied at several positions (Zhang et al.'s per-user CSI-Net: one ``2 Nt -> 2 Nt``
  network on each of the ``K`` users, input ``[batch, K, 2 Nt]``) counts its multiplications and
  FLOPs once per position; its parameters once.
- Closed-form layers without weights (the binarization's sign, Kong et al.'s column normalization,
  Zhang et al.'s beamforming recovery) are not counted, as activations are not.
- ``params``: the trainable-kind weights (kernels, biases, BatchNorm scale and offset; the BatchNorm
  moving statistics are buffers, not parameters, as in PyTorch's ``parameters()`` that the
  reference counts use);
  ``params_binary``: the same with a binarized weight counted as 1/32 of a float parameter
  (Lu et al., Table I).

Counts are read from the Keras layers themselves, so they hold for any CSI size and ratio.
:func:`graph_flops` is the independent count: TensorFlow's profiler over the model's inference
graph for one sample (every op it has a FLOP rule for: MatMul and Conv2D as ``2 * MACs``, plus
bias adds, BatchNorm and activations), so it runs a little above the formulas. On a BCRNet model
as trained, the graph also binarizes the latent kernel at every call (``sign``, ``mean|W|``, the
straight-through arithmetic: about 8 FLOPs per weight by the profiler's count); the report
counts the exported graph, where the kernel is folded once
(:func:`mimokd.export.packed.fold_binarized`).
"""

import math
from dataclasses import asdict, dataclass

import keras

from mimokd.zoo.layers import BinarizedDense
from mimokd.zoo.registry import PRESETS, create_model


@dataclass
class Complexity:
    """Summed complexity of a model (see the module docstring for the conventions)."""

    params: int = 0
    params_binary: float = 0.0
    mults: int = 0
    flops: int = 0

    def __add__(self, other):
        return Complexity(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))

    def as_dict(self):
        return asdict(self)


def _parameter_count(layer):
    weights = layer.weights
    if isinstance(layer, keras.layers.BatchNormalization):
        weights = [w for w in weights if w is not layer.moving_mean and w is not layer.moving_variance]
    return sum(int(w.shape.num_elements()) for w in weights)


def _layer_complexity(layer):
    params = _parameter_count(layer)
    if isinstance(layer, keras.layers.Conv2D):
        k_h, k_w, c_in, c_out = layer.kernel.shape
        _, h_out, w_out, _ = layer.output.shape
        mults = h_out * w_out * c_in * k_h * k_w * c_out
        flops = 2 * h_out * w_out * (c_in * k_h * k_w + 1) * c_out  # Cui et al. eq. (13)
        return Complexity(params, float(params), mults, flops)
    if isinstance(layer, keras.layers.Conv1D):
        k, c_in, c_out = layer.kernel.shape
        b = layer.output.shape[1]
        mults = b * k * c_in * c_out  # Zhang et al. Sec. VII-B
        return Complexity(params, float(params), mults, 2 * b * (c_in * k + 1) * c_out)
    if isinstance(layer, keras.layers.Dense):
        l_in, l_out = layer.kernel.shape
        positions = math.prod(layer.output.shape[1:-1])  # 1 on [batch, L_in]
        flops = positions * (2 * l_in - 1) * l_out  # Cui et al. eq. (14)
        if isinstance(layer, BinarizedDense):
            binary = l_in * l_out
            return Complexity(params, params - binary + binary / 32, positions * l_out, flops)
        return Complexity(params, float(params), positions * l_in * l_out, flops)
    return Complexity(params, float(params), 0, 0)


def count_complexity(model):
    """Complexity of a built Keras model, nested models included.

    Args:
        model: a built functional ``keras.Model`` (e.g. ``create_model("crnet").encoder``).

    Returns:
        :class:`Complexity` with ``params``, ``params_binary``, ``mults`` and ``flops``.
    """
    total = Complexity()
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total = total + count_complexity(layer)
        else:
            total = total + _layer_complexity(layer)
    return total


def graph_flops(model):
    """FLOPs of one inference of ``model`` (batch 1) counted by TensorFlow's profiler on its graph.

    Args:
        model: a built functional ``keras.Model`` (one input or several).

    Returns:
        int, the profiler's ``total_float_ops``.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    specs = [tf.TensorSpec((1, *x.shape[1:]), tf.float32) for x in model.inputs]
    call = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False))
    concrete = call.get_concrete_function(*specs)
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


COMPLEXITY_COLUMNS = [
    ("model", "model"),
    ("ratio", "ratio"),
    ("params", "UE params"),
    ("params_binary", "UE params (1-bit = 1/32)"),
    ("mults", "UE mults"),
    ("flops", "UE FLOPs (eq. 13-14)"),
    ("paper", "paper"),
]


def zoo_complexity_table(ratios=(4, 8, 16, 32)):
    """One row per registered model and ratio: the UE encoder's complexity (dicts, see
    ``COMPLEXITY_COLUMNS``), generated from the registry."""
    rows = []
    for name in sorted(PRESETS):
        for cr in ratios:
            counts = count_complexity(create_model(name, cr=cr).encoder)
            rows.append(
                {"model": name, "ratio": f"1/{cr}", **counts.as_dict(), "paper": PRESETS[name].paper}
            )
    return rows
