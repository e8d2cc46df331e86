"""Plots as PNG files (matplotlib, no display needed)."""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

from mimokd.fileio import atomic_path  # noqa: E402


#: Markers and line styles of the series of one figure, so that overlapping series stay apart.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def series_style(k):
    """Colour, marker and line style of the ``k``-th series of a figure (distinct for ``k`` < 32)."""
    return {"color": f"C{k % 10}", "marker": MARKERS[k % len(MARKERS)],
            "linestyle": LINESTYLES[(k + k // len(MARKERS)) % len(LINESTYLES)]}


def _read_stages(logs):
    """The rows of one run's CSVLogger files, on one epoch axis: ``[(epoch, row)]``, ``epoch`` from 1 and
    counting on through the later stages (``logs``: a path, or the paths of the stages in order)."""
    rows, offset = [], 0
    for log in [logs] if isinstance(logs, (str, Path)) else logs:
        with open(log, newline="") as f:
            stage = list(csv.DictReader(f))
        rows += [(offset + int(r["epoch"]) + 1, r) for r in stage]
        offset += len(stage)
    return rows


def plot_training_curves(logs, path, metrics=("nmse", "val_nmse")):
    """Plot per-epoch curves of several runs on one figure and save it as a PNG.

    Every run has its colour and marker (a one-epoch stage is a visible point); training metrics are
    solid, validation metrics (``val_*``) dashed. A run of several stages (e.g. encoder KD: distill,
    then fine-tune) is drawn on one epoch axis, the later stages' epochs following the earlier ones';
    epochs where a stage does not log a metric are left out. Epoch ticks are integers.

    Args:
        logs: ``{label: path to a CSVLogger file, or the paths of the run's stages in order}``.
        path: the PNG to write (atomically).
        metrics: the logged columns to draw (NMSE in dB by default: training and validation).

    Returns:
        The (closed) matplotlib figure, for inspection.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for k, (label, stages) in enumerate(logs.items()):
        rows = _read_stages(stages)
        style = series_style(k)
        for metric in metrics:
            points = [(epoch, float(r[metric])) for epoch, r in rows if r.get(metric) not in (None, "")]
            if points:
                ax.plot(*zip(*points), color=style["color"], marker=style["marker"], markersize=4,
                        linestyle="--" if metric.startswith("val_") else "-", label=f"{label} {metric}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _finish(fig, ax, path, "epoch", "NMSE (dB)" if all("nmse" in m for m in metrics) else "value")


def _label(ax, xlabel, ylabel, fontsize=8):
    """Axis labels, a light grid and the legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=fontsize)


def _save(fig, path):
    """Write ``fig`` to ``path`` as a PNG (atomically), close it and return it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return fig


def _finish(fig, ax, path, xlabel, ylabel):
    """Label, grid and legend ``ax``; write ``fig`` to ``path`` as a PNG (atomically); close and return it."""
    _label(ax, xlabel, ylabel)
    return _save(fig, path)


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

    ``None`` entries (a value a series does not have) are left out of that series. Every series has
    its colour, marker and line style (:func:`series_style`), so that series on top of each other
    (e.g. Kong et al.'s four DNN variants) stay distinguishable. Returns the (closed) figure.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for k, (label, ys) in enumerate(series.items()):
        points = [(x, y) for x, y in zip(values, ys) if y is not None]
        if points:
            ax.plot(*zip(*points), label=label, markersize=5, fillstyle="none", **series_style(k))
    return _finish(fig, ax, path, xlabel, ylabel)


def plot_points(series, path, xlabel, ylabel, logx=False, jitter=4.0):
    """Scatter several series of labelled points and save a PNG.

    Args:
        series: ``{legend label: [(x, y, point label or ""), ...]}``.
        path: the PNG to write (atomically).
        xlabel, ylabel: axis labels.
        logx: logarithmic x axis (e.g. FLOPs spanning decades).

    Series often coincide (the formats of one exported network share its FLOPs and nearly its NMSE):
    each has its own colour and hollow marker (:func:`series_style`) and is drawn shifted sideways by
    ``jitter`` points on the page (not in the data: the line's x values stay exact), so that every
    series stays visible. Returns the (closed) figure.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    shown = [(label, points) for label, points in series.items() if points]
    for k, (label, points) in enumerate(shown):
        xs, ys, texts = zip(*points)
        style = series_style(k)
        shift = offset_copy(ax.transData, fig=fig, x=jitter * (k - (len(shown) - 1) / 2), units="points")
        ax.plot(xs, ys, label=label, color=style["color"], marker=style["marker"], linestyle="none",
                fillstyle="none", markersize=6, transform=shift)
        for x, y, text in points:
            if text:
                ax.annotate(text, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if logx:
        ax.set_xscale("log")
    return _finish(fig, ax, path, xlabel, ylabel)


def plot_bars(groups, series, path, ylabel, logy=False):
    """Grouped bar chart and save a PNG.

    Args:
        groups: the labels along x (e.g. models).
        series: ``{bar label: [value per group, or None]}`` (e.g. a runtime's latency per model).
        path: the PNG to write (atomically).
        ylabel: y axis label.
        logy: logarithmic y axis.

    Returns:
        The (closed) figure.
    """
    fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(groups) + 2), 4.4), dpi=120)
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + i * width for g, v in enumerate(values) if v is not None]
        ax.bar(xs, [v for v in values if v is not None], width, label=label)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))], groups, rotation=30, ha="right", fontsize=7)
    if logy:
        ax.set_yscale("log")
    return _finish(fig, ax, path, "", ylabel)


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
