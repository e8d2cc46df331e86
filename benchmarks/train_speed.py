#!/usr/bin/env python
"""Training throughput of CRNet (compression ratio 1/4) in Keras (``mimokd.zoo``) and in PyTorch.

The same network, the same batch (200 x [2, 32, 32] float32 in [0, 1]), MSE loss, Adam(2e-3):

- Keras: ``create_model("crnet", cr=4)`` trained with ``model.fit``, without and with XLA
  (``jit_compile=True`` in ``model.compile``), fed from the in-memory numpy array and from a
  ``tf.data`` pipeline (batched, cached, prefetched); the faster input is reported. Then the
  speed-ups found by ``--experiments`` (no change to the model or its math): oneDNN on
  (``TF_ENABLE_ONEDNN_OPTS=1``; TensorFlow leaves it off on CPUs without AVX-512), and oneDNN on
  plus XLA auto-clustering of the fusible ops only (``TF_XLA_FLAGS=--tf_xla_auto_jit=2
  --tf_xla_cpu_global_jit --tf_xla_ops_to_cluster=FUSIBLE``: BatchNorm / activation / optimizer
  element-wise chains become fused XLA kernels, convolutions and matmuls stay on oneDNN).
- PyTorch (optional; skipped with a message when ``torch`` is not importable): an independent
  CRNet written below (NCHW, ConvBN = Conv2d without bias + BatchNorm2d, LeakyReLU 0.3, Xavier
  init) with the Keras model's trainable parameter count (asserted), trained by a plain loop.

Every job runs in a fresh Python process (this script re-invoking itself with ``--worker``), so
the two frameworks' thread pools never compete and process-wide switches (``TF_ENABLE_ONEDNN_OPTS``,
``TF_XLA_FLAGS``) can differ between rows. Each measurement does ``--warmup`` untimed steps, then
``--steps`` timed steps; every step is timed and the table reports ``batch / median step time``
(robust to other processes taking the CPU now and then) next to ``steps * batch / total time``.
The Keras measurements of one process (e.g. plain / XLA x numpy / tf.data) are timed interleaved,
in turns of ``--chunk`` steps, so that their ratios hold on a machine shared with other work;
``--repeats N`` runs every job N times and reports the best. The Keras jobs import TensorFlow
before mimokd, so the oneDNN state is the job's (``TF_ENABLE_ONEDNN_OPTS`` as inherited, or as
the row sets it), never a package default; every row names the state it ran with.

Usage::

    python benchmarks/train_speed.py                  # the table (2.5-4 min on 2 cores)
    python benchmarks/train_speed.py --profile        # top TF ops by self time (Keras, plain)
    python benchmarks/train_speed.py --profile --onednn on [--profile-autojit]
    python benchmarks/train_speed.py --profile --profile-mode xla
    python benchmarks/train_speed.py --experiments    # the speed-up matrix (about 22 min)
    python benchmarks/train_speed.py --repeats 2       # best of 2 (on a busy machine)
    python benchmarks/train_speed.py --steps 30 --warmup 5 --threads 2 --no-torch
"""

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HEIGHT = WIDTH = 32
CR = 4
LEARNING_RATE = 2e-3
LEAKY_SLOPE = 0.3
RESULT_TAG = "TRAIN_SPEED_RESULT "

# ---------------------------------------------------------------------------------------------
# Keras side
# ---------------------------------------------------------------------------------------------

# Keras model variants for the speed-up experiments. "zoo" is mimokd's model itself; the others
# are copies of the same CRNet built here (same layers, names and initial weights, same math up
# to float32 round-off, compared by `--experiments`) that change only how it is computed:
#   fused_bn  - BatchNorm through one FusedBatchNormV3 op (Keras 3 BN is ~10 element-wise ops)
#   xla_bn    - BatchNorm's training math (tf.nn.moments + tf.nn.batch_normalization, the ops of
#               the Keras layer) in one XLA-compiled function, convolutions left to TF / oneDNN
#   nchw      - convolutions channels-first end to end, no Permute layers (needs XLA or oneDNN:
#               TF's default CPU conv kernels are NHWC-only)
#   fused_bn+nchw - both
VARIANTS = ("zoo", "fused_bn", "xla_bn", "nchw", "fused_bn+nchw")


def _fused_bn_class():
    import keras
    import tensorflow as tf

    class FusedBatchNorm(keras.layers.BatchNormalization):
        """``keras.layers.BatchNormalization`` with the same math, computed by FusedBatchNormV3.

        Training: normalizes with the biased batch variance and updates the moving statistics
        with ``m * momentum + batch * (1 - momentum)`` using the biased variance, exactly as the
        Keras layer does (the fused op returns the Bessel-corrected variance, undone here).
        """

        def call(self, inputs, training=None, mask=None):
            data_format = "NCHW" if self.axis in (1, -3) else "NHWC"
            if training and self.trainable:
                y, mean, var, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                    x=inputs,
                    scale=self.gamma,
                    offset=self.beta,
                    mean=tf.zeros_like(self.moving_mean),
                    variance=tf.ones_like(self.moving_variance),
                    epsilon=self.epsilon,
                    exponential_avg_factor=1.0,
                    data_format=data_format,
                    is_training=True,
                )
                count = tf.cast(tf.size(inputs) // tf.size(self.gamma), inputs.dtype)
                var = var * (count - 1.0) / count
                self.moving_mean.assign(
                    self.moving_mean * self.momentum + mean * (1 - self.momentum)
                )
                self.moving_variance.assign(
                    self.moving_variance * self.momentum + var * (1 - self.momentum)
                )
                return y
            y, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=self.gamma,
                offset=self.beta,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                data_format=data_format,
                is_training=False,
            )
            return y

    return FusedBatchNorm


def _xla_bn_class():
    import keras
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def normalize_train(x, gamma, beta, epsilon, axes):
        # exactly the ops of keras.layers.BatchNormalization (TF backend) in training mode
        mean, variance = tf.nn.moments(x, axes)
        y = tf.nn.batch_normalization(x, mean, variance, beta, gamma, epsilon)
        return y, mean, variance

    class XlaBatchNorm(keras.layers.BatchNormalization):
        """``keras.layers.BatchNormalization`` whose training-mode math (moments + normalize) is
        one XLA-compiled function: forward and backward each become one fused kernel, while
        the convolutions around it stay on TensorFlow's (oneDNN) kernels."""

        def call(self, inputs, training=None, mask=None):
            if not (training and self.trainable) or mask is not None:
                return super().call(inputs, training=training, mask=mask)
            y, mean, variance = normalize_train(
                inputs,
                self.gamma.value,
                self.beta.value,
                tf.constant(self.epsilon, inputs.dtype),
                tuple(self._reduction_axes),
            )
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
            return y

    return XlaBatchNorm


def build_keras_variant(variant, cr=CR, bn_kwargs=None):
    """A copy of mimokd's CRNet (preset ``crnet``) computed differently; see ``VARIANTS``.

    Returns a flat ``keras.Model`` [B, 2, 32, 32] -> [B, 2, 32, 32] whose layers carry the zoo
    model's layer names, so that ``copy_zoo_weights`` can load the zoo model's weights.
    ``bn_kwargs``: the BatchNorm ``momentum`` / ``epsilon`` (pass the zoo model's, see
    ``zoo_bn_kwargs``).
    """
    import keras

    opts = set(variant.split("+"))
    nchw = "nchw" in opts
    bn_cls = keras.layers.BatchNormalization
    if "fused_bn" in opts:
        bn_cls = _fused_bn_class()
    elif "xla_bn" in opts:
        bn_cls = _xla_bn_class()
    data_format = "channels_first" if nchw else "channels_last"
    axis = 1 if nchw else -1

    def conv_bn(x, filters, kernel, name):
        x = keras.layers.Conv2D(
            filters,
            kernel,
            padding="same",
            use_bias=False,
            data_format=data_format,
            kernel_initializer="glorot_uniform",
            name=f"{name}_conv",
        )(x)
        return bn_cls(axis=axis, name=f"{name}_bn", **(bn_kwargs or {}))(x)

    def lrelu(x, name=None):
        return keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=name)(x)

    def concat(xs, name):
        return keras.layers.Concatenate(axis=axis, name=name)(xs)

    inputs = keras.Input((2, HEIGHT, WIDTH), name="csi")
    x = inputs if nchw else keras.layers.Permute((2, 3, 1), name="to_nhwc")(inputs)
    a = lrelu(conv_bn(x, 2, (3, 3), "enc_b1_3x3"))
    a = lrelu(conv_bn(a, 2, (1, 9), "enc_b1_1x9"))
    a = conv_bn(a, 2, (9, 1), "enc_b1_9x1")
    b = conv_bn(x, 2, (3, 3), "enc_b2_3x3")
    x = lrelu(concat([a, b], "enc_concat"))
    x = lrelu(conv_bn(x, 2, (1, 1), "enc_merge"))
    if not nchw:
        x = keras.layers.Permute((3, 1, 2), name="enc_to_nchw")(x)
    x = keras.layers.Flatten(name="enc_flatten")(x)
    code = keras.layers.Dense(2 * HEIGHT * WIDTH // cr, name="enc_dense")(x)
    y = keras.layers.Dense(2 * HEIGHT * WIDTH, name="dec_dense")(code)
    y = keras.layers.Reshape((2, HEIGHT, WIDTH), name="dec_reshape")(y)
    if not nchw:
        y = keras.layers.Permute((2, 3, 1), name="dec_to_nhwc")(y)
    y = lrelu(conv_bn(y, 2, (5, 5), "dec_head"))
    for blk in ("crblock1", "crblock2"):
        a = lrelu(conv_bn(y, 7, (3, 3), f"{blk}_p1_3x3"))
        a = lrelu(conv_bn(a, 7, (1, 9), f"{blk}_p1_1x9"))
        a = conv_bn(a, 7, (9, 1), f"{blk}_p1_9x1")
        b = lrelu(conv_bn(y, 7, (1, 5), f"{blk}_p2_1x5"))
        b = conv_bn(b, 7, (5, 1), f"{blk}_p2_5x1")
        t = lrelu(concat([a, b], f"{blk}_concat"))
        t = conv_bn(t, 2, (1, 1), f"{blk}_merge")
        y = lrelu(keras.layers.Add(name=f"{blk}_add")([y, t]), name=f"{blk}_out")
    y = keras.layers.Activation("sigmoid", name="dec_sigmoid")(y)
    if not nchw:
        y = keras.layers.Permute((3, 1, 2), name="dec_to_nchw")(y)
    return keras.Model(inputs, y, name="crnet_" + variant.replace("+", "_"))


def zoo_bn_kwargs(zoo):
    """The ``momentum`` / ``epsilon`` of the zoo model's BatchNorm layers (all alike)."""
    import keras

    bns = [
        layer
        for sub in (zoo.encoder, zoo.decoder)
        for layer in sub.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    kwargs = {(bn.momentum, bn.epsilon) for bn in bns}
    assert len(kwargs) == 1, f"the zoo CRNet's BatchNorm layers differ: {kwargs}"
    momentum, epsilon = kwargs.pop()
    return {"momentum": momentum, "epsilon": epsilon}


def copy_zoo_weights(dst, zoo):
    """Load the zoo CRNet's weights into a variant built by ``build_keras_variant``."""
    src = {layer.name: layer for sub in (zoo.encoder, zoo.decoder) for layer in sub.layers}
    for layer in dst.layers:
        if layer.weights:
            layer.set_weights(src[layer.name].get_weights())


def count_params(weights):
    return int(sum(np.prod(w.shape) for w in weights))


def numerics_step(model, jit_compile, x):
    """One training-mode forward/backward (the math of a train step without the update).

    Returns ``{"out": y, "grad/<weight path>": dL/dw, "stat/<weight path>": moving statistic
    after the step}`` as numpy arrays, keyed by weight path so that model copies compare.
    """
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile)
    def fn(inp):
        with tf.GradientTape() as tape:
            out = model(inp, training=True)
            loss = tf.reduce_mean(tf.square(out - inp))
        return out, tape.gradient(loss, model.trainable_weights)

    out, grads = fn(x)
    res = {"out": out.numpy()}
    res.update({f"grad/{w.path}": g.numpy() for w, g in zip(model.trainable_weights, grads)})
    res.update({f"stat/{w.path}": w.numpy() for w in model.non_trainable_weights})
    return res


def compare_numerics(ref, got):
    """(max |dy|, relative L2 error of all gradients, max |d moving statistic|)."""
    grads = sorted(k for k in ref if k.startswith("grad/"))
    flat_ref = np.concatenate([ref[k].ravel() for k in grads])
    flat_got = np.concatenate([got[k].ravel() for k in grads])
    stats = [k for k in ref if k.startswith("stat/")]
    return (
        float(np.abs(ref["out"] - got["out"]).max()),
        float(np.linalg.norm(flat_ref - flat_got) / np.linalg.norm(flat_ref)),
        float(max(np.abs(ref[k] - got[k]).max() for k in stats)),
    )


def keras_thread_info():
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):  # private API; only used for the printout
        onednn = None
    return {
        "tf_intra_op_threads": f"{intra}" + (" (TF default: all cores)" if intra == 0 else ""),
        "tf_inter_op_threads": f"{inter}" + (" (TF default)" if inter == 0 else ""),
        "onednn": onednn,
        "tf_version": tf.__version__,
    }


def _set_tf_threads(args):
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)


def _keras_model(variant, weights_dir=None):
    """The zoo CRNet or a copy of it (``VARIANTS``) with the zoo model's initial weights; with
    ``weights_dir``, the initial weights are the ones saved there by the first call (so every
    process of a run starts from the same weights)."""
    from mimokd.zoo import create_model

    zoo = create_model("crnet", cr=CR)
    if weights_dir:
        path = os.path.join(weights_dir, "initial.weights.npz")
        if os.path.exists(path):
            saved = np.load(path)
            for w in zoo.weights:
                w.assign(saved[w.path])
        else:
            np.savez(path, **{w.path: w.numpy() for w in zoo.weights})
    if variant == "zoo":
        return zoo
    model = build_keras_variant(variant, bn_kwargs=zoo_bn_kwargs(zoo))
    copy_zoo_weights(model, zoo)
    return model


def run_keras(job, args):
    """Keras measurements sharing one process (one TF runtime, one oneDNN / XLA-flags setting).

    Every run of ``job["runs"]`` builds a fresh model (``mode``: plain / xla, ``variant``,
    ``spe`` = steps_per_execution) and compiles it once; each of its ``inputs`` (``numpy``: the
    in-memory array; ``tfdata``: a batched, cached, repeated, prefetched tf.data.Dataset) is
    one measurement. After a warm-up ``model.fit`` of ``--warmup`` steps per measurement (the
    first one of a model traces / compiles the train function), the measurements are timed
    *interleaved*: rounds of one short ``model.fit`` per measurement (one untimed lead step,
    then ``--chunk`` timed steps), the order rotating every round, until each has ``--steps``
    timed steps. So a burst of load from other processes hits all of them alike and their
    ratios stay meaningful on a shared machine.
    """
    import tensorflow as tf

    _set_tf_threads(args)
    import keras

    batch = args.batch_size
    chunk = max(1, args.chunk)
    max_spe = max(run.get("spe", 1) for run in job["runs"])
    n_x = batch * (max(args.warmup, chunk) + 2 * max_spe)
    x = np.random.default_rng(0).random((n_x, 2, HEIGHT, WIDTH), dtype=np.float32)
    dataset = (
        tf.data.Dataset.from_tensor_slices(x)
        .batch(batch, drop_remainder=True)
        .map(lambda v: (v, v))
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )

    def timed_fit(model, inp, steps):
        stamps = []

        class StepTimer(keras.callbacks.Callback):
            def on_train_batch_end(self, batch_index, logs=None):
                # called with the last step index of each execution (steps_per_execution)
                stamps.append((batch_index, time.perf_counter()))

        start = time.perf_counter()
        if inp == "numpy":
            data = x[: steps * batch]
            model.fit(
                data,
                data,
                batch_size=batch,
                shuffle=False,
                epochs=1,
                verbose=0,
                callbacks=[StepTimer()],
            )
        else:
            model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[StepTimer()])
        times = []
        for (b0, t0), (b1, t1) in itertools.pairwise(stamps):
            times += [(t1 - t0) / (b1 - b0)] * (b1 - b0)
        return start, stamps, times

    entries, params = [], None
    for i, run in enumerate(job["runs"]):
        keras.utils.set_random_seed(0)
        model = _keras_model(run["variant"], job.get("check_dir"))
        params = count_params(model.trainable_weights)
        if job.get("check_dir"):
            xc = np.random.default_rng(1).random((batch, 2, HEIGHT, WIDTH), dtype=np.float32)
            np.savez(
                os.path.join(job["check_dir"], f"{job['tag']}_{i}.npz"),
                **numerics_step(model, run["mode"] == "xla", xc),
            )
        spe = run.get("spe", 1)
        model.compile(
            optimizer=keras.optimizers.Adam(LEARNING_RATE),
            loss="mse",
            jit_compile=run["mode"] == "xla",
            steps_per_execution=spe,
        )
        for inp in run["inputs"]:
            start, stamps, _ = timed_fit(model, inp, -(-args.warmup // spe) * spe)
            row = {
                "framework": "keras",
                "mode": run["mode"],
                "variant": run["variant"],
                "spe": spe,
                "input": inp,
                "step_times": [],
                "first_step_s": stamps[0][1] - start,
                "run": i,
            }
            entries.append({"model": model, "row": row})
    rounds = -(-args.steps // chunk)
    for r in range(rounds):
        k = r % len(entries)
        for entry in entries[k:] + entries[:k]:
            spe = entry["row"]["spe"]
            _, _, times = timed_fit(
                entry["model"], entry["row"]["input"], spe * (1 + -(-chunk // spe))
            )
            entry["row"]["step_times"] += times
    rows = [entry["row"] for entry in entries]
    entries.clear()
    keras.backend.clear_session()
    return {"rows": rows, "trainable_params": params, **keras_thread_info()}


# ---------------------------------------------------------------------------------------------
# PyTorch side: an independent CRNet (Lu, Wang, Song, ICC 2020), NCHW
# ---------------------------------------------------------------------------------------------


def build_torch_crnet(cr=CR, crblock_width=7):
    import torch
    from torch import nn

    def conv_bn(cin, cout, kernel):
        pad = (kernel[0] // 2, kernel[1] // 2)
        conv = nn.Conv2d(cin, cout, kernel, padding=pad, bias=False)
        nn.init.xavier_uniform_(conv.weight)
        return nn.Sequential(conv, nn.BatchNorm2d(cout))

    def lrelu():
        return nn.LeakyReLU(LEAKY_SLOPE)

    class CRBlock(nn.Module):
        def __init__(self, w):
            super().__init__()
            self.path1 = nn.Sequential(
                conv_bn(2, w, (3, 3)),
                lrelu(),
                conv_bn(w, w, (1, 9)),
                lrelu(),
                conv_bn(w, w, (9, 1)),
            )
            self.path2 = nn.Sequential(conv_bn(2, w, (1, 5)), lrelu(), conv_bn(w, w, (5, 1)))
            self.merge = conv_bn(2 * w, 2, (1, 1))
            self.act = lrelu()

        def forward(self, x):
            y = self.act(torch.cat([self.path1(x), self.path2(x)], dim=1))
            return self.act(x + self.merge(y))

    class CRNet(nn.Module):
        def __init__(self):
            super().__init__()
            dim = 2 * HEIGHT * WIDTH
            self.branch1 = nn.Sequential(
                conv_bn(2, 2, (3, 3)),
                lrelu(),
                conv_bn(2, 2, (1, 9)),
                lrelu(),
                conv_bn(2, 2, (9, 1)),
            )
            self.branch2 = conv_bn(2, 2, (3, 3))
            self.merge = nn.Sequential(lrelu(), conv_bn(4, 2, (1, 1)), lrelu())
            self.enc_dense = nn.Linear(dim, dim // cr)
            self.dec_dense = nn.Linear(dim // cr, dim)
            self.decoder = nn.Sequential(
                conv_bn(2, 2, (5, 5)), lrelu(), CRBlock(crblock_width), CRBlock(crblock_width)
            )
            for dense in (self.enc_dense, self.dec_dense):
                nn.init.xavier_uniform_(dense.weight)
                nn.init.zeros_(dense.bias)

        def forward(self, x):
            n = x.shape[0]
            feats = self.merge(torch.cat([self.branch1(x), self.branch2(x)], dim=1))
            code = self.enc_dense(feats.reshape(n, -1))
            y = self.dec_dense(code).reshape(n, 2, HEIGHT, WIDTH)
            return torch.sigmoid(self.decoder(y))

    return CRNet()


def run_torch(job, args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.inter_op_threads:
        torch.set_num_interop_threads(args.inter_op_threads)
    torch.manual_seed(0)
    model = build_torch_crnet()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.MSELoss()
    batch, total = args.batch_size, args.warmup + args.steps
    x = torch.from_numpy(
        np.random.default_rng(0).random((batch * total, 2, HEIGHT, WIDTH), dtype=np.float32)
    )
    stamps = []
    start = time.perf_counter()
    for i in range(total):
        xb = x[i * batch : (i + 1) * batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), xb)
        loss.backward()
        opt.step()
        loss.item()  # a host sync like Keras' logs (free on CPU)
        stamps.append(time.perf_counter())
    times = [t1 - t0 for t0, t1 in zip(stamps[args.warmup - 1 :], stamps[args.warmup :])]
    row = {
        "framework": "torch",
        "mode": "plain",
        "step_times": times,
        "first_step_s": stamps[0] - start,
    }
    return {
        "rows": [row],
        "trainable_params": count_params([p for p in model.parameters() if p.requires_grad]),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_version": torch.__version__,
    }


# ---------------------------------------------------------------------------------------------
# Profile: tf.profiler trace of a few Keras steps, summarised by op type (self time)
# ---------------------------------------------------------------------------------------------

_FRAMEWORK_EVENT = re.compile(
    r"::|^ThreadpoolListener|^ParallelFor|^BlockUntilReady|^__inference|^end: "
)


def _op_type(name):
    """TF graph op events are ``node/name:OpType``; XLA thunks are ``hlo_name.N``."""
    if ":" in name:
        return name.rsplit(":", 1)[1]
    return re.sub(r"\.\d+$", "", name)


def summarize_xspace(logdir, top):
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = [
        os.path.join(root, f)
        for root, _, files in os.walk(logdir)
        for f in files
        if f.endswith(".xplane.pb")
    ]
    space = xplane_pb2.XSpace()
    with open(paths[0], "rb") as fh:
        space.ParseFromString(fh.read())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    by_type, by_name, count = {}, {}, {}
    for line in plane.lines:
        if not (line.name.startswith("tf_Compute") or "Eigen" in line.name):
            continue
        ops = []
        for ev in line.events:
            name = plane.event_metadata[ev.metadata_id].name
            if _FRAMEWORK_EVENT.search(name):
                continue
            ops.append([ev.offset_ps, ev.offset_ps + ev.duration_ps, name, ev.duration_ps])
        ops.sort(key=lambda o: (o[0], -o[1]))
        stack = []  # self time = own duration minus the ops nested in it on the same thread
        for op in ops:
            while stack and stack[-1][1] <= op[0]:
                stack.pop()
            if stack:
                stack[-1][3] -= op[1] - op[0]
            stack.append(op)
        for _, _, name, self_ps in ops:
            kind = _op_type(name)
            by_type[kind] = by_type.get(kind, 0) + self_ps / 1e9
            count[kind] = count.get(kind, 0) + 1
            by_name[name] = by_name.get(name, 0) + self_ps / 1e9
    return by_type, count, by_name


def run_profile(job, args):
    import tensorflow as tf

    _set_tf_threads(args)
    import keras

    model = _keras_model(job["variant"])
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="mse", jit_compile=job["mode"] == "xla"
    )
    batch = args.batch_size
    x = np.random.default_rng(0).random(
        (batch * args.profile_steps, 2, HEIGHT, WIDTH), dtype=np.float32
    )
    model.fit(x, x, batch_size=batch, shuffle=False, epochs=1, verbose=0)  # warm-up / trace
    logdir = tempfile.mkdtemp(prefix="train_speed_profile_")
    tf.profiler.experimental.start(logdir)
    t0 = time.perf_counter()
    model.fit(x, x, batch_size=batch, shuffle=False, epochs=1, verbose=0)
    wall = time.perf_counter() - t0
    tf.profiler.experimental.stop()
    by_type, count, by_name = summarize_xspace(logdir, args.profile_top)
    return {
        "wall_s": wall,
        "steps": args.profile_steps,
        "by_type": by_type,
        "count": count,
        "by_name": by_name,
        "logdir": logdir,
        **keras_thread_info(),
    }


def print_profile(res, job, top):
    total = sum(res["by_type"].values())
    steps = res["steps"]
    onednn = {True: "on", False: "off"}.get(res["onednn"], "?")
    mode = "XLA" if job["mode"] == "xla" else "plain"
    if job.get("autojit"):
        mode += " + XLA auto-clustering of fusible ops"
    print(
        f"\nProfile: Keras {mode}, model={job['variant']}, oneDNN={onednn}, "
        f"batch {res['batch_size']}: {steps} steps traced in {res['wall_s']:.2f} s "
        f"wall ({1000 * res['wall_s'] / steps:.0f} ms/step, tracing adds overhead). Op self time "
        f"summed over the executor threads: {total / steps:.0f} ms/step. Trace: {res['logdir']}"
    )
    print("\n| op type | self ms/step | % | calls/step |\n|---|---:|---:|---:|")
    for kind, ms in sorted(res["by_type"].items(), key=lambda kv: -kv[1])[:top]:
        calls = res["count"][kind] / steps
        print(f"| {kind} | {ms / steps:.1f} | {100 * ms / total:.1f} | {calls:.0f} |")
    print("\n| single op | self ms/step | % |\n|---|---:|---:|")
    for name, ms in sorted(res["by_name"].items(), key=lambda kv: -kv[1])[:top]:
        short = re.sub(
            r"StatefulPartitionedCall/|crnet_cr\d+_\d+/|(?<=coder)_\d+|(?<=conv)_\d+", "", name
        )
        short = re.sub(r"(?<=_bn)_\d+", "", short)
        print(f"| {short} | {ms / steps:.1f} | {100 * ms / total:.1f} |")


# ---------------------------------------------------------------------------------------------
# Orchestration: every job (PyTorch, or a set of Keras runs with one oneDNN setting) runs in a
# fresh subprocess of this script.
# ---------------------------------------------------------------------------------------------




# mimokd.XLA_AUTOCLUSTER_FLAGS, written out: importing mimokd here would set its TensorFlow defaults
# (oneDNN, auto-clustering) in every job's environment, which each row must set itself
XLA_AUTOCLUSTER_FLAGS = "--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit --tf_xla_ops_to_cluster=FUSIBLE"


def worker_main(args):
    job = json.loads(args.worker)
    if job["kind"] != "torch":
        # TensorFlow before mimokd: mimokd's package __init__ may set a default for
        # TF_ENABLE_ONEDNN_OPTS, but the job's own setting (inherited or set by `spawn`) is the
        # one measured here; the tables show the resulting oneDNN state.
        import tensorflow  # noqa: F401
    try:
        if job["kind"] == "torch":
            try:
                import torch  # noqa: F401
            except ImportError as err:
                res = {"skipped": f"PyTorch is not importable ({err}); `pip install torch==2.13.0`"}
            else:
                res = run_torch(job, args)
        elif job["kind"] == "profile":
            res = run_profile(job, args)
        else:
            res = run_keras(job, args)
    except Exception as err:  # noqa: BLE001  (report it and let the other jobs run)
        import traceback

        traceback.print_exc()
        res = {"error": f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"}
    res["batch_size"] = args.batch_size
    print(RESULT_TAG + json.dumps(res), flush=True)


def spawn(job, args):
    """Run one job in a fresh interpreter with its process-wide settings; returns its result.

    ``job["onednn"]``: "on" / "off" sets TF_ENABLE_ONEDNN_OPTS=1 / 0, "env" leaves it as is.
    ``job["autojit"]``: add mimokd's XLA_AUTOCLUSTER_FLAGS to TF_XLA_FLAGS (XLA auto-clustering of the fusible
    ops only: element-wise ops and reductions are compiled by XLA, convolutions and matmuls stay
    on TensorFlow's kernels).
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")  # a CPU benchmark
    if job.get("onednn") in ("on", "off"):
        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if job["onednn"] == "on" else "0"
    if job.get("autojit"):
        env["TF_XLA_FLAGS"] = (env.get("TF_XLA_FLAGS", "") + " " + XLA_AUTOCLUSTER_FLAGS).strip()
    else:  # without mimokd's auto-clustering default (set even when mimokd is imported after TensorFlow)
        env["MIMOKD_XLA_AUTOCLUSTER"] = "0"
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)]
    for flag in (
        "steps",
        "warmup",
        "batch_size",
        "chunk",
        "threads",
        "inter_op_threads",
        "profile_steps",
    ):
        cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            res = json.loads(line[len(RESULT_TAG) :])
            res["process_s"] = time.perf_counter() - t0
            if "error" in res:
                sys.stderr.write(proc.stderr[-3000:])
            return res
    sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
    return {"error": f"worker exited with status {proc.returncode} and no result"}


def throughput(row):
    """(batch / median step time, steps * batch / total time) in samples/s."""
    times, batch = row["step_times"], row["batch_size"]
    return batch / statistics.median(times), batch * len(times) / sum(times)


def describe(row):
    if row["framework"] != "keras":
        return "plain"
    if row["mode"] == "xla":
        parts = ["XLA (jit_compile=True)"]
    elif row.get("autojit"):
        parts = ["XLA auto-clustering of fusible ops"]
    else:
        parts = ["plain"]
    parts.append(f"input={row['input']}")
    parts.append({True: "oneDNN=on", False: "oneDNN=off"}.get(row.get("onednn"), "oneDNN=?"))
    if row.get("variant", "zoo") != "zoo":
        parts.append(f"model copy: {row['variant']}")
    if row.get("spe", 1) != 1:
        parts.append(f"steps_per_execution={row['spe']}")
    return ", ".join(parts)


def run_job(job, args, rows, label=None):
    """Spawn a job, print and collect its rows; returns the raw result."""
    res = spawn(job, args)
    name = label or job["kind"]
    if "rows" not in res:
        status = f"SKIPPED: {res['skipped']}" if "skipped" in res else f"ERROR: {res.get('error')}"
        print(f"  {name}: {status}", flush=True)
        rows.append({"framework": job["kind"], "status": status, "mode": job.get("mode", "plain")})
        return res
    for row in res["rows"]:
        row.update(
            batch_size=res["batch_size"],
            onednn=res.get("onednn"),
            autojit=bool(job.get("autojit")),
            tag=job.get("tag"),
        )
        rows.append(row)
        med, mean = throughput(row)
        print(
            f"  {'PyTorch' if row['framework'] == 'torch' else 'Keras'} {describe(row)}: "
            f"{med:.1f} samples/s (median step), {mean:.1f} (mean); "
            f"first step {row['first_step_s']:.1f} s",
            flush=True,
        )
    print(
        f"    [{name}: process {res['process_s']:.0f} s, "
        f"load average now {os.getloadavg()[0]:.2f}]",
        flush=True,
    )
    return res


def print_table(rows, args):
    """One line per configuration; with ``--repeats`` > 1 the best repeat (least disturbed by
    other processes) is shown, and all repeats' medians in the last column."""
    groups = {}
    for row in rows:
        key = (row["framework"], describe(row) if "step_times" in row else row.get("mode"))
        groups.setdefault(key, []).append(row)
    best = {
        key: max(
            (r for r in group if "step_times" in r), key=lambda r: throughput(r)[0], default=None
        )
        for key, group in groups.items()
    }
    torch_best = [b for (fw, _), b in best.items() if fw == "torch" and b is not None]
    torch_sps = throughput(torch_best[0])[0] if torch_best else None
    reps = args.repeats > 1
    print(
        f"\nCRNet 1/4, batch {args.batch_size}, {args.steps} timed steps after {args.warmup} "
        f"warm-up steps; samples/s = batch / median step time (mean: over all timed steps)"
        + (f"; best of {args.repeats} repeats." if reps else ".")
        + "\n"
    )
    head = "| framework | mode | samples/s | samples/s (mean) | ratio to PyTorch |"
    print(head + (" repeats |" if reps else ""))
    print("|---|---|---:|---:|---:|" + ("---|" if reps else ""))
    for (fw, desc), group in groups.items():
        name = "PyTorch" if fw == "torch" else "Keras"
        row = best[(fw, desc)]
        if row is None:
            print(
                f"| {name} | {desc or '-'} | - | - | {group[0]['status']} |"
                + (" |" if reps else "")
            )
            continue
        med, mean = throughput(row)
        ratio = f"{med / torch_sps:.2f}" if torch_sps else "-"
        line = f"| {name} | {desc} | {med:.1f} | {mean:.1f} | {ratio} |"
        if reps:
            line += (
                " "
                + " / ".join(f"{throughput(r)[0]:.0f}" for r in group if "step_times" in r)
                + " |"
            )
        print(line)


def print_best(rows):
    timed = [r for r in rows if "step_times" in r]
    torch_rows = [r for r in timed if r["framework"] == "torch"]
    keras_rows = [r for r in timed if r["framework"] == "keras"]
    if not keras_rows:
        return
    best = max(keras_rows, key=lambda r: throughput(r)[0])
    line = f"\nFastest Keras: {describe(best)}, {throughput(best)[0]:.1f} samples/s"
    if torch_rows:
        torch_sps = max(throughput(r)[0] for r in torch_rows)
        line += f" = {throughput(best)[0] / torch_sps:.2f} x PyTorch ({torch_sps:.1f} samples/s)"
    print(line + ".")


def print_threads(results):
    for res in results:
        if res and "tf_version" in res:
            print(
                f"TensorFlow {res['tf_version']}: intra-op threads {res['tf_intra_op_threads']}, "
                f"inter-op threads {res['tf_inter_op_threads']}; oneDNN with "
                f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}: "
                f"{'on' if res['onednn'] else 'off'}"
            )
            break
    for res in results:
        if res and "torch_threads" in res:
            print(
                f"PyTorch {res['torch_version']}: torch.get_num_threads() = "
                f"{res['torch_threads']}, interop threads {res['torch_interop_threads']}"
            )
    print(f"CPU cores (os.cpu_count): {os.cpu_count()}")


def faster_input(rows, mode):
    """The faster input pipeline among the zoo-model rows of ``mode`` (numpy if none)."""
    cands = [
        r
        for r in rows
        if r["framework"] == "keras"
        and r["mode"] == mode
        and "step_times" in r
        and r["variant"] == "zoo"
        and r["spe"] == 1
        and not r["autojit"]
    ]
    return max(cands, key=lambda r: throughput(r)[0])["input"] if cands else "numpy"


def check_params(torch_res, keras_res):
    if torch_res and "rows" in torch_res and keras_res and "rows" in keras_res:
        n_keras, n_torch = keras_res["trainable_params"], torch_res["trainable_params"]
        print(f"Trainable parameters: Keras {n_keras:,}, PyTorch {n_torch:,}")
        assert n_keras == n_torch, "the PyTorch CRNet must have the Keras model's parameter count"


def _run(mode, inputs, variant="zoo", spe=1):
    return {"mode": mode, "variant": variant, "spe": spe, "inputs": list(inputs)}


def main_default(args):
    rows = []
    print("Measuring (every job in a fresh process):", flush=True)
    torch_res = env_res = None
    for rep in range(args.repeats):
        if args.repeats > 1:
            print(f" repeat {rep + 1}/{args.repeats}", flush=True)
        if not args.no_torch:
            torch_res = run_job({"kind": "torch"}, args, rows, "PyTorch")
        env_res = run_job(
            {
                "kind": "keras",
                "onednn": "env",
                "runs": [_run("plain", ["numpy", "tfdata"]), _run("xla", ["tfdata", "numpy"])],
            },
            args,
            rows,
            "Keras, oneDNN as the environment gives",
        )
        if args.speedup_rows:
            inp = faster_input(rows, "plain")
            if env_res.get("onednn") is False:
                run_job(
                    {"kind": "keras", "onednn": "on", "runs": [_run("plain", [inp])]},
                    args,
                    rows,
                    "Keras, TF_ENABLE_ONEDNN_OPTS=1",
                )
            run_job(
                {"kind": "keras", "onednn": "on", "autojit": True, "runs": [_run("plain", [inp])]},
                args,
                rows,
                "Keras, TF_ENABLE_ONEDNN_OPTS=1 + XLA auto-clustering of fusible ops",
            )
    print()
    print_threads([env_res, torch_res])
    print_table(rows, args)
    print_best(rows)
    print(
        f"Faster Keras input: plain {faster_input(rows, 'plain')}, XLA {faster_input(rows, 'xla')} "
        "(measured interleaved with the other input, in the same process)."
    )
    check_params(torch_res, env_res)


def main_experiments(args):
    """The speed-up matrix: oneDNN x XLA (jit_compile / auto-clustering) x model copy, input
    pipeline, steps_per_execution; every configuration's one-step numerics compared with the
    reference (zoo model, plain, oneDNN off)."""
    rows, results = [], []
    check_dir = tempfile.mkdtemp(prefix="train_speed_check_")
    print("Measuring (every job in a fresh process):", flush=True)
    torch_res = None
    if not args.no_torch:
        torch_res = run_job({"kind": "torch"}, args, rows, "PyTorch")
    jobs = []
    for onednn in ("off", "on"):
        runs = [_run("plain", ["numpy", "tfdata"]), _run("plain", ["numpy"], spe=10)]
        runs += [_run("plain", ["numpy"], v) for v in ("fused_bn", "xla_bn")]
        if onednn == "on":  # TF's default CPU kernels have no NCHW convolution
            runs += [_run("plain", ["numpy"], v) for v in ("nchw", "fused_bn+nchw")]
        runs += [_run("xla", ["numpy", "tfdata"]), _run("xla", ["numpy"], spe=10)]
        runs += [_run("xla", ["numpy"], v) for v in ("fused_bn", "nchw", "fused_bn+nchw")]
        jobs.append({"kind": "keras", "onednn": onednn, "tag": f"onednn_{onednn}", "runs": runs})
        runs = [_run("plain", ["numpy"]), _run("plain", ["numpy"], "xla_bn")]
        jobs.append(
            {
                "kind": "keras",
                "onednn": onednn,
                "autojit": True,
                "tag": f"onednn_{onednn}_autojit",
                "runs": runs,
            }
        )
    for rep in range(args.repeats):
        if rep and not args.no_torch:
            run_job({"kind": "torch"}, args, rows, "PyTorch")
        for job in jobs:
            job["check_dir"] = check_dir
            label = f"Keras oneDNN={job['onednn']}" + (
                " + auto-clustering" if job.get("autojit") else ""
            )
            results.append(run_job(job, args, rows, label))
    print()
    print_threads(results + [torch_res])
    print_table(rows, args)
    print_best(rows)
    print(
        "\nNumerics of one train-mode forward/backward from the same weights and batch, against "
        "the zoo model, plain, oneDNN off (max |dy|, relative L2 error of all gradients, max "
        "|d moving statistic|):\n"
    )
    ref_path = os.path.join(check_dir, "onednn_off_0.npz")
    if os.path.exists(ref_path):
        ref = dict(np.load(ref_path))
        print(
            "| configuration | max abs dy | grad rel. err | max abs d stat |\n|---|---:|---:|---:|"
        )
        seen = set()
        for row in rows:
            key = (row.get("tag"), row.get("run"))
            if row["framework"] != "keras" or key in seen:
                continue
            seen.add(key)
            path = os.path.join(check_dir, f"{key[0]}_{key[1]}.npz")
            if os.path.exists(path):
                dy, dg, ds = compare_numerics(ref, dict(np.load(path)))
                desc = describe(row).replace(f"input={row['input']}, ", "")
                print(f"| {desc} | {dy:.1e} | {dg:.1e} | {ds:.1e} |")
    check_params(torch_res, results[0])


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement (10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before them (2)")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument(
        "--chunk",
        type=int,
        default=5,
        help="timed steps per model.fit call; Keras measurements of one process take turns (5)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TF intra-op threads and torch.set_num_threads (0: as the machine gives)",
    )
    p.add_argument(
        "--inter-op-threads",
        type=int,
        default=0,
        help="TF inter-op threads and torch.set_num_interop_threads (0: as the machine gives)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every job this many times, round-robin, and report the best (1)",
    )
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    p.add_argument(
        "--no-speedup-rows",
        dest="speedup_rows",
        action="store_false",
        help="skip the Keras rows with the speed-ups (oneDNN, XLA auto-clustering)",
    )
    p.add_argument("--profile", action="store_true", help="profile one Keras configuration instead")
    p.add_argument("--profile-mode", choices=("plain", "xla"), default="plain")
    p.add_argument("--profile-model", choices=VARIANTS, default="zoo")
    p.add_argument(
        "--onednn",
        choices=("env", "on", "off"),
        default="env",
        help="TF_ENABLE_ONEDNN_OPTS for --profile (env: as the environment sets it)",
    )
    p.add_argument(
        "--profile-autojit",
        action="store_true",
        help="--profile with XLA auto-clustering of the fusible ops (TF_XLA_FLAGS)",
    )
    p.add_argument("--profile-steps", type=int, default=5, help="steps traced by --profile (5)")
    p.add_argument("--profile-top", type=int, default=15, help="rows of the --profile tables (15)")
    p.add_argument(
        "--experiments", action="store_true", help="run the speed-up matrix instead (~22 min)"
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 2 or args.warmup < 1:
        p.error("--steps must be >= 2 and --warmup >= 1")
    return args


def warn_if_busy():
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    print(f"Load average (1 min) before starting: {load:.2f} on {cores} cores.")
    if load > 0.5 * cores:
        print(
            "WARNING: the machine is busy; other processes will slow the measurements down "
            "(PyTorch's OpenMP threads suffer most). Prefer a quiet machine or --repeats 3."
        )


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    t0 = time.perf_counter()
    warn_if_busy()
    if args.profile:
        job = {
            "kind": "profile",
            "mode": args.profile_mode,
            "onednn": args.onednn,
            "variant": args.profile_model,
            "autojit": args.profile_autojit,
        }
        res = spawn(job, args)
        if "by_type" in res:
            print_profile(res, job, args.profile_top)
        else:
            print(res)
    elif args.experiments:
        main_experiments(args)
    else:
        main_default(args)
    print(f"\nTotal time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
