"""Vanilla training of a zoo autoencoder with ``model.fit``: MSE loss, Adam, warm-up + cosine LR.

The recipe of CRNet (and the benchmark of Lu et al.): MSE on the [0, 1] CSI tensors, Adam, batch
200, the learning rate warming up linearly to 2e-3 then annealed by a cosine to 5e-5, stepped per
iteration (:func:`~mimokd.train.schedules.warmup_cosine`, a Keras ``CosineDecay``).

A run writes the run directory of :mod:`mimokd.train.runs` (``best.keras``, ``final.keras``,
``log.csv``, ``config.json``, and ``backup/`` to resume an interrupted run).

Examples:
    >>> from mimokd.channels import load_csi
    >>> from mimokd.train import TrainConfig, fit_autoencoder
    >>> train = load_csi("builtin-indoor", split="train", num_samples=20000)
    >>> val = load_csi("builtin-indoor", split="val", num_samples=2000)
    >>> model, history = fit_autoencoder("crnet", train, val, out_dir="runs/crnet4",
    ...                                  config=TrainConfig(epochs=20), cr=4)
"""

import math
from dataclasses import asdict, dataclass

import keras
import numpy as np

from mimokd.channels.layout import check_csi
from mimokd.metrics import NMSE, Rho, nmse_db, rho
from mimokd.train.distribute import make_strategy
from mimokd.train.runs import fit_csi_run
from mimokd.train.schedules import warmup_cosine
from mimokd.zoo import create_model


@dataclass
class TrainConfig:
    """Hyper-parameters of a vanilla run (defaults: CRNet's recipe, scaled to the epoch count).

    ``warmup_fraction`` is the share of the run spent warming up: 30 of 1000 epochs in Lu et al.
    (30 of 2500 in CRNet's recipe); at least one epoch's steps when it is nonzero.

    ``jit_compile``: compile the train step with XLA (``True``), not (``False``), or ``"auto"``,
    Keras' own rule (``Model.compile``): XLA on a GPU / TPU, not on a CPU-only machine nor under a
    ``tf.distribute`` strategy. On CPU, whole-step XLA was measured slower in 4 of 6
    trainer rows (``benchmarks/trainer_speed.py``, README "Performance notes"), so "auto" is the
    fastest default measured there; the math is the same either way (tests/test_train.py).
    """

    epochs: int = 20
    batch_size: int = 200
    peak_lr: float = 2e-3
    floor_lr: float = 5e-5
    warmup_fraction: float = 0.03
    jit_compile: bool | str = "auto"
    seed: int = 0

    def schedule(self, steps_per_epoch):
        """The warm-up cosine (:func:`~mimokd.train.schedules.warmup_cosine`, a Keras ``CosineDecay``) of a
        run with ``steps_per_epoch`` steps per epoch."""
        total = self.epochs * steps_per_epoch
        warmup = 0
        if self.warmup_fraction > 0:
            warmup = max(steps_per_epoch, round(self.warmup_fraction * total))
            warmup = min(warmup, total - 1)
        return warmup_cosine(self.peak_lr, self.floor_lr, total_steps=total, warmup_steps=warmup)


def compile_autoencoder(model, *, config, steps_per_epoch, metrics=None):
    """Compile ``model`` (an autoencoder or a ``keras.distillation.Distiller``) for training:
    Adam on the warm-up cosine schedule, MSE loss, and the NMSE (dB, global convention) and rho
    metrics (or ``metrics``; ``()`` for a model whose output is not CSI)."""
    model.compile(
        optimizer=keras.optimizers.Adam(config.schedule(steps_per_epoch)),
        loss="mse",
        metrics=[NMSE(), Rho()] if metrics is None else list(metrics),
        jit_compile=config.jit_compile,
    )
    return model


def fit_autoencoder(
    model,
    train_csi,
    val_csi,
    *,
    out_dir,
    config=None,
    strategy=None,
    callbacks=(),
    verbose="auto",
    overwrite=False,
    **model_kwargs,
):
    """Train an autoencoder with ``fit``, checkpointing the best validation NMSE, resumable.

    Args:
        model: a registered model name (built with ``create_model(model, **model_kwargs)``), or
            a zero-argument callable returning a :class:`~mimokd.zoo.CsiAutoencoder` (the model is
            built inside the strategy's scope, so pass a builder, not a built model, when
            ``strategy`` is given).
        train_csi: float32 ``[N, 2, H, W]`` in [0, 1], the training CSI.
        val_csi: float32 ``[N_val, 2, H, W]`` in [0, 1], the validation CSI.
        out_dir: the run directory (see :mod:`mimokd.train.runs`); the same call again resumes an
            interrupted run there, and a run with other settings there is refused.
        config: :class:`TrainConfig` (defaults if ``None``).
        strategy: a ``tf.distribute.Strategy``, or a name of ``mimokd.train.distribute.STRATEGIES``
            (``"data-parallel"``: this process joins the JAX data-parallel job, see that module).
        callbacks: more Keras callbacks, run after the built-in ones (backup, checkpoint, log).
        verbose: passed to ``fit`` (progress bar by default).
        overwrite: replace a run with other settings in ``out_dir`` instead of refusing.
        **model_kwargs: passed to ``create_model`` (e.g. ``cr=4``).

    Returns:
        ``(model, history)``: the model after the last epoch and the ``History`` of this call.
    """
    config = config or TrainConfig()
    if isinstance(strategy, str) or strategy is None:
        strategy = make_strategy(strategy or "default")
    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = math.ceil(len(train_csi) / config.batch_size)
    with strategy.scope():
        built = create_model(model, **model_kwargs) if isinstance(model, str) else model()
        compile_autoencoder(built, config=config, steps_per_epoch=steps_per_epoch)

    history = fit_csi_run(
        built,
        train_csi,
        val_csi,
        config=config,
        out_dir=out_dir,
        record={"model": built.get_config(), "train": asdict(config)},
        callbacks=callbacks,
        verbose=verbose,
        overwrite=overwrite,
    )
    return built, history


def evaluate_autoencoder(model, csi, *, hf=None, batch_size=200):
    """NMSE (dB, both conventions) and rho of ``model`` on ``csi``.

    Args:
        model: a :class:`~mimokd.zoo.CsiAutoencoder` (or any Keras model CSI -> CSI).
        csi: float32 ``[N, 2, H, W]`` in [0, 1].
        hf: optional complex ``[N, H, 125]`` frequency-domain CSI (``HF_all``) for rho; without
            it rho compares against ``csi`` taken to the frequency domain the same way.
        batch_size: the prediction batch, also the batch of the per-batch NMSE convention.

    Returns:
        ``{"nmse_db": ..., "nmse_db_per_batch": ..., "rho": ..., "samples": N}``.

    Raises:
        ValueError: ``csi`` is empty or holds NaN, infinite or out-of-[0, 1] values (its shape is
            the model's to check).
    """
    csi = check_csi(csi, shape=np.shape(csi)[1:])
    pred = model.predict(csi, batch_size=batch_size, verbose=0)
    return {
        "nmse_db": nmse_db(csi, pred, convention="global"),
        "nmse_db_per_batch": nmse_db(csi, pred, convention="per_batch", batch_size=batch_size),
        "rho": rho(pred, csi if hf is None else hf),
        "samples": int(len(csi)),
    }
