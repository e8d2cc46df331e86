"""Joint training with an auxiliary transmitter: Algorithm 1 of Kong et al. (Sec. III-C).

Every iteration draws a fresh mini-batch of channels (step 3), then

- **step 4** (``use_kd=True`` only): one Adam update of the receivers and the auxiliary
  transmitter minimizing ``L_aux`` (eq. 10-11), the minus sum rate through the lossless path:
  the receivers' pre-binarization outputs ``u_k`` feed the auxiliary transmitter (eq. 9);
- **step 5**: one Adam update of the receivers and the transmitter minimizing ``L_main`` (eq. 6-7),
  the minus sum rate through the binarized path (bits -> transmitter), the binarization's STE
  giving the receivers their gradient (eq. 8).

``use_kd=False`` is the training without KD (step 5 alone, the extension of [14] in Fig. 2). The two
steps have separate Adam optimizers (``optimizer`` for step 5, ``aux_optimizer`` for step 4), so each
keeps its own moments for the shared receiver weights, as the authors' two ``AdamOptimizer``s do.
Step 5 runs on the receivers step 4 has just updated (Algorithm 1's order; the authors' code runs
its two updates in the opposite order). There is no distillation-loss term: the receivers are the
only link between the two paths.

Data (step 3): :func:`channel_dataset` is a ``tf.data`` pipeline over an endless numpy generator
that draws fresh i.i.d. Rayleigh channels and noisy pilots for every batch
(``mimokd.classical.mimo``); its elements are ``(pilots, channels)``, float32 ``[batch, K, 2NL]``
and complex64 ``[batch, K, M, N]``. Validation and test sets are fixed, seeded draws
(:func:`channel_arrays`). Every trainer trains at one power ``P`` (``power_db``), as the authors'
code trains one network per ``P``; a transmitter with a power input is fed that ``P`` in dB.

Learning rate (:func:`kong_learning_rate`): Adam 2e-4, divided by 10 after 60 % and by 100 after
80 % of the iterations (30k and 40k of 50k in the paper), for both optimizers. The sigmoid-adjusted
STE's slope follows a :class:`SlopeSchedule` of the same iteration count.

Examples:
    >>> system = KongSystem.build(num_users=4, num_tx=8, num_rx=2, pilot_length=8, bits=6)
    >>> trainer, history = fit_joint(system, out_dir="runs/kong_30db", power_db=30, iterations=50_000)
    >>> evaluate_sum_rate(system, rayleigh_channels(100_000, 4, 8, 2, rng=1), 30.0, rng=2)
"""

import itertools
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mimokd.classical.mimo import (
    dft_pilots,
    pilots_to_real,
    rayleigh_channels,
    received_pilots,
)
from mimokd.classical.sum_rate import db_to_linear, sum_rate_np, sum_rate_tf
from mimokd.train.distribute import require_tensorflow
from mimokd.train.runs import fit_run
from mimokd.zoo.precoding import KongSystem, SigmoidSTE, to_complex

P_TRAIN = 10.0  # pilot power of Kong et al. (linear)
PAPER_ITERATIONS = 50_000
LR_BOUNDARIES = (0.6, 0.8)  # 30k and 40k of the paper's 50k iterations
LR_FACTORS = (0.1, 0.01)


def kong_learning_rate(total_steps=PAPER_ITERATIONS, lr=2e-4, boundaries=LR_BOUNDARIES, factors=LR_FACTORS):
    """Kong et al.'s step schedule: ``lr`` until ``boundaries[0] * total_steps``, then ``lr * factors[0]``
    until ``boundaries[1] * total_steps``, then ``lr * factors[1]``.

    The defaults give 2e-4, 2e-5 after step 30,000 and 2e-6 after step 40,000 of 50,000 (the
    authors' code switches after ``step <= 30000``: the same boundaries).

    Returns:
        ``keras.optimizers.schedules.PiecewiseConstantDecay`` over the optimizer's iterations.
    """
    if total_steps < 1:
        raise ValueError(f"`total_steps` must be >= 1. Received: total_steps={total_steps}")
    if len(boundaries) != len(factors) or list(boundaries) != sorted(boundaries) or not all(
        0 < b <= 1 for b in boundaries
    ):
        raise ValueError(
            "`boundaries` must be increasing fractions in (0, 1], one per factor. "
            f"Received: boundaries={boundaries}, factors={factors}"
        )
    steps = [max(1, round(b * total_steps)) for b in boundaries]
    return keras.optimizers.schedules.PiecewiseConstantDecay(steps, [lr] + [lr * f for f in factors])


@keras.saving.register_keras_serializable(package="mimokd")
class SlopeSchedule:
    """The annealed slope ``a(t)`` of the sigmoid-adjusted STE (:class:`~mimokd.zoo.precoding.SigmoidSTE`).

    Geometric growth from ``initial`` to ``final`` over ``total_steps`` iterations, then held:
    ``a(t) = initial * (final / initial) ** min(t / total_steps, 1)``. Sohrabi et al. increase the
    slope during training (slope annealing, after Chung et al.); the law and the end points here
    are this project's choice (the papers at hand do not give them), expressed per iteration so
    that short runs scale.
    """

    def __init__(self, initial=1.0, final=10.0, total_steps=PAPER_ITERATIONS):
        if not 0 < initial <= final:
            raise ValueError(f"Expected 0 < initial <= final. Received: initial={initial}, final={final}")
        if total_steps < 1:
            raise ValueError(f"`total_steps` must be >= 1. Received: total_steps={total_steps}")
        self.initial = float(initial)
        self.final = float(final)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        progress = ops.minimum(ops.cast(step, "float32") / self.total_steps, 1.0)
        return self.initial * ops.power(self.final / self.initial, progress)

    def get_config(self):
        return {"initial": self.initial, "final": self.final, "total_steps": self.total_steps}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def minus_mean_sum_rate(channels, precoders, power_linear):
    """``-E[sum_k R_k]`` over the batch: ``L_main`` (eq. 7) or ``L_aux`` (eq. 11).

    Args:
        channels: complex64 ``[batch, K, M, N]``.
        precoders: float32 ``[batch, M, K*N, 2]`` (a transmitter's output).
        power_linear: ``P``, linear.

    Returns:
        float32 scalar.
    """
    return -ops.mean(sum_rate_tf(channels, to_complex(precoders), power_linear))


def _update(optimizer, variables, loss_fn):
    """One ``optimizer`` step on ``variables`` minimizing ``loss_fn()``; returns the loss before it."""
    with tf.GradientTape() as tape:
        loss = loss_fn()
    optimizer.apply(tape.gradient(loss, variables), variables)
    return loss


@keras.saving.register_keras_serializable(package="mimokd")
class JointTrainer(keras.Model):
    """Algorithm 1 of Kong et al.: ``fit`` on ``(pilots, channels)`` batches (:func:`channel_dataset`).

    ``train_step`` = :meth:`aux_step` (step 4, if ``use_kd``) then :meth:`main_step` (step 5); the
    two are public so that each can be run (and checked) alone. Logged: ``loss`` (``L_main`` of the
    batch, before its update), ``aux_loss`` (``L_aux``, KD only), ``sum_rate`` (``-L_main``,
    bits/s/Hz) and, with a sigmoid STE, ``slope``. ``evaluate`` / validation compute the same
    terms without updates. ``trainer(pilots)`` is the deployed path, float32 ``[batch, M, K*N, 2]``.

    Args:
        system: the :class:`~mimokd.zoo.precoding.KongSystem` to train (in place).
        power_db: ``P`` of the run, in dB.
        use_kd: run step 4 (the auxiliary transmitter); ``False`` trains without KD.
        slope_schedule: a :class:`SlopeSchedule` (or its config) for sigmoid-STE receivers
            (default: ``SlopeSchedule()``); ignored for tanh-STE receivers.
    """

    def __init__(self, system, *, power_db=30.0, use_kd=True, slope_schedule=None, name="joint_trainer", **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(slope_schedule, dict):
            slope_schedule = SlopeSchedule.from_config(slope_schedule)
        self.system = system
        # tracked for saving: the distinct receivers, the two transmitters
        self.receiver_models = system.unique_receivers
        self.transmitter = system.transmitter
        self.aux_transmitter = system.aux_transmitter
        self.power_db = float(power_db)
        self.power_linear = db_to_linear(self.power_db)
        self.use_kd = bool(use_kd)
        self.slope_schedule = slope_schedule or SlopeSchedule()
        self.slope_layers = [
            layer for r in self.receiver_models for layer in r.layers if isinstance(layer, SigmoidSTE)
        ]
        self.aux_optimizer = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.aux_loss_tracker = keras.metrics.Mean(name="aux_loss")
        self.sum_rate_tracker = keras.metrics.Mean(name="sum_rate")
        self.slope_tracker = keras.metrics.Mean(name="slope")
        self.built = True

    def compile(self, optimizer=None, aux_optimizer=None, **kwargs):
        """``optimizer`` runs step 5 (receivers + transmitter), ``aux_optimizer`` step 4 (receivers +
        auxiliary transmitter); each defaults to Adam on :func:`kong_learning_rate` (50k iterations).
        ``jit_compile`` defaults to ``False``."""
        kwargs.setdefault("jit_compile", False)
        super().compile(optimizer=optimizer or keras.optimizers.Adam(kong_learning_rate()), **kwargs)
        self.aux_optimizer = keras.optimizers.get(aux_optimizer or keras.optimizers.Adam(kong_learning_rate()))
        # BackupAndRestore loads optimizer state into built optimizers only
        self.optimizer.build(self.main_variables)
        self.aux_optimizer.build(self.aux_variables)

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, under the TensorFlow backend only (:data:`~mimokd.train.distribute.TENSORFLOW_ONLY`)."""
        require_tensorflow("kong")
        return super().fit(*args, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self.aux_optimizer is not None:
            config["aux_optimizer"] = keras.saving.serialize_keras_object(self.aux_optimizer)
        return config

    def compile_from_config(self, config):
        """Re-compile a loaded trainer with both optimizers (their state is then restored)."""
        self.compile(**keras.saving.deserialize_keras_object(config))

    @property
    def receiver_variables(self):
        """Trainable variables of the distinct receivers (once each, also when shared)."""
        return [v for r in self.receiver_models for v in r.trainable_variables]

    @property
    def main_variables(self):
        """What step 5 updates: the receivers and the transmitter."""
        return self.receiver_variables + self.transmitter.trainable_variables

    @property
    def aux_variables(self):
        """What step 4 updates: the receivers and the auxiliary transmitter."""
        return self.receiver_variables + self.aux_transmitter.trainable_variables

    @property
    def metrics(self):
        metrics = [self.loss_tracker]
        if self.use_kd:
            metrics.append(self.aux_loss_tracker)
        metrics.append(self.sum_rate_tracker)
        if self.slope_layers:
            metrics.append(self.slope_tracker)
        return metrics

    def call(self, inputs, training=False):
        return self.system.precoders(inputs, self.power_db, training=training)

    def main_loss(self, pilots, channels, training=True):
        """``L_main`` (eq. 7): pilots -> bits (STE) -> transmitter -> minus mean sum rate."""
        return minus_mean_sum_rate(channels, self.system.precoders(pilots, self.power_db, training), self.power_linear)

    def aux_loss(self, pilots, channels, training=True):
        """``L_aux`` (eq. 11): pilots -> ``u`` -> auxiliary transmitter -> minus mean sum rate."""
        return minus_mean_sum_rate(
            channels, self.system.aux_precoders(pilots, self.power_db, training), self.power_linear
        )

    def aux_step(self, pilots, channels):
        """Step 4 of Algorithm 1: one ``aux_optimizer`` update of receivers + auxiliary transmitter.

        Args:
            pilots: float32 ``[batch, K, 2NL]``; channels: complex64 ``[batch, K, M, N]``.

        Returns:
            ``L_aux`` before the update, float32 scalar.
        """
        return _update(self.aux_optimizer, self.aux_variables, lambda: self.aux_loss(pilots, channels))

    def main_step(self, pilots, channels):
        """Step 5 of Algorithm 1: one ``optimizer`` update of receivers + transmitter (through the STE).

        Returns:
            ``L_main`` before the update, float32 scalar.
        """
        return _update(self.optimizer, self.main_variables, lambda: self.main_loss(pilots, channels))

    def current_slope(self):
        """The sigmoid STE's slope at the current iteration."""
        return self.slope_schedule(self.optimizer.iterations)

    def anneal(self):
        """Set every sigmoid STE's slope to :meth:`current_slope` (a no-op for tanh STEs)."""
        if self.slope_layers:
            slope = self.current_slope()
            for layer in self.slope_layers:
                layer.slope.assign(slope)

    def train_step(self, data):
        pilots, channels = data[0], data[1]
        self.anneal()
        if self.use_kd:
            self.aux_loss_tracker.update_state(self.aux_step(pilots, channels))
        loss = self.main_step(pilots, channels)
        return self._update_metrics(loss)

    def test_step(self, data):
        pilots, channels = data[0], data[1]
        if self.use_kd:
            self.aux_loss_tracker.update_state(self.aux_loss(pilots, channels, training=False))
        return self._update_metrics(self.main_loss(pilots, channels, training=False))

    def _update_metrics(self, loss):
        self.loss_tracker.update_state(loss)
        self.sum_rate_tracker.update_state(-loss)
        if self.slope_layers:
            self.slope_tracker.update_state(self.slope_layers[0].slope)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            "name": self.name,
            "receivers": [keras.saving.serialize_keras_object(r) for r in self.receiver_models],
            "num_users": self.system.num_users,
            "transmitter": keras.saving.serialize_keras_object(self.transmitter),
            "aux_transmitter": keras.saving.serialize_keras_object(self.aux_transmitter),
            "power_db": self.power_db,
            "use_kd": self.use_kd,
            "slope_schedule": self.slope_schedule.get_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        receivers = [keras.saving.deserialize_keras_object(r) for r in config.pop("receivers")]
        num_users = config.pop("num_users")
        if len(receivers) == 1:
            receivers = receivers * num_users
        system = KongSystem(
            receivers,
            keras.saving.deserialize_keras_object(config.pop("transmitter")),
            keras.saving.deserialize_keras_object(config.pop("aux_transmitter")),
        )
        return cls(system, **config)


# --- data ---------------------------------------------------------------------------------------


def _draw(batch_size, num_users, num_tx, num_rx, pilots, p_train, rng):
    channels = rayleigh_channels(batch_size, num_users, num_tx, num_rx, rng)
    received = received_pilots(channels, pilots, p_train, rng)
    return pilots_to_real(received), channels


def channel_arrays(num_samples, *, num_users, num_tx, num_rx, pilot_length, p_train=P_TRAIN, seed=0):
    """A fixed, seeded set (validation / test): ``(pilots, channels)``, float32 ``[n, K, 2NL]`` and
    complex64 ``[n, K, M, N]`` (channels then pilot noise drawn from ``default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    return _draw(num_samples, num_users, num_tx, num_rx, dft_pilots(num_tx, pilot_length), p_train, rng)


def channel_batches(batch_size, *, num_users, num_tx, num_rx, pilot_length, p_train=P_TRAIN, seed=0):
    """Endless fresh batches (Algorithm 1, step 3): yields ``(pilots, channels)`` as :func:`channel_arrays`
    with ``batch_size`` samples, all drawn from one ``default_rng(seed)`` (``seed``: an int or a
    sequence of ints)."""
    rng = np.random.default_rng(seed)
    pilots = dft_pilots(num_tx, pilot_length)
    while True:
        yield _draw(batch_size, num_users, num_tx, num_rx, pilots, p_train, rng)


def _signature(num_users, num_tx, num_rx, pilot_length):
    return (
        tf.TensorSpec((None, num_users, 2 * num_rx * pilot_length), tf.float32),
        tf.TensorSpec((None, num_users, num_tx, num_rx), tf.complex64),
    )


def channel_dataset(batch_size, *, num_users, num_tx, num_rx, pilot_length, p_train=P_TRAIN, seed=0, steps=None):
    """:func:`channel_batches` as a ``tf.data.Dataset``.

    ``steps=None``: endless (``fit`` then needs ``steps_per_epoch``). ``steps=S``: every pass over
    the dataset (every epoch of ``fit``) yields the *next* ``S`` batches of one stream, so epochs
    never repeat channels. A run directory (:func:`fit_joint`) uses :func:`epoch_channel_batches`
    instead, which draws each epoch from ``(seed, epoch)`` so that a resumed run is exact.
    """
    kwargs = dict(num_users=num_users, num_tx=num_tx, num_rx=num_rx, pilot_length=pilot_length)
    stream = channel_batches(batch_size, p_train=p_train, seed=seed, **kwargs)
    if steps is None:
        dataset = tf.data.Dataset.from_generator(lambda: stream, output_signature=_signature(**kwargs))
    else:
        dataset = tf.data.Dataset.from_generator(
            lambda: itertools.islice(stream, steps), output_signature=_signature(**kwargs)
        ).apply(tf.data.experimental.assert_cardinality(steps))  # fit knows the epoch's length
    return dataset.prefetch(2)


def epoch_channel_batches(batch_size, *, steps, num_users, num_tx, num_rx, pilot_length, p_train=P_TRAIN, seed=0):
    """The training channels of a run as ``epoch -> tf.data.Dataset`` (:func:`mimokd.train.runs.fit_run`):
    epoch ``e``'s ``steps`` fresh batches of :func:`channel_batches` drawn from ``default_rng([seed, e])``,
    so epochs never repeat channels and a resumed run draws what an uninterrupted one would."""
    kwargs = dict(num_users=num_users, num_tx=num_tx, num_rx=num_rx, pilot_length=pilot_length)

    def epoch_batches(epoch):
        return tf.data.Dataset.from_generator(
            lambda e: itertools.islice(channel_batches(batch_size, p_train=p_train, seed=[seed, int(e)], **kwargs),
                                       steps),
            args=(epoch,),
            output_signature=_signature(**kwargs),
        ).apply(tf.data.experimental.assert_cardinality(steps))

    return epoch_batches


def _system_dims(system):
    return dict(num_users=system.num_users, num_tx=system.num_tx, num_rx=system.num_rx,
                pilot_length=system.pilot_length)


# --- evaluation ---------------------------------------------------------------------------------


def evaluate_sum_rate(system, H, power_db, rng, *, p_train=P_TRAIN, batch_size=10_000, per_sample=False):
    """The deployed system's sum rate on given channels: eq. (1) averaged over ``H``.

    Pilots with fresh noise (``rng``) -> each user's receiver -> bits -> transmitter -> ``V`` ->
    :func:`~mimokd.classical.sum_rate.sum_rate_np` (float64).

    Args:
        system: a :class:`~mimokd.zoo.precoding.KongSystem`.
        H: complex ``[n, K, M, N]`` (e.g. ``rayleigh_channels(100_000, K, M, N, rng=seed)``).
        power_db: ``P`` in dB (the transmitter is fed it in dB; the rate uses it linear).
        rng: ``numpy.random.Generator`` or int seed of the pilot noise.
        p_train: pilot power, linear.
        batch_size: samples per model call.
        per_sample: return float64 ``[n]`` instead of the mean.

    Returns:
        the mean sum rate (bits/s/Hz) as a float, or the per-sample rates.
    """
    H = np.asarray(H)
    if H.ndim != 4 or H.shape[1:] != (system.num_users, system.num_tx, system.num_rx):
        raise ValueError(
            f"`H` must be complex [n, K, M, N] = [n, {system.num_users}, {system.num_tx}, {system.num_rx}]. "
            f"Received: H.shape={H.shape}"
        )
    pilots = pilots_to_real(received_pilots(H, dft_pilots(system.num_tx, system.pilot_length), p_train, rng))
    precoders = np.concatenate([
        ops.convert_to_numpy(system.precoders(pilots[i : i + batch_size], power_db))
        for i in range(0, len(H), batch_size)
    ])
    rates = sum_rate_np(H, to_complex(precoders), db_to_linear(power_db))
    return rates if per_sample else float(rates.mean())


# --- a run --------------------------------------------------------------------------------------


def fit_joint(
    system,
    *,
    out_dir,
    power_db=30.0,
    use_kd=True,
    iterations=PAPER_ITERATIONS,
    steps_per_epoch=1000,
    batch_size=1000,
    lr=2e-4,
    val_samples=10_000,
    p_train=P_TRAIN,
    slope_schedule=None,
    seed=0,
    callbacks=(),
    verbose="auto",
    overwrite=False,
):
    """Algorithm 1 in a run directory (``mimokd.train.runs``): ``best.keras`` / ``final.keras`` hold
    the :class:`JointTrainer` (receivers, transmitter, auxiliary transmitter), best by ``val_loss``
    (minus the validation sum rate of the deployed path).

    Args:
        system: a fresh :class:`~mimokd.zoo.precoding.KongSystem` (trained in place).
        out_dir: the run directory (:mod:`mimokd.train.runs`: an interrupted run resumes, a run with
            other settings is refused unless ``overwrite``).
        power_db: ``P`` of the run, dB. use_kd: Algorithm 1 (``False``: step 5 only).
        iterations: training iterations (50,000 in the paper); epochs of ``steps_per_epoch`` each.
        batch_size: channels per iteration (1000). lr: the initial Adam rate (2e-4), decayed by
            :func:`kong_learning_rate`.
        val_samples: size of the fixed validation set (drawn from ``seed + 1``).
        slope_schedule: sigmoid STE slope (default ``SlopeSchedule(total_steps=iterations)``).
        seed: weights are the caller's; the channel stream (epoch ``e`` from ``[seed, e]``) and the
            validation set derive from ``seed``.

    Returns:
        ``(trainer, history)``.
    """
    steps_per_epoch = min(steps_per_epoch, iterations)
    epochs = math.ceil(iterations / steps_per_epoch)
    total = epochs * steps_per_epoch
    dims = _system_dims(system)
    trainer = JointTrainer(
        system, power_db=power_db, use_kd=use_kd,
        slope_schedule=slope_schedule or SlopeSchedule(total_steps=total),
    )
    trainer.compile(
        optimizer=keras.optimizers.Adam(kong_learning_rate(total, lr)),
        aux_optimizer=keras.optimizers.Adam(kong_learning_rate(total, lr)),
    )
    val = tf.data.Dataset.from_tensor_slices(
        channel_arrays(val_samples, p_train=p_train, seed=seed + 1, **dims)
    ).batch(batch_size)
    history = fit_run(
        trainer,
        epoch_channel_batches(batch_size, steps=steps_per_epoch, p_train=p_train, seed=seed, **dims),
        val,
        out_dir=Path(out_dir),
        epochs=epochs,
        record={"method": "kong-joint" if use_kd else "kong-no-kd", "power_db": power_db, "iterations": total,
                "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "lr": lr, "p_train": p_train,
                "seed": seed, **dims, "bits": system.bits, "shared_receiver": system.shared_receiver,
                "slope_schedule": trainer.slope_schedule.get_config()},
        monitor="val_loss",
        callbacks=callbacks,
        verbose=verbose,
        overwrite=overwrite,
    )
    return trainer, history


__all__ = [
    "JointTrainer",
    "SlopeSchedule",
    "channel_arrays",
    "channel_batches",
    "channel_dataset",
    "epoch_channel_batches",
    "evaluate_sum_rate",
    "fit_joint",
    "kong_learning_rate",
    "minus_mean_sum_rate",
]
