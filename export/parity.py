"""Parity of an exported artifact with its Keras model: a failure is an error, not a warning.

Two checks per artifact, on a check batch of real inputs:

1. Outputs: ``max|artifact(x) - keras(x)| <= rtol * max|keras(x)|`` with the format's ``rtol``
   (:data:`~mimokd.export.formats.FORMATS`), at the full batch and at batch 1 (the batch axis is
   dynamic, so both must run and agree).
2. Accuracy: when a ``score`` is given (the NMSE in dB of the whole autoencoder with the artifact
   in place of the Keras part), the rise of NMSE over the Keras model must not exceed the
   format's ``max_nmse_loss_db``.

A part whose outputs are bits (Kong et al.'s receiver: feedback in {-1, +1}) is also checked
``exact``: the sign of every output must be the Keras model's, whatever the format, and the count
of flipped bits is recorded in ``mismatches``. The values keep check 1: float32 artifacts give
±1 exactly, a full-integer one ±1 to one step of its 8-bit output scale (±0.996 for +1).
"""

from dataclasses import asdict, dataclass

import numpy as np

from mimokd.export.formats import as_inputs


class ParityError(RuntimeError):
    """An exported artifact does not reproduce its Keras model within the format's tolerance."""


@dataclass
class Parity:
    """The outcome of :func:`check_parity` (NMSE fields are ``None`` without a score)."""

    format: str
    runtime: str
    max_abs_diff: float
    allowed_abs_diff: float
    nmse_db_keras: float | None = None
    nmse_db_artifact: float | None = None
    failure: str | None = None
    mismatches: int | None = None
    outputs: int | None = None

    @property
    def nmse_loss_db(self):
        """NMSE rise in dB caused by the artifact (positive = worse), or ``None``."""
        if self.nmse_db_keras is None:
            return None
        return self.nmse_db_artifact - self.nmse_db_keras

    def as_dict(self):
        return {**asdict(self), "nmse_loss_db": self.nmse_loss_db}


def check_parity(model, runner, fmt, inputs, score=None, strict=True, exact=False):
    """Compare an artifact with its Keras model on ``inputs``; raise if it is out of tolerance.

    Args:
        model: the Keras part that was exported.
        runner: the artifact loaded by :func:`~mimokd.export.runtimes.load_runner`.
        fmt: its :class:`~mimokd.export.formats.ArtifactFormat`.
        inputs: float32 ``[N, ...]`` check batch in the part's input layout (N >= 2); a list of
            such arrays for a part with several inputs.
        score: optional ``outputs [N, ...] -> NMSE (dB)`` of the whole autoencoder.
        strict: raise on a tolerance failure (export). ``False`` (the report, which measures)
            returns the figures with the message in ``failure``; the caller then fails at the end.
        exact: the outputs are bits (``output >= 0``): a flipped bit is a failure, counted in
            ``mismatches`` (of ``outputs`` bits, the full batch's), whatever the format.

    Returns:
        :class:`Parity`.

    Raises:
        ParityError: wrong output shape or a non-finite output (always); outputs out of
            tolerance or NMSE lost beyond the format's budget (when ``strict``). The message names
            the artifact and the numbers.
    """
    inputs = as_inputs(inputs)
    reference = np.asarray(model.predict(inputs if len(inputs) > 1 else inputs[0], batch_size=256, verbose=0))
    outputs = runner(inputs)
    single = runner([x[:1] for x in inputs])
    where = f"{fmt.name} artifact {runner.path} ({runner.runtime})"
    for got, want in ((outputs, reference), (single, reference[:1])):
        if got.shape != want.shape:
            raise ParityError(f"The {where} returned shape {got.shape}; the Keras model gives {want.shape}")
        if not np.all(np.isfinite(got)):
            raise ParityError(f"The {where} returned non-finite values")
    diff = float(max(np.max(np.abs(outputs - reference)), np.max(np.abs(single - reference[:1]))))
    allowed = fmt.rtol * float(np.max(np.abs(reference)))
    result = Parity(fmt.name, runner.runtime, diff, allowed)
    failures = []
    if exact:
        flipped = int(np.count_nonzero((outputs >= 0) != (reference >= 0)))
        result.mismatches, result.outputs = flipped, int(reference.size)
        if flipped or np.any((single >= 0) != (reference[:1] >= 0)):
            failures.append(
                f"flips {flipped} of {result.outputs} bits of the Keras model's on {len(reference)} inputs "
                "(every bit must be exact)"
            )
    if diff > allowed:
        failures.append(
            f"differs from the Keras model by up to {diff:.3g} on {len(reference)} inputs; "
            f"the format allows {allowed:.3g} (rtol {fmt.rtol:g} of max|output|)"
        )
    if score is not None:
        result.nmse_db_keras = float(score(reference))
        result.nmse_db_artifact = float(score(outputs))
        if result.nmse_loss_db > fmt.max_nmse_loss_db:
            failures.append(
                f"loses {result.nmse_loss_db:.3f} dB of NMSE ({result.nmse_db_keras:.2f} -> "
                f"{result.nmse_db_artifact:.2f} dB); the format allows {fmt.max_nmse_loss_db:g} dB"
            )
    if failures:
        result.failure = f"The {where} " + " and ".join(failures)
        if strict:
            raise ParityError(result.failure)
    return result
