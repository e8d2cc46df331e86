"""Export a model's deployable parts to every format, each artifact checked in its own runtime.

    >>> from mimokd.export import export_model
    >>> manifest = export_model(autoencoder, "export/crnet_se_cr4", calibration=train[:200],
    ...                         check=test[:256])                        # doctest: +SKIP

writes ``encoder.savedmodel/``, ``encoder.onnx``, ``encoder.{f32,f16,int8w,int8}.tflite`` (the UE
side) and the same for ``decoder`` (the BS side), loads each back in TensorFlow / onnxruntime /
LiteRT, checks it against the Keras part (:func:`~mimokd.export.parity.check_parity`; the NMSE is
that of the whole autoencoder with the artifact in place of its Keras part) and writes
``manifest.json`` with every artifact's size and parity figures. Kong et al.'s and Zhang et al.'s
systems export the same way, their parts named after their networks (``receiver``,
``transmitter``; ``csi_net``, ``power_net``, ``beamformer``: :mod:`mimokd.export.systems`), checked
on the system's own inputs (pilots, uplink estimates) without an NMSE.

The export is built in a temporary folder beside ``out_dir`` and swapped in whole
(:func:`mimokd.fileio.atomic_dir`): a kill at any instant leaves either the complete old export or
the complete new one, never a mix of two models. A model whose weights hold NaN or Inf is refused
before any work (:func:`check_finite_weights`).
"""

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mimokd.export.formats import PART_FORMATS, Endpoint, get_format, write_artifact
from mimokd.export.packed import fold_binarized
from mimokd.export.parity import ParityError, check_parity
from mimokd.export.runtimes import load_runner

logger = logging.getLogger(__name__)

ENCODER = Endpoint(signature="encode", input_name="csi", output_name="codeword")
DECODER = Endpoint(signature="decode", input_name="codeword", output_name="csi")


@dataclass(frozen=True)
class Part:
    """A deployable part of a model.

    Attributes:
        name: ``"encoder"``, ``"decoder"``, or a system's part (:mod:`mimokd.export.systems`);
            artifact files are named after it.
        model: the Keras model of the part, as trained (what the artifacts are checked against).
        endpoint: names of the signature and tensors in its artifacts.
        side: where it runs, ``"UE"`` or ``"BS"``.
        kind: its key in :data:`~mimokd.export.formats.PART_FORMATS` (default ``name``).
        exact: its outputs are discrete (bits) and checked exactly
            (:func:`~mimokd.export.parity.check_parity`).
        inference: the model written to the artifacts (default: ``model`` with its binarized
            layers folded, :func:`~mimokd.export.packed.fold_binarized`).
    """

    name: str
    model: object
    endpoint: Endpoint
    side: str
    kind: str = None
    exact: bool = False
    inference: object = None

    def __post_init__(self):
        if self.kind is None:
            object.__setattr__(self, "kind", self.name)

    @property
    def formats(self):
        """The part's default formats (:data:`~mimokd.export.formats.PART_FORMATS` of its kind)."""
        return PART_FORMATS[self.kind]

    def deployed(self):
        """The Keras model that the artifacts hold (see ``inference``)."""
        return fold_binarized(self.model) if self.inference is None else self.inference


def deployable_parts(model):
    """The deployable parts of a model: ``{"encoder": Part, "decoder": Part}`` of a CSI model, or
    those of a Kong / Zhang system (:func:`~mimokd.export.systems.system_parts`).

    Args:
        model: an autoencoder (CSI -> CSI, with ``.encoder`` / ``.decoder``), a lone encoder
            (CSI ``[batch, 2, H, W]`` -> codeword) or decoder (codeword -> CSI), Kong et al.'s
            :class:`~mimokd.train.joint.JointTrainer` or Zhang et al.'s
            :class:`~mimokd.train.hybrid.HybridBeamformer`.

    Raises:
        ValueError: the model is none of these.
    """
    from mimokd.export.systems import SYSTEMS, system_kind, system_parts

    if system_kind(model):
        return system_parts(model)
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        return {
            "encoder": Part("encoder", model.encoder, ENCODER, "UE"),
            "decoder": Part("decoder", model.decoder, DECODER, "BS"),
        }
    inputs, outputs = len(model.input_shape), len(model.output_shape)
    if (inputs, outputs) == (4, 2):
        return {"encoder": Part("encoder", model, ENCODER, "UE")}
    if (inputs, outputs) == (2, 4):
        return {"decoder": Part("decoder", model, DECODER, "BS")}
    raise ValueError(
        "Expected a CSI autoencoder, encoder ([batch, 2, H, W] -> [batch, D]) or decoder "
        f"([batch, D] -> [batch, 2, H, W]), or {', or '.join(SYSTEMS.values())}. Received a model "
        f"{model.input_shape} -> {model.output_shape}"
    )


def select_parts(available, parts):
    """The part names ``parts`` (a name, names, or ``None`` for every part of ``available``) as a list.

    Raises:
        ValueError: a name that is not in ``available``, listing those that are.
    """
    parts = [parts] if isinstance(parts, str) else list(available) if parts is None else list(parts)
    unknown = [p for p in parts if p not in available]
    if unknown:
        raise ValueError(f"Unknown part(s) {unknown}. This model has {list(available)}")
    return parts


def check_finite_weights(model, origin=None):
    """Refuses a model whose weights hold NaN or Inf (a diverged run): its export could only fail
    later, in a parity check that would blame the artifact.

    Args:
        model: a Keras model.
        origin: what to name in the error, e.g. ``"checkpoint runs/x/best.keras"``; default the model.

    Raises:
        ValueError: naming ``origin``, the first bad weight (its layer path) and the count.
    """
    for weight in model.weights:
        values = np.asarray(weight.numpy())
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            bad = int(values.size - np.count_nonzero(np.isfinite(values)))
            raise ValueError(
                f"{origin or f'model {model.name!r}'} is broken: weight {weight.path} holds {bad} NaN or infinite "
                f"value(s) of {values.size}; expected finite weights (a diverged training run? export another "
                "checkpoint, e.g. best.keras)")


def check_replaceable(out_dir, extra=(), parts=("encoder", "decoder")):
    """Refuses an ``out_dir`` that is a file, or a folder holding anything but an export's files
    (``manifest.json``, ``{part}{suffix}`` artifacts of the ``parts`` names, and the names in
    ``extra``): it is replaced whole."""
    from mimokd.export.formats import FORMATS

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; expected an export folder (new, empty, or an export to replace)")
    allowed = {"manifest.json", *extra} | {f"{part}{fmt.suffix}" for part in parts for fmt in FORMATS.values()}
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in allowed) if out_dir.is_dir() else []
    if foreign:
        raise ValueError(f"{out_dir} holds files that are not an export's ({', '.join(foreign[:5])}"
                         f"{', ...' if len(foreign) > 5 else ''}), and an export replaces its folder whole; "
                         "expected a new or empty folder, or an earlier export to replace")


def artifact_size(path):
    """Bytes on disk of an artifact file, or of all files under an artifact folder."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def part_inputs_and_score(model, part, csi):
    """A part's check inputs and its NMSE score, from the model's inputs: CSI ``[N, 2, H, W]`` (or a
    system's, :func:`~mimokd.export.systems.part_inputs`, without a score).

    The encoder is scored through the model's Keras decoder, the decoder on the Keras encoder's
    codewords; a lone encoder has no score (``None``). ``csi=None`` gives ``(None, None)``.

    Returns:
        ``(inputs, score)``: float32 ``[N, ...]`` (a list for a part with several inputs) and
        ``outputs -> NMSE dB`` or ``None``.
    """
    from mimokd.export.systems import part_inputs, system_kind
    from mimokd.metrics import nmse_db

    if csi is None or len(csi) == 0:
        return None, None
    if system_kind(model):
        return part_inputs(model, part, csi), None
    csi = np.asarray(csi, dtype=np.float32)
    parts = deployable_parts(model)
    if part.name == "encoder":
        decoder = parts.get("decoder")
        score = None
        if decoder is not None:
            def score(codewords):
                return nmse_db(csi, decoder.model.predict(codewords, batch_size=256, verbose=0))
        return csi, score
    encoder = parts["encoder"]  # export_model refuses a lone decoder
    codewords = np.asarray(encoder.model.predict(csi, batch_size=256, verbose=0))
    return codewords, lambda outputs: nmse_db(csi, outputs)


def export_part(model, part, out_dir, formats, *, calibration, check, threads=None, strict=True):
    """Export one part to each format and check each artifact; see :func:`export_model`.

    Logs a line per artifact (to this module's logger) before its conversion.

    ``strict=False`` records a tolerance failure in the record's ``failure`` instead of raising
    (see :func:`~mimokd.export.parity.check_parity`).

    The artifacts hold :meth:`Part.deployed` (binarized layers folded, a receiver's hard sign); the
    parity checks compare with the part as trained, exactly for an ``exact`` part.

    Returns:
        list of dicts, one per artifact: part, side, format, runtime, path, size_bytes and the
        :class:`~mimokd.export.parity.Parity` fields.
    """
    calibration_inputs, _ = part_inputs_and_score(model, part, calibration)
    check_inputs, score = part_inputs_and_score(model, part, check)
    inference = part.deployed()
    records = []
    for k, name in enumerate(formats, 1):
        fmt = get_format(name)
        path = Path(out_dir) / f"{part.name}{fmt.suffix}"
        logger.info("%s [%d/%d] %s: converting, then checking in %s", part.name, k, len(formats), name, fmt.runtime)
        write_artifact(inference, fmt, path, part.endpoint, calibration=calibration_inputs)
        runner = load_runner(path, fmt, part.endpoint, threads=threads)
        parity = check_parity(part.model, runner, fmt, check_inputs, score=score, strict=strict, exact=part.exact)
        records.append(
            {
                "part": part.name,
                "side": part.side,
                "path": str(path),
                "size_bytes": artifact_size(path),
                **parity.as_dict(),
            }
        )
    return records


def export_model(model, out_dir, *, calibration, check, parts=None, formats=None, threads=None):
    """Export a model's deployable parts to every format and verify each artifact.

    Args:
        model: an autoencoder or a lone encoder (a lone decoder is refused: its check inputs are
            codewords, which only an encoder makes from CSI), or a Kong / Zhang system
            (:mod:`mimokd.export.systems`).
        out_dir: folder for the artifacts and ``manifest.json``.
        calibration: CSI float32 ``[N, 2, H, W]`` representative of the deployment data, for
            the calibrated formats (``tflite-int8``, ``tflite-int16x8``: a few hundred training
            samples; the decoder is calibrated on their codewords); ``None`` for the others. A
            system's calibration and check inputs are its own (Kong: pilots ``[N, K, 2NL]``, Zhang:
            uplink estimates ``[N, K, Nt, 2]``; :func:`~mimokd.export.systems.system_inputs`).
        check: CSI float32 ``[M, 2, H, W]`` held out, M >= 2, for the parity checks and NMSE.
        parts: part names (default: all the model has).
        formats: format names (default: each part's :data:`~mimokd.export.formats.PART_FORMATS`).
        threads: intra-op threads of the runtimes during the checks.

    Returns:
        the manifest (dict), also written to ``out_dir/manifest.json``.

    Raises:
        ValueError: bad arguments, or weights that hold NaN / Inf (before any work).
        ParityError: an artifact is out of tolerance; ``out_dir`` is left as it was, and the
            artifacts built so far are kept in ``<out_dir>.failed/`` for inspection (no manifest).
    """
    import keras
    import tensorflow as tf

    from mimokd.fileio import atomic_dir, write_json

    from mimokd.export.systems import system_input_shape, system_kind

    check_finite_weights(model)
    available = deployable_parts(model)
    if not system_kind(model) and "encoder" not in available:
        raise ValueError(
            "A lone decoder cannot be checked: its check inputs are codewords, made from CSI by an "
            "encoder. Export the autoencoder (both parts) instead, e.g. a ComposedAutoencoder of "
            "its encoder and this decoder."
        )
    parts = select_parts(available, parts)
    formats = [formats] if isinstance(formats, str) else formats
    expected = (f"the model's inputs [M >= 2, {', '.join(map(str, system_input_shape(model)))}]" if system_kind(model)
                else "CSI [M >= 2, 2, H, W]")
    calibrated = [f for p in parts for f in formats or available[p].formats if get_format(f).calibrated]
    if calibrated and (calibration is None or len(calibration) == 0):
        raise ValueError(
            f"The formats {sorted(set(calibrated))} need representative inputs to calibrate the "
            f"activation ranges: pass `calibration`, {expected}, float32 (a few hundred training samples)."
        )
    check = np.asarray(check, dtype=np.float32)
    shape_ok = tuple(check.shape[1:]) == system_input_shape(model) if system_kind(model) else check.ndim == 4
    if not shape_ok or len(check) < 2:
        raise ValueError(f"`check` must be {expected}. Received shape {check.shape}")
    out_dir = Path(out_dir)
    check_replaceable(out_dir, parts=available)
    with atomic_dir(out_dir) as build:
        records = []
        try:
            for name in parts:
                records += export_part(
                    model, available[name], build, formats or available[name].formats,
                    calibration=calibration, check=check, threads=threads,
                )
        except ParityError as error:
            failed = out_dir.parent / f"{out_dir.name}.failed"
            if failed.exists():
                shutil.rmtree(failed)
            os.replace(build, failed)
            raise ParityError(f"{error} ({out_dir} is unchanged; the artifacts are kept in {failed} for "
                              "inspection)") from error
        for record in records:  # the paths they will have once swapped in
            record["path"] = str(out_dir / Path(record["path"]).name)
        manifest = {
            "model": model.name,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "check_samples": len(check),
            "calibration_samples": 0 if calibration is None else len(calibration),
            "artifacts": records,
        }
        write_json(build / "manifest.json", manifest)
    return manifest
