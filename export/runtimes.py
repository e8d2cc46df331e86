"""Loading an exported artifact in its own runtime: TensorFlow, onnxruntime, the LiteRT interpreter.

A runner is a callable ``runner(x) -> y`` on float32 numpy arrays with any batch size, so parity
checks, NMSE and latency measurements treat the three runtimes alike; a part with several inputs
(:class:`~mimokd.export.formats.Endpoint` ``extra_inputs``) takes them as a list, in its model's
input order, and each runtime is fed them by name.

Threads: onnxruntime and LiteRT take the thread count per session. TensorFlow's is process-wide
and fixed once its runtime has started, so :func:`load_runner` sets it if it still can and
records the count actually in force (``0`` = TensorFlow's default, all cores); the ``mimokd``
commands set it before anything else runs.
"""

from pathlib import Path

import numpy as np

from mimokd.export.formats import as_inputs, get_format


def set_tensorflow_threads(threads):
    """Set TensorFlow's intra- and inter-op thread pools to ``threads`` if it has not started yet.

    Args:
        threads: the thread count; ``None`` or ``0`` leave TensorFlow's default (all cores).

    Returns:
        int, the intra-op thread count in force afterwards (``0`` = TensorFlow's default).
    """
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime has started: what is in force stays, and is returned
            pass
    return tf.config.threading.get_intra_op_parallelism_threads()


class Runner:
    """An artifact loaded in its runtime; ``runner(x)`` maps float32 ``[batch, ...]`` to its output.

    Attributes:
        runtime: ``"tensorflow"``, ``"onnxruntime"`` or ``"litert"``.
        path: the artifact.
        threads: the intra-op thread count in force (``0`` = the runtime's default).
    """

    runtime = ""

    def __init__(self, path, threads):
        self.path = Path(path)
        self.threads = threads


class TensorFlowRunner(Runner):
    """A SavedModel's serving signature (a ``tf.function``) called from Python."""

    runtime = "tensorflow"

    def __init__(self, path, endpoint, threads=None):
        import tensorflow as tf

        self._loaded = tf.saved_model.load(str(path))  # the signature does not keep it alive
        if endpoint.signature not in self._loaded.signatures:
            raise ValueError(
                f"The SavedModel at {path} has no signature {endpoint.signature!r}. Expected one of "
                f"{sorted(self._loaded.signatures)}"
            )
        self._fn = self._loaded.signatures[endpoint.signature]
        super().__init__(path, set_tensorflow_threads(threads))
        self._inputs, self._output = endpoint.input_names, endpoint.output_name
        self._constant = tf.constant

    def __call__(self, x):
        feeds = {name: self._constant(value) for name, value in zip(self._inputs, as_inputs(x))}
        return self._fn(**feeds)[self._output].numpy()


class OnnxRunner(Runner):
    """An ONNX model in an onnxruntime CPU session."""

    runtime = "onnxruntime"

    def __init__(self, path, endpoint, threads=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in self._session.get_inputs()]
        self._inputs = names if len(names) == 1 else list(endpoint.input_names)
        super().__init__(path, threads or 0)

    def __call__(self, x):
        return self._session.run(None, dict(zip(self._inputs, as_inputs(x))))[0]


class LiteRTRunner(Runner):
    """A ``.tflite`` flatbuffer in the LiteRT interpreter (``ai_edge_litert``; XNNPACK on CPU)."""

    runtime = "litert"

    def __init__(self, path, endpoint=None, threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=threads or None)
        self._interpreter.allocate_tensors()
        details = self._interpreter.get_input_details()
        if len(details) > 1:  # LiteRT orders the inputs by name: find each as serving_default_<name>:0
            by_name = {d["name"].removeprefix("serving_default_").split(":")[0]: d for d in details}
            details = [by_name[name] for name in endpoint.input_names]
        self._inputs = details
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shapes = [tuple(int(n) for n in d["shape"]) for d in details]
        super().__init__(path, threads or 0)

    def __call__(self, x):
        interpreter = self._interpreter
        x = as_inputs(x)
        shapes = [value.shape for value in x]
        if shapes != self._shapes:  # get_input_details() per call would cost ~10 µs of Python
            for detail, shape in zip(self._inputs, shapes):
                interpreter.resize_tensor_input(detail["index"], list(shape))
            interpreter.allocate_tensors()
            self._shapes = shapes
        for detail, value in zip(self._inputs, x):
            interpreter.set_tensor(detail["index"], np.ascontiguousarray(value, dtype=detail["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(self._output).copy()

    def tensor_types(self):
        """``{tensor name: numpy dtype}`` of every tensor in the flatbuffer (weights included)."""
        return {t["name"]: t["dtype"] for t in self._interpreter.get_tensor_details()}


def load_runner(path, fmt, endpoint, threads=None):
    """Load the artifact at ``path`` (written in format ``fmt``) in its runtime.

    Args:
        path: artifact file, or folder for a SavedModel.
        fmt: format name or :class:`~mimokd.export.formats.ArtifactFormat`.
        endpoint: the :class:`~mimokd.export.formats.Endpoint` it was exported with.
        threads: intra-op threads (``None`` or ``0`` = the runtime's default).

    Raises:
        FileNotFoundError: nothing at ``path``.
    """
    fmt = get_format(fmt) if isinstance(fmt, str) else fmt
    if not Path(path).exists():
        raise FileNotFoundError(f"No {fmt.name} artifact at {path}")
    if fmt.runtime == "tensorflow":
        return TensorFlowRunner(path, endpoint, threads)
    if fmt.runtime == "onnxruntime":
        return OnnxRunner(path, endpoint, threads)
    return LiteRTRunner(path, endpoint, threads)
