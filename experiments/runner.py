"""Run an :class:`~mimokd.experiments.spec.Experiment`: train its teacher and rows, evaluate, report.

Layout of the output directory::

    teachers/<teacher>_cr<k>/     the teacher's run (reused by every row; --teachers shares it)
    cr<k>/<run>/                  each row's run directory(ies) and its result.json
    results.md, results.json      the table: ours beside the paper's, with the data and the scale
    curves_cr<k>.png              validation NMSE per epoch of every row
    sweep.png                     NMSE against the swept setting (sweep tables only)

A row whose ``result.json`` exists (for the same scale and data) is not trained again, so an
interrupted experiment resumes where it stopped; inside a row, training resumes from its backup.

Split across machines (a cluster's job array): :func:`table_rows` numbers the student rows of the
table, ratio by ratio in table order; ``run_experiment(..., rows=(i, n))`` trains only those whose
index is ``i`` modulo ``n`` (strided, so every machine gets a share of each ratio), with the
teachers already trained (``rows="teachers"``, one ratio per machine with ``ratios``) in
``teachers_dir``; each row is its own run directory under ``out_dir``. Once those directories are
together in one ``out_dir``, :func:`merge_experiment` writes the table and plots exactly as a
single run would, or refuses, naming the missing rows.

The other figures (Kong et al., Zhang et al.) split the same way through :func:`run_grid`: a list of
their independent :class:`GridRun` s (each its own run directory) and a :class:`Share` (``--rows i/N``
or ``--merge``) of them.
"""

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from mimokd.channels import load_csi
from mimokd.experiments.spec import Run
from mimokd.export.flops import count_complexity
from mimokd.fileio import write_json, write_text
from mimokd.plots import plot_sweep, plot_training_curves
from mimokd.tables import markdown_table
from mimokd.train import TrainConfig, evaluate_autoencoder
from mimokd.train.methods import fit_method

logger = logging.getLogger(__name__)


def _codeword_mse(teacher, model, csi):
    """Test-set MSE between the teacher's and ``model``'s codewords (``None`` if lengths differ)."""
    if teacher is None or teacher.codeword_dim != model.codeword_dim:
        return None
    t = teacher.encoder.predict(csi, batch_size=500, verbose=0)
    s = model.encoder.predict(csi, batch_size=500, verbose=0)
    return float(np.mean((t - s) ** 2))


def _stored(run_dir, stamp):
    """``(row, curve_logs)`` of the finished row in ``run_dir`` (``None`` if it has no ``result.json``).

    Raises:
        ValueError: the result is for another scale or dataset.
    """
    result_path = Path(run_dir) / "result.json"
    if not result_path.exists():
        return None
    saved = json.loads(result_path.read_text())
    if saved.get("stamp") != stamp:
        raise ValueError(
            f"{run_dir} holds a result for another scale or dataset ({saved.get('stamp')}); "
            f"use another --out for {stamp}"
        )
    # relative to the run directory, so that run directories can be moved; older results: one absolute log
    logs = saved["curve_logs"] if "curve_logs" in saved else [saved["curve_log"]]
    return saved["row"], [Path(run_dir) / log for log in logs]


def _run_row(run, cr, teacher, data, run_dir, scale, seed, verbose, stamp, epochs=None):
    """Train and evaluate a row unless its ``result.json`` (same scale and data) exists."""
    stored = _stored(run_dir, stamp)
    if stored is not None:
        return stored
    start = time.perf_counter()
    model, extra, curve_logs = fit_method(
        run.method, run.model, cr, data["train"], data["val"], out_dir=run_dir, teacher=teacher,
        config=TrainConfig(epochs=epochs or scale.epochs, batch_size=scale.batch_size, seed=seed),
        finetune_epochs=scale.finetune_epochs(), verbose=verbose, **run.params,
    )
    train_s = time.perf_counter() - start
    metrics = evaluate_autoencoder(model, data["test"], batch_size=scale.batch_size)
    complexity = count_complexity(model.encoder)
    row = {
        "ratio": f"1/{cr}",
        "cr": cr,
        "network": run.label,
        "model": run.model,
        "method": run.method,
        "setting": ", ".join(f"{k}={v}" for k, v in run.params.items()),
        "params": dict(run.params),
        **metrics,
        "ue_params": complexity.params,
        "ue_params_binary": complexity.params_binary,
        "ue_mults": complexity.mults,
        "ue_flops": complexity.flops,
        "train_s": train_s,
        "mse_cm_end": _codeword_mse(teacher, model, data["test"]),
        **extra,
    }
    for key, value in run.paper.get(cr, {}).items():
        row[f"paper_{key}"] = value
    write_json(run_dir / "result.json", {"stamp": stamp, "row": row,
                                         "curve_logs": [str(Path(log).relative_to(run_dir)) for log in curve_logs]})
    return row, curve_logs


def _teacher_run(experiment, cr, teachers_dir):
    """The teacher's :class:`Run` at ``cr`` and its run directory."""
    run = Run(f"{experiment.teacher} (teacher)", experiment.teacher, paper=experiment.teacher_paper)
    return run, Path(teachers_dir) / f"{experiment.teacher}_cr{cr}"


def _teacher(experiment, cr, data, teachers_dir, scale, seed, verbose, stamp):
    """Train (or reuse) the teacher, for ``scale.teacher_epochs`` (a pretrained teacher's budget
    is not the students')."""
    run, run_dir = _teacher_run(experiment, cr, teachers_dir)
    row, log = _run_row(run, cr, None, data, run_dir, scale, seed, verbose, stamp, epochs=scale.teacher_epochs)
    return keras.saving.load_model(run_dir / "best.keras"), row, log


def _with_gains(rows):
    """Add ``gain_db``: NMSE of the same network's vanilla row at that ratio minus this row's."""
    vanilla = {(r["cr"], r["model"]): r["nmse_db"] for r in rows if r["method"] == "vanilla"}
    for r in rows:
        base = vanilla.get((r["cr"], r["model"]))
        r["gain_db"] = None if base is None or r["method"] == "vanilla" else base - r["nmse_db"]
    return rows


def table_rows(experiment, ratios=None):
    """The rows that ``rows=(i, n)`` indexes: ``(cr, run)`` of every student row, ratio by ratio in
    table order (``ratios``: default the table's). The teachers are not among them (``rows="teachers"``)."""
    return [(cr, run) for cr in tuple(ratios or experiment.ratios) for run in experiment.runs]


def parse_rows(text):
    """``--rows``: ``"i/N"`` -> ``(i, N)`` with ``0 <= i < N``, or ``"teachers"``.

    Raises:
        ValueError: any other text.
    """
    if text == "teachers":
        return text
    i, slash, n = text.partition("/")
    if not (slash and i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise ValueError(f"--rows takes i/N with 0 <= i < N (e.g. 0/4), or `teachers`. Received: {text!r}")
    return int(i), int(n)


def _stamp(scale, data, seed):
    """What a row's ``result.json`` must match to be reused: the data, seed and scale."""
    fields = asdict(scale)
    if fields["teacher_epochs"] in (None, scale.epochs):  # one budget for all: the stamp of old runs
        del fields["teacher_epochs"]
    return f"data={data} seed={seed} " + " ".join(f"{k}={v}" for k, v in fields.items())


def _describe(index, what, run_dir, out):
    """A row as named in messages: its index (``None``: a teacher), what it trains and its run directory."""
    run_dir = Path(run_dir)
    where = run_dir.relative_to(out) if run_dir.is_relative_to(out) else run_dir
    return f"{'teacher' if index is None else f'row {index}'} {what} ({where})"


def _merge_refusal(name, out, missing, total):
    """The error of a merge that lacks rows: names them, and the ``--rows`` command that trains each."""
    return ValueError(f"cannot merge {name} in {out}: {len(missing)} row(s) not finished: {'; '.join(missing)}. "
                      f"Run them (`mimokd experiment {name} --rows k/{total}` trains row k alone, with the same "
                      "scale options) or copy their run directories here")


@dataclass(frozen=True)
class GridRun:
    """One independent training run of a figure (:func:`run_grid`).

    Attributes:
        what: the run as named in messages (its scheme and setting).
        run_dir: its self-contained run directory.
        train: ``() -> result``: trains it, or reuses it when finished.
        stored: ``() -> result``: a finished run's result, ``None`` if not finished; trains nothing.
    """

    what: str
    run_dir: Path
    train: Callable
    stored: Callable


@dataclass(frozen=True)
class Share:
    """Which of the runs of experiment ``name`` a process handles: ``rows=(i, n)`` (:func:`parse_rows`)
    trains those whose index is ``i`` modulo ``n``; ``merge`` trains nothing and reads them all."""

    name: str
    rows: tuple = None
    merge: bool = False


def run_grid(runs, out_dir, share=None):
    """Run the :class:`GridRun` s ``runs`` of a figure, numbered in list order, all or a ``share``.

    Returns:
        the results of every run in order (``share`` ``None``: each trained or reused; ``share.merge``:
        each stored), or ``None`` after a share of ``rows=(i, n)``, whose caller writes no figure.

    Raises:
        ValueError: ``share.merge`` and runs not finished (named, with the ``--rows`` that trains them).
    """
    out = Path(out_dir)
    if share is None:
        return [_train(k, run) for k, run in enumerate(runs)]
    if share.merge:
        results = [run.stored() for run in runs]
        missing = [_describe(k, run.what, run.run_dir, out) for k, (run, result) in enumerate(zip(runs, results))
                   if result is None]
        if missing:
            raise _merge_refusal(share.name, out, missing, len(runs))
        return results
    i, n = share.rows
    chosen = [(k, run) for k, run in enumerate(runs) if k % n == i]
    if not chosen:
        logger.warning("--rows %d/%d selects none of the %d rows of %s", i, n, len(runs), share.name)
    for k, run in chosen:
        _train(k, run)
    return None


def _train(index, run):
    """Train (or reuse) the :class:`GridRun` ``run``, row ``index`` of its grid; returns its result."""
    logger.info("-- row %d: %s", index, run.what)
    return run.train()


def run_experiment(experiment, *, out_dir, scale=None, data="builtin-indoor", ratios=None, seed=0,
                   teachers_dir=None, verbose="auto", rows=None):
    """Run ``experiment`` (see the module docstring) and return its result rows.

    Args:
        experiment: an :class:`~mimokd.experiments.spec.Experiment`.
        out_dir: the output directory.
        scale: a :class:`~mimokd.experiments.spec.Scale` (default: ``experiment.small``).
        data: a CSI source for :func:`mimokd.channels.load_csi` (built-in indoor by default).
        ratios: the compression ratios to run (default: the table's; others have no paper numbers).
        seed: data and training seed.
        teachers_dir: where teachers are trained or found (default: ``out_dir/teachers``).
        rows: ``None``: the whole table, then the report. ``"teachers"``: only the teachers of
            ``ratios``. ``(i, n)``: only the rows of :func:`table_rows` whose index is ``i`` modulo ``n``,
            their teachers already in ``teachers_dir``; no report (:func:`merge_experiment` writes it).

    Raises:
        ValueError: with ``rows=(i, n)``, a teacher that these rows need is not trained yet.
    """
    scale = scale or experiment.small
    ratios = tuple(ratios or experiment.ratios)  # others than the table's run with no paper column
    out = Path(out_dir)
    teachers_dir = Path(teachers_dir or out / "teachers")
    stamp = _stamp(scale, data, seed)
    grid = list(enumerate(table_rows(experiment, ratios)))
    if isinstance(rows, tuple):
        grid = [(k, row) for k, row in grid if k % rows[1] == rows[0]]
        ratios = tuple(dict.fromkeys(cr for _, (cr, _) in grid))
        teachers = [(cr, *_teacher_run(experiment, cr, teachers_dir)) for cr in ratios]
        missing = [_describe(None, f"{run.label!r} at 1/{cr}", run_dir, out) for cr, run, run_dir in teachers
                   if _stored(run_dir, stamp) is None]
        if missing:
            raise ValueError(f"--rows {rows[0]}/{rows[1]} needs trained teachers, missing: {'; '.join(missing)}. "
                             f"Train them first (`--rows teachers`, `--cr` to split them) into {teachers_dir} "
                             "(--teachers), where every machine finds them")
        if not grid:
            logger.warning("--rows %d/%d selects none of the %d rows of %s", *rows, len(table_rows(experiment, ratios)),
                           experiment.name)
    elif rows == "teachers":
        grid = []
    logger.info("%s: %s [%s]\n  %s", experiment.name, experiment.title, experiment.source, stamp)
    csi = {split: load_csi(data, split=split, num_samples=getattr(scale, split), seed=seed)
           for split in ("train", "val", "test")}
    results, curves = [], {}
    for cr in ratios:
        logger.info("-- 1/%d: teacher %s", cr, experiment.teacher)
        teacher, row, log = _teacher(experiment, cr, csi, teachers_dir, scale, seed, verbose, stamp)
        if rows is None or rows == "teachers":
            results.append(row)
            curves.setdefault(cr, {})[row["network"]] = log
        for k, (_, run) in (item for item in grid if item[1][0] == cr):
            logger.info("-- 1/%d: %s (%s)%s", cr, run.label, run.method, "" if rows is None else f" [row {k}]")
            row, log = _run_row(run, cr, teacher, csi, out / f"cr{cr}" / run.slug, scale, seed, verbose, stamp)
            results.append(row)
            curves.setdefault(cr, {})[run.label] = log
    if rows is None:
        _write_report(experiment, out, _with_gains(results), curves, scale, data, seed)
    return results


def merge_experiment(experiment, *, out_dir, scale=None, data="builtin-indoor", ratios=None, seed=0,
                     teachers_dir=None):
    """Write the table and plots of ``experiment`` from the finished run directories in ``out_dir``
    (e.g. those of ``rows=(i, n)`` runs on several machines, copied together), exactly as a single
    :func:`run_experiment` writes them; nothing is trained. Returns the result rows.

    The arguments are those of the runs (the rows must have the same scale, data and seed).

    Raises:
        ValueError: naming the missing rows and teachers, when some are not finished.
    """
    scale = scale or experiment.small
    ratios = tuple(ratios or experiment.ratios)
    out = Path(out_dir)
    teachers_dir = Path(teachers_dir or out / "teachers")
    stamp = _stamp(scale, data, seed)
    index = {(cr, run.slug): k for k, (cr, run) in enumerate(table_rows(experiment, ratios))}
    rows, curves, missing = [], {}, []
    for cr in ratios:
        for run, run_dir, k in [(*_teacher_run(experiment, cr, teachers_dir), None)] + [
                (run, out / f"cr{cr}" / run.slug, index[cr, run.slug]) for run in experiment.runs]:
            stored = _stored(run_dir, stamp)
            if stored is None:
                missing.append(_describe(k, f"{run.label!r} at 1/{cr}", run_dir, out))
                continue
            rows.append(stored[0])
            curves.setdefault(cr, {})[run.label] = stored[1]
    if missing:
        raise _merge_refusal(experiment.name, out, missing, len(index))
    _write_report(experiment, out, _with_gains(rows), curves, scale, data, seed)
    return rows


COLUMNS = [
    ("ratio", "ratio"),
    ("network", "network"),
    ("method", "method"),
    ("setting", "setting"),
    ("nmse_db", "NMSE ours (dB)"),
    ("paper_nmse_db", "NMSE paper (dB)"),
    ("gain_db", "gain vs vanilla (dB)"),
    ("rho", "rho"),
    ("ue_params_binary", "UE params (1 bit = 1/32)"),
    ("ue_mults", "UE mults"),
    ("ue_flops", "UE FLOPs"),
    ("train_s", "train (s)"),
]


def _write_report(experiment, out, rows, curves, scale, data, seed):
    columns = list(COLUMNS)
    for key, header in experiment.extra:
        columns += [(key, f"{header} ours"), (f"paper_{key}", f"{header} paper")]
        if key.endswith("_s"):  # times: the paper gives hours
            columns[-1] = (f"paper_{key[:-2]}_h", f"{header[:-4]} paper (h)")
    if any("paper_train_h" in r for r in rows):
        columns.append(("paper_train_h", "train paper (h)"))
    header = (
        f"# {experiment.name}: {experiment.title}\n\n"
        f"Paper: {experiment.source}. {experiment.note}\n\n"
        f"Data: `{data}` (seed {seed}), {scale.train} training / {scale.val} validation / {scale.test} test "
        f"samples; {scale.epochs} epochs (the teacher {scale.teacher_epochs or scale.epochs}), batch "
        f"{scale.batch_size}. The paper trained on 100,000 samples for "
        f"{experiment.paper.epochs} epochs on its own data, so compare orderings and gains, not levels.\n\n"
        "NMSE: global mean over the test set, in dB (lower is better); gain: the same network's vanilla NMSE "
        "minus this row's (positive = KD helped). MSE_cm: mean squared difference of teacher and student "
        "codewords per element (end: test set after training; mid: validation set after the mimic stage).\n\n"
    )
    table = markdown_table(rows, columns)
    write_text(out / "results.md", header + table)
    write_json(out / "results.json", {"experiment": experiment.name, "source": experiment.source, "data": data,
                                      "seed": seed, "scale": asdict(scale), "rows": rows})
    for cr, logs in curves.items():
        plot_training_curves(logs, out / f"curves_cr{cr}.png", metrics=("val_nmse",))
    if experiment.sweep:
        points = [r for r in rows if experiment.sweep in r["params"]]
        plot_sweep([r["params"][experiment.sweep] for r in points], {
            "ours": [r["nmse_db"] for r in points],
            f"paper ({experiment.source})": [r.get("paper_nmse_db") for r in points],
        }, out / "sweep.png", xlabel=experiment.sweep)
