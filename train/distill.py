"""Output, autoencoder and encoder knowledge distillation, on ``keras.distillation.Distiller``.

Keras ships the trainer these three methods need: ``Distiller(teacher, student, ...)`` freezes the
teacher, adds ``student_loss_weight * student_loss + (1 - student_loss_weight) * distillation``,
logs ``student_loss``, ``distillation_loss`` and ``total_loss`` as separate metrics, and saves and
reloads as a whole. We supply the losses and the pairings:

- **Output KD** (Tang et al., the "BCRNet-KD" baseline of Lu et al. Table I):
  ``w * MSE(H, H_s) + (1 - w) * MSE(H_t, H_s)``, ``w = 0.5`` (the weights were not published).
- **Autoencoder KD** (Cui et al. eq. 9-10):
  ``alpha * MSE(y, z_s) + (1 - alpha) * CE(sigma(z_t; t), sigma(z_s; t))``, ``alpha = 0.3``,
  ``t = 5``, with the temperature softmax ``sigma`` taken over all ``2HW`` output elements of a
  sample (:class:`SoftmaxCrossEntropy`).
- **Encoder KD** (Cui et al. eq. 11, Fig. 4): step 2 trains the student *encoder* alone on
  ``MSE(s_t, s_s)``, the teacher encoder's codewords as labels; step 3 joins it to (a copy of) the
  teacher's decoder and fine-tunes the whole autoencoder on the ground-truth MSE
  (:func:`fit_encoder_kd` runs both).

Tensor shapes: CSI ``[batch, 2, H, W]`` in [0, 1]; codewords ``[batch, 2HW / cr]``. Teacher and
student must share the compression ratio (and so the codeword length) and the CSI geometry.

All three train under the ``data-parallel`` strategy too (:mod:`mimokd.train.distribute`: build the
teacher and student after joining the job); encoder KD's step 3 loads step 2's best encoder, which
the chief wrote, on every process.
"""

import math
from dataclasses import asdict
from pathlib import Path

import keras
from keras import ops

from mimokd.train.distribute import files_from_chief
from mimokd.train.runs import fit_csi_run, model_record
from mimokd.train.vanilla import TrainConfig, compile_autoencoder
from mimokd.zoo import ComposedAutoencoder, check_teacher

OUTPUT_METHODS = ("output-kd", "autoencoder-kd")


@keras.saving.register_keras_serializable(package="mimokd")
class SoftmaxCrossEntropy(keras.distillation.DistillationLoss):
    """``H2(sigma(z_t; t), sigma(z_s; t))`` of Cui et al. eq. (10), sigma the softmax of eq. (9).

    ``sigma(z; t)_i = exp(z_i / t) / sum_j exp(z_j / t)`` over the ``2HW`` elements of one
    reconstructed CSI sample (``z`` = the autoencoder's output, after its sigmoid, as the paper
    defines it); the cross-entropy ``-sum_i sigma(z_t)_i log sigma(z_s)_i`` is averaged over the
    batch. No ``t**2`` factor: eq. (10) has none.

    (``keras.distillation.LogitsDistillation`` takes the softmax over the last axis only, the
    delay taps here, hence this class.)

    Args:
        temperature: ``t > 0`` (5 in Cui et al.).
    """

    def __init__(self, temperature=5.0):
        if not temperature > 0:
            raise ValueError(f"`temperature` must be positive. Received: temperature={temperature}")
        self.temperature = float(temperature)

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        batch = ops.shape(student_outputs)[0]
        teacher = ops.reshape(teacher_outputs, (batch, -1)) / self.temperature
        student = ops.reshape(student_outputs, (batch, -1)) / self.temperature
        soft_targets = ops.stop_gradient(ops.softmax(teacher, axis=-1))
        return ops.mean(-ops.sum(soft_targets * ops.log_softmax(student, axis=-1), axis=-1))

    def get_config(self):
        return {"temperature": self.temperature}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_pair(teacher, student):
    """A zoo autoencoder as the teacher (:func:`~mimokd.zoo.check_teacher`), and the two models'
    CSI shapes and codeword lengths equal."""
    check_teacher(teacher)
    if tuple(teacher.input_shape) != tuple(student.input_shape) or (
        teacher.codeword_dim != student.codeword_dim
    ):
        raise ValueError(
            "Teacher and student must take the same CSI shape and feed back codewords of the same "
            f"length. Received: teacher {teacher.name} {teacher.input_shape} -> {teacher.codeword_dim}, "
            f"student {student.name} {student.input_shape} -> {student.codeword_dim}"
        )


def _distiller(teacher, student, loss, weight_name, weight, name):
    """A Distiller of two autoencoders: ``weight`` on the ground-truth MSE, the rest on ``loss``."""
    _check_pair(teacher, student)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"`{weight_name}` must be in [0, 1]. Received: {weight_name}={weight}")
    return keras.distillation.Distiller(
        teacher=teacher, student=student, distillation_losses=loss, student_loss_weight=float(weight), name=name
    )


def output_kd(teacher, student, *, weight=0.5):
    """The vanilla output-KD trainer (Tang et al.): ``w MSE(H, H_s) + (1 - w) MSE(H_t, H_s)``.

    Args:
        teacher, student: :class:`~mimokd.zoo.CsiAutoencoder` (the teacher is frozen).
        weight: ``w``, the share of the ground-truth term.

    Returns:
        An uncompiled ``keras.distillation.Distiller``; ``.student`` is the student.
    """
    return _distiller(teacher, student, keras.distillation.FeatureDistillation(loss="mse"), "weight", weight,
                      "output_kd")


def autoencoder_kd(teacher, student, *, alpha=0.3, temperature=5.0):
    """The autoencoder-KD trainer of Cui et al. eq. (10) (see :class:`SoftmaxCrossEntropy`).

    Args:
        teacher, student: :class:`~mimokd.zoo.CsiAutoencoder` (the teacher is frozen).
        alpha: the weight of the ground-truth MSE, ``1 - alpha`` that of the soft-target CE.
        temperature: ``t`` of eq. (9).

    Returns:
        An uncompiled ``keras.distillation.Distiller``; ``.student`` is the student.
    """
    return _distiller(teacher, student, SoftmaxCrossEntropy(temperature), "alpha", alpha, "autoencoder_kd")


def encoder_kd(teacher, student):
    """Step 2 of encoder KD (Cui et al. eq. 11): the student encoder learns the teacher's codewords.

    Args:
        teacher, student: :class:`~mimokd.zoo.CsiAutoencoder`; only their encoders take part and
            the teacher encoder is frozen.

    Returns:
        An uncompiled ``keras.distillation.Distiller`` of the two encoders (``.student`` is the
        student encoder); its ``distillation_loss`` is the codeword MSE.
    """
    _check_pair(teacher, student)
    return keras.distillation.Distiller(
        teacher=teacher.encoder,
        student=student.encoder,
        distillation_losses=keras.distillation.FeatureDistillation(loss="mse"),
        student_loss_weight=0.0,
        name="encoder_kd",
    )


def _student(distiller):
    return distiller.student


def fit_distillation(
    method,
    teacher,
    student,
    train_csi,
    val_csi,
    *,
    out_dir,
    config=None,
    callbacks=(),
    verbose="auto",
    overwrite=False,
    **method_kwargs,
):
    """Train ``student`` by output KD or autoencoder KD in a run directory (``mimokd.train.runs``).

    Args:
        method: ``"output-kd"`` or ``"autoencoder-kd"``.
        teacher: the trained teacher :class:`~mimokd.zoo.CsiAutoencoder` (frozen, not modified).
        student: the student :class:`~mimokd.zoo.CsiAutoencoder` (trained in place).
        train_csi, val_csi: float32 ``[N, 2, H, W]`` in [0, 1].
        out_dir: the run directory; ``best.keras`` / ``final.keras`` hold the student alone.
        config: :class:`~mimokd.train.TrainConfig` (Adam, warm-up cosine, batch, epochs).
        overwrite: replace a run with other settings in ``out_dir`` instead of refusing.
        **method_kwargs: ``weight`` for output KD; ``alpha`` and ``temperature`` for autoencoder KD.

    Returns:
        ``(student, history)``.
    """
    builders = {"output-kd": output_kd, "autoencoder-kd": autoencoder_kd}
    if method not in builders:
        raise ValueError(f"Unknown output-distillation method {method!r}. Expected one of {OUTPUT_METHODS}")
    config = config or TrainConfig()
    keras.utils.set_random_seed(config.seed)
    trainer = builders[method](teacher, student, **method_kwargs)
    compile_autoencoder(trainer, config=config, steps_per_epoch=math.ceil(len(train_csi) / config.batch_size))
    history = fit_csi_run(
        trainer,
        train_csi,
        val_csi,
        config=config,
        out_dir=out_dir,
        record={"method": method, **method_kwargs, "teacher": model_record(teacher),
                "student": student.get_config(), "train": asdict(config)},
        deployable=_student,
        callbacks=callbacks,
        verbose=verbose,
        overwrite=overwrite,
    )
    return student, history


def fit_encoder_kd(
    teacher,
    student,
    train_csi,
    val_csi,
    *,
    out_dir,
    config=None,
    finetune_config=None,
    callbacks=(),
    verbose="auto",
    overwrite=False,
):
    """Encoder KD, steps 2 and 3 (Cui et al. Fig. 4), in ``out_dir/distill`` and ``out_dir/finetune``.

    Step 2 trains ``student.encoder`` on the teacher's codewords (eq. 11) and keeps the encoder of
    the lowest validation codeword MSE; step 3 joins it to a copy of the teacher's decoder
    (:class:`~mimokd.zoo.ComposedAutoencoder`) and fine-tunes the whole autoencoder on the
    ground-truth MSE, keeping the best validation NMSE. The teacher is not modified.

    Args:
        teacher: the trained teacher :class:`~mimokd.zoo.CsiAutoencoder`.
        student: the student :class:`~mimokd.zoo.CsiAutoencoder`; only its encoder is used.
        train_csi, val_csi: float32 ``[N, 2, H, W]`` in [0, 1].
        out_dir: parent of the two run directories.
        config: :class:`~mimokd.train.TrainConfig` of step 2.
        finetune_config: :class:`~mimokd.train.TrainConfig` of step 3 (default: a quarter of
            step 2's epochs, at least one, and a tenth of its peak learning rate).
        overwrite: replace runs with other settings in the two directories instead of refusing.

    Returns:
        ``(autoencoder, {"distill": history, "finetune": history})``: the fine-tuned
        student-encoder + teacher-decoder autoencoder.
    """
    config = config or TrainConfig()
    finetune_config = finetune_config or TrainConfig(
        epochs=max(1, config.epochs // 4),
        batch_size=config.batch_size,
        peak_lr=config.peak_lr / 10,
        floor_lr=config.floor_lr / 10,
        warmup_fraction=0.0,
        jit_compile=config.jit_compile,
        seed=config.seed,
    )
    out_dir = Path(out_dir)
    keras.utils.set_random_seed(config.seed)
    trainer = encoder_kd(teacher, student)
    compile_autoencoder(
        trainer, config=config, steps_per_epoch=math.ceil(len(train_csi) / config.batch_size), metrics=()
    )
    distill_history = fit_csi_run(
        trainer,
        train_csi,
        val_csi,
        config=config,
        out_dir=out_dir / "distill",
        record={"method": "encoder-kd", "step": 2, "teacher": model_record(teacher),
                "student": student.get_config(), "train": asdict(config)},
        deployable=_student,
        monitor="val_loss",
        callbacks=callbacks,
        verbose=verbose,
        overwrite=overwrite,
    )
    with files_from_chief([out_dir / "distill" / "best.keras"]) as (best_path,):  # data-parallel: every process
        best_encoder = keras.saving.load_model(best_path)

    keras.utils.set_random_seed(finetune_config.seed)
    joined = ComposedAutoencoder.from_parts(best_encoder, teacher.decoder, name=f"{student.name}_enc_kd")
    compile_autoencoder(
        joined, config=finetune_config, steps_per_epoch=math.ceil(len(train_csi) / finetune_config.batch_size)
    )
    finetune_history = fit_csi_run(
        joined,
        train_csi,
        val_csi,
        config=finetune_config,
        out_dir=out_dir / "finetune",
        record={"method": "encoder-kd", "step": 3, "teacher": model_record(teacher),
                "encoder": model_record(best_encoder), "train": asdict(finetune_config)},
        callbacks=callbacks,
        verbose=verbose,
        overwrite=overwrite,
    )
    return joined, {"distill": distill_history, "finetune": finetune_history}
