"""Codeword mimic (CM) learning with the mimic-explore strategy (Lu et al., Sec. III).

The loss of eq. (4), at epoch ``t`` (0-based):

    L = alpha(t) * MSE(v_T, v_S) + (1 - alpha(t)) * MSE(H, H_hat)

``v_T`` / ``v_S`` the teacher / student codewords ``[batch, 2HW / cr]``, ``H`` / ``H_hat`` the CSI
and the student's reconstruction ``[batch, 2, H, W]``. ``alpha(t)`` is the distillation scheduler
(:class:`AlphaSchedule`): the cosine annealing of eq. (5), or the linear and constant schedulers of
Table III, all ``alpha0 = 1e-4`` and zero from epoch ``T_cm`` on (the explore stage).

Mimic-explore (Fig. 3, :func:`mimic_explore_schedules`): while mimicking, encoder and decoder share
one warm-up cosine learning rate (2e-3 -> 4e-5); while exploring, each half has its own cosine,
restarted: the decoder 4e-3 -> 4e-5, the encoder from 2e-4 (to 2e-6, the decoder's 1/100 ratio:
the paper gives only the start). Two optimizers do this, hence the custom ``train_step``
(Keras has no per-variable learning rate; ``keras.distillation.Distiller`` has one optimizer).

No public code exists for CM (``REFERENCE.md``); this follows the paper's equations and text.
"""

import math
from dataclasses import asdict
from pathlib import Path

import keras
import tensorflow as tf
from keras import ops

from mimokd.fileio import write_json
from mimokd.metrics import NMSE
from mimokd.train.distribute import require_tensorflow
from mimokd.train.runs import fit_csi_run, model_record, read_log
from mimokd.train.schedules import TwoStage, warmup_cosine
from mimokd.train.vanilla import TrainConfig
from mimokd.zoo import check_teacher

SCHEDULERS = ("cosine", "linear", "constant")


@keras.saving.register_keras_serializable(package="mimokd")
class AlphaSchedule:
    """``alpha(t)``, the weight of the codeword-mimic loss at epoch ``t`` (0-based).

    - ``cosine`` (eq. 5): ``alpha0 * (1 + cos(pi * t / T_cm)) / 2``;
    - ``linear``: ``alpha0 * (1 - t / T_cm)``;
    - ``constant``: ``alpha0``;

    each for ``t < T_cm`` and 0 from ``T_cm`` on.

    Args:
        kind: one of ``SCHEDULERS``.
        alpha0: the largest weight (1e-4: it brings the two terms to a similar size).
        mimic_epochs: ``T_cm``, the epochs of the mimic stage.
    """

    def __init__(self, kind="cosine", alpha0=1e-4, mimic_epochs=200):
        if kind not in SCHEDULERS:
            raise ValueError(f"Unknown distillation scheduler {kind!r}. Expected one of {SCHEDULERS}")
        if not 0 <= alpha0 <= 1:
            raise ValueError(f"`alpha0` must be in [0, 1]. Received: alpha0={alpha0}")
        if mimic_epochs < 0:
            raise ValueError(f"`mimic_epochs` must be >= 0. Received: mimic_epochs={mimic_epochs}")
        self.kind = kind
        self.alpha0 = float(alpha0)
        self.mimic_epochs = int(mimic_epochs)

    def __call__(self, epoch):
        t = ops.cast(epoch, "float32")
        fraction = t / max(self.mimic_epochs, 1)
        if self.kind == "cosine":
            value = 0.5 * self.alpha0 * (1.0 + ops.cos(math.pi * fraction))
        elif self.kind == "linear":
            value = self.alpha0 * (1.0 - fraction)
        else:
            value = self.alpha0 * ops.ones_like(t)
        return ops.where(t < self.mimic_epochs, value, 0.0)

    def get_config(self):
        return {"kind": self.kind, "alpha0": self.alpha0, "mimic_epochs": self.mimic_epochs}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="mimokd")
class CodewordMimic(keras.Model):
    """The CM trainer: the student autoencoder learns the teacher encoder's codewords, eq. (4).

    ``fit`` on ``(csi, csi)`` batches. ``alpha(t)`` follows the epoch ``t = iterations //
    steps_per_epoch`` of the decoder optimizer, so ``model.fit`` alone (and a resumed run) gets
    the schedule right. Logged: ``loss`` (eq. 4), ``codeword_mse`` (L_cm), ``reconstruction_mse``
    (L_gt), ``alpha``, and ``nmse`` (dB) of the student.

    Args:
        teacher_encoder: the teacher's encoder, CSI -> codeword ``[batch, D]`` (frozen).
        student: the student :class:`~mimokd.zoo.CsiAutoencoder` with the same codeword length.
        alpha: an :class:`AlphaSchedule` (or its config).
        steps_per_epoch: optimizer steps per epoch of the training data.
    """

    def __init__(self, teacher_encoder, student, *, alpha=None, steps_per_epoch=1, name="codeword_mimic", **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(teacher_encoder, dict):  # from_config
            teacher_encoder = keras.saving.deserialize_keras_object(teacher_encoder)
            student = keras.saving.deserialize_keras_object(student)
        if isinstance(alpha, dict):
            alpha = AlphaSchedule.from_config(alpha)
        if tuple(teacher_encoder.output_shape) != tuple(student.encoder.output_shape):
            raise ValueError(
                "Teacher and student codewords must have the same shape. Received: teacher "
                f"{teacher_encoder.output_shape}, student {student.encoder.output_shape}"
            )
        if steps_per_epoch < 1:
            raise ValueError(f"`steps_per_epoch` must be >= 1. Received: steps_per_epoch={steps_per_epoch}")
        self.teacher_encoder = teacher_encoder
        self.teacher_encoder.trainable = False
        self.student = student
        self.alpha = alpha or AlphaSchedule()
        self.steps_per_epoch = int(steps_per_epoch)
        self.encoder_optimizer = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.codeword_tracker = keras.metrics.Mean(name="codeword_mse")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_mse")
        self.alpha_tracker = keras.metrics.Mean(name="alpha")
        self.nmse_metric = NMSE()

    def compile(self, optimizer="adam", encoder_optimizer=None, **kwargs):
        """``optimizer`` updates the decoder, ``encoder_optimizer`` the encoder (``None``: the
        one ``optimizer`` updates both, as the benchmark recipe does)."""
        super().compile(optimizer=optimizer, **kwargs)
        self.encoder_optimizer = keras.optimizers.get(encoder_optimizer) if encoder_optimizer else None
        # BackupAndRestore loads optimizer state into built optimizers only
        self.optimizer.build(self.student.trainable_variables)
        if self.encoder_optimizer is not None:
            self.encoder_optimizer.build(self.student.encoder.trainable_variables)

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, under the TensorFlow backend only (:data:`~mimokd.train.distribute.TENSORFLOW_ONLY`)."""
        require_tensorflow("codeword-mimic")
        return super().fit(*args, **kwargs)

    @property
    def metrics(self):
        return [self.loss_tracker, self.codeword_tracker, self.reconstruction_tracker, self.alpha_tracker,
                self.nmse_metric]

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def current_alpha(self, training=True):
        """``alpha(t)`` at the current epoch of training (in validation: of the last step taken)."""
        step = self.optimizer.iterations if training else ops.maximum(self.optimizer.iterations - 1, 0)
        return self.alpha(step // self.steps_per_epoch)

    def _loss_terms(self, x, y, training):
        teacher_codeword = self.teacher_encoder(x, training=False)
        codeword = self.student.encoder(x, training=training)
        y_pred = self.student.decoder(codeword, training=training)
        codeword_mse = ops.mean(ops.square(teacher_codeword - codeword))
        reconstruction_mse = ops.mean(ops.square(y - y_pred))
        alpha = self.current_alpha(training)
        loss = alpha * codeword_mse + (1.0 - alpha) * reconstruction_mse
        return loss, codeword_mse, reconstruction_mse, alpha, y_pred

    def _update_metrics(self, y, loss, codeword_mse, reconstruction_mse, alpha, y_pred):
        self.loss_tracker.update_state(loss)
        self.codeword_tracker.update_state(codeword_mse)
        self.reconstruction_tracker.update_state(reconstruction_mse)
        self.alpha_tracker.update_state(alpha)
        self.nmse_metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            loss, codeword_mse, reconstruction_mse, alpha, y_pred = self._loss_terms(x, y, training=True)
        if self.encoder_optimizer is None:
            variables = self.student.trainable_variables
            self.optimizer.apply(tape.gradient(loss, variables), variables)
        else:
            encoder_vars = self.student.encoder.trainable_variables
            decoder_vars = self.student.decoder.trainable_variables
            grads = tape.gradient(loss, encoder_vars + decoder_vars)
            self.encoder_optimizer.apply(grads[: len(encoder_vars)], encoder_vars)
            self.optimizer.apply(grads[len(encoder_vars) :], decoder_vars)
        return self._update_metrics(y, loss, codeword_mse, reconstruction_mse, alpha, y_pred)

    def test_step(self, data):
        x, y = data[0], data[1]
        return self._update_metrics(y, *self._loss_terms(x, y, training=False))

    def get_config(self):
        return {
            "name": self.name,
            "teacher_encoder": keras.saving.serialize_keras_object(self.teacher_encoder),
            "student": keras.saving.serialize_keras_object(self.student),
            "alpha": self.alpha.get_config(),
            "steps_per_epoch": self.steps_per_epoch,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def mimic_explore_schedules(
    steps_per_epoch,
    epochs,
    mimic_epochs,
    *,
    warmup_fraction=0.03,
    mimic_lr=(2e-3, 4e-5),
    decoder_lr=(4e-3, 4e-5),
    encoder_lr=(2e-4, 2e-6),
):
    """The learning rates of Lu et al. Fig. 3: ``(encoder_schedule, decoder_schedule)``.

    Both follow a warm-up cosine ``mimic_lr`` (peak, floor) over the first ``mimic_epochs``
    (warm-up: ``warmup_fraction`` of the whole run, at least one epoch's steps, inside the mimic
    stage); then restart as a cosine ``encoder_lr`` / ``decoder_lr`` over the explore epochs.
    ``mimic_epochs == epochs`` gives the mimic schedule alone for both.
    """
    if not 0 < mimic_epochs <= epochs:
        raise ValueError(
            "Mimic-explore needs 0 < mimic_epochs <= epochs (0 mimic epochs is plain training). "
            f"Received: mimic_epochs={mimic_epochs}, epochs={epochs}"
        )
    mimic_steps = mimic_epochs * steps_per_epoch
    warmup = max(steps_per_epoch, round(warmup_fraction * epochs * steps_per_epoch)) if warmup_fraction else 0
    mimic = warmup_cosine(*mimic_lr, total_steps=mimic_steps, warmup_steps=min(warmup, mimic_steps - 1))
    explore_steps = (epochs - mimic_epochs) * steps_per_epoch
    if explore_steps == 0:
        return mimic, mimic
    return tuple(
        TwoStage(mimic, warmup_cosine(*lr, total_steps=explore_steps), boundary=mimic_steps)
        for lr in (encoder_lr, decoder_lr)
    )


def stage_codeword_mse(log_path, mimic_epochs):
    """``MSE_cm^mid`` and ``MSE_cm^end`` of Tables II-III: the validation codeword MSE after the
    last mimic epoch and after the last epoch, read from a run's ``log.csv``."""
    log = read_log(log_path)
    by_epoch = dict(zip((int(e) for e in log["epoch"]), log["val_codeword_mse"]))
    last = max(by_epoch)
    return {"mse_cm_mid": by_epoch[min(mimic_epochs, last + 1) - 1], "mse_cm_end": by_epoch[last]}


def fit_codeword_mimic(
    teacher,
    student,
    train_csi,
    val_csi,
    *,
    out_dir,
    config=None,
    mimic_epochs=None,
    scheduler="cosine",
    alpha0=1e-4,
    explore=True,
    callbacks=(),
    verbose="auto",
    overwrite=False,
):
    """Train ``student`` by codeword mimic in a run directory (``mimokd.train.runs``).

    Args:
        teacher: the trained teacher :class:`~mimokd.zoo.CsiAutoencoder` (its encoder is used,
            frozen).
        student: the student :class:`~mimokd.zoo.CsiAutoencoder` (trained in place).
        train_csi, val_csi: float32 ``[N, 2, H, W]`` in [0, 1].
        out_dir: the run directory; ``best.keras`` / ``final.keras`` hold the student alone, and
            ``stages.json`` the codeword MSE after each stage.
        config: :class:`~mimokd.train.TrainConfig`: epochs, batch, seed, warm-up share (its learning
            rates are used only with ``explore=False``).
        mimic_epochs: ``T_cm`` (default: a fifth of the epochs, the 200 of 1000 of Lu et al.).
        scheduler, alpha0: the :class:`AlphaSchedule`.
        explore: the mimic-explore learning rates (:func:`mimic_explore_schedules`); ``False`` uses
            ``config``'s single warm-up cosine for the whole network.
        overwrite: replace a run with other settings in ``out_dir`` instead of refusing.

    Returns:
        ``(student, history)``.
    """
    check_teacher(teacher)
    config = config or TrainConfig()
    mimic_epochs = max(1, config.epochs // 5) if mimic_epochs is None else mimic_epochs
    steps = math.ceil(len(train_csi) / config.batch_size)
    keras.utils.set_random_seed(config.seed)
    trainer = CodewordMimic(
        teacher.encoder, student, alpha=AlphaSchedule(scheduler, alpha0, mimic_epochs), steps_per_epoch=steps
    )
    if explore:
        encoder_lr, decoder_lr = mimic_explore_schedules(
            steps, config.epochs, mimic_epochs, warmup_fraction=config.warmup_fraction
        )
        trainer.compile(
            optimizer=keras.optimizers.Adam(decoder_lr),
            encoder_optimizer=keras.optimizers.Adam(encoder_lr),
            jit_compile=config.jit_compile,
        )
    else:
        trainer.compile(optimizer=keras.optimizers.Adam(config.schedule(steps)), jit_compile=config.jit_compile)
    out_dir = Path(out_dir)
    history = fit_csi_run(
        trainer,
        train_csi,
        val_csi,
        config=config,
        out_dir=out_dir,
        record={"method": "codeword-mimic", "teacher": model_record(teacher), "student": student.get_config(),
                "alpha": trainer.alpha.get_config(), "explore": explore, "train": asdict(config)},
        deployable=lambda t: t.student,
        callbacks=callbacks,
        verbose=verbose,
        overwrite=overwrite,
    )
    write_json(out_dir / "stages.json", stage_codeword_mse(out_dir / "log.csv", mimic_epochs))
    return student, history
