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


def _label(ax, xlabel, ylabel, fontsize=8):
    """Axis labels, a light grid and the legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=fontsize)


def _save(fig, path):
    """Write ``fig`` to ``path`` as a PNG (atomically) and close it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _finish(fig, ax, path, xlabel, ylabel):
    """Label, grid and legend ``ax``; write ``fig`` to ``path`` as a PNG (atomically); close it."""
    _label(ax, xlabel, ylabel)
    _save(fig, path)


def plot_delay_profiles(rows, path):
    """The delay profiles of :mod:`mimokd.channels.fidelity`, one panel per scenario.

    Args:
        rows: rows of :func:`mimokd.channels.fidelity.fidelity_table` (``scenario``, ``cr``,
            ``profile_original`` and ``profile_ours``: ``[32]`` shares, ``profile_tv``); rows without
            ``profile_ours`` (skipped models) are left out.
        path: the PNG to write (atomically). Solid: the original's profile implied by the model's
            first BatchNorm; dashed: ours, per compression ratio.
    """
    rows = [r for r in rows if r.get("profile_ours") is not None]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.2 * len(scenarios), 3.8), dpi=120, squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        for k, row in enumerate(r for r in rows if r["scenario"] == scenario):
            columns = range(len(row["profile_ours"]))
            ax.plot(columns, row["profile_original"], "-", color=f"C{k}", label=f"1/{row['cr']} original (BN)")
            ax.plot(columns, row["profile_ours"], "--", color=f"C{k}",
                    label=f"1/{row['cr']} ours (TV {row['profile_tv']:.2f})")
        ax.set_title(scenario)
        _label(ax, "delay column", "share of excess variance", fontsize=7)
    _save(fig, path)


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


def plot_points(series, path, xlabel, ylabel, logx=False):
    """Scatter several series of labelled points and save a PNG.

    Args:
        series: ``{legend label: [(x, y, point label or ""), ...]}``.
        path: the PNG to write (atomically).
        xlabel, ylabel: axis labels.
        logx: logarithmic x axis (e.g. FLOPs spanning decades).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for label, points in series.items():
        if not points:
            continue
        xs, ys, texts = zip(*points)
        ax.plot(xs, ys, "o", label=label, alpha=0.8)
        for x, y, text in points:
            if text:
                ax.annotate(text, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if logx:
        ax.set_xscale("log")
    _finish(fig, ax, path, xlabel, ylabel)


def plot_bars(groups, series, path, ylabel, logy=False):
    """Grouped bar chart and save a PNG.

    Args:
        groups: the labels along x (e.g. models).
        series: ``{bar label: [value per group, or None]}`` (e.g. a runtime's latency per model).
        path: the PNG to write (atomically).
        ylabel: y axis label.
        logy: logarithmic y axis.
    """
    fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(groups) + 2), 4.4), dpi=120)
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + i * width for g, v in enumerate(values) if v is not None]
        ax.bar(xs, [v for v in values if v is not None], width, label=label)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, rotation=30, ha="right", fontsize=7)
    if logy:
        ax.set_yscale("log")
    _finish(fig, ax, path, "", ylabel)


def plot_maps(maps, path, *, xlabel="delay tap", ylabel="angle bin", log_floor=1e-5):
    """Side-by-side heat maps of several 2-D power maps (log10 colour scale, shared range); save a PNG.

    Args:
        maps: ``{title: float [rows, columns]}``, non-negative.
        path: the PNG to write (atomically).
        log_floor: values below it are drawn at it.
    """
    import numpy as np

    logs = {title: np.log10(np.maximum(np.asarray(m, dtype=np.float64), log_floor)) for title, m in maps.items()}
    low, high = min(v.min() for v in logs.values()), max(v.max() for v in logs.values())
    fig, axes = plt.subplots(1, len(logs), figsize=(3.4 * len(logs) + 1.2, 3.4), dpi=120, squeeze=False,
                             sharey=True, layout="constrained")
    for ax, (title, values) in zip(axes[0], logs.items()):
        image = ax.imshow(values, origin="lower", aspect="auto", vmin=low, vmax=high, cmap="viridis")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0][0].set_ylabel(ylabel)
    fig.colorbar(image, ax=list(axes[0]), label="log10 power share")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
