"""Plots as PNG files (matplotlib, no display needed)."""

import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from mimokd.fileio import atomic_path  # noqa: E402


def plot_training_curves(logs, path, metrics=("nmse", "val_nmse")):
    """Plot per-epoch curves of several runs on one figure and save it as a PNG.

    Args:
        logs: ``{label: path to a CSVLogger file}``.
        path: the PNG to write (atomically).
        metrics: the logged columns to draw (NMSE in dB by default: training and validation).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for label, log in logs.items():
        with open(log, newline="") as f:
            rows = list(csv.DictReader(f))
        epochs = [int(r["epoch"]) + 1 for r in rows]
        for metric in metrics:
            style = "--" if metric.startswith("val_") else "-"
            ax.plot(epochs, [float(r[metric]) for r in rows], style, label=f"{label} {metric}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NMSE (dB)" if all("nmse" in m for m in metrics) else "value")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
