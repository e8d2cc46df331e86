"""The deployment report: what each UE encoder costs and what accuracy each artifact keeps; the same
for each network of Kong et al.'s and Zhang et al.'s systems (:mod:`mimokd.export.systems`: no NMSE
there; a receiver's bits are checked exactly, its flipped bits counted in the ``bits flipped`` column).

For every model it gives, from :func:`report_model`:

- complexity of the part: parameters (float, and with 1-bit weights at 1/32, Lu et al. Table I),
  multiplications, FLOPs by Cui et al.'s formulas (13)-(14) and by a graph count
  (:func:`~mimokd.export.flops.graph_flops` of the exported graph, binarized kernels folded), and
  for binarized models the size of the weights with the 1-bit kernel packed
  (:func:`~mimokd.export.packed.write_packed`);
- per artifact (every format of :mod:`~mimokd.export.formats`): size on disk, single-sample latency
  in its own runtime (median and p90), the NMSE of the autoencoder with the artifact in place of
  the Keras part and the NMSE it loses. The parity checks of export apply, but the report
  measures every artifact first: a failing one is marked in the ``parity`` column, and
  :func:`write_report` raises :class:`~mimokd.export.parity.ParityError` once everything is
  written.

:func:`write_report` writes ``report.json``, ``report.md``, ``nmse_vs_flops.png`` (NMSE of every
artifact against the part's FLOPs across the zoo) and ``latency.png``.
"""

from pathlib import Path

import numpy as np

from mimokd.export.artifacts import (
    check_replaceable,
    deployable_parts,
    export_part,
    part_inputs_and_score,
    select_parts,
)
from mimokd.export.flops import count_complexity, graph_flops
from mimokd.export.formats import as_inputs, get_format
from mimokd.export.latency import measure_latency
from mimokd.export.packed import write_packed
from mimokd.export.parity import ParityError
from mimokd.export.runtimes import load_runner
from mimokd.fileio import atomic_dir
from mimokd.zoo.layers import BinarizedDense

COMPLEXITY_COLUMNS = [
    ("model", "model"),
    ("part", "part"),
    ("params", "params"),
    ("params_binary", "params (1-bit = 1/32)"),
    ("mults", "mults"),
    ("flops", "FLOPs (eq. 13-14)"),
    ("graph_flops", "FLOPs (graph count)"),
    ("float_bytes", "float32 weights (B)"),
    ("packed_bytes", "1-bit packed file (B)"),
]

ARTIFACT_COLUMNS = [
    ("model", "model"),
    ("part", "part"),
    ("format", "format"),
    ("runtime", "runtime"),
    ("size_bytes", "size (B)"),
    ("latency_median_us", "latency median (µs)"),
    ("latency_p90_us", "p90 (µs)"),
    ("nmse_db_artifact", "NMSE (dB)"),
    ("nmse_loss_db", "NMSE lost (dB)"),
    ("max_abs_diff", "max |Δ|"),
    ("mismatches", "bits flipped"),
    ("parity", "parity"),
]


def _has_binarized(model):
    return any(
        isinstance(layer, BinarizedDense) or (hasattr(layer, "layers") and _has_binarized(layer))
        for layer in model.layers
    )


def report_model(model, out_dir, *, calibration, check, parts=None, formats=None,
                 threads=1, warmup=100, runs=1000, label=None):
    """Export, check, time and count one model's parts.

    Args:
        model: an autoencoder (or lone encoder / decoder, then without NMSE), or a Kong / Zhang
            system (its ``calibration`` and ``check`` are the system's inputs, as for
            :func:`~mimokd.export.artifacts.export_model`).
        out_dir: folder for this model's artifacts, replaced whole (as by
            :func:`~mimokd.export.artifacts.export_model`): built beside it and swapped in once every
            artifact is timed, so a failure or a kill leaves the old folder as it was.
        calibration: CSI ``[N, 2, H, W]`` for int8 calibration.
        check: CSI ``[M, 2, H, W]`` held out, for parity and NMSE.
        parts: which parts (default the UE encoder; for a system, every part).
        formats: format names (default: each part's ``PART_FORMATS``).
        threads: intra-op threads of every runtime (1 = the single-thread figures).
        warmup, runs: untimed and timed single-sample calls per artifact.
        label: the model's name in the tables (default ``model.name``).

    Returns:
        ``(complexity_rows, artifact_rows)``: lists of dicts (columns above).

    Raises:
        ValueError: ``out_dir`` is a file, or holds files that are neither an export's nor a report's.
    """
    label = label or model.name
    available = deployable_parts(model)
    parts = select_parts(available, parts or (["encoder"] if "encoder" in available else None))
    out_dir = Path(out_dir)
    check_replaceable(out_dir, extra=[f"{name}.packed.npz" for name in parts], parts=available)
    complexity_rows, artifact_rows = [], []
    with atomic_dir(out_dir) as build:  # built beside out_dir, swapped in whole once every part is timed
        for name in parts:
            part = available[name]
            counts = count_complexity(part.model)
            row = {"model": label, "part": name, **counts.as_dict()}
            row["graph_flops"] = graph_flops(part.deployed())
            row["float_bytes"] = 4 * sum(int(np.prod(w.shape)) for w in part.model.weights)
            if _has_binarized(part.model):
                row["packed_bytes"] = write_packed(part.model, build / f"{name}.packed.npz")
            complexity_rows.append(row)
            sample = [x[:1] for x in as_inputs(part_inputs_and_score(model, part, check[:1])[0])]
            records = export_part(
                model, part, build, formats or part.formats, calibration=calibration, check=check,
                threads=threads, strict=False,
            )
            for record in records:
                runner = load_runner(record["path"], get_format(record["format"]), part.endpoint, threads=threads)
                latency = measure_latency(runner, sample if len(sample) > 1 else sample[0], warmup=warmup, runs=runs)
                artifact_rows.append(
                    {
                        "model": label,
                        **record,
                        "path": str(out_dir / Path(record["path"]).name),  # where it is once swapped in
                        "threads": runner.threads,
                        "latency_median_us": latency.median_us,
                        "latency_p90_us": latency.p90_us,
                        "latency_runs": latency.runs,
                        "flops": row["flops"],
                        "parity": "FAILED" if record["failure"] else "ok",
                    }
                )
    return complexity_rows, artifact_rows


def fastest(artifact_rows):
    """``{(model, part): the row with the lowest median latency}`` among the artifacts that passed."""
    best = {}
    for row in artifact_rows:
        if row.get("failure"):
            continue
        key = (row["model"], row["part"])
        if key not in best or row["latency_median_us"] < best[key]["latency_median_us"]:
            best[key] = row
    return best


def write_report(complexity_rows, artifact_rows, out_dir, meta=None):
    """Write ``report.json``, ``report.md``, ``nmse_vs_flops.png`` and ``latency.png`` to ``out_dir``.

    Raises:
        ParityError: after writing, if any artifact failed its parity check (all are listed).
    """
    from mimokd.fileio import write_json, write_text
    from mimokd.plots import plot_bars, plot_points
    from mimokd.tables import markdown_table

    out_dir = Path(out_dir)
    meta = meta or {}
    write_json(out_dir / "report.json", {**meta, "complexity": complexity_rows, "artifacts": artifact_rows})
    winners = [
        {"model": m, "part": p, "format": r["format"], "latency_median_us": r["latency_median_us"],
         "nmse_loss_db": r["nmse_loss_db"]}
        for (m, p), r in fastest(artifact_rows).items()
    ]
    lines = ["# Deployment report", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines += ["", "## Complexity", "", markdown_table(complexity_rows, COMPLEXITY_COLUMNS)]
    lines += ["## Artifacts", "", markdown_table(artifact_rows, ARTIFACT_COLUMNS)]
    lines += ["## Fastest artifact per part", "", markdown_table(winners, [
        ("model", "model"), ("part", "part"), ("format", "format"),
        ("latency_median_us", "latency median (µs)"), ("nmse_loss_db", "NMSE lost (dB)"),
    ])]
    failures = [row["failure"] for row in artifact_rows if row.get("failure")]
    if failures:
        lines += ["## Parity failures", ""] + [f"- {failure}" for failure in failures] + [""]
    write_text(out_dir / "report.md", "\n".join(lines))
    series = {}
    for row in artifact_rows:
        if row["nmse_db_artifact"] is not None:
            text = row["model"] if row["format"] == "tflite-f32" else ""
            series.setdefault(row["format"], []).append((row["flops"], row["nmse_db_artifact"], text))
    plot_points(series, out_dir / "nmse_vs_flops.png", "part FLOPs (Cui et al. eq. 13-14)", "NMSE (dB)", logx=True)
    groups = sorted({(r["model"], r["part"]) for r in artifact_rows})
    by_format = {}
    for row in artifact_rows:
        by_format.setdefault(row["format"], [None] * len(groups))[groups.index((row["model"], row["part"]))] = (
            row["latency_median_us"]
        )
    plot_bars([f"{m} {p}" for m, p in groups], by_format, out_dir / "latency.png",
              "single-sample latency, median (µs)", logy=True)
    if failures:
        raise ParityError(f"{len(failures)} artifact(s) failed parity (the report marks them):\n" + "\n".join(failures))
