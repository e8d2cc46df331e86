"""Where a UE encoder's single-sample latency goes, per runtime and precision.

    python benchmarks/encoder_latency.py                 # CRNet 1/4, one thread
    python benchmarks/encoder_latency.py --model crnet_se --cr 16 --runs 3000

Splits the encoder into its convolution stack (CSI -> the flattened 2048 features) and its dense
head (features -> codeword), exports each stage and the whole encoder to LiteRT in float32,
int8-weights (dynamic range) and full-integer int8, and times them one sample at a time with
`mimokd.export.latency.measure_latency` (median / p90). Also times: the Python binding alone (a
LiteRT model that only reshapes its input), the whole encoder in onnxruntime and as a TensorFlow
SavedModel signature, and, with `--torch`, PyTorch eager (the independent CRNet of
`train_speed.py`, CRNet only). Weights are untrained: latency does not depend on their values,
and calibration uses random CSI. Run it on a quiet machine; it prints figures, asserts nothing.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def _stages(encoder):
    """``{name: keras.Model}``: the whole encoder, its conv stack and its dense head."""
    import keras

    dense = encoder.layers[-1]
    features = keras.Input(dense.input.shape[1:])
    return {
        "whole encoder": encoder,
        "conv stack": keras.Model(encoder.input, dense.input),
        "dense head": keras.Model(features, dense(features)),
        "binding only": keras.Model(features, keras.layers.Reshape((-1,))(features)),
    }


def _torch_encoder_latency(cr, runs, warmup, threads):
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from train_speed import build_torch_crnet

    from mimokd.export.latency import measure_latency

    torch.set_num_threads(threads)
    net = build_torch_crnet(cr=cr).eval()

    def encode(x):
        with torch.no_grad():
            feats = net.merge(torch.cat([net.branch1(x), net.branch2(x)], dim=1))
            return net.enc_dense(feats.reshape(x.shape[0], -1))

    return measure_latency(encode, torch.rand(1, 2, 32, 32), warmup=warmup, runs=runs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="crnet")
    parser.add_argument("--cr", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--torch", action="store_true", help="also PyTorch eager (CRNet only; needs torch)")
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from mimokd.export.artifacts import ENCODER
    from mimokd.export.formats import Endpoint, get_format, write_artifact
    from mimokd.export.latency import measure_latency
    from mimokd.export.runtimes import load_runner
    from mimokd.zoo import create_model

    encoder = create_model(args.model, cr=args.cr).encoder
    print(f"# {args.model} 1/{args.cr} UE encoder, {args.threads} thread(s), median / p90 of {args.runs} calls")
    csi = np.random.default_rng(0).random((64, 2, 32, 32), dtype=np.float32)
    stages = _stages(encoder)
    features = stages["conv stack"].predict(csi, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        for stage, model in stages.items():
            inputs = csi if stage in ("whole encoder", "conv stack") else features
            endpoint = ENCODER if stage == "whole encoder" else Endpoint("serve", "x", "y")
            formats = ["tflite-f32", "tflite-int8w", "tflite-int8"]
            if stage == "whole encoder":
                formats += ["onnx", "savedmodel"]
            elif stage == "binding only":
                formats = ["tflite-f32"]
            for name in formats:
                fmt = get_format(name)
                path = Path(tmp) / f"{stage.replace(' ', '_')}{fmt.suffix}"
                write_artifact(model, fmt, path, endpoint, calibration=inputs)
                runner = load_runner(path, fmt, endpoint, threads=args.threads)
                latency = measure_latency(runner, inputs[:1], warmup=args.warmup, runs=args.runs)
                print(f"{stage:14s} {name:13s} {fmt.runtime:12s} median {latency.median_us:8.1f} µs  "
                      f"p90 {latency.p90_us:8.1f} µs", flush=True)
    if args.torch:
        if args.model != "crnet":
            print("PyTorch eager: skipped (the PyTorch reference is CRNet only)")
        else:
            latency = _torch_encoder_latency(args.cr, args.runs, args.warmup, args.threads)
            print(f"{'whole encoder':14s} {'torch eager':13s} {'pytorch':12s} median {latency.median_us:8.1f} µs  "
                  f"p90 {latency.p90_us:8.1f} µs")


if __name__ == "__main__":
    main()
