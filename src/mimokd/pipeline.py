"""The main job, end to end on built-in data: generate -> train teacher and student -> distill ->
evaluate -> export the UE encoder.

1. Generate built-in indoor CSI (train / val / test), write it in the COST2100 ``.mat`` format and
   read it back through the COST2100 loader, as a user's own files would be.
2. Train the teacher and the student (vanilla MSE training, warm-up cosine LR).
3. Train the student again by knowledge distillation from the teacher (encoder KD by default;
   any method of :mod:`mimokd.train.methods`).
4. Evaluate all three on the test split: NMSE (both conventions) and rho, UE complexity beside
   them; write ``results.md`` / ``results.json`` (the table) and ``curves.png`` (validation NMSE
   per epoch) to the output directory.
5. Export the distilled student's UE encoder in every format (SavedModel, ONNX, TFLite f32 / f16
   / int8) to ``export/``, each artifact checked in its own runtime, and add the artifacts' sizes
   and NMSE to the results.
"""

from pathlib import Path

import keras

from mimokd.channels import load_csi, save_cost2100
from mimokd.channels.cost2100 import cost2100_filename
from mimokd.export.artifacts import export_model
from mimokd.export.flops import count_complexity
from mimokd.fileio import write_json, write_text
from mimokd.plots import plot_training_curves
from mimokd.tables import markdown_table
from mimokd.train import TrainConfig, evaluate_autoencoder, fit_autoencoder
from mimokd.train.methods import NEEDS_TEACHER, fit_method

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
    ("rho", "rho"),
    ("params_binary", "UE params (1-bit = 1/32)"),
    ("mults", "UE mults"),
]


def run_pipeline(
    *,
    out_dir="runs/pipeline",
    teacher="crnet_cui",
    student="crnet_se",
    cr=16,
    method="encoder-kd",
    samples=(3000, 500, 1000),
    config=None,
    seed=0,
    scenario="indoor",
    strategy=None,
):
    """Run the main job (see the module docstring) and return its result rows.

    Args:
        out_dir: where data, runs, tables and the plot go.
        teacher, student: registered model names (default: Cui et al.'s pair, whose decoder
            learns within a few minutes on a CPU; see the README).
        cr: compression ratio 1/gamma.
        method: the KD method of step 3 (``mimokd.train.methods.NEEDS_TEACHER``).
        samples: ``(train, val, test)`` sample counts of the built-in data.
        config: :class:`~mimokd.train.TrainConfig` for every model.
        seed: data seed.
        scenario: ``"indoor"`` or ``"outdoor"`` built-in data.
        strategy: a ``tf.distribute`` strategy or its name for the vanilla runs (see
            ``mimokd.train.distribute``; the KD trainers run on the default device).
    """
    if method not in NEEDS_TEACHER:
        raise ValueError(f"Unknown KD method {method!r}. Expected one of {NEEDS_TEACHER}")
    out = Path(out_dir)
    config = config or TrainConfig(epochs=5, batch_size=50)
    data = {}
    print(f"[1/5] generating built-in {scenario} CSI {samples} -> {out / 'data'}")
    for split, count in zip(("train", "val", "test"), samples):
        path = out / "data" / cost2100_filename(split, scenario)
        save_cost2100(path, load_csi(f"builtin-{scenario}", split=split, num_samples=count, seed=seed))
        data[split] = load_csi(path)

    rows, logs, models = [], {}, {}

    def report(role, name, model, log):
        logs[f"{role} {name}"] = log
        metrics = evaluate_autoencoder(model, data["test"], batch_size=config.batch_size)
        counts = count_complexity(model.encoder).as_dict()
        rows.append({"role": role, "model": name, "ratio": f"1/{cr}", **metrics, **counts})

    print(f"[2/5] training the teacher {teacher} and the student {student} 1/{cr} for {config.epochs} epochs")
    for role, name in (("teacher", teacher), ("student", student)):
        run_dir = out / f"{role}_{name}_cr{cr}"
        fit_autoencoder(name, data["train"], data["val"], out_dir=run_dir, config=config, strategy=strategy, cr=cr)
        models[role] = keras.saving.load_model(run_dir / "best.keras")
        report(role, name, models[role], run_dir / "log.csv")

    print(f"[3/5] distilling the student {student} from the teacher by {method}")
    model, _, log = fit_method(method, student, cr, data["train"], data["val"], out_dir=out / f"student_{method}",
                               teacher=models["teacher"], config=config)
    report(f"student, {method}", student, model, log)

    print(f"[4/5] exporting the distilled student's UE encoder to {out / 'export'}, each artifact checked")
    artifacts = export_model(model, out / "export", calibration=data["train"][:200], check=data["test"],
                             parts=["encoder"], threads=1)["artifacts"]

    print(f"[5/5] writing {out / 'results.md'}, results.json, curves.png")
    table = markdown_table(rows, RESULT_COLUMNS)
    exported = markdown_table(artifacts, EXPORT_COLUMNS)
    write_text(
        out / "results.md",
        f"# mimokd pipeline: built-in {scenario} CSI, {samples[0]} training samples, "
        f"{config.epochs} epochs\n\n{table}\n## The distilled student's UE encoder, exported\n\n{exported}",
    )
    write_json(out / "results.json", {"samples": list(samples), "train": vars(config), "rows": rows,
                                      "exported": artifacts})
    plot_training_curves(logs, out / "curves.png", metrics=("val_nmse",))
    print(table, exported, sep="\n", end="")
    return rows
