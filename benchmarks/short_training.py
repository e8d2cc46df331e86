"""Short vanilla training of several zoo models on the same built-in data, in one table.

    python benchmarks/short_training.py --models csinet crnet crnet_se bcrnet --cr 4 \
        --epochs 20 --train-samples 20000 --out runs/short_training

Trains each model with the CRNet recipe (``mimokd.train.fit_autoencoder``), evaluates it on the
test split, and writes ``results.md`` / ``results.json`` and ``curves.png`` (validation NMSE per
epoch) to ``--out``. Prints the table and the training throughput of each model.
"""

import argparse
import time
from pathlib import Path

from mimokd.channels import load_csi
from mimokd.export.flops import count_complexity
from mimokd.fileio import write_json, write_text
from mimokd.plots import plot_training_curves
from mimokd.tables import markdown_table
from mimokd.train import TrainConfig, evaluate_autoencoder, fit_autoencoder

COLUMNS = [
    ("model", "model"),
    ("ratio", "ratio"),
    ("nmse_db", "NMSE (dB, global)"),
    ("nmse_db_per_batch", "NMSE (dB, per-batch 200)"),
    ("rho", "rho"),
    ("params_binary", "UE params (1-bit = 1/32)"),
    ("flops", "UE FLOPs"),
    ("train_s", "train time (s)"),
    ("samples_per_s", "samples/s"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["csinet", "crnet", "crnet_se", "bcrnet"])
    parser.add_argument("--cr", type=int, default=4)
    parser.add_argument("--data", default="builtin-indoor")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--train-samples", type=int, default=20000)
    parser.add_argument("--val-samples", type=int, default=2000)
    parser.add_argument("--test-samples", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--jit", action="store_true")
    parser.add_argument("--out", default="runs/short_training")
    args = parser.parse_args()

    out = Path(args.out)
    data = {
        split: load_csi(args.data, split=split, num_samples=n, progress=True)
        for split, n in (("train", args.train_samples), ("val", args.val_samples), ("test", args.test_samples))
    }
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, peak_lr=args.lr,
                         jit_compile=args.jit)
    rows, logs = [], {}
    for name in args.models:
        run = out / f"{name}_cr{args.cr}"
        start = time.perf_counter()
        model, _ = fit_autoencoder(name, data["train"], data["val"], out_dir=run, config=config,
                                   cr=args.cr, verbose=2)
        seconds = time.perf_counter() - start
        metrics = evaluate_autoencoder(model, data["test"])
        rows.append({
            "model": name, "ratio": f"1/{args.cr}", **metrics,
            **count_complexity(model.encoder).as_dict(),
            "train_s": round(seconds, 1),
            "samples_per_s": round(args.epochs * len(data["train"]) / seconds),
        })
        logs[name] = run / "log.csv"
    table = markdown_table(rows, COLUMNS)
    header = (f"# Short training on {args.data}: {args.train_samples} samples, {args.epochs} epochs, "
              f"batch {config.batch_size}, test {args.test_samples}\n\n")
    write_text(out / "results.md", header + table)
    write_json(out / "results.json", {"args": vars(args), "rows": rows})
    plot_training_curves(logs, out / "curves.png", metrics=("val_nmse",))
    print(header + table, end="")


if __name__ == "__main__":
    main()
