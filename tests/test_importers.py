"""Importers of published checkpoints (mimokd.pretrained.importers, `mimokd import`).

Every import is checked against an independent numpy forward pass of the REFERENCE architecture
(NCHW tensors, the reference's own weight layouts and BatchNorm axis / epsilon), run on files that
the tests write themselves in the reference's format: the CsiNet authors' Keras 2 ``.json`` +
``.h5`` and PyTorch state dicts of the public CRNet / BCRNet code (``.safetensors`` always,
``.pth`` when torch is installed).
"""

import collections
import json
import sys
import types

import h5py
import keras
import numpy as np
import pytest

from mimokd.cli import main
from mimokd.pretrained.importers import (
    CheckpointError,
    import_csinet_keras,
    import_torch_state_dict,
    read_state_dict,
)
from mimokd.train.checkpoints import load_checkpoint

H = W = 32
SIZE = 2 * H * W
ATOL = 1e-5


# ---------------------------------------------------------------------------------------------
# numpy reference operations, NCHW, float64
# ---------------------------------------------------------------------------------------------


def conv2d(x, weight, bias=None):
    """Stride-1 convolution with zero 'same' padding: x [B, C, H, W], weight OIHW [O, C, KH, KW] (odd K)."""
    _, _, kh, kw = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))  # [B, C, H, W, KH, KW]
    y = np.einsum("bchwij,ocij->bohw", windows, weight)
    return y if bias is None else y + bias[None, :, None, None]


def batchnorm(x, gamma, beta, mean, var, epsilon, axis):
    """Inference BatchNorm with statistics along ``axis`` of x."""
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda v: np.reshape(v, shape)  # noqa: E731
    return (x - r(mean)) / np.sqrt(r(var) + epsilon) * r(gamma) + r(beta)


def lrelu(x):
    return np.where(x >= 0, x, 0.3 * x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# The CsiNet authors' Keras 2 format
# ---------------------------------------------------------------------------------------------


def _k2_layer(name, cls, inputs, **config):
    nodes = [[[n, 0, 0, {}] for n in inputs]] if inputs else []
    return {"name": name, "class_name": cls, "config": {"name": name, "trainable": True, **config},
            "inbound_nodes": nodes}


def authors_json(dim):
    """A Keras 2.0.9 model config with the structure of model_CsiNet_*_dim<dim>.json."""
    conv = dict(kernel_size=[3, 3], strides=[1, 1], padding="same", data_format="channels_first",
                dilation_rate=[1, 1], use_bias=True)
    bn = dict(axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True)
    slope = dict(alpha=0.30000001192092896)
    layers = [{"name": "input_1", "class_name": "InputLayer",
               "config": {"batch_input_shape": [None, 2, H, W], "dtype": "float32", "sparse": False,
                          "name": "input_1"}, "inbound_nodes": []},
              _k2_layer("conv2d_1", "Conv2D", ["input_1"], filters=2, activation="linear", **conv),
              _k2_layer("batch_normalization_1", "BatchNormalization", ["conv2d_1"], **bn),
              _k2_layer("leaky_re_lu_1", "LeakyReLU", ["batch_normalization_1"], **slope),
              _k2_layer("reshape_1", "Reshape", ["leaky_re_lu_1"], target_shape=[SIZE]),
              _k2_layer("dense_1", "Dense", ["reshape_1"], units=dim, activation="linear", use_bias=True),
              _k2_layer("dense_2", "Dense", ["dense_1"], units=SIZE, activation="linear", use_bias=True),
              _k2_layer("reshape_2", "Reshape", ["dense_2"], target_shape=[2, H, W])]
    block_input, conv_id, bn_id, relu_id = "reshape_2", 2, 2, 2
    for add_id in (1, 2):
        previous = block_input
        for i, filters in enumerate((8, 16, 2)):
            layers.append(_k2_layer(f"conv2d_{conv_id}", "Conv2D", [previous], filters=filters,
                                    activation="linear", **conv))
            layers.append(_k2_layer(f"batch_normalization_{bn_id}", "BatchNormalization",
                                    [f"conv2d_{conv_id}"], **bn))
            previous = f"batch_normalization_{bn_id}"
            conv_id, bn_id = conv_id + 1, bn_id + 1
            if i < 2:
                layers.append(_k2_layer(f"leaky_re_lu_{relu_id}", "LeakyReLU", [previous], **slope))
                previous, relu_id = f"leaky_re_lu_{relu_id}", relu_id + 1
        layers.append(_k2_layer(f"add_{add_id}", "Add", [block_input, previous]))
        layers.append(_k2_layer(f"leaky_re_lu_{relu_id}", "LeakyReLU", [f"add_{add_id}"], **slope))
        block_input, relu_id = f"leaky_re_lu_{relu_id}", relu_id + 1
    layers.append(_k2_layer("conv2d_8", "Conv2D", [block_input], filters=2, activation="sigmoid", **conv))
    return {"class_name": "Model", "keras_version": "2.0.9", "backend": "tensorflow",
            "config": {"name": "model_1", "layers": layers, "input_layers": [["input_1", 0, 0]],
                       "output_layers": [["conv2d_8", 0, 0]]}}


def authors_weights(dim, rng):
    """Random Keras 2 weights {layer: {short name: array}}: HWIO kernels, BN statistics of shape [W]."""
    weights = {}
    channels = [(2, 2)] + [(2, 8), (8, 16), (16, 2)] * 2 + [(2, 2)]
    for i, (c_in, c_out) in enumerate(channels, start=1):
        weights[f"conv2d_{i}"] = {"kernel": rng.normal(0, 1 / np.sqrt(9 * c_in), (3, 3, c_in, c_out)),
                                  "bias": rng.normal(0, 0.1, c_out)}
    for i in range(1, 8):
        weights[f"batch_normalization_{i}"] = {
            "gamma": rng.uniform(0.5, 1.5, W), "beta": rng.normal(0, 0.2, W),
            "moving_mean": rng.normal(0, 0.2, W), "moving_variance": rng.uniform(0.3, 2.0, W)}
    weights["dense_1"] = {"kernel": rng.normal(0, 1 / np.sqrt(SIZE), (SIZE, dim)), "bias": rng.normal(0, 0.1, dim)}
    weights["dense_2"] = {"kernel": rng.normal(0, 1 / np.sqrt(dim), (dim, SIZE)), "bias": rng.normal(0, 0.1, SIZE)}
    return {layer: {k: v.astype("float32") for k, v in ws.items()} for layer, ws in weights.items()}


def write_keras2_h5(path, config, weights):
    """An HDF5 file in Keras 2's save_weights layout (layer_names; per layer weight_names + datasets)."""
    names = [layer["name"] for layer in config["config"]["layers"]]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.9"
        for name in names:
            group = f.create_group(name)
            stored = weights.get(name, {})
            group.attrs["weight_names"] = (np.array([f"{name}/{k}:0".encode() for k in stored]) if stored
                                           else np.array([], dtype=np.float64))
            for key, value in stored.items():
                group.create_dataset(f"{name}/{key}:0", data=value)


def authors_forward(x, w):
    """The authors' Keras model in numpy: channels_first, BatchNorm on the LAST axis, epsilon 1e-3."""
    conv = lambda v, layer: conv2d(v, w[layer]["kernel"].transpose(3, 2, 0, 1), w[layer]["bias"])  # noqa: E731
    bn = lambda v, layer: batchnorm(v, *(w[layer][k] for k in ("gamma", "beta", "moving_mean",  # noqa: E731
                                                                 "moving_variance")), 1e-3, axis=-1)
    n = x.shape[0]
    y = lrelu(bn(conv(x, "conv2d_1"), "batch_normalization_1"))
    code = y.reshape(n, -1) @ w["dense_1"]["kernel"] + w["dense_1"]["bias"]
    y = (code @ w["dense_2"]["kernel"] + w["dense_2"]["bias"]).reshape(n, 2, H, W)
    layer = 2
    for _ in range(2):
        residual = y
        for i in range(3):
            residual = bn(conv(residual, f"conv2d_{layer}"), f"batch_normalization_{layer}")
            residual = lrelu(residual) if i < 2 else residual
            layer += 1
        y = lrelu(y + residual)
    return sigmoid(conv(y, "conv2d_8")), code


@pytest.fixture
def csi():
    rng = np.random.default_rng(1)
    return rng.uniform(0, 1, (4, 2, H, W)).astype("float32")


@pytest.fixture
def authors_files(tmp_path):
    """(json path, h5 path, weights) of a dim-128 (1/16) model in the authors' format."""
    config, weights = authors_json(128), authors_weights(128, np.random.default_rng(0))
    json_path, h5_path = tmp_path / "model_CsiNet_indoor_dim128.json", tmp_path / "model_CsiNet_indoor_dim128.h5"
    json_path.write_text(json.dumps(config))
    write_keras2_h5(h5_path, config, weights)
    return json_path, h5_path, weights


def test_csinet_keras_import_equals_the_reference_forward_pass(authors_files, csi):
    json_path, h5_path, weights = authors_files
    model = import_csinet_keras(json_path, h5_path)
    assert (model.name, model.cr, model.batchnorm) == ("csinet_authors_cr16", 16, "columns")
    expected, code = authors_forward(csi.astype("float64"), weights)
    np.testing.assert_allclose(model.encoder.predict(csi, verbose=0), code, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.predict(csi, verbose=0), expected, atol=ATOL)
    # the statistics are per delay column: per-channel BatchNorm would not even take them
    assert model.encoder.get_layer("enc_head_bn").moving_mean.shape == (W,)


def test_csinet_keras_errors_name_the_layer_and_shapes(authors_files, tmp_path):
    json_path, h5_path, weights = authors_files
    # weights of a dim-64 model under a dim-128 config
    small = tmp_path / "dim64.h5"
    write_keras2_h5(small, authors_json(128), authors_weights(64, np.random.default_rng(0)))
    with pytest.raises(CheckpointError, match=r"dense_1/kernel: expected \(2048, 128\), got \(2048, 64\)"):
        import_csinet_keras(json_path, small)
    # a weight missing, one too many
    partial = {k: dict(v) for k, v in weights.items()}
    del partial["batch_normalization_3"]["moving_variance"]
    partial["leaky_re_lu_1"] = {"kernel": np.zeros(1, "float32")}
    write_keras2_h5(tmp_path / "partial.h5", authors_json(128), partial)
    with pytest.raises(CheckpointError, match=r"(?s)batch_normalization_3/moving_variance: missing.*leaky_re_lu_1"):
        import_csinet_keras(json_path, tmp_path / "partial.h5")
    # not JSON, another architecture (per-channel BatchNorm), a corrupt / truncated .h5
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="is not JSON"):
        import_csinet_keras(tmp_path / "bad.json", h5_path)
    other = authors_json(128)
    other["config"]["layers"][2]["config"]["axis"] = 1
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(CheckpointError, match=r"(?s)not the CsiNet architecture.*'batch_normalization_1'.*axis"):
        import_csinet_keras(tmp_path / "other.json", h5_path)
    (tmp_path / "junk.h5").write_bytes(b"\x00junk" * 100)
    with pytest.raises(CheckpointError, match="not a readable HDF5 file"):
        import_csinet_keras(json_path, tmp_path / "junk.h5")
    (tmp_path / "cut.h5").write_bytes(h5_path.read_bytes()[:50_000])
    with pytest.raises(CheckpointError, match="HDF5|truncated or corrupt"):
        import_csinet_keras(json_path, tmp_path / "cut.h5")
    with pytest.raises(FileNotFoundError):
        import_csinet_keras(tmp_path / "missing.json", h5_path)


def test_csinet_batchnorm_option():
    from mimokd.zoo import CsiNet, create_model

    default, authors = create_model("csinet", cr=16), create_model("csinet_authors", cr=16)
    assert default.get_config()["batchnorm"] == "channels" and authors.get_config()["batchnorm"] == "columns"
    assert default.encoder.get_layer("enc_head_bn").moving_mean.shape == (2,)
    assert authors.decoder.get_layer("refine1_1_bn").moving_mean.shape == (W,)  # 32 columns, not 16 channels
    assert authors.decoder.get_layer("refine1_1_bn").epsilon == 1e-3
    config = default.get_config()
    del config["batchnorm"]  # a .keras file written before the option loads as before
    assert CsiNet.from_config(config).batchnorm == "channels"
    with pytest.raises(ValueError, match="`batchnorm` must be one of.*Received: batchnorm='rows'"):
        CsiNet(cr=16, batchnorm="rows")


def test_imported_model_round_trips_trains_and_evaluates(authors_files, csi, tmp_path, capsys):
    json_path, h5_path, _ = authors_files
    out = tmp_path / "out" / "csinet16.keras"
    assert main(["import", "csinet-keras", "--json", str(json_path), "--h5", str(h5_path), "--out", str(out)]) == 0
    assert "csinet_authors_cr16" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["csinet16.keras"]  # no temporary file left
    model = import_csinet_keras(json_path, h5_path)
    loaded = load_checkpoint(out)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(csi, verbose=0), model.predict(csi, verbose=0), atol=1e-6)

    assert main(["evaluate", "--checkpoint", str(out), "--test-samples", "20"]) == 0
    assert "NMSE" in capsys.readouterr().out

    before = [w.copy() for w in loaded.get_weights()]
    loaded.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    loaded.fit(csi, csi, batch_size=4, epochs=1, verbose=0)
    changed = [not np.array_equal(a, b) for a, b in zip(before, loaded.get_weights())]
    assert all(changed)  # every kernel, bias, BN scale / offset and moving statistic moved


# ---------------------------------------------------------------------------------------------
# PyTorch state dicts of the public CRNet / BCRNet code
# ---------------------------------------------------------------------------------------------


def crnet_state_dict(cr, rng, fc="encoder_fc"):
    """Random weights under the reference's module names: OIHW convs, [out, in] linears, BN buffers."""
    state = {}

    def convbn(path, c_in, c_out, k_h, k_w):
        state[f"{path}.conv.weight"] = rng.normal(0, 1 / np.sqrt(c_in * k_h * k_w), (c_out, c_in, k_h, k_w))
        state[f"{path}.bn.weight"] = rng.uniform(0.5, 1.5, c_out)
        state[f"{path}.bn.bias"] = rng.normal(0, 0.2, c_out)
        state[f"{path}.bn.running_mean"] = rng.normal(0, 0.2, c_out)
        state[f"{path}.bn.running_var"] = rng.uniform(0.3, 2.0, c_out)
        state[f"{path}.bn.num_batches_tracked"] = np.array(1000, np.int64)

    convbn("encoder1.conv3x3_bn", 2, 2, 3, 3)
    convbn("encoder1.conv1x9_bn", 2, 2, 1, 9)
    convbn("encoder1.conv9x1_bn", 2, 2, 9, 1)
    convbn("encoder2", 2, 2, 3, 3)
    convbn("encoder_conv.conv1x1_bn", 4, 2, 1, 1)
    state[f"{fc}.weight"] = rng.normal(0, 1 / np.sqrt(SIZE), (SIZE // cr, SIZE))
    state[f"{fc}.bias"] = rng.normal(0, 0.1, SIZE // cr)
    state["decoder_fc.weight"] = rng.normal(0, 1 / np.sqrt(SIZE // cr), (SIZE, SIZE // cr))
    state["decoder_fc.bias"] = rng.normal(0, 0.1, SIZE)
    convbn("decoder_feature.conv5x5_bn", 2, 2, 5, 5)
    for block in (1, 2):
        path = f"decoder_feature.CRBlock{block}"
        convbn(f"{path}.path1.conv3x3", 2, 7, 3, 3)
        convbn(f"{path}.path1.conv1x9", 7, 7, 1, 9)
        convbn(f"{path}.path1.conv9x1", 7, 7, 9, 1)
        convbn(f"{path}.path2.conv1x5", 2, 7, 1, 5)
        convbn(f"{path}.path2.conv5x1", 7, 7, 5, 1)
        convbn(f"{path}.conv1x1", 14, 2, 1, 1)
    return {k: v if v.dtype == np.int64 else v.astype("float32") for k, v in state.items()}


def crnet_forward(x, state, fc="encoder_fc", binarize=False):
    """The reference CRNet / BCRNet in eval mode, numpy: BN over channels (axis 1), epsilon 1e-5."""
    def cb(v, path):
        return batchnorm(conv2d(v, state[f"{path}.conv.weight"]),
                         *(state[f"{path}.bn.{k}"] for k in ("weight", "bias", "running_mean", "running_var")),
                         1e-5, axis=1)

    n = x.shape[0]
    a = cb(lrelu(cb(lrelu(cb(x, "encoder1.conv3x3_bn")), "encoder1.conv1x9_bn")), "encoder1.conv9x1_bn")
    b = cb(x, "encoder2")
    y = lrelu(cb(lrelu(np.concatenate([a, b], axis=1)), "encoder_conv.conv1x1_bn"))
    weight = state[f"{fc}.weight"].astype("float64")
    if binarize:  # the reference's _fc_binarization: sign(W) * ||W||_1 / numel
        weight = np.sign(weight) * np.abs(weight).sum() / weight.size
    code = y.reshape(n, -1) @ weight.T + state[f"{fc}.bias"]
    y = (code @ state["decoder_fc.weight"].T + state["decoder_fc.bias"]).reshape(n, 2, H, W)
    y = lrelu(cb(y, "decoder_feature.conv5x5_bn"))
    for block in (1, 2):
        path = f"decoder_feature.CRBlock{block}"
        p1 = cb(lrelu(cb(lrelu(cb(y, f"{path}.path1.conv3x3")), f"{path}.path1.conv1x9")), f"{path}.path1.conv9x1")
        p2 = cb(lrelu(cb(y, f"{path}.path2.conv1x5")), f"{path}.path2.conv5x1")
        y = lrelu(cb(lrelu(np.concatenate([p1, p2], axis=1)), f"{path}.conv1x1") + y)
    return sigmoid(y), code


def save_safetensors(path, state):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path))
    return path


@pytest.mark.parametrize("model,fc,binarize", [("crnet", "encoder_fc", False),
                                               ("bcrnet", "encoder_binary_fc", True),
                                               ("bcrnet", "encoder_fc", True)])
def test_safetensors_import_equals_the_reference_forward_pass(model, fc, binarize, csi, tmp_path):
    state = crnet_state_dict(16, np.random.default_rng(2), fc=fc)
    path = save_safetensors(tmp_path / "model.safetensors", state)
    imported = import_torch_state_dict(path, model=model)  # cr inferred from the fc weight
    assert (imported.name, imported.cr) == (f"{model}_cr16", 16)
    expected, code = crnet_forward(csi.astype("float64"), state, fc=fc, binarize=binarize)
    np.testing.assert_allclose(imported.encoder.predict(csi, verbose=0), code, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(imported.predict(csi, verbose=0), expected, atol=ATOL)


def test_torch_errors_name_the_keys_and_shapes(tmp_path):
    state = crnet_state_dict(16, np.random.default_rng(3))
    with pytest.raises(CheckpointError, match=r"encoder_fc.weight: expected \(256, 2048\), got \(128, 2048\)"):
        import_torch_state_dict(state, model="crnet", cr=8)
    broken = dict(state, **{"encoder3.conv.weight": np.zeros((2, 2, 3, 3), "float32")})
    del broken["decoder_fc.bias"]
    with pytest.raises(CheckpointError, match=r"(?s)decoder_fc.bias: missing \(expected shape \(2048,\)\)"
                                              r".*unexpected keys.*encoder3.conv.weight"):
        import_torch_state_dict(broken, model="crnet")
    binary = {k.replace("encoder_fc", "encoder_binary_fc"): v for k, v in state.items()}
    with pytest.raises(CheckpointError, match="BCRNet state dict.*model='bcrnet'"):
        import_torch_state_dict(binary, model="crnet")
    with pytest.raises(CheckpointError, match="not a CRNet / BCRNet state dict"):
        import_torch_state_dict({"fc.weight": np.zeros((4, 4), "float32")}, model="crnet")
    with pytest.raises(ValueError, match="`model` must be one of"):
        import_torch_state_dict(state, model="crnet_se")
    (tmp_path / "junk.safetensors").write_bytes(b"\x07" * 64)
    with pytest.raises(CheckpointError, match="not a readable .safetensors file"):
        import_torch_state_dict(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        import_torch_state_dict(tmp_path / "missing.pth")


def test_cli_imports_a_state_dict_and_refuses_a_mismatch(tmp_path, capsys, csi):
    state = crnet_state_dict(16, np.random.default_rng(4), fc="encoder_binary_fc")
    path = save_safetensors(tmp_path / "bcrnet.safetensors", state)
    out = tmp_path / "bcrnet16.keras"
    assert main(["import", "torch", "--model", "bcrnet", "--checkpoint", str(path), "--out", str(out)]) == 0
    expected, _ = crnet_forward(csi.astype("float64"), state, fc="encoder_binary_fc", binarize=True)
    np.testing.assert_allclose(load_checkpoint(out).predict(csi, verbose=0), expected, atol=ATOL)

    bad = tmp_path / "bad.keras"
    assert main(["import", "torch", "--model", "bcrnet", "--cr", "4", "--checkpoint", str(path),
                 "--out", str(bad)]) == 1
    assert "encoder_binary_fc.weight: expected (512, 2048), got (128, 2048)" in capsys.readouterr().err
    assert not bad.exists()


# ---------------------------------------------------------------------------------------------
# .pth files (torch.save), when PyTorch is installed
# ---------------------------------------------------------------------------------------------


def test_numpy_reference_ops_are_pytorchs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 8, 8))
    for k_h, k_w in ((3, 3), (1, 9), (9, 1), (5, 5), (1, 1)):
        weight = rng.normal(size=(4, 3, k_h, k_w))
        ours = conv2d(x, weight)
        theirs = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight),
                                            padding=((k_h - 1) // 2, (k_w - 1) // 2)).numpy()
        np.testing.assert_allclose(ours, theirs, atol=1e-10)
    stats = [rng.uniform(0.5, 1.5, 3) for _ in range(4)]
    bn = torch.nn.BatchNorm2d(3).double().eval()
    with torch.no_grad():
        for param, value in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), stats):
            param.copy_(torch.from_numpy(value))
        np.testing.assert_allclose(batchnorm(x, *stats, 1e-5, axis=1), bn(torch.from_numpy(x)).numpy(), atol=1e-10)


def test_pth_without_torch_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails as if not installed
    path = tmp_path / "in_04.pth"
    path.write_bytes(b"PK")
    with pytest.raises(ImportError, match="pip install torch"):
        import_torch_state_dict(path)
    assert main(["import", "torch", "--model", "crnet", "--checkpoint", str(path), "--out",
                 str(tmp_path / "m.keras")]) == 1
    assert "pip install torch" in capsys.readouterr().err


@pytest.fixture
def reference_result_class(monkeypatch):
    """A namedtuple importable as utils.solver.Result, as the reference trainers pickle it."""
    utils, solver = types.ModuleType("utils"), types.ModuleType("utils.solver")
    result = collections.namedtuple("Result", ["rho", "nmse", "epoch"], defaults=(None,) * 3)
    result.__module__ = "utils.solver"
    solver.Result, utils.solver = result, solver
    monkeypatch.setitem(sys.modules, "utils", utils)
    monkeypatch.setitem(sys.modules, "utils.solver", solver)
    return result


def test_pth_checkpoint_as_the_reference_saves_it(reference_result_class, csi, tmp_path):
    torch = pytest.importorskip("torch")
    state = crnet_state_dict(8, np.random.default_rng(6))
    path = tmp_path / "in_08.pth"
    torch.save({"epoch": 99,
                "state_dict": collections.OrderedDict((f"module.{k}", torch.from_numpy(v)) for k, v in state.items()),
                "optimizer": {"state": {}, "param_groups": [{"lr": 5e-5}]},
                "best_rho": reference_result_class(rho=0.99, nmse=torch.tensor(-20.0), epoch=98)}, path)
    for name in ("utils.solver", "utils"):  # the loader must not need (or import) the trainer's code
        sys.modules.pop(name)
    model = import_torch_state_dict(path, model="crnet")
    assert model.cr == 8
    expected, _ = crnet_forward(csi.astype("float64"), state)
    np.testing.assert_allclose(model.predict(csi, verbose=0), expected, atol=ATOL)
    assert "utils.solver" not in sys.modules

    assert set(read_state_dict(path)) == set(state)  # "module." dropped, num_batches_tracked kept
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        import_torch_state_dict(path, model="crnet")
