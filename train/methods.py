"""Every training method by name: one call that trains a zoo student and returns the deployable
autoencoder, for the pipeline, the experiments and scripts.

======================  =====================================================================
``vanilla``             MSE to the ground truth (:func:`~mimokd.train.vanilla.fit_autoencoder`)
``output-kd``           Tang et al. output KD (:func:`~mimokd.train.distill.fit_distillation`)
``autoencoder-kd``      Cui et al. eq. (10) (:func:`~mimokd.train.distill.fit_distillation`)
``codeword-mimic``      Lu et al. eq. (4)-(5), mimic-explore
                        (:func:`~mimokd.train.codeword_mimic.fit_codeword_mimic`)
``encoder-kd``          Cui et al. eq. (11) + fine-tuning (:func:`~mimokd.train.distill.fit_encoder_kd`)
``ip-kd``               the two-party variant (:func:`~mimokd.train.ip_kd.fit_ip_kd`)
``sequential``          BS-first sequential training (:func:`~mimokd.train.ip_kd.fit_sequential`)
======================  =====================================================================
"""

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from mimokd.train.codeword_mimic import fit_codeword_mimic, stage_codeword_mse
from mimokd.train.distill import fit_distillation, fit_encoder_kd
from mimokd.train.ip_kd import fit_ip_kd, fit_sequential
from mimokd.train.runs import read_log
from mimokd.train.vanilla import TrainConfig, fit_autoencoder
from mimokd.zoo import create_model

METHODS = ("vanilla", "output-kd", "autoencoder-kd", "codeword-mimic", "encoder-kd", "ip-kd", "sequential")
NEEDS_TEACHER = ("output-kd", "autoencoder-kd", "codeword-mimic", "encoder-kd", "ip-kd")


def finetune_config(config, epochs):
    """The second stage of encoder KD and of the two-party variant: ``epochs`` epochs at a tenth
    of ``config``'s learning rates, no warm-up."""
    return replace(config, epochs=epochs, peak_lr=config.peak_lr / 10, floor_lr=config.floor_lr / 10,
                   warmup_fraction=0.0)


def _seconds(*logs):
    """Training wall time summed over the epochs of run logs (the ``seconds`` column)."""
    return float(sum(np.nansum(read_log(log)["seconds"]) for log in logs))


def _start_from(student, init):
    """Copy ``init``'s weights into ``student``: all of them for the same preset and ratio; across
    ratios, every weight whose shape matches (all but the codeword's dense layers, which keep the
    seed's initialisation). An in-memory copy, variable by variable: Keras'
    ``load_weights(skip_mismatch=True)`` reads files, and an entry's file is float16.

    Raises:
        ValueError: ``init`` is another architecture (its weights are not the student's, path by path).
    """
    paths = [w.path for w in student.weights]
    if [w.path for w in init.weights] != paths:
        raise ValueError(f"init= must be a {student.name.rsplit('_cr', 1)[0]} network like the student: its weights "
                         f"are {[w.path for w in init.weights][:4]}..., expected {paths[:4]}...")
    for own, given in zip(student.weights, init.weights):
        if tuple(own.shape) == tuple(given.shape):
            own.assign(given)


def fit_method(method, model, cr, train_csi, val_csi, *, out_dir, teacher=None, init=None, config=None,
               finetune_epochs=None, verbose="auto", **params):
    """Train the zoo network ``model`` at ratio ``1/cr`` by ``method`` (one of ``METHODS``).

    Args:
        method: the training method.
        model: registered name of the student (or of the network trained, for ``vanilla`` and
            ``sequential``).
        cr: compression ratio.
        train_csi, val_csi: float32 ``[N, 2, H, W]`` in [0, 1].
        out_dir: the run directory, a ``str`` or ``Path`` (two-stage methods make sub-directories).
        teacher: the trained teacher :class:`~mimokd.zoo.CsiAutoencoder` (methods in
            ``NEEDS_TEACHER``).
        init: a trained :class:`~mimokd.zoo.CsiAutoencoder` of the same preset whose weights
            start the student (fine-tuning, e.g. an entry of another dataset): all of them at the
            same ratio; at another ratio all but the codeword's dense layers, which start from
            ``config.seed``. ``None``: the initial weights of ``config.seed``.
        config: :class:`~mimokd.train.TrainConfig` of the (first) stage.
        finetune_epochs: epochs of the second stage (encoder KD, the variant's decoder); default a
            quarter of ``config.epochs``.
        **params: the method's settings (``weight``; ``alpha``, ``temperature``; ``mimic_fraction``
            (share of the epochs spent mimicking), ``scheduler``, ``alpha0``; ``codeword_bits``).

    Returns:
        ``(autoencoder, extras, curve_logs)``: the deployable autoencoder at its best checkpoint,
        a dict of method-specific results (stage times ``distill_s`` / ``finetune_s``, codeword
        MSE after the mimic stage ``mse_cm_mid``, pairs-file sizes), and the ``log.csv`` of every
        stage in training order (one epoch axis in :func:`mimokd.plots.plot_training_curves`); the
        last one's ``val_nmse`` tracks the autoencoder (sequential: the BS autoencoder, the first).
    """
    if method not in METHODS:
        raise ValueError(f"Unknown training method {method!r}. Expected one of {METHODS}")
    if method in NEEDS_TEACHER and teacher is None:
        raise ValueError(f"Method {method!r} needs a trained teacher; pass teacher=")
    out_dir = Path(out_dir)
    config = config or TrainConfig()
    second = finetune_config(config, finetune_epochs or max(1, config.epochs // 4))
    keras.utils.set_random_seed(config.seed)  # the student's initial weights follow the seed
    student = create_model(model, cr=cr)
    if init is not None:
        _start_from(student, init)
    data = (train_csi, val_csi)
    load = keras.saving.load_model
    if method == "vanilla":
        fit_autoencoder(lambda: student, *data, out_dir=out_dir, config=config, verbose=verbose)
        return load(out_dir / "best.keras"), {}, [out_dir / "log.csv"]
    if method in ("output-kd", "autoencoder-kd"):
        fit_distillation(method, teacher, student, *data, out_dir=out_dir, config=config, verbose=verbose, **params)
        return load(out_dir / "best.keras"), {}, [out_dir / "log.csv"]
    if method == "codeword-mimic":
        mimic_epochs = max(1, round(params.pop("mimic_fraction", 0.2) * config.epochs))
        fit_codeword_mimic(teacher, student, *data, out_dir=out_dir, config=config, mimic_epochs=mimic_epochs,
                           verbose=verbose, **params)
        mid = stage_codeword_mse(out_dir / "log.csv", mimic_epochs)["mse_cm_mid"]
        return load(out_dir / "best.keras"), {"mse_cm_mid": mid}, [out_dir / "log.csv"]
    if method == "encoder-kd":
        fit_encoder_kd(teacher, student, *data, out_dir=out_dir, config=config, finetune_config=second,
                       verbose=verbose)
        times = {"distill_s": _seconds(out_dir / "distill" / "log.csv"),
                 "finetune_s": _seconds(out_dir / "finetune" / "log.csv")}
        return load(out_dir / "finetune" / "best.keras"), times, [out_dir / "distill" / "log.csv",
                                                                  out_dir / "finetune" / "log.csv"]
    if method == "ip-kd":
        autoencoder, sizes = fit_ip_kd(teacher, student.encoder, train_csi, out_dir=out_dir, config=config,
                                       finetune_config=second, verbose=verbose, **params)
        times = {"distill_s": _seconds(out_dir / "ue" / "log.csv"), "finetune_s": _seconds(out_dir / "bs" / "log.csv")}
        return autoencoder, {**sizes, **times}, [out_dir / "ue" / "log.csv", out_dir / "bs" / "log.csv"]
    autoencoder = fit_sequential(lambda: create_model(model, cr=cr), student.encoder, *data, out_dir=out_dir,
                                 config=config, verbose=verbose, **params)
    return autoencoder, {"distill_s": _seconds(out_dir / "bs" / "log.csv", out_dir / "ue" / "log.csv")}, \
        [out_dir / "bs" / "log.csv", out_dir / "ue" / "log.csv"]
