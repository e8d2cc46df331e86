"""Every Keras object of mimokd registered with Keras as soon as Keras is there, after ``import mimokd``.

A checkpoint names the custom objects it was saved with (models and layers of ``mimokd.zoo``,
metrics, learning-rate schedules, distillation losses, KD trainers), and
``keras.saving.load_model`` finds only those whose module has run its
``@keras.saving.register_keras_serializable``. Importing those modules from ``mimokd/__init__``
would import TensorFlow on every ``import mimokd`` (seconds, and in every worker process of
``mimokd data generate``), so :func:`install` puts an import hook in ``sys.meta_path`` instead: once
the ``keras`` module has been imported, and no mimokd module is half-way through its own import
(which may be what imported Keras), :data:`MODULES` are imported and the hook removes itself.
"""

import importlib
import importlib.abc
import sys

#: The modules that register Keras objects (``register_keras_serializable``).
MODULES = (
    "mimokd.metrics",
    "mimokd.zoo",
    "mimokd.zoo.beamforming",
    "mimokd.zoo.precoding",
    "mimokd.train.schedules",
    "mimokd.train.distill",
    "mimokd.train.codeword_mimic",
    "mimokd.train.joint",
    "mimokd.train.hybrid",
    "mimokd.train.learned_channel",
    "mimokd.train.multicell",
)


def register_all():
    """Import :data:`MODULES` (imports Keras and TensorFlow)."""
    for name in MODULES:
        importlib.import_module(name)


class _Loader:
    """A module's loader that calls ``hook.executed`` around ``exec_module``; all else delegated."""

    def __init__(self, loader, hook):
        self._loader, self._hook = loader, hook

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def exec_module(self, module):
        self._hook.depth += module.__name__ != "keras"
        try:
            self._loader.exec_module(module)
        finally:
            self._hook.depth -= module.__name__ != "keras"
        self._hook.executed()


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Watches the import of ``keras`` and of mimokd's modules (``depth``: those executing now)."""

    def __init__(self):
        self.depth = 0

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras" and not fullname.startswith("mimokd."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, self)
                return spec
        return None

    def executed(self):
        """After a watched module ran: register once Keras is imported and no mimokd import is under way."""
        if self.depth == 0 and "keras" in sys.modules and self in sys.meta_path:
            sys.meta_path.remove(self)
            register_all()


def install():
    """Register every Keras object of mimokd now if Keras is imported, else as soon as it is."""
    if "keras" in sys.modules:
        register_all()
    else:
        sys.meta_path.insert(0, _RegisterAfterKeras())
