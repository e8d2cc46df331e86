#!/usr/bin/env python
"""Every trainer's speed as a user runs it, with and without XLA (issue 17, items 1 and 2).

Where ``train_speed.py`` times single ``model.fit`` steps of CRNet against PyTorch, this script
times *whole epochs* of the library's trainers (:func:`mimokd.train.fit_method`: training,
validation, the NMSE / rho metrics, the log and the checkpoints of the run directory), each with
``TrainConfig(jit_compile=False)`` (``off``), ``True`` (``on``), and ``False`` with XLA auto-clustering of
the fusible ops (``autojit``: ``TF_XLA_FLAGS``, process-wide; the ``off`` and ``on`` rows run without
it, ``MIMOKD_XLA_AUTOCLUSTER=0``), beside:

* ``plain fit``: ``create_model`` + ``compile(Adam(2e-3), "mse")`` + ``fit`` of the same student,
  after ``import mimokd`` (no metrics, no validation, no checkpoints): what the issue calls
  today's default;
* ``teacher forward``: the teacher's forward pass alone (``tf.function``, inference mode), to
  form the KD target ``vanilla student step + teacher forward`` (a KD step should cost at most
  1.3x that);
* the machine's float32 peak, measured by a large matmul in the same run, and the fraction of it
  that each row reaches (a CRNet 1/4 training step is about 31 MFLOP per sample).

The pair is Lu et al.'s (teacher ``crnet``, student ``bcrnet``) at 1/4 by default, so every KD
method runs on the same student; the data are uniform random ``[N, 2, 32, 32]`` CSI (speed does
not depend on the values). Every row runs in a fresh process (its own TensorFlow runtime and XLA
cache). ``samples/s`` is the training samples of one epoch over the median wall time of the epochs
after the first (``seconds`` of the run's ``log.csv``: training and validation); ``first epoch``
shows what tracing and the XLA compile add; ``call`` is samples over the wall time of the whole
call (compile, checkpoints and loading the best model included). Other work on the machine slows
every row: compare rows of one run only (the load average is printed).

Run ``python benchmarks/trainer_speed.py`` (about 30 minutes on 2 cores; ``--methods``,
``--samples``, ``--epochs``, ``--batch-size``, ``--teacher``, ``--student``, ``--cr``, ``--jit``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from mimokd import XLA_AUTOCLUSTER_FLAGS  # sets TF_XLA_FLAGS here too: `spawn` gives each worker its own

RESULT_TAG = "TRAINER_SPEED_RESULT "
METHODS = ("vanilla", "output-kd", "autoencoder-kd", "encoder-kd", "codeword-mimic")
STEP_MFLOP = 31.0  # MFLOP per sample of one CRNet 1/4 training step (forward + backward), see issue 17


def _data(args):
    import numpy as np

    rng = np.random.default_rng(0)
    return (rng.random((args.samples, 2, 32, 32), dtype=np.float32),
            rng.random((max(args.batch_size, args.samples // 10), 2, 32, 32), dtype=np.float32))


def peak_gflops(size=2048, repeats=10):
    """float32 GFLOP/s of a ``size`` x ``size`` matmul chain in TensorFlow (best of ``repeats``)."""
    import tensorflow as tf

    a = tf.random.uniform((size, size))
    matmul = tf.function(lambda x: tf.matmul(x, x))
    matmul(a).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def _epoch_rates(seconds, samples):
    """(steady samples/s: median of the epochs after the first, first epoch's seconds)."""
    later = seconds[1:] or seconds
    return samples / statistics.median(later), seconds[0]


def run_plain(args, jit):
    """``create_model`` + ``compile(Adam, "mse")`` + ``fit``: per-epoch wall times."""
    import keras

    from mimokd.zoo import create_model

    train, _ = _data(args)
    keras.utils.set_random_seed(0)
    model = create_model(args.student, cr=args.cr)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse", jit_compile=jit)
    seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    start = time.perf_counter()
    model.fit(train, train, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[EpochTimer()])
    return {"seconds": seconds, "call_s": time.perf_counter() - start}


def run_teacher_forward(args, jit):
    """The teacher's inference-mode forward pass over the training batches, per epoch."""
    import keras
    import tensorflow as tf

    from mimokd.zoo import create_model

    train, _ = _data(args)
    keras.utils.set_random_seed(0)
    teacher = create_model(args.teacher, cr=args.cr)
    forward = tf.function(lambda x: teacher(x, training=False), jit_compile=jit)
    batches = [tf.constant(train[i:i + args.batch_size]) for i in range(0, len(train), args.batch_size)]
    seconds, start = [], time.perf_counter()
    for _ in range(args.epochs):
        begin = time.perf_counter()
        for batch in batches:
            out = forward(batch)
        out.numpy()
        seconds.append(time.perf_counter() - begin)
    return {"seconds": seconds, "call_s": time.perf_counter() - start}


def run_method(args, method, jit):
    """``fit_method`` as the CLI and the experiments run it, in a fresh run directory."""
    import keras

    from mimokd.train import TrainConfig
    from mimokd.train.methods import fit_method
    from mimokd.train.runs import read_log
    from mimokd.zoo import create_model

    train, val = _data(args)
    keras.utils.set_random_seed(1)
    teacher = create_model(args.teacher, cr=args.cr)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, jit_compile=jit)
    extra = {"finetune_epochs": args.epochs} if method == "encoder-kd" else {}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        _, _, logs = fit_method(method, args.student, args.cr, train, val, out_dir=os.path.join(out, "run"),
                                teacher=teacher, config=config, verbose=0, **extra)
        call_s = time.perf_counter() - start
        stages = [[float(s) for s in read_log(log)["seconds"]] for log in logs]
    # encoder KD: the distillation stage (the KD step); its fine-tuning stage is a vanilla run
    return {"seconds": stages[0], "call_s": call_s, "stage_epochs": [len(s) for s in stages]}


def worker(job, args):
    import mimokd  # noqa: F401  (sets TF_ENABLE_ONEDNN_OPTS before TensorFlow loads)
    import tensorflow as tf

    if job["kind"] == "peak":
        return {"gflops": peak_gflops()}
    res = {"plain": run_plain, "teacher": run_teacher_forward}.get(job["kind"])
    jit = job["jit"] == "on"  # autojit: jit_compile off, TF_XLA_FLAGS set by `spawn`
    result = res(args, jit) if res else run_method(args, job["kind"], jit)
    result["tf_version"] = tf.__version__
    return result


def spawn(job, args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_XLA_FLAGS", None)
    if job.get("jit") == "autojit":
        env["TF_XLA_FLAGS"] = XLA_AUTOCLUSTER_FLAGS  # process-wide, so set in the worker's environment
    elif job["kind"] != "peak":
        env["MIMOKD_XLA_AUTOCLUSTER"] = "0"  # off / on: without mimokd's auto-clustering default
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job),
           *[f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
             if k not in ("worker", "methods", "jit", "repeats")]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    sys.stderr.write(proc.stderr[-3000:])
    return {"error": f"worker exited with status {proc.returncode} and no result"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--samples", type=int, default=4000, help="training samples per epoch (4000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per row (3: the first one compiles)")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--teacher", default="crnet")
    parser.add_argument("--student", default="bcrnet")
    parser.add_argument("--cr", type=int, default=4)
    parser.add_argument("--jit", nargs="+", default=["off", "on", "autojit"], choices=("off", "on", "autojit"),
                        help="off: no XLA; on: jit_compile=True; autojit: XLA auto-clustering (TF_XLA_FLAGS)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run every row this many times, alternating the XLA modes' order; the median is shown")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(RESULT_TAG + json.dumps(worker(json.loads(args.worker), args)), flush=True)
        return
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch compiles)")

    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; {args.samples} samples x "
          f"{args.epochs} epochs, batch {args.batch_size}; every row in a fresh process", flush=True)
    peak = spawn({"kind": "peak"}, args).get("gflops")
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s" if peak else "float32 peak: not measured", flush=True)
    runs = {}  # (kind, jit) -> one result per repeat
    for repeat in range(args.repeats):
        for kind in ("plain", "teacher", *args.methods):
            modes = args.jit if repeat % 2 == 0 else args.jit[::-1]  # alternate the order: drifts hit both
            for jit in modes:
                res = spawn({"kind": kind, "jit": jit}, args)
                if "error" in res:
                    print(f"  {kind}, XLA {jit}: ERROR {res['error']}", flush=True)
                    continue
                rate, first = _epoch_rates(res["seconds"], args.samples)
                runs.setdefault((kind, jit), []).append(
                    dict(rate=rate, first=first, call=args.samples * len(res["seconds"]) / res["call_s"]))
                print(f"  {kind}, XLA {jit}: {rate:.0f} samples/s (first epoch {first:.1f} s; load "
                      f"{os.getloadavg()[0]:.2f})", flush=True)
    rows = {key: {name: statistics.median(r[name] for r in results) for name in ("rate", "first", "call")}
            | {"spread": f"{min(r['rate'] for r in results):.0f}-{max(r['rate'] for r in results):.0f}"}
            for key, results in runs.items()}

    base = rows.get(("plain", "off"), {}).get("rate")
    print(f"\n{args.student} 1/{args.cr} (teacher {args.teacher}), batch {args.batch_size}. samples/s: training "
          "samples per second of the epochs after the first (training + validation), the median of "
          f"{args.repeats} repeat(s) (range: their min-max); higher is better.\n")
    print("| trainer | XLA | samples/s | range | vs plain fit (XLA off) | vs student + teacher forward "
          "| first epoch s | call samples/s | % of float32 peak |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (kind, jit), row in rows.items():
        student, teacher = rows.get(("vanilla", jit)), rows.get(("teacher", jit))
        kd = ""
        if kind in METHODS and kind != "vanilla" and student and teacher:
            budget = 1 / (1 / student["rate"] + 1 / teacher["rate"])  # samples/s of a student step + teacher pass
            kd = f"{budget / row['rate']:.2f}x the time"
        share = f"{100 * row['rate'] * STEP_MFLOP / 1e3 / peak:.1f}" if peak and kind in ("plain", "vanilla") else ""
        ratio = f"{row['rate'] / base:.2f}" if base else ""
        name = {"plain": "plain compile + fit", "teacher": "teacher forward only"}.get(kind, f"fit_method {kind}")
        print(f"| {name} | {jit} | {row['rate']:.0f} | {row['spread']} | {ratio} | {kd} | {row['first']:.1f} "
              f"| {row['call']:.0f} | {share} |")
    print(f"\nKD target (issue 17): a KD row within 1.3x the time of a vanilla student step plus the teacher's "
          f"forward pass. '% of peak' (plain and vanilla rows) assumes {STEP_MFLOP:g} MFLOP per "
          "sample, CRNet 1/4's step.")


if __name__ == "__main__":
    main()
