"""Plots: every series in a legend is visible and told apart from the others; training stages share one
integer epoch axis. Checked on the figures' Line2D data, not on pixels."""

import itertools
import math

import numpy as np

from mimokd.plots import plot_points, plot_sweep, plot_training_curves, series_style


def assert_every_legend_entry_visible(fig):
    """Every labelled curve has a legend entry and at least one visible point: a marker, or a line
    through two finite points."""
    for ax in fig.axes:
        lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
        assert ax.get_legend() is not None
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [line.get_label() for line in lines]
        for line in lines:
            finite = [(x, y) for x, y in zip(line.get_xdata(), line.get_ydata()) if math.isfinite(y)]
            marker = line.get_marker() not in (None, "None", "", " ")
            assert line.get_visible() and (line.get_alpha() or 1) > 0 and finite, line.get_label()
            assert marker or (len(finite) >= 2 and line.get_linestyle() not in ("None", "")), line.get_label()


def styles(lines):
    return [(line.get_color(), line.get_marker(), line.get_linestyle()) for line in lines]


def write_log(path, columns, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(["epoch", *columns]) + "\n"
                    + "".join(",".join(map(str, [epoch, *row])) + "\n" for epoch, row in enumerate(rows)))
    return path


def test_series_styles_are_distinct():
    assert len({tuple(series_style(k).values()) for k in range(32)}) == 32


def test_kd_stages_continue_on_one_integer_epoch_axis(tmp_path):
    # the pipeline's curves.png: a teacher, and a student distilled for 3 epochs (codeword loss only),
    # then fine-tuned for 1 (its only val_nmse point); codeword mimic logs val_nmse in both of its stages
    teacher = write_log(tmp_path / "teacher.csv", ["val_nmse"], [[-3.0], [-5.0], [-6.0]])
    distill = write_log(tmp_path / "kd" / "distill.csv", ["loss", "val_loss"], [[0.3, 0.2]] * 3)
    finetune = write_log(tmp_path / "kd" / "finetune.csv", ["loss", "val_nmse"], [[0.1, -7.5]])
    mimic = write_log(tmp_path / "cm" / "mimic.csv", ["val_nmse"], [[-1.0], [-2.0]])
    explore = write_log(tmp_path / "cm" / "explore.csv", ["val_nmse"], [[-2.5], [-3.0], [-3.5]])
    logs = {"teacher": teacher, "encoder KD": [distill, finetune], "codeword mimic": [mimic, explore]}
    fig = plot_training_curves(logs, tmp_path / "curves.png", metrics=("val_nmse",))
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert_every_legend_entry_visible(fig)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines) == ["teacher val_nmse", "encoder KD val_nmse", "codeword mimic val_nmse"]
    assert list(lines["teacher val_nmse"].get_xdata()) == [1, 2, 3]
    assert list(lines["encoder KD val_nmse"].get_xdata()) == [4]  # after the 3 distillation epochs, not at 1
    assert list(lines["encoder KD val_nmse"].get_ydata()) == [-7.5]
    assert list(lines["codeword mimic val_nmse"].get_xdata()) == [1, 2, 3, 4, 5]  # no restart at 1
    assert all(float(x).is_integer() for line in lines.values() for x in line.get_xdata())
    ticks = fig.axes[0].get_xticks()
    assert np.array_equal(ticks, np.round(ticks))  # integer epoch ticks
    assert len(set(styles(lines.values()))) == 3


def test_overlapping_sweep_series_stay_distinguishable(tmp_path):
    # Kong et al. Fig. 2 at a small scale: four DNN variants on the same sum rates, the baselines below
    dnn = ["DNN, KD", "DNN, no KD", "DNN, sigmoid STE, KD", "DNN, sigmoid STE, no KD"]
    series = {**{label: [1.0, 2.0, 3.0] for label in dnn}, "BD": [0.5, 1.0, 1.5], "RBD": [0.6, None, 1.6]}
    fig = plot_sweep([0, 10, 20], series, tmp_path / "sweep.png", "P (dB)", "sum rate")
    assert_every_legend_entry_visible(fig)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == list(series)
    assert len(set(styles(lines))) == len(lines)  # colour, marker and line style: each its own
    assert len({line.get_marker() for line in lines}) == len(lines)
    assert len({line.get_linestyle() for line in lines[:4]}) == 4  # the four DNN curves differ in line style too
    assert list(lines[-1].get_xdata()) == [0, 20]  # a missing value is left out


def test_coinciding_points_of_every_series_are_visible(tmp_path):
    # nmse_vs_flops.png: seven formats of two networks share each network's FLOPs and (nearly) its NMSE
    formats = ["keras", "savedmodel", "onnx", "tflite-f32", "tflite-f16", "tflite-dynamic", "tflite-int8"]
    series = {f: [(1e5, -10.0, "crnet" if f == "tflite-f32" else ""), (4e6, -14.0, "")] for f in formats}
    fig = plot_points(series, tmp_path / "points.png", "FLOPs", "NMSE (dB)", logx=True)
    assert_every_legend_entry_visible(fig)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == formats
    assert all(list(line.get_xdata()) == [1e5, 4e6] for line in lines)  # the data stay exact
    assert len({line.get_marker() for line in lines}) == len(lines) and len(set(styles(lines))) == len(lines)
    drawn = [line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()])) for line in lines]
    for a, b in itertools.combinations(drawn, 2):  # on the page, no marker hides another one
        assert np.all(np.linalg.norm(a - b, axis=1) > 3), "two series drawn at the same pixel"


def test_series_without_points_get_no_legend_entry(tmp_path):
    series = {"shown": [(1.0, 2.0, "")], "empty": []}
    fig = plot_points(series, tmp_path / "points.png", "x", "y")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["shown"]
    assert_every_legend_entry_visible(fig)
