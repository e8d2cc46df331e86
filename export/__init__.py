"""Deployment: artifacts (SavedModel, ONNX, TFLite float / int8) checked in their own runtimes,
complexity by formula and by graph count, latency, and the report.

- :func:`export_model`: every deployable part in every format, each loaded back and checked.
- :func:`report_model` / :func:`write_report`: FLOPs, sizes, latency and NMSE per artifact.
- :func:`count_complexity`: parameters / multiplications / FLOPs in the papers' conventions.

The names below are imported on first use (PEP 562), so that ``mimokd --help`` and the modules
that need only the format table do not start TensorFlow.
"""

import importlib

_EXPORTS = {
    "FORMATS": "formats",
    "Complexity": "flops",
    "count_complexity": "flops",
    "graph_flops": "flops",
    "ParityError": "parity",
    "check_finite_weights": "artifacts",
    "check_parity": "parity",
    "deployable_parts": "artifacts",
    "export_model": "artifacts",
    "load_runner": "runtimes",
    "report_model": "report",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
