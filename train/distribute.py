"""Training on more than one device or process: strategies by name, and data-parallel processes.

Strategies (``--strategy``):

- ``"default"``: the default ``tf.distribute`` strategy (one device, what ``fit`` uses without a scope);
- ``"cpu"``: ``tf.distribute.OneDeviceStrategy("/cpu:0")``;
- ``"mirrored"``: ``tf.distribute.MirroredStrategy()``, all local GPUs (or the CPU);
- ``"data-parallel"``: Keras' own distribution API under the JAX backend
  (``keras.distribution.DataParallel`` over every device of every process, joined by
  ``jax.distributed``), see :func:`start_data_parallel`;
- ``"multiworker"`` (``tf.distribute.MultiWorkerMirroredStrategy``) is refused
  (:data:`MULTIWORKER_REFUSAL`): Keras 3's ``fit`` stops before its first step under it.

The batch size given to the trainers is the global batch, split across replicas.

**Data-parallel processes.** Every process runs the same command with ``KERAS_BACKEND=jax`` and its
own process id; process 0 (the *chief*) is also the coordinator::

    # on each of N machines (or N times on one), i = 0 .. N-1:
    KERAS_BACKEND=jax mimokd train ... --strategy data-parallel \\
        --coordinator HOST0:PORT --num-processes N --process-id i

(or Keras' environment variables ``KERAS_DISTRIBUTION_JOB_ADDRESSES=HOST0:PORT``,
``KERAS_DISTRIBUTION_NUM_PROCESSES=N``, ``KERAS_DISTRIBUTION_PROCESS_ID=i``). Each training batch of
``B`` samples is cut into ``N`` contiguous shares of ``B / N`` (:func:`process_share`), one per
process; the gradients, the BatchNorm batch statistics and the metrics are taken over the global
batch, so the weights stay identical on every process and equal those of a one-process run on the
same batches up to round-off (the order of the sums differs). Every batch of an epoch, the last one
too, must hold a multiple of ``N`` samples. Each process feeds the whole validation batch (the global
batch is then ``N`` copies of it: the mean metrics are those of the one batch). Only the chief writes
the run directory (:mod:`mimokd.train.runs`); it resumes a run and :func:`files_from_chief` gives
its state to the others. With no coordinator (``N = 1``) ``data-parallel`` spreads the batch over the
devices of the one process. CPU processes talk through gloo.

What runs under ``data-parallel``: the trainers that Keras' own ``fit`` steps (vanilla training, output,
autoencoder and encoder KD on ``keras.distillation``, the IP-KD encoder / decoder runs). The trainers
with their own ``train_step`` on ``tf.GradientTape`` stay TensorFlow-only, and their ``fit`` refuses
another backend (:func:`require_tensorflow`, :data:`TENSORFLOW_ONLY`): codeword mimic (two
optimizers, mimic-explore), Kong et al.'s joint trainer (two updates per batch, TensorFlow sum rate
of complex channels) and Zhang et al.'s trainers (TensorFlow recovery layers and sum rates). So do
the experiments (one process runs all of an experiment's runs; ``mimokd experiment --rows`` splits a
CSI-KD table over machines instead).
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path

import keras
import numpy as np

STRATEGIES = ("default", "cpu", "mirrored", "multiworker", "data-parallel")

#: The environment variables that :func:`start_data_parallel` reads (Keras' own names).
ENVIRONMENT = {
    "coordinator": "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "num_processes": "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "process_id": "KERAS_DISTRIBUTION_PROCESS_ID",
}

MULTIWORKER_REFUSAL = (
    "The 'multiworker' strategy (tf.distribute.MultiWorkerMirroredStrategy) cannot drive Keras 3's fit: it "
    "stops before the first step with 'Attempt to convert a value (PerReplica...) to a Tensor' "
    "(keras-team/keras#20585, open upstream). Train on several processes with the 'data-parallel' strategy "
    "instead (KERAS_BACKEND=jax, Keras' DataParallel over jax.distributed)"
)


#: The trainers with their own ``train_step`` that stay TensorFlow-only, and why (:func:`require_tensorflow`).
TENSORFLOW_ONLY = {
    "codeword-mimic": "Codeword mimic trains under TensorFlow only: its train_step takes the gradient with "
                      "tf.GradientTape and applies it with two optimizers (mimic-explore: a learning rate for each "
                      "half of the autoencoder)",
    "kong": "Kong et al.'s joint trainer trains under TensorFlow only: Algorithm 1 makes two updates a batch "
            "(auxiliary, then main transmitter), each on tf.GradientTape through the TensorFlow sum rate of "
            "complex channels",
    "zhang": "Zhang et al.'s beamforming trainers train under TensorFlow only: their train_step takes the gradient "
             "with tf.GradientTape through the TensorFlow recovery layers and sum rates",
}


class ChiefFailedError(RuntimeError):
    """The chief (process 0) failed in a step that the other processes wait for."""


def make_strategy(name="default"):
    """Return the strategy named ``name`` (one of ``STRATEGIES``): a ``tf.distribute.Strategy``, or for
    ``"data-parallel"`` the ``keras.distribution.DataParallel`` of :func:`start_data_parallel` (both
    have ``scope()``).

    Raises:
        ValueError: ``name`` is unknown, or ``"multiworker"`` (:data:`MULTIWORKER_REFUSAL`).
    """
    if name == "data-parallel":
        return start_data_parallel()
    if name == "multiworker":
        raise ValueError(MULTIWORKER_REFUSAL)
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy. Expected one of {STRATEGIES}. Received: name={name!r}")
    import tensorflow as tf  # here, so that mimokd.train loads under the JAX and torch backends too

    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _setting(value, key, convert):
    """``value``, else the environment variable of ``key`` converted, else ``None``."""
    if value is not None:
        return value
    text = os.environ.get(ENVIRONMENT[key])
    if text is None:
        return None
    try:
        return convert(text)
    except ValueError:
        raise ValueError(f"{ENVIRONMENT[key]} must be an integer. Received: {ENVIRONMENT[key]}={text!r}") from None


def check_processes(coordinator, num_processes, process_id):
    """Check the settings of a data-parallel process (each argument may be ``None`` when not given).

    Returns:
        ``(coordinator, num_processes, process_id)``; ``(None, 1, 0)`` for a lone process.

    Raises:
        ValueError: a setting is out of range, or a multi-process run misses one.
    """
    if num_processes is None and coordinator is None and process_id is None:
        return None, 1, 0
    if num_processes is None or num_processes < 1:
        raise ValueError("A data-parallel run needs the number of processes, an integer >= 1 "
                         f"(--num-processes or {ENVIRONMENT['num_processes']}). Received: {num_processes}")
    if num_processes == 1 and coordinator is None:
        return None, 1, 0
    if not coordinator or not coordinator.split(",")[0].rpartition(":")[2].isdigit():
        raise ValueError("A data-parallel run of several processes needs the chief's address as HOST:PORT "
                         f"(--coordinator or {ENVIRONMENT['coordinator']}). Received: {coordinator!r}")
    if process_id is None or not 0 <= process_id < num_processes:
        raise ValueError(f"The process id must be 0 .. {num_processes - 1} (--process-id or "
                         f"{ENVIRONMENT['process_id']}; 0 is the chief). Received: {process_id}")
    return coordinator.split(",")[0], num_processes, process_id


def start_data_parallel(coordinator=None, num_processes=None, process_id=None):
    """Join the data-parallel job and make ``DataParallel`` the global Keras distribution.

    Call it before any model is built. Settings not given are read from :data:`ENVIRONMENT`; with
    none at all the process trains alone on its local devices. Calling it again (the job already
    joined) only returns the distribution.

    Args:
        coordinator: ``"HOST:PORT"`` of process 0, which every process connects to.
        num_processes: ``N``, the number of processes.
        process_id: this process, ``0 .. N - 1``; 0 is the chief.

    Returns:
        The ``keras.distribution.DataParallel`` over ``jax.devices()`` (every process's devices),
        with ``auto_shard_dataset=False``: each process feeds its share (:func:`process_share`).

    Raises:
        RuntimeError: the Keras backend is not JAX.
        ValueError: a setting is missing or out of range (:func:`check_processes`).
    """
    if keras.backend.backend() != "jax":
        raise RuntimeError(
            "The 'data-parallel' strategy runs under the JAX backend (Keras' DataParallel over jax.distributed); "
            f"this process runs Keras on {keras.backend.backend()!r}. Set KERAS_BACKEND=jax before starting it "
            "(the mimokd command does so itself for --strategy data-parallel)"
        )
    import jax

    current = data_parallel()
    if current is not None:
        return current
    coordinator, num_processes, process_id = check_processes(
        _setting(coordinator, "coordinator", str), _setting(num_processes, "num_processes", int),
        _setting(process_id, "process_id", int))
    if num_processes > 1 and not jax.distributed.is_initialized():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes; GPUs use NCCL
        keras.distribution.initialize(coordinator, num_processes, process_id)
    distribution = keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    return distribution


def data_parallel():
    """The active ``keras.distribution.DataParallel`` (JAX backend), or ``None``."""
    if keras.backend.backend() != "jax":
        return None
    distribution = keras.distribution.distribution()
    return distribution if isinstance(distribution, keras.distribution.DataParallel) else None


def process_count():
    """``N``, the processes of the data-parallel job (1 without one)."""
    if data_parallel() is None:
        return 1
    import jax

    return jax.process_count()


def process_index():
    """This process's id in the data-parallel job, ``0 .. N - 1`` (0 without one)."""
    if data_parallel() is None:
        return 0
    import jax

    return jax.process_index()


def is_chief():
    """Whether this process writes the run files: process 0, or the one process."""
    return process_index() == 0


def require_tensorflow(trainer):
    """Refuse to train ``trainer`` (a key of :data:`TENSORFLOW_ONLY`) under a backend other than TensorFlow.

    Raises:
        ValueError: Keras runs on JAX (or torch); the message names the trainer, why and what to do.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(
            f"{TENSORFLOW_ONLY[trainer]}. This process runs Keras on {backend!r}"
            f"{' with the data-parallel strategy' if data_parallel() is not None else ''}. Train it in one process "
            "with KERAS_BACKEND=tensorflow (the default), without --strategy data-parallel"
        )


def process_share(dataset, *, index=None, count=None):
    """This process's share of every batch of ``dataset``: the ``index``-th of ``count`` contiguous
    slices along the batch axis (default: this process of the data-parallel job).

    Args:
        dataset: a ``tf.data.Dataset`` of batches (tuples / dicts of tensors ``[B, ...]``), every ``B``
            a multiple of ``count`` (see :func:`check_batches`).

    Returns:
        The dataset of ``[B / count, ...]`` slices, the same structure.
    """
    import tensorflow as tf

    index = process_index() if index is None else index
    count = process_count() if count is None else count

    def share(*batch):
        size = tf.shape(tf.nest.flatten(batch)[0])[0] // count
        sliced = tf.nest.map_structure(lambda t: t[index * size:(index + 1) * size], batch)
        return sliced if len(sliced) > 1 else sliced[0]

    return dataset.map(share)


def check_batches(dataset, count):
    """Check that every batch of ``dataset`` (a ``tf.data.Dataset`` of ``[B, ...]`` batches, read once)
    splits into ``count`` equal shares.

    Raises:
        ValueError: a batch size is not a multiple of ``count``; names the sizes found.
    """
    import tensorflow as tf

    sizes = sorted({int(tf.shape(tf.nest.flatten(batch)[0])[0]) for batch in dataset})
    if any(size % count for size in sizes):
        raise ValueError(
            f"Every training batch must split evenly over the {count} data-parallel processes. Received batches "
            f"of {sizes} samples. Choose a --batch-size and a number of training samples that are multiples of "
            f"{count} (the last batch holds samples mod batch size)"
        )


def on_chief(fn, what):
    """Run ``fn()`` on the chief alone, and let every process know whether it failed.

    ``fn`` must not touch distributed variables (their every assignment waits for all processes).

    Returns:
        ``fn()``'s value on the chief, ``None`` on the other processes.

    Raises:
        Whatever ``fn`` raised, on the chief; :class:`ChiefFailedError` on the other processes.
    """
    if process_count() == 1:
        return fn()
    failed = True
    try:
        result = fn() if is_chief() else None
        failed = False
    finally:
        failed = bool(from_chief(failed))
    if failed:
        raise ChiefFailedError(f"Process 0 (the chief) failed while {what}; its error is in its own output")
    return result


def from_chief(value):
    """The chief's ``value`` (an int; whatever the others pass) on every process."""
    if process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int64(value)))


def bytes_from_chief(data):
    """The chief's ``data`` (bytes; ``None`` on the others) on every process."""
    if process_count() == 1:
        return data
    from jax.experimental import multihost_utils

    size = from_chief(len(data) if is_chief() else 0)
    if size == 0:
        return b""
    buffer = np.frombuffer(data, np.uint8) if is_chief() else np.zeros(size, np.uint8)
    return np.asarray(multihost_utils.broadcast_one_to_all(buffer)).tobytes()


@contextlib.contextmanager
def files_from_chief(paths):
    """The chief's files ``paths`` on every process (e.g. a checkpoint the chief wrote, to load on all).

    Yields:
        The paths themselves on the chief; elsewhere, copies with the same names in a temporary folder,
        deleted on exit. ``paths`` is read on the chief only (the others pass anything, e.g. ``()``).
    """
    if process_count() == 1:
        yield [Path(p) for p in paths]
        return
    names = json.loads(bytes_from_chief(json.dumps([str(p) for p in paths]).encode() if is_chief() else None))
    with tempfile.TemporaryDirectory(prefix="mimokd-from-chief-") as tmp:
        local = [Path(name) if is_chief() else Path(tmp, Path(name).name) for name in names]
        for name, path in zip(names, local):
            data = bytes_from_chief(Path(name).read_bytes() if is_chief() else None)
            if not is_chief():
                path.write_bytes(data)
        yield local


@contextlib.contextmanager
def local_only():
    """Unset the data-parallel distribution inside the block (a no-op without one).

    For the chief's work alone (saving a model, loading one to evaluate): Keras then makes any new
    variable on this process's devices, where under the distribution every new variable is a
    collective step that the other processes would have to join.
    """
    distribution = data_parallel()
    if distribution is None:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)
