"""The main job, end to end: data -> a pretrained teacher -> distill a student -> evaluate -> export
the UE encoder.

1. Generate CSI (train / val / test; by default the calibrated ``cost2100-indoor`` recipe, the
   first drops of each split of seed 0, so the test samples are the first samples of the
   pretrained entries' fixed test split), write it in the COST2100 ``.mat`` format and read it
   back through the COST2100 loader, as a user's own files would be.
2. Load the teacher's pretrained weights (``create_model(teacher, weights=data)``: from the
   checkout, no download). Where the registry has no entry for it, train the teacher here instead,
   and say so.
3. Train the student here (vanilla MSE, warm-up cosine LR; its pretrained weights, where registered,
   are evaluated beside it), and again by knowledge distillation
   from the teacher (encoder KD by default: its encoder learns the teacher's codewords, then it is
   joined to the teacher's decoder and fine-tuned; any method of :mod:`mimokd.train.methods`).
4. Evaluate every model on the test split: NMSE (both conventions) and rho, the paper's figure
   where the experiments of :mod:`mimokd.experiments.csi_kd` have one, UE complexity; write
   ``results.md`` / ``results.json`` and ``curves.png`` (validation NMSE per epoch).
5. Export the distilled student's UE encoder in every format (SavedModel, ONNX, TFLite f32 / f16
   / int8) to ``export/``, each artifact checked in its own runtime, and add the artifacts' sizes
   and NMSE to the results.
"""

import logging
from pathlib import Path

import keras

from mimokd.channels import load_csi, save_cost2100
from mimokd.channels.cost2100 import cost2100_filename
from mimokd.channels.recipes import RECIPES, split_samples
from mimokd.export.artifacts import export_model
from mimokd.export.flops import count_complexity
from mimokd.fileio import write_json, write_text
from mimokd.plots import plot_training_curves
from mimokd.pretrained.registry import UnknownEntryError, find_entry
from mimokd.tables import markdown_table
from mimokd.train import TrainConfig, evaluate_autoencoder, fit_autoencoder
from mimokd.train.methods import NEEDS_TEACHER, fit_method
from mimokd.zoo import create_model

logger = logging.getLogger(__name__)

EXPORT_COLUMNS = [
    ("format", "format"),
    ("runtime", "runtime"),
    ("size_bytes", "size (B)"),
    ("nmse_db_artifact", "NMSE (dB)"),
    ("nmse_loss_db", "NMSE lost (dB)"),
    ("max_abs_diff", "max |diff| to Keras"),
]

RESULT_COLUMNS = [
    ("role", "role"),
    ("model", "model"),
    ("ratio", "ratio"),
    ("nmse_db", "NMSE (dB, global)"),
    ("nmse_db_per_batch", "NMSE (dB, per-batch)"),
    ("paper_nmse_db", "paper (dB)"),
    ("rho", "rho"),
    ("params_binary", "UE params (1-bit = 1/32)"),
    ("mults", "UE mults"),
]


MEANING = (
    "NMSE: lower is better; 0 dB is a model that outputs nothing (all 0.5), -10 dB leaves a tenth of "
    "the channel's energy as error. The paper column is the authors' figure at their scale (1,000+ "
    "epochs of 100,000 samples of the original COST2100 files; Lu et al.'s CRNet / BCRNet only: Cui "
    "et al. report 3GPP data); the rows trained here ran for minutes."
)


def _paper_figures(teacher, student, cr, data):
    """The papers' NMSE (dB) for the teacher and the vanilla student at ``cr``, where one exists.

    From the experiments of :mod:`mimokd.experiments.csi_kd` whose teacher is ``teacher`` and whose
    paper numbers are indoor COST2100 ones (Lu et al.), so only for ``cost2100-indoor``.
    """
    from mimokd.experiments.csi_kd import LU_TABLE1

    if data != "cost2100-indoor" or LU_TABLE1.teacher != teacher:
        return {}
    figures = {"teacher": LU_TABLE1.teacher_paper.get(cr, {}).get("nmse_db")}
    for run in LU_TABLE1.runs:
        if run.model == student and run.method == "vanilla":
            figures["student"] = run.paper.get(cr, {}).get("nmse_db")
    return figures


def _entry_or_none(model, cr, data):
    """The registered entry of ``model`` at ``cr`` for ``data``, or ``None``."""
    try:
        return find_entry(model, cr, data)
    except UnknownEntryError:
        return None


def _generate_data(data, samples, seed, out):
    """``{split: CSI [n, 2, 32, 32]}``, written as COST2100 ``.mat`` files and read back."""
    scenario = "outdoor" if "outdoor" in data else "indoor"
    csi = {}
    for split, count in zip(("train", "val", "test"), samples):
        if data in RECIPES:  # the first drops of the split, as `mimokd data generate --split` writes them
            values = split_samples(data, split, count, seed)["HT"]
        else:
            values = load_csi(data, split=split, num_samples=count, seed=seed)
        path = out / "data" / cost2100_filename(split, scenario)
        save_cost2100(path, values)
        csi[split] = load_csi(path)
    return csi


def run_pipeline(
    *,
    out_dir="runs/pipeline",
    teacher="crnet_cui",
    student="crnet_se",
    cr=16,
    method="encoder-kd",
    data="cost2100-indoor",
    samples=(3000, 500, 1000),
    config=None,
    seed=0,
    strategy=None,
    pretrained=True,
    weights_dir=None,
    formats=None,
):
    """Run the main job (see the module docstring) and return its result rows.

    Progress goes to the ``mimokd.pipeline`` logger (INFO); the results to ``results.md`` (which
    ``mimokd pipeline`` prints).

    Args:
        out_dir: where data, runs, tables and the plot go.
        teacher, student: registered model names (default: Cui et al.'s pair, whose decoder learns
            within minutes on a CPU, where the original CRNet decoder sits near 0 dB for thousands
            of steps; see the README).
        cr: compression ratio 1/gamma.
        method: the KD method of step 3 (``mimokd.train.methods.NEEDS_TEACHER``).
        data: a recipe of ``mimokd data list`` (generated here, seed ``seed``) or a ``load_csi``
            source such as ``builtin-indoor``.
        samples: ``(train, val, test)`` sample counts.
        config: :class:`~mimokd.train.TrainConfig` for every model trained here.
        seed: data seed.
        strategy: a ``tf.distribute`` strategy or its name for the vanilla runs (see
            ``mimokd.train.distribute``; the KD trainers run on the default device).
        pretrained: load the teacher's registered weights for ``data`` when they exist (else, or
            when False, the teacher is trained here).
        weights_dir: a folder of offline weight files (see ``mimokd.pretrained.storage``).
        formats: the encoder's export formats (default: every format of
            :data:`~mimokd.export.formats.PART_FORMATS`, each checked in its runtime).
    """
    if method not in NEEDS_TEACHER:
        raise ValueError(f"Unknown KD method {method!r}. Expected one of {NEEDS_TEACHER}")
    out = Path(out_dir)
    config = config or TrainConfig(epochs=5, batch_size=50)
    logger.info("[1/5] generating %s CSI %s -> %s", data, samples, out / "data")
    csi = _generate_data(data, samples, seed, out)
    paper = _paper_figures(teacher, student, cr, data)
    rows, logs, models = [], {}, {}

    def report(role, name, model, log=None, paper_role=None):
        if log is not None:
            logs[f"{role} {name}"] = log
        metrics = evaluate_autoencoder(model, csi["test"], batch_size=config.batch_size)
        counts = count_complexity(model.encoder).as_dict()
        rows.append({"role": role, "model": name, "ratio": f"1/{cr}", **metrics,
                     "paper_nmse_db": paper.get(paper_role), **counts})

    entry = _entry_or_none(teacher, cr, data) if pretrained else None
    if pretrained and entry is None:
        logger.info("      no pretrained %s 1/%d for %s (`mimokd pretrained list`); the teacher is trained here",
                    teacher, cr, data)
    if entry is not None:
        logger.info("[2/5] loading the pretrained teacher %s (%d epochs, %.2f dB on its test split); training the "
                    "student %s 1/%d for %d epochs", entry.name, entry.recipe.epochs, entry.metrics.nmse_db, student,
                    cr, config.epochs)
        models["teacher"] = create_model(teacher, cr=cr, weights=data, weights_dir=weights_dir)
        report("teacher (pretrained)", teacher, models["teacher"], paper_role="teacher")
        trained_here = (("student", student),)
    else:
        logger.info("[2/5] training the teacher %s and the student %s 1/%d for %d epochs", teacher, student, cr,
                    config.epochs)
        trained_here = (("teacher", teacher), ("student", student))
    for role, name in trained_here:
        run_dir = out / f"{role}_{name}_cr{cr}"
        fit_autoencoder(name, csi["train"], csi["val"], out_dir=run_dir, config=config, strategy=strategy, cr=cr)
        models[role] = keras.saving.load_model(run_dir / "best.keras")
        report(role, name, models[role], run_dir / "log.csv", paper_role=role)
    # the student's own pretrained weights, for comparison
    if pretrained and _entry_or_none(student, cr, data) is not None:
        report("student (pretrained)", student,
               create_model(student, cr=cr, weights=data, weights_dir=weights_dir), paper_role="student")

    logger.info("[3/5] distilling the student %s from the teacher by %s", student, method)
    model, _, stages = fit_method(method, student, cr, csi["train"], csi["val"], out_dir=out / f"student_{method}",
                               teacher=models["teacher"], config=config)
    report(f"student, {method}", student, model, stages)  # its stages on one epoch axis in curves.png

    logger.info("[4/5] exporting the distilled student's UE encoder to %s, each artifact checked", out / "export")
    artifacts = export_model(model, out / "export", calibration=csi["train"][:200], check=csi["test"],
                             parts=["encoder"], formats=formats, threads=1)["artifacts"]

    logger.info("[5/5] writing %s, results.json, curves.png", out / "results.md")
    table = markdown_table(rows, RESULT_COLUMNS)
    exported = markdown_table(artifacts, EXPORT_COLUMNS)
    write_text(
        out / "results.md",
        f"# mimokd pipeline: {data} CSI, {samples[0]} training samples, {config.epochs} epochs\n\n{table}\n"
        f"{MEANING}\n\n## The distilled student's UE encoder, exported\n\n{exported}",
    )
    write_json(out / "results.json", {"data": data, "samples": list(samples), "train": vars(config),
                                      "teacher_entry": None if entry is None else entry.name, "rows": rows,
                                      "exported": artifacts})
    plot_training_curves(logs, out / "curves.png", metrics=("val_nmse",))
    return rows
