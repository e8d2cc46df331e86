"""The tf_keras bridge, tfmot pruning and quantization-aware training of the encoders (export.compress)."""

import importlib
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tf_keras
from ai_edge_litert.interpreter import Interpreter
from weights import model_output, snapshot, unchanged

from mimokd.channels import load_csi
from mimokd.export.compress import (
    PrunedEncoder,
    QuantizedEncoder,
    from_tf_keras,
    prune_encoder,
    quantization_aware_encoder,
    to_tf_keras,
)
from mimokd.zoo import create_model

CR = 16
D = 2 * 32 * 32 // CR
# the converter's note on full-integer conversion of a QAT model (its input is float32 by design)
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")


@pytest.fixture(scope="module")
def train_csi():
    """64 CSI samples, float32 [64, 2, 32, 32] in [0, 1]."""
    return load_csi("builtin-indoor", split="train", num_samples=64)


def randomize(model, seed=0):
    """Give every weight a random value (BatchNorm statistics and ReZero scales included)."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.name == "moving_variance":
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        else:
            w.assign(0.2 * rng.standard_normal(w.shape))


def test_tfmot_runs_on_tf_keras_and_the_process_stays_on_keras_3():
    """In a fresh process (tf.keras not yet resolved): importing the module leaves Keras 3 in place."""
    code = (
        "import os, keras, tensorflow as tf\n"
        "from mimokd.export.compress import tfmot\n"
        "from tensorflow_model_optimization.python.core.keras import compat\n"
        "import tf_keras\n"
        "assert compat.keras is tf_keras\n"
        "assert tf.keras.version().startswith('3.') and tf.keras.layers.Dense is keras.layers.Dense\n"
        "assert 'TF_USE_LEGACY_KERAS' not in os.environ\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


MISSING = [("tensorflow_model_optimization", "tensorflow-model-optimization"), ("tf_keras", "tf_keras")]


@pytest.fixture
def without(monkeypatch):
    """``without(module)``: ``import module`` fails as if not installed, and ``mimokd.export.compress``
    is imported afresh (both restored after the test)."""

    def hide(module):
        monkeypatch.setitem(sys.modules, module, None)
        monkeypatch.delitem(sys.modules, "mimokd.export.compress")

    return hide


@pytest.mark.parametrize("module, package", MISSING)
def test_without_the_compress_extra_the_import_names_the_package_and_pip(module, package, without):
    without(module)
    flag = os.environ.get("TF_USE_LEGACY_KERAS")
    with pytest.raises(ImportError) as error:
        importlib.import_module("mimokd.export.compress")
    message = str(error.value)
    assert f"optional package {package}, which is not installed" in message
    assert 'pip install "mimokd[compress]"' in message and 'pip install -e ".[compress]"' in message
    assert error.value.name == module
    assert os.environ.get("TF_USE_LEGACY_KERAS") == flag  # restored although the import failed


@pytest.mark.parametrize("module, package", MISSING)
def test_compress_command_without_the_extra_is_one_error_line_and_exit_1(module, package, without, tmp_path, capsys):
    from mimokd.cli import FAILED, main

    checkpoint = tmp_path / "model.keras"
    checkpoint.write_bytes(b"not read: the missing package is reported first")
    without(module)
    assert main(["compress", "--checkpoint", str(checkpoint), "--prune", "0.5", "--out", str(tmp_path / "out")]) \
        == FAILED
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert package in lines[0] and 'pip install "mimokd[compress]"' in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_every_other_module_imports_without_the_compress_extra():
    """The main job and every command but ``compress`` need no tfmot: in a fresh process where neither
    package can be imported, every module of mimokd but export.compress imports."""
    code = (
        "import importlib, pkgutil, sys\n"
        "sys.modules['tensorflow_model_optimization'] = sys.modules['tf_keras'] = None\n"
        "import mimokd\n"
        "names = [m.name for m in pkgutil.walk_packages(mimokd.__path__, 'mimokd.')]\n"
        "for sub in ('zoo', 'train', 'export', 'pretrained', 'channels', 'classical', 'experiments'):\n"
        "    package = importlib.import_module('mimokd.' + sub)\n"
        "    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + '.')]\n"
        "for name in names:\n"
        "    if name != 'mimokd.export.compress':\n"
        "        importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) > 50  # the walk found the modules (mimokd.pipeline among them)


@pytest.mark.parametrize("name", ["crnet_se", "crnet_cui", "csinet"])
@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_to_tf_keras_computes_the_same_function(name, part, csi_batch):
    model = getattr(create_model(name, cr=CR), part)
    randomize(model)
    x = csi_batch if part == "encoder" else np.random.default_rng(1).standard_normal((4, D)).astype("float32")

    twin = to_tf_keras(model)
    assert isinstance(twin, tf_keras.Model)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    expected = model_output(model, x)
    np.testing.assert_allclose(twin(x, training=False).numpy(), expected, atol=1e-5)

    # round trip into a freshly initialized Keras 3 model of the same graph
    fresh = keras.models.clone_model(model)
    assert from_tf_keras(twin, fresh) is fresh
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(model_output(fresh, x), expected, atol=1e-6)


def dropout_model():
    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.layers.Dropout(0.1, name="drop")(inputs))


def lora_model():
    encoder = create_model("csinet", cr=CR).encoder
    encoder.get_layer("enc_dense").enable_lora(2)
    return encoder


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: create_model("bcrnet", cr=CR).encoder, r"'enc_dense' is a BinarizedDense"),
        (lambda: create_model("csinet", cr=CR), r"'encoder' of class Functional"),
        (dropout_model, r"'drop' of class Dropout.*supported layer classes are \['Activation'"),
        (lora_model, r"'enc_dense' \(Dense\) uses an option tf_keras does not have.*lora_rank"),
    ],
    ids=["binarized", "nested-model", "dropout", "lora"],
)
def test_unsupported_layers_are_named(build, match):
    with pytest.raises(ValueError, match=match):
        to_tf_keras(build())


def test_from_tf_keras_needs_stripped_pruning_wrappers():
    model = create_model("csinet", cr=CR).encoder
    twin = to_tf_keras(model)
    renamed = tf_keras.Model(twin.inputs, tf_keras.layers.Dense(D, name="other")(twin.layers[-2].output))
    with pytest.raises(ValueError, match="no layer named 'enc_dense'.*strip_pruning"):
        from_tf_keras(renamed, model)


@pytest.fixture(scope="module")
def pruned(train_csi):
    """CRNet-SE encoder and its dense-pruned version (50 %), with a snapshot of the original."""
    keras.utils.set_random_seed(0)
    encoder = create_model("crnet_se", cr=CR).encoder
    before = snapshot(encoder.weights)
    result = prune_encoder(encoder, train_csi, sparsity=0.5, epochs=2, batch_size=16)
    return encoder, before, result


def test_prune_encoder_zeros_the_dense_kernel(pruned):
    encoder, before, result = pruned
    assert isinstance(result, PrunedEncoder)
    assert set(result.sparsity) == {"enc_dense"}
    kernel = keras.ops.convert_to_numpy(result.encoder.get_layer("enc_dense").kernel)
    assert np.mean(kernel == 0.0) == pytest.approx(0.5, abs=0.02) == result.sparsity["enc_dense"]
    conv = keras.ops.convert_to_numpy(result.encoder.get_layer("enc_head_conv").kernel)
    assert np.all(conv != 0.0)  # not pruned


def test_prune_encoder_returns_a_keras_3_model_of_the_same_architecture(pruned):
    encoder, before, result = pruned
    assert isinstance(result.encoder, keras.Model) and not isinstance(result.encoder, tf_keras.Model)
    assert result.encoder.get_config() == encoder.get_config()
    assert [w.shape for w in result.encoder.weights] == [w.shape for w in encoder.weights]
    assert all(unchanged(before, encoder.weights))


def test_prune_encoder_fine_tune_beats_one_shot_pruning(pruned, train_csi):
    encoder, before, result = pruned
    assert len(result.history["loss"]) == 2
    assert np.isfinite(result.mse) and result.mse > 0
    assert result.mse < result.mse_one_shot
    codewords = model_output(encoder, train_csi)
    assert np.mean((model_output(result.encoder, train_csi) - codewords) ** 2) == pytest.approx(result.mse, rel=1e-4)


def test_prune_encoder_all_layers_prunes_the_convolutions(train_csi):
    encoder = create_model("crnet_se", cr=CR).encoder
    result = prune_encoder(encoder, train_csi[:32], sparsity=0.3, epochs=1, batch_size=16, layers="all")
    assert set(result.sparsity) == {"enc_head_conv", "enc_dense"}
    for name, sparsity in result.sparsity.items():
        assert sparsity == pytest.approx(0.3, abs=0.02), name


@pytest.mark.parametrize("kwargs", [{"layers": ("lstm",)}, {"layers": ()}, {"sparsity": 1.0}])
def test_prune_encoder_rejects_bad_arguments(kwargs, train_csi):
    with pytest.raises(ValueError):
        prune_encoder(create_model("csinet", cr=CR).encoder, train_csi, **kwargs)


@pytest.fixture(scope="module")
def quantized(train_csi):
    keras.utils.set_random_seed(0)
    encoder = create_model("crnet_se", cr=CR).encoder
    before = snapshot(encoder.weights)
    return encoder, before, quantization_aware_encoder(encoder, train_csi, epochs=1, batch_size=32)


def run_tflite(tflite, x):
    """Run a TFLite model on a batch; returns the output and the interpreter."""
    interpreter = Interpreter(model_content=tflite)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), interpreter


def test_quantization_aware_encoder_gives_an_int8_tflite_model(quantized, train_csi):
    encoder, before, result = quantized
    assert isinstance(result, QuantizedEncoder) and isinstance(result.tflite, bytes)
    assert isinstance(result.qat_model, tf_keras.Model) and np.isfinite(result.mse)
    assert all(unchanged(before, encoder.weights))

    x = train_csi[:16]
    out, interpreter = run_tflite(result.tflite, x)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    by_shape = {}
    for tensor in interpreter.get_tensor_details():
        by_shape.setdefault(tuple(tensor["shape"]), set()).add(tensor["dtype"])
    assert by_shape[(D, 2 * 32 * 32)] == {np.int8}  # the FULLY_CONNECTED weights
    assert by_shape[(2, 3, 3, 2)] == {np.int8}  # the conv kernel (output channels first)

    # int8 error relative to the codeword scale (std of the float codewords): measured 4-8 % RMS
    # and 15-28 % at worst for this untrained encoder over seeds 0-2
    codewords = model_output(encoder, x)
    scale = np.std(codewords)
    assert np.sqrt(np.mean((out - codewords) ** 2)) < 0.1 * scale
    assert np.max(np.abs(out - codewords)) < 0.5 * scale
    # the int8 kernels reproduce the fake-quantized model they were converted from (measured < 1e-6)
    np.testing.assert_allclose(out, result.qat_model(x, training=False).numpy(), atol=0.01 * scale)
