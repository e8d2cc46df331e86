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
    _finish(fig, ax, path, "epoch", "NMSE (dB)" if all("nmse" in m for m in metrics) else "value")


def _finish(fig, ax, path, xlabel, ylabel):
    """Label, grid and legend ``ax``; write ``fig`` to ``path`` as a PNG (atomically); close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_sweep(values, series, path, xlabel, ylabel="NMSE (dB)"):
    """Plot several ``{label: [y per value]}`` series against the swept ``values`` and save a PNG.

    ``None`` entries (a value a series does not have) are left out of that series.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for label, ys in series.items():
        points = [(x, y) for x, y in zip(values, ys) if y is not None]
        if points:
            ax.plot(*zip(*points), "o-", label=label)
    _finish(fig, ax, path, xlabel, ylabel)
