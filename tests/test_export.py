"""Export artifacts checked in their own runtimes, parity errors, atomic writes, packed 1-bit weights,
latency, graph FLOPs and the deployment report (mimokd.export)."""

import contextlib
import dataclasses
import io
import json
import os
import re
import types

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from weights import model_output, snapshot, unchanged

from mimokd.channels import load_csi
from mimokd.export import latency as latency_module
from mimokd.export.artifacts import DECODER, ENCODER, deployable_parts, export_model
from mimokd.export.flops import count_complexity, graph_flops
from mimokd.export.formats import FORMATS, PART_FORMATS, write_artifact
from mimokd.export.latency import measure_latency
from mimokd.export.packed import fold_binarized, read_packed, write_packed
from mimokd.export.parity import ParityError, check_parity
from mimokd.export.report import fastest, report_model, write_report
from mimokd.export.runtimes import LiteRTRunner, Runner, load_runner
from mimokd.fileio import atomic_dir
from mimokd.metrics import nmse_db
from mimokd.zoo import BinarizedDense, create_model
from mimokd.zoo.registry import PRESETS

CR = 32
D = 2 * 32 * 32 // CR
ENDPOINTS = {"encoder": ENCODER, "decoder": DECODER}
CASES = [(part, fmt) for part in ("encoder", "decoder") for fmt in PART_FORMATS[part]]
FLOAT_FORMATS = ("savedmodel", "onnx", "tflite-f32")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def seeded_model(name, seed, cr=CR):
    keras.utils.set_random_seed(seed)
    return create_model(name, cr=cr)


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def dot_entries(folder):
    """Hidden (temporary) entries left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def tree_bytes(path):
    """``{relative file name: bytes}`` of a folder (or ``{"": bytes}`` of a file)."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


class FakeRunner(Runner):
    """A runner around a plain function (to hand check_parity wrong artifacts)."""

    runtime = "fake"

    def __init__(self, fn):
        super().__init__("fake.artifact", 0)
        self._fn = fn

    def __call__(self, x):
        return self._fn(x)


@pytest.fixture(scope="module")
def data():
    """(calibration, check): 64 training and 32 test CSI samples, float32 [N, 2, 32, 32]."""
    train = load_csi("builtin-indoor", split="train", num_samples=64)
    test = load_csi("builtin-indoor", split="test", num_samples=32)
    return train, test


@pytest.fixture(scope="module")
def model():
    return seeded_model("crnet_se", 0)


@pytest.fixture(scope="module")
def other():
    """The same architecture as ``model`` with other random weights."""
    return seeded_model("crnet_se", 1)


@pytest.fixture(scope="module")
def bcrnet():
    return seeded_model("bcrnet", 2)


@pytest.fixture(scope="module")
def exported(model, data, tmp_path_factory):
    """Every default format of both parts of ``model``, exported once: (folder, manifest)."""
    train, test = data
    out = tmp_path_factory.mktemp("export")
    return out, export_model(model, out, calibration=train, check=test)


@pytest.fixture(scope="module")
def part_inputs(model, data):
    """Inputs of each part on the check set: CSI for the encoder, its Keras codewords for the decoder."""
    _, test = data
    return {"encoder": test, "decoder": model_output(model.encoder, test)}


def artifact_path(exported, part, fmt):
    return exported[0] / f"{part}{FORMATS[fmt].suffix}"


# ----------------------------------------------------------------------------------------------
# Every artifact in its own runtime against the Keras part


def test_manifest_has_one_record_per_part_and_format(exported, model):
    out, manifest = exported
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert [(r["part"], r["format"]) for r in manifest["artifacts"]] == CASES
    assert manifest["model"] == model.name
    assert manifest["check_samples"] == 32 and manifest["calibration_samples"] == 64
    for record in manifest["artifacts"]:
        fmt = FORMATS[record["format"]]
        path = artifact_path(exported, record["part"], record["format"])
        assert record["path"] == str(path)
        assert record["runtime"] == fmt.runtime
        assert record["side"] == {"encoder": "UE", "decoder": "BS"}[record["part"]]
        assert record["size_bytes"] == sum(len(b) for b in tree_bytes(path).values()) > 0
        assert 0 <= record["max_abs_diff"] <= record["allowed_abs_diff"]
        assert record["nmse_loss_db"] <= fmt.max_nmse_loss_db
    # the artifacts are the only files (no temporary leftovers)
    expected = {f"{p}{FORMATS[f].suffix}" for p, f in CASES} | {"manifest.json"}
    assert {p.name for p in out.iterdir()} == expected


@pytest.mark.parametrize("part,fmt", CASES)
def test_artifact_reproduces_the_keras_part_at_any_batch_size(exported, model, part_inputs, part, fmt):
    runner = load_runner(artifact_path(exported, part, fmt), fmt, ENDPOINTS[part])
    keras_part = getattr(model, part)
    x = part_inputs[part]
    tolerance = FORMATS[fmt].rtol
    for batch in (len(x), 1, 5, len(x)):  # resizing back and forth must work (dynamic batch axis)
        got, want = runner(x[:batch]), model_output(keras_part, x[:batch])
        assert got.shape == want.shape and got.dtype == np.float32
        assert max_diff(got, want) <= tolerance * np.max(np.abs(want))
        if fmt in FLOAT_FORMATS:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        else:  # a quantized artifact is really quantized
            assert max_diff(got, want) > 0


@pytest.mark.parametrize("part,fmt", CASES)
def test_manifest_nmse_is_that_of_the_autoencoder_with_the_artifact(exported, model, data, part_inputs, part, fmt):
    _, test = data
    record = next(r for r in exported[1]["artifacts"] if (r["part"], r["format"]) == (part, fmt))
    outputs = load_runner(artifact_path(exported, part, fmt), fmt, ENDPOINTS[part])(part_inputs[part])
    reconstruction = model_output(model.decoder, outputs) if part == "encoder" else outputs
    keras_nmse = nmse_db(test, model_output(model, test))
    assert record["nmse_db_keras"] == pytest.approx(keras_nmse, abs=1e-4)
    assert record["nmse_db_artifact"] == pytest.approx(nmse_db(test, reconstruction), abs=1e-4)
    assert record["nmse_loss_db"] == pytest.approx(record["nmse_db_artifact"] - record["nmse_db_keras"])


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_savedmodel_signature_names(exported, model, part_inputs, part):
    import tensorflow as tf

    endpoint = ENDPOINTS[part]
    loaded = tf.saved_model.load(str(artifact_path(exported, part, "savedmodel")))
    assert set(loaded.signatures) == {endpoint.signature, "serving_default"}
    shape = (None, 2, 32, 32) if part == "encoder" else (None, D)
    out_shape = (None, D) if part == "encoder" else (None, 2, 32, 32)
    for name in (endpoint.signature, "serving_default"):
        signature = loaded.signatures[name]
        args, kwargs = signature.structured_input_signature
        assert args == () and list(kwargs) == [endpoint.input_name]
        assert tuple(kwargs[endpoint.input_name].shape) == shape
        assert kwargs[endpoint.input_name].dtype == tf.float32
        assert list(signature.structured_outputs) == [endpoint.output_name]
        assert tuple(signature.structured_outputs[endpoint.output_name].shape) == out_shape
        x = part_inputs[part][:3]
        got = signature(**{endpoint.input_name: tf.constant(x)})[endpoint.output_name].numpy()
        np.testing.assert_allclose(got, model_output(getattr(model, part), x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no signature"):  # the other part's endpoint
        load_runner(artifact_path(exported, part, "savedmodel"), "savedmodel",
                    DECODER if part == "encoder" else ENCODER)


@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_onnx_input_has_a_dynamic_batch_axis(exported, part):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(artifact_path(exported, part, "onnx")),
                                           providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert inp.name == ENDPOINTS[part].input_name and inp.type == "tensor(float)"
    assert not isinstance(inp.shape[0], int) and not isinstance(out.shape[0], int)  # symbolic or None
    assert inp.shape[1:] == ([2, 32, 32] if part == "encoder" else [D])
    assert out.shape[1:] == ([D] if part == "encoder" else [2, 32, 32])


TFLITE_FORMATS = [f for f in FORMATS if FORMATS[f].runtime == "litert"]
# dtype of the encoder's dense kernel (TFLite stores it [D, 2048]) and the integer types expected
KERNEL_DTYPE = {"tflite-f32": np.float32, "tflite-f16": np.float16, "tflite-int8w": np.int8,
                "tflite-int8": np.int8, "tflite-int16x8": np.int8}
INTEGER_TYPES = {"tflite-f32": set(), "tflite-f16": set(), "tflite-int8w": {"int8"},
                 "tflite-int8": {"int8"}, "tflite-int16x8": {"int8", "int16"}}


@pytest.mark.parametrize("fmt", TFLITE_FORMATS)
def test_tflite_tensor_types(exported, fmt):
    path = artifact_path(exported, "encoder", fmt)
    runner = load_runner(path, fmt, ENCODER)
    assert isinstance(runner, LiteRTRunner)
    types_found = {np.dtype(t).name for t in runner.tensor_types().values()}
    assert types_found & {"int8", "int16"} == INTEGER_TYPES[fmt]
    assert ("float16" in types_found) == (fmt == "tflite-f16")
    # read independently of the runner: the dense kernel's storage and the float32 interface
    interpreter = Interpreter(model_path=str(path))
    kernels = [t for t in interpreter.get_tensor_details() if tuple(t["shape"]) == (D, 2048)]
    assert kernels and {np.dtype(t["dtype"]) for t in kernels} >= {np.dtype(KERNEL_DTYPE[fmt])}
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [-1, 2, 32, 32]
    if fmt == "tflite-int8":  # activations are integers: only the input/output stay float
        activations = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
        assert "int8" in activations and activations <= {"int8", "int32", "float32"}


def tflite_ops(path):
    """Operator names of a .tflite file, read by TensorFlow's flatbuffer analyzer."""
    import tensorflow as tf

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=path.read_bytes())
    lines = [line for line in text.getvalue().splitlines() if re.match(r"\s*Op#\d+ ", line)]
    return [re.match(r"\s*Op#\d+ (\w+)\(", line).group(1) for line in lines], len(lines)


@pytest.mark.parametrize("part,fmt", [c for c in CASES if FORMATS[c[1]].runtime == "litert"])
def test_tflite_uses_builtin_operators_only(exported, part, fmt):
    ops, count = tflite_ops(artifact_path(exported, part, fmt))
    assert count == len(ops) > 0
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", op) for op in ops), ops  # builtins, e.g. CONV_2D
    assert "CUSTOM" not in ops  # flex (TensorFlow) ops would be CUSTOM or Flex... entries
    assert {"CONV_2D", "FULLY_CONNECTED"} <= set(ops)
    if fmt in ("tflite-int8", "tflite-int16x8"):  # float in, float out: (de)quantized inside the graph
        assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"


def test_load_runner_errors(tmp_path, exported):
    with pytest.raises(FileNotFoundError, match="No onnx artifact"):
        load_runner(tmp_path / "missing.onnx", "onnx", ENCODER)
    with pytest.raises(ValueError, match="Unknown export format"):
        load_runner(artifact_path(exported, "encoder", "onnx"), "tensorrt", ENCODER)


# ----------------------------------------------------------------------------------------------
# Parity checks fail loudly


@pytest.fixture(scope="module")
def onnx_runner(exported):
    return load_runner(artifact_path(exported, "encoder", "onnx"), "onnx", ENCODER)


def test_check_parity_figures_are_recomputed(model, onnx_runner, data):
    _, test = data
    parity = check_parity(model.encoder, onnx_runner, FORMATS["onnx"], test)
    want = model_output(model.encoder, test)
    diff = max(max_diff(onnx_runner(test), want), max_diff(onnx_runner(test[:1]), want[:1]))
    assert parity.format == "onnx" and parity.runtime == "onnxruntime"
    assert parity.max_abs_diff == pytest.approx(diff, abs=1e-6)
    assert parity.allowed_abs_diff == pytest.approx(1e-4 * np.max(np.abs(want)), rel=1e-5)
    assert parity.nmse_db_keras is None and parity.nmse_loss_db is None


@pytest.mark.parametrize("fmt", ["savedmodel", "onnx", "tflite-f32", "tflite-int8"])
def test_check_parity_rejects_an_artifact_of_another_model(exported, other, data, fmt):
    _, test = data
    runner = load_runner(artifact_path(exported, "encoder", fmt), fmt, ENCODER)
    with pytest.raises(ParityError, match=f"{fmt} artifact .* differs from the Keras model"):
        check_parity(other.encoder, runner, FORMATS[fmt], test)


def test_check_parity_rejects_an_nmse_loss_beyond_the_budget(model, onnx_runner, data):
    _, test = data
    calls = []

    def score(loss):
        def fn(outputs):
            calls.append(np.array(outputs))
            return -10.0 if len(calls) % 2 else -10.0 + loss
        return fn

    parity = check_parity(model.encoder, onnx_runner, FORMATS["onnx"], test, score=score(0.005))
    assert (parity.nmse_db_keras, parity.nmse_db_artifact) == (-10.0, -9.995)
    assert parity.nmse_loss_db == pytest.approx(0.005)
    assert parity.as_dict()["nmse_loss_db"] == pytest.approx(0.005)
    # the score saw the Keras outputs first, then the artifact's
    np.testing.assert_allclose(calls[0], model_output(model.encoder, test), atol=1e-6)
    np.testing.assert_allclose(calls[1], onnx_runner(test), atol=0)
    with pytest.raises(ParityError, match=r"loses 0\.020 dB of NMSE .* allows 0\.01 dB"):
        check_parity(model.encoder, onnx_runner, FORMATS["onnx"], test, score=score(0.02))
    # not strict (the report): the figures come back, the failure is named, nothing is raised
    lenient = check_parity(model.encoder, onnx_runner, FORMATS["onnx"], test, score=score(0.02), strict=False)
    assert lenient.nmse_loss_db == pytest.approx(0.02)
    assert "loses 0.020 dB of NMSE" in lenient.failure and lenient.as_dict()["failure"] == lenient.failure
    assert check_parity(model.encoder, onnx_runner, FORMATS["onnx"], test, strict=False).failure is None


def test_report_marks_a_failing_artifact_writes_everything_then_raises(model, data, tmp_path, monkeypatch):
    train, test = data
    strict = dataclasses.replace(FORMATS["tflite-f16"], rtol=0.0)  # float16 can never meet rtol 0
    monkeypatch.setitem(FORMATS, "tflite-f16", strict)
    complexity, artifacts = report_model(model, tmp_path / "m", calibration=train, check=test,
                                         formats=["onnx", "tflite-f16"], warmup=1, runs=5, label="m")
    assert [(a["format"], a["parity"]) for a in artifacts] == [("onnx", "ok"), ("tflite-f16", "FAILED")]
    assert "tflite-f16 artifact" in artifacts[1]["failure"] and artifacts[1]["latency_median_us"] > 0
    assert fastest(artifacts)[("m", "encoder")]["format"] == "onnx"  # a failed artifact never wins
    with pytest.raises(ParityError, match="1 artifact\\(s\\) failed parity"):
        write_report(complexity, artifacts, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Parity failures" in text and "FAILED" in text
    assert json.loads((tmp_path / "report.json").read_text())["artifacts"][1]["parity"] == "FAILED"


def test_check_parity_rejects_wrong_shapes_and_non_finite_outputs(model, onnx_runner, data):
    _, test = data
    encoder = model.encoder
    # a real artifact of another ratio: [N, 64] codewords where the Keras model gives [N, 128]
    with pytest.raises(ParityError, match=r"returned shape \(32, 64\); the Keras model gives \(32, 128\)"):
        check_parity(create_model("crnet_se", cr=16).encoder, onnx_runner, FORMATS["onnx"], test)
    # an artifact with a fixed batch: right at the full batch, wrong at batch 1
    full = model_output(encoder, test)
    with pytest.raises(ParityError, match=r"returned shape \(32, 64\); the Keras model gives \(1, 64\)"):
        check_parity(encoder, FakeRunner(lambda x: full), FORMATS["onnx"], test)
    with pytest.raises(ParityError, match="shape"):
        check_parity(encoder, FakeRunner(lambda x: model_output(encoder, x)[:, :-1]), FORMATS["onnx"], test)

    def with_nan(x):
        y = model_output(encoder, x)
        y[0, 0] = np.nan
        return y

    with pytest.raises(ParityError, match="non-finite"):
        check_parity(encoder, FakeRunner(with_nan), FORMATS["onnx"], test)
    # and the fake runner itself passes when it is right
    assert check_parity(encoder, FakeRunner(lambda x: model_output(encoder, x)), FORMATS["onnx"], test)


# ----------------------------------------------------------------------------------------------
# export_model: arguments


def test_export_model_rejects_bad_arguments_before_writing(model, data, tmp_path):
    train, test = data
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"Unknown part\(s\) \['ue'\]"):
        export_model(model, out, calibration=train, check=test, parts=["ue"])
    with pytest.raises(ValueError, match="Unknown export format.*'tflite-int4'"):
        export_model(model, out, calibration=train, check=test, formats=["onnx", "tflite-int4"])
    with pytest.raises(ValueError, match=r"`check` must be CSI .* shape \(2, 32, 32\)"):
        export_model(model, out, calibration=train, check=test[0])
    with pytest.raises(ValueError, match=r"`check` must be CSI .* shape \(1, 2, 32, 32\)"):
        export_model(model, out, calibration=train, check=test[:1])
    with pytest.raises(ValueError, match="Unknown part"):  # a lone encoder has no decoder
        export_model(model.encoder, out, calibration=train, check=test, parts=["decoder"])
    assert not out.exists()


def test_deployable_parts():
    inputs = keras.Input((8,))
    dense = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    with pytest.raises(ValueError, match="Expected a CSI autoencoder"):
        deployable_parts(dense)
    model = create_model("csinet", cr=CR)
    parts = deployable_parts(model)
    assert {n: (p.model, p.endpoint, p.side) for n, p in parts.items()} == {
        "encoder": (model.encoder, ENCODER, "UE"), "decoder": (model.decoder, DECODER, "BS")}
    assert list(deployable_parts(model.encoder)) == ["encoder"]
    assert list(deployable_parts(model.decoder)) == ["decoder"]


def test_full_integer_export_needs_calibration(model, data, tmp_path):
    _, test = data
    with pytest.raises(ValueError, match="representative inputs"):
        write_artifact(model.encoder, "tflite-int8", tmp_path / "e.int8.tflite", ENCODER, calibration=None)
    with pytest.raises(ValueError, match="representative inputs"):
        export_model(model, tmp_path / "out", calibration=test[:0], check=test, parts=["encoder"],
                     formats=["tflite-int8"])
    assert not list(tmp_path.rglob("*.tflite"))


@pytest.mark.parametrize("calibration,part,fmt", [(None, "encoder", "tflite-int8"),
                                                  ("empty", "decoder", "tflite-int16x8")])
def test_full_integer_export_without_calibration_is_a_value_error(model, data, tmp_path, calibration, part, fmt):
    _, test = data
    calibration = test[:0] if calibration == "empty" else calibration
    with pytest.raises(ValueError, match="representative inputs"):
        export_model(model, tmp_path, calibration=calibration, check=test, parts=[part], formats=[fmt])


def test_float_export_needs_no_calibration(model, data, tmp_path):
    _, test = data
    manifest = export_model(model, tmp_path, calibration=None, check=test, parts=["encoder"], formats=["onnx"])
    assert [r["format"] for r in manifest["artifacts"]] == ["onnx"]


def test_lone_decoder_is_exported_or_refused_clearly(model, data, tmp_path):
    train, test = data
    try:
        manifest = export_model(model.decoder, tmp_path, calibration=train, check=test, formats=["onnx"])
    except ValueError:
        return  # refusing a lone decoder with a message is acceptable; an IndexError is not
    assert [(r["part"], r["format"]) for r in manifest["artifacts"]] == [("decoder", "onnx")]


def test_lone_encoder_exports_without_nmse(model, data, tmp_path):
    train, test = data
    manifest = export_model(model.encoder, tmp_path, calibration=train, check=test, formats=["onnx"])
    (record,) = manifest["artifacts"]
    assert (record["part"], record["format"], record["nmse_db_artifact"], record["nmse_loss_db"]) == (
        "encoder", "onnx", None, None)
    runner = load_runner(record["path"], "onnx", ENCODER)
    np.testing.assert_allclose(runner(test), model_output(model.encoder, test), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Atomic writes


def test_atomic_dir_keeps_the_old_folder_when_the_block_fails(tmp_path):
    path = tmp_path / "artifact"
    path.mkdir()
    (path / "weights").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_dir(path) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.is_dir()
            (tmp / "weights").write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert tree_bytes(path) == {"weights": b"old"}
    assert dot_entries(tmp_path) == []


def test_atomic_dir_swaps_in_the_new_folder(tmp_path):
    path = tmp_path / "sub" / "artifact"
    with atomic_dir(path) as tmp:  # a new path, parents created
        (tmp / "a").write_bytes(b"1")
    assert tree_bytes(path) == {"a": b"1"}
    (path.parent / ".artifact.old").mkdir()  # a stale leftover of a crash between the renames
    with atomic_dir(path) as tmp:
        (tmp / "b").write_bytes(b"2")
    assert tree_bytes(path) == {"b": b"2"}  # the old content is gone, not merged
    assert dot_entries(path.parent) == []


def test_savedmodel_is_replaced_when_exported_again(model, other, part_inputs, tmp_path):
    path = tmp_path / "encoder.savedmodel"
    x = part_inputs["encoder"][:4]
    write_artifact(other.encoder, "savedmodel", path, ENCODER)
    np.testing.assert_allclose(load_runner(path, "savedmodel", ENCODER)(x), model_output(other.encoder, x),
                               rtol=1e-5, atol=1e-5)
    write_artifact(model.encoder, "savedmodel", path, ENCODER)
    np.testing.assert_allclose(load_runner(path, "savedmodel", ENCODER)(x), model_output(model.encoder, x),
                               rtol=1e-5, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.savedmodel"]


def test_onnx_is_replaced_when_exported_again(model, part_inputs, tmp_path):
    path = tmp_path / "encoder.onnx"
    path.write_bytes(b"an older, broken artifact")
    write_artifact(model.encoder, "onnx", path, ENCODER)
    x = part_inputs["encoder"][:4]
    np.testing.assert_allclose(load_runner(path, "onnx", ENCODER)(x), model_output(model.encoder, x),
                               rtol=1e-5, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.onnx"]


@pytest.mark.parametrize("fmt", ["onnx", "tflite-f32"])
def test_failed_export_leaves_the_existing_file_untouched(model, tmp_path, monkeypatch, fmt):
    path = tmp_path / f"encoder{FORMATS[fmt].suffix}"
    path.write_bytes(b"the artifact of yesterday")
    seen = []

    def export(filepath, **kwargs):
        seen.append(kwargs["format"])
        with open(filepath, "wb") as f:
            f.write(b"half an arti")
        raise OSError("disk full")

    monkeypatch.setattr(model.encoder, "export", export)
    with pytest.raises(OSError, match="disk full"):
        write_artifact(model.encoder, fmt, path, ENCODER)
    assert seen == ["onnx" if fmt == "onnx" else "litert"]
    assert path.read_bytes() == b"the artifact of yesterday"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_failed_savedmodel_export_leaves_the_existing_folder_untouched(model, tmp_path, monkeypatch):
    path = tmp_path / "encoder.savedmodel"
    path.mkdir()
    (path / "saved_model.pb").write_bytes(b"yesterday")

    def write_out(self, filepath, **kwargs):
        with open(os.path.join(filepath, "saved_model.pb"), "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    archive_class = type(keras.export.ExportArchive())  # the backend's class, e.g. TFExportArchive
    monkeypatch.setattr(archive_class, "write_out", write_out)
    with pytest.raises(OSError, match="disk full"):
        write_artifact(model.encoder, "savedmodel", path, ENCODER)
    assert tree_bytes(path) == {"saved_model.pb": b"yesterday"}
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.savedmodel"]


# ----------------------------------------------------------------------------------------------
# 1-bit packed weights


def test_packed_bcrnet_encoder_is_small_and_loads_back_exactly(bcrnet, data, tmp_path):
    _, test = data
    encoder = bcrnet.encoder
    (binarized,) = [layer for layer in encoder.layers if isinstance(layer, BinarizedDense)]
    kernel = np.asarray(binarized.kernel)
    path = tmp_path / "encoder.packed.npz"
    size = write_packed(encoder, path)
    assert size == path.stat().st_size
    # bits of the kernel, float32 for every other weight and for alpha, plus the npz headers
    others = sum(int(np.prod(w.shape)) for w in encoder.weights) - kernel.size
    expected = kernel.size // 8 + 4 * others + 4
    arrays = len(encoder.weights) + 1  # the kernel is stored as signs + alpha
    assert expected <= size <= expected + 300 * arrays
    assert size < 0.1 * 4 * sum(int(np.prod(w.shape)) for w in encoder.weights)

    fresh = seeded_model("bcrnet", 3)
    assert max_diff(model_output(fresh.encoder, test), model_output(encoder, test)) > 1e-3
    assert read_packed(fresh.encoder, path) is fresh.encoder
    # Equal up to float32 rounding, not bit-identical: the layer recomputes alpha = mean|W| with
    # TensorFlow's float32 reduction, which drifts ~1.5e-6 (relative) over 131072 equal values.
    np.testing.assert_allclose(model_output(fresh.encoder, test), model_output(encoder, test), rtol=1e-5, atol=1e-6)
    (loaded,) = [layer for layer in fresh.encoder.layers if isinstance(layer, BinarizedDense)]
    alpha = np.mean(np.abs(kernel))
    np.testing.assert_allclose(np.asarray(loaded.kernel), alpha * np.where(kernel >= 0, 1.0, -1.0), rtol=1e-6)
    np.testing.assert_array_equal(np.sign(np.asarray(loaded.binarized_kernel())),
                                  np.sign(np.asarray(binarized.binarized_kernel())))
    np.testing.assert_allclose(np.asarray(loaded.binarized_kernel()), np.asarray(binarized.binarized_kernel()),
                               rtol=1e-5)


def test_packed_weights_refuse_another_architecture(bcrnet, tmp_path):
    path = tmp_path / "bcrnet.npz"
    write_packed(bcrnet.encoder, path)
    for name, cr in (("bcrnet", 16), ("crnet", CR), ("csinet", CR)):
        with pytest.raises(ValueError, match="does not hold the weights of layer"):
            read_packed(create_model(name, cr=cr).encoder, path)
    float_path = tmp_path / "crnet.npz"
    write_packed(create_model("crnet", cr=CR).encoder, float_path)
    with pytest.raises(ValueError, match="no packed kernel for binarized layer"):
        read_packed(create_model("bcrnet", cr=CR).encoder, float_path)


def test_fold_binarized(bcrnet, model, data):
    _, test = data
    assert fold_binarized(model.encoder) is model.encoder  # nothing to fold
    encoder = bcrnet.encoder
    before = snapshot(encoder.weights)
    folded = fold_binarized(encoder)
    (binarized,) = [layer for layer in encoder.layers if isinstance(layer, BinarizedDense)]
    assert not [layer for layer in folded.layers if isinstance(layer, BinarizedDense)]
    dense = folded.get_layer(binarized.name)
    assert type(dense) is keras.layers.Dense
    np.testing.assert_array_equal(np.asarray(dense.kernel), np.asarray(binarized.binarized_kernel()))
    np.testing.assert_array_equal(np.asarray(dense.bias), np.asarray(binarized.bias))
    assert len(np.unique(np.abs(np.asarray(dense.kernel)))) == 1  # +-alpha only
    np.testing.assert_allclose(model_output(folded, test), model_output(encoder, test), rtol=1e-6, atol=1e-6)
    assert all(unchanged(before, encoder.weights))  # the trained model is left as it was
    assert any(isinstance(layer, BinarizedDense) for layer in encoder.layers)


# ----------------------------------------------------------------------------------------------
# Latency


def test_measure_latency_counts_calls_and_orders_figures():
    calls = []
    x = np.zeros((1, 2, 32, 32), np.float32)
    result = measure_latency(lambda arg: calls.append(arg), x, warmup=3, runs=7)
    assert len(calls) == 10 and all(arg is x for arg in calls)
    assert result.runs == 7 and 0 < result.median_us <= result.p90_us
    assert result.as_dict() == {"median_us": result.median_us, "p90_us": result.p90_us, "runs": 7}
    assert measure_latency(lambda arg: None, x, warmup=0, runs=1).runs == 1
    for kwargs in ({"runs": 0}, {"runs": -1}, {"warmup": -1}):
        with pytest.raises(ValueError, match="`runs` must be >= 1"):
            measure_latency(lambda arg: None, x, **kwargs)


def test_measure_latency_statistics_on_a_scripted_clock(monkeypatch):
    durations = np.random.default_rng(0).permutation(np.arange(1, 11) * 1e-3)  # 1..10 ms, shuffled
    clock = [0.0]
    steps = iter([5.0, 5.0] + list(durations))  # two slow warm-up calls, not timed

    def fn(x):
        clock[0] += next(steps)

    monkeypatch.setattr(latency_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    result = measure_latency(fn, None, warmup=2, runs=10)
    assert result.median_us == pytest.approx(5500.0)  # (5 + 6) / 2 ms
    assert result.p90_us == pytest.approx(9100.0)  # 9 + 0.1 * (10 - 9) ms, linear interpolation


def test_measure_latency_of_a_sleeping_callable():
    import time

    result = measure_latency(lambda x: time.sleep(0.001), None, warmup=1, runs=5)
    assert 1000 <= result.median_us <= result.p90_us


# ----------------------------------------------------------------------------------------------
# FLOPs counted on the graph


def tiny_model(input_shape, layer):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


def test_graph_flops_of_a_dense_layer():
    # MatMul: 2 * in * out; bias add: one per output
    assert graph_flops(tiny_model((8,), keras.layers.Dense(4))) == 2 * 8 * 4 + 4 == 68
    assert graph_flops(tiny_model((8,), keras.layers.Dense(4, use_bias=False))) == 64


def test_graph_flops_of_a_conv_layer():
    # Conv2D: 2 * outputs * K_H * K_W * C_in; bias add: one per output; ReLU has no FLOP rule
    valid = tiny_model((5, 5, 3), keras.layers.Conv2D(4, 3))
    assert graph_flops(valid) == 2 * (3 * 3 * 4) * (3 * 3 * 3) + 3 * 3 * 4 == 1980
    same = tiny_model((5, 5, 3), keras.layers.Conv2D(4, 3, padding="same", activation="relu"))
    assert graph_flops(same) == 2 * (5 * 5 * 4) * (3 * 3 * 3) + 5 * 5 * 4 == 5500


@pytest.mark.parametrize("name", ["crnet_se", "csinet"])
def test_graph_flops_of_a_zoo_encoder_is_close_to_the_formulas(name):
    encoder = create_model(name, cr=CR).encoder
    counted, formula = graph_flops(encoder), count_complexity(encoder).flops
    assert formula <= counted <= 1.03 * formula  # the graph adds bias, BatchNorm and activation ops


def test_graph_flops_of_bcrnet_include_the_binarization_per_call_until_folded(bcrnet):
    encoder = bcrnet.encoder
    counted, formula = graph_flops(encoder), count_complexity(encoder).flops
    assert counted >= formula + 3 * 2048 * D
    assert formula <= graph_flops(fold_binarized(encoder)) <= 1.03 * formula


# ----------------------------------------------------------------------------------------------
# The report


@pytest.fixture(scope="module")
def reported(bcrnet, data, tmp_path_factory):
    train, test = data
    out = tmp_path_factory.mktemp("report")
    rows = report_model(bcrnet, out / "bcrnet", calibration=train, check=test, formats=["onnx", "tflite-f32"],
                        threads=1, warmup=2, runs=20, label="bcrnet_cr32")
    return out, rows


def test_report_rows(reported, bcrnet, data):
    out, (complexity, artifacts) = reported
    _, test = data
    encoder = bcrnet.encoder
    (row,) = complexity
    counts = count_complexity(encoder)
    assert (row["model"], row["part"]) == ("bcrnet_cr32", "encoder")
    assert {k: row[k] for k in counts.as_dict()} == counts.as_dict()
    assert row["float_bytes"] == 4 * sum(int(np.prod(w.shape)) for w in encoder.weights)
    assert row["packed_bytes"] == (out / "bcrnet" / "encoder.packed.npz").stat().st_size < row["float_bytes"] / 10
    assert row["flops"] <= row["graph_flops"] <= 1.03 * row["flops"]  # counted on the folded graph
    assert [a["format"] for a in artifacts] == ["onnx", "tflite-f32"]
    keras_nmse = nmse_db(test, model_output(bcrnet, test))
    for a in artifacts:
        assert (a["model"], a["part"], a["threads"], a["latency_runs"]) == ("bcrnet_cr32", "encoder", 1, 20)
        assert 0 < a["latency_median_us"] <= a["latency_p90_us"]
        assert a["flops"] == row["flops"]
        assert a["size_bytes"] == os.path.getsize(a["path"])
        assert a["nmse_db_keras"] == pytest.approx(keras_nmse, abs=1e-4)
        assert abs(a["nmse_loss_db"]) <= 0.01


def test_report_exports_bcrnet_with_the_kernel_folded(reported, bcrnet, data):
    out, _ = reported
    _, test = data
    path = out / "bcrnet" / "encoder.f32.tflite"
    ops, _ = tflite_ops(path)
    assert not {"SIGN", "ABS", "MEAN", "SUM", "SELECT", "SELECT_V2", "GREATER_EQUAL"} & set(ops)
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (kernel,) = [t for t in interpreter.get_tensor_details() if tuple(t["shape"]) == (D, 2048)]
    values = interpreter.get_tensor(kernel["index"])
    (binarized,) = [layer for layer in bcrnet.encoder.layers if isinstance(layer, BinarizedDense)]
    np.testing.assert_array_equal(values, np.asarray(binarized.binarized_kernel()).T)
    runner = load_runner(path, "tflite-f32", ENCODER)
    np.testing.assert_allclose(runner(test), model_output(bcrnet.encoder, test), rtol=1e-5, atol=1e-5)


def test_fastest_picks_the_lowest_median():
    rows = [{"model": m, "part": p, "format": f, "latency_median_us": t}
            for m, p, f, t in [("a", "encoder", "onnx", 30.0), ("a", "encoder", "tflite-f32", 10.0),
                               ("a", "encoder", "savedmodel", 20.0), ("a", "decoder", "onnx", 5.0),
                               ("b", "encoder", "onnx", 7.0)]]
    best = fastest(rows)
    assert {k: r["format"] for k, r in best.items()} == {
        ("a", "encoder"): "tflite-f32", ("a", "decoder"): "onnx", ("b", "encoder"): "onnx"}


def test_write_report(reported):
    out, (complexity, artifacts) = reported
    write_report(complexity, artifacts, out, meta={"threads": 1, "data": "builtin-indoor"})
    assert json.loads((out / "report.json").read_text()) == {
        "threads": 1, "data": "builtin-indoor", "complexity": complexity, "artifacts": artifacts}
    text = (out / "report.md").read_text()
    assert text.startswith("# Deployment report")
    assert "- threads: 1" in text and "- data: builtin-indoor" in text
    for heading in ("## Complexity", "## Artifacts", "## Fastest artifact per part"):
        assert heading in text
    winner = min(artifacts, key=lambda a: a["latency_median_us"])
    assert fastest(artifacts)[("bcrnet_cr32", "encoder")] is winner
    fastest_table = text.split("## Fastest artifact per part")[1]
    assert f"| bcrnet_cr32 | encoder | {winner['format']} |" in fastest_table
    assert f"{complexity[0]['params']:,}" in text
    for name in ("nmse_vs_flops.png", "latency.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert dot_entries(out) == []


@pytest.mark.filterwarnings("ignore:No artists with labels")
def test_write_report_without_nmse(tmp_path):
    """Rows of a lone encoder (no NMSE) still give both plots."""
    artifacts = [{"model": "m", "part": "encoder", "format": f, "runtime": "x", "size_bytes": 10,
                  "latency_median_us": t, "latency_p90_us": t, "nmse_db_artifact": None, "nmse_loss_db": None,
                  "max_abs_diff": 0.0, "flops": 100} for f, t in (("onnx", 3.0), ("tflite-f32", 2.0))]
    write_report([], artifacts, tmp_path)
    assert "| m | encoder | tflite-f32 | 2 |" in (tmp_path / "report.md").read_text()
    for name in ("nmse_vs_flops.png", "latency.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


def test_format_table_is_consistent():
    assert PART_FORMATS["encoder"] == tuple(FORMATS)
    assert "tflite-int8" not in PART_FORMATS["decoder"]
    assert all(FORMATS[f].calibrated == (f in ("tflite-int8", "tflite-int16x8")) for f in FORMATS)
    assert len({f.suffix for f in FORMATS.values()}) == len(FORMATS)
    stricter = dataclasses.replace(FORMATS["onnx"], rtol=0.0)
    assert stricter.rtol == 0.0 and FORMATS["onnx"].rtol == 1e-4  # frozen records, copied on replace


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_zoo_model_exports_every_part_in_every_format(name, data, tmp_path):
    train, test = data
    manifest = export_model(create_model(name, cr=CR), tmp_path, calibration=train, check=test)
    expected = [(part, fmt) for part in ("encoder", "decoder") for fmt in PART_FORMATS[part]]
    assert [(a["part"], a["format"]) for a in manifest["artifacts"]] == expected
    assert all(a["failure"] is None and a["max_abs_diff"] <= a["allowed_abs_diff"] for a in manifest["artifacts"])


def test_quiet_converters_drops_only_the_converters_known_noise():
    """The two third-party warnings the conversions raise are ignored inside ``quiet_converters``
    (as TensorFlow and Keras word them); any other warning, and the same ones outside it, pass."""
    import warnings

    from mimokd.export.formats import quiet_converters

    noise = [("    Warning: tf.lite.Interpreter is deprecated and is scheduled for deletion in TF 2.20.", UserWarning),
             ("In the future `np.object` will be defined as the corresponding NumPy scalar.", FutureWarning)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_converters():
            for message, category in noise:
                warnings.warn(message, category)
            warnings.warn("a real problem", UserWarning)
        for message, category in noise:
            warnings.warn(message, category)
    assert [str(w.message) for w in caught] == ["a real problem"] + [message for message, _ in noise]
