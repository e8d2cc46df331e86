"""A Keras model trained on a dict of named loss terms: the shared ``train_step`` / ``test_step``.

Zhang et al.'s single-cell and multicell trainers (:mod:`mimokd.train.hybrid`,
:mod:`mimokd.train.multicell`) differ in their networks and terms, not in how a step runs: a subclass
defines ``loss_terms(x, *targets, training)`` -> dict of scalars with at least ``"loss"``, and
``_unpack(data)`` -> ``(x, *targets)``; every term named in ``TRACKED`` is logged as a running mean.
"""

import keras
import tensorflow as tf

from mimokd.train.distribute import require_tensorflow


class LossTermsModel(keras.Model):
    """Base class: one optimizer step on ``loss_terms(...)["loss"]``; logs the terms in ``TRACKED``."""

    TRACKED = ("loss",)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._trackers = [keras.metrics.Mean(name=name) for name in self.TRACKED]

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, under the TensorFlow backend only (:data:`~mimokd.train.distribute.TENSORFLOW_ONLY`)."""
        require_tensorflow("zhang")
        return super().fit(*args, **kwargs)

    @property
    def metrics(self):
        return list(self._trackers)

    def _update_metrics(self, terms):
        for tracker in self._trackers:
            tracker.update_state(terms[tracker.name])
        return {m.name: m.result() for m in self._trackers}

    def train_step(self, data):
        x, *targets = self._unpack(data)
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x, *targets, training=True)
        self.optimizer.apply(tape.gradient(terms["loss"], variables), variables)
        return self._update_metrics(terms)

    def test_step(self, data):
        x, *targets = self._unpack(data)
        return self._update_metrics(self.loss_terms(x, *targets, training=False))
