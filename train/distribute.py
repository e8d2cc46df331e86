"""``tf.distribute`` strategies by name, for training on more than one device or machine.

- ``"default"``: the default strategy (one device, what ``fit`` uses without a scope);
- ``"cpu"``: ``OneDeviceStrategy("/cpu:0")``;
- ``"mirrored"``: ``MirroredStrategy()``, all local GPUs (or the CPU);
- ``"multiworker"``: ``MultiWorkerMirroredStrategy()``, the cluster described by the
  ``TF_CONFIG`` environment variable (each worker runs the same command).

The batch size given to the trainers is the global batch, split across replicas.
"""

import os

STRATEGIES = ("default", "cpu", "mirrored", "multiworker")


def make_strategy(name="default"):
    """Return the ``tf.distribute.Strategy`` named ``name`` (one of ``STRATEGIES``)."""
    import tensorflow as tf  # here, so that mimokd.train loads under the JAX and torch backends too

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "The 'multiworker' strategy reads the cluster from the TF_CONFIG environment "
                "variable, which is not set. Set TF_CONFIG on every worker "
                "(https://www.tensorflow.org/guide/distributed_training#TF_CONFIG)."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy. Expected one of {STRATEGIES}. Received: name={name!r}")
