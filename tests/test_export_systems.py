"""Kong et al.'s and Zhang et al.'s networks through export and report: every artifact loaded in its own
runtime against the Keras network, the receiver's bits exactly, FLOPs against closed forms, the CLI."""

import json

import keras
import numpy as np
import pytest

from mimokd.cli import main
from mimokd.export.artifacts import deployable_parts, export_model
from mimokd.export.flops import count_complexity
from mimokd.export.formats import FORMATS, PART_FORMATS
from mimokd.export.parity import ParityError, check_parity
from mimokd.export.runtimes import Runner, load_runner
from mimokd.export.systems import resolve_checkpoint, system_inputs
from mimokd.train.hybrid import HybridBeamformer
from mimokd.train.joint import JointTrainer, channel_arrays, fit_joint
from mimokd.zoo.beamforming import build_csi_net, build_power_net
from mimokd.zoo.precoding import KongSystem, build_receiver, build_transmitter

KONG_DIMS = dict(num_users=2, num_tx=4, num_rx=1, pilot_length=4)
FAST = ["--calibration-samples", "32", "--test-samples", "16"]


def kong_system(seed=0, power_input=True, shared_receiver=True):
    keras.utils.set_random_seed(seed)
    return KongSystem.build(**KONG_DIMS, bits=3, receiver_hidden=(16, 8), transmitter_hidden=(16, 16),
                            power_input=power_input, shared_receiver=shared_receiver)


def pilots(count, seed):
    return channel_arrays(count, seed=seed, **KONG_DIMS)[0]


class FlipOneBit(Runner):
    """A receiver 'artifact' that gives the Keras bits with one of them flipped."""

    runtime = "fake"

    def __init__(self, model):
        super().__init__("flipped.artifact", 0)
        self._model = model

    def __call__(self, x):
        bits = np.array(self._model.predict(x[0], verbose=0))
        bits[0, 0] *= -1
        return bits


@pytest.fixture(scope="module")
def kong(tmp_path_factory):
    """A seeded Kong system exported in every default format: (trainer, check pilots, folder, manifest)."""
    trainer = JointTrainer(kong_system(), power_db=20.0)
    check = pilots(32, 1)
    out = tmp_path_factory.mktemp("kong")
    return trainer, check, out, export_model(trainer, out, calibration=pilots(64, 0), check=check)


@pytest.fixture(scope="module")
def zhang(tmp_path_factory):
    """A seeded Zhang network (FC Power-Net) exported in every default format: (model, uplink, folder, manifest)."""
    keras.utils.set_random_seed(3)
    model = HybridBeamformer(4, 2, 10.0, 1.0, csi_hidden=(16,), power_hidden=(16,))
    uplink = np.random.default_rng(1).normal(size=(32, 2, 4, 2)).astype("float32")
    calibration = np.random.default_rng(0).normal(size=(64, 2, 4, 2)).astype("float32")
    out = tmp_path_factory.mktemp("zhang")
    return model, uplink, out, export_model(model, out, calibration=calibration, check=uplink)


# ----------------------------------------------------------------------------------------------
# Kong et al.: the receiver's bits exactly, the two-input transmitter to tolerance


def test_kong_parts_and_default_formats(kong):
    trainer, _, out, manifest = kong
    parts = deployable_parts(trainer)
    assert {n: (p.side, p.exact, p.model) for n, p in parts.items()} == {
        "receiver": ("UE", True, trainer.system.receiver), "transmitter": ("BS", False, trainer.transmitter)}
    assert [(a["part"], a["format"]) for a in manifest["artifacts"]] == (
        [("receiver", f) for f in PART_FORMATS["receiver"]] + [("transmitter", f) for f in PART_FORMATS["transmitter"]])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json"] + [f"{a['part']}{FORMATS[a['format']].suffix}" for a in manifest["artifacts"]])


@pytest.mark.parametrize("fmt", PART_FORMATS["receiver"])
def test_receiver_artifact_gives_the_keras_bits_exactly(kong, fmt):
    trainer, check, out, manifest = kong
    part = deployable_parts(trainer)["receiver"]
    runner = load_runner(out / f"receiver{FORMATS[fmt].suffix}", fmt, part.endpoint)
    x = check.reshape(-1, check.shape[-1])  # every user's pilots
    bits = runner(x)
    np.testing.assert_array_equal(bits, keras.ops.convert_to_numpy(trainer.system.receiver(x)))
    assert set(np.unique(bits)) == {-1.0, 1.0}
    record = next(a for a in manifest["artifacts"] if (a["part"], a["format"]) == ("receiver", fmt))
    assert (record["mismatches"], record["outputs"], record["max_abs_diff"]) == (0, x.shape[0] * 3, 0.0)


def test_receiver_exports_the_hard_sign_not_the_straight_through_arithmetic(kong):
    trainer, _, out, _ = kong
    import onnx

    ops = {node.op_type for node in onnx.load(str(out / "receiver.onnx")).graph.node}
    assert "Tanh" not in ops  # the STE's tanh and its soft - stop_gradient(soft) are gone


def test_exact_parity_counts_a_flipped_bit(kong):
    trainer, check, _, _ = kong
    receiver = trainer.system.receiver
    x = check.reshape(-1, check.shape[-1])
    bits = x.shape[0] * 3
    message = rf"flips 1 of {bits} bits of the Keras model's on {x.shape[0]} inputs \(every bit"
    with pytest.raises(ParityError, match=message):
        check_parity(receiver, FlipOneBit(receiver), FORMATS["tflite-int8"], x, exact=True)
    measured = check_parity(receiver, FlipOneBit(receiver), FORMATS["onnx"], x, exact=True, strict=False)
    assert measured.mismatches == 1 and measured.max_abs_diff == 2.0 and "flips 1 of" in measured.failure
    # without `exact`, the same artifact fails on its value alone (a difference of 2 > rtol of 1)
    assert "flips" not in check_parity(receiver, FlipOneBit(receiver), FORMATS["onnx"], x, strict=False).failure


@pytest.mark.parametrize("fmt", PART_FORMATS["transmitter"])
def test_transmitter_artifact_takes_feedback_and_power(kong, fmt):
    trainer, check, out, _ = kong
    part = deployable_parts(trainer)["transmitter"]
    assert part.endpoint.input_names == ("feedback", "power_db")
    runner = load_runner(out / f"transmitter{FORMATS[fmt].suffix}", fmt, part.endpoint)
    feedback = keras.ops.convert_to_numpy(trainer.system.feedback(check))
    # int8 quantizes the power input to its calibrated range: the run's P (20 dB) alone
    powers = (20.0,) if FORMATS[fmt].calibrated else (0.0, 20.0, 30.0)
    for power_db in powers:
        power = np.full((len(check), 1), power_db, "float32")
        want = keras.ops.convert_to_numpy(trainer.transmitter([feedback, power]))
        got = runner([feedback, power])
        assert got.shape == (len(check), 4, 2, 2)
        assert np.max(np.abs(got - want)) <= FORMATS[fmt].rtol * np.max(np.abs(want))
    if not FORMATS[fmt].calibrated:  # the power input is live: another P, other precoders
        assert np.max(np.abs(runner([feedback, power]) - runner([feedback, 0 * power]))) > 1e-3


def test_transmitter_without_power_input_and_per_user_receivers(tmp_path):
    trainer = JointTrainer(kong_system(1, power_input=False, shared_receiver=False), power_db=20.0)
    check = pilots(16, 1)
    manifest = export_model(trainer, tmp_path / "out", calibration=None, check=check, formats=["onnx"])
    assert [a["part"] for a in manifest["artifacts"]] == ["receiver_0", "receiver_1", "transmitter"]
    parts = deployable_parts(trainer)
    assert parts["transmitter"].endpoint.input_names == ("feedback",)
    for k in range(2):
        runner = load_runner(tmp_path / "out" / f"receiver_{k}.onnx", "onnx", parts[f"receiver_{k}"].endpoint)
        np.testing.assert_array_equal(runner(check[:, k]),
                                      keras.ops.convert_to_numpy(trainer.system.receivers[k](check[:, k])))


# ----------------------------------------------------------------------------------------------
# Zhang et al.: CSI-Net and Power-Net in every runtime, the recovery in TensorFlow only


def test_zhang_parts_and_formats(zhang):
    model, _, _, manifest = zhang
    parts = deployable_parts(model)
    assert [(n, p.side) for n, p in parts.items()] == [("csi_net", "BS"), ("power_net", "BS"), ("beamformer", "BS")]
    assert [(a["part"], a["format"]) for a in manifest["artifacts"] if a["part"] == "beamformer"] == [
        ("beamformer", "savedmodel")]
    assert PART_FORMATS["csi_net"] == PART_FORMATS["power_net"] == tuple(FORMATS)


@pytest.mark.parametrize("part,fmt", [(p, f) for p in ("csi_net", "power_net") for f in FORMATS])
def test_zhang_network_artifact_reproduces_the_keras_network(zhang, part, fmt):
    model, uplink, out, _ = zhang
    endpoint = deployable_parts(model)[part].endpoint
    x = uplink if part == "csi_net" else keras.ops.convert_to_numpy(model.csi_net(uplink))
    want = keras.ops.convert_to_numpy((model.csi_net if part == "csi_net" else model.power_net)(x))
    got = load_runner(out / f"{part}{FORMATS[fmt].suffix}", fmt, endpoint)(x)
    assert np.max(np.abs(got - want)) <= FORMATS[fmt].rtol * np.max(np.abs(want))


def test_beamformer_savedmodel_gives_the_recovered_beamformers(zhang):
    model, uplink, out, _ = zhang
    runner = load_runner(out / "beamformer.savedmodel", "savedmodel", deployable_parts(model)["beamformer"].endpoint)
    W = runner(uplink)
    np.testing.assert_allclose(W, keras.ops.convert_to_numpy(model(uplink)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.sum(W**2, axis=(1, 2, 3)), 10.0, rtol=1e-4)  # ||W||_F^2 = P


def test_beamformer_recovery_does_not_convert_to_tflite(zhang, tmp_path):
    model, uplink, _, _ = zhang
    with pytest.raises(Exception, match="MatrixSolve"):  # the complex solve of eq. (7): no LiteRT op
        export_model(model, tmp_path / "out", calibration=None, check=uplink, parts="beamformer",
                     formats="tflite-f32")


def test_export_model_refuses_inputs_of_another_shape(kong, tmp_path):
    trainer, _, _, _ = kong
    with pytest.raises(ValueError, match=r"must be the model's inputs \[M >= 2, 2, 8\]. Received shape \(4, 3, 8\)"):
        export_model(trainer, tmp_path / "out", calibration=None, check=np.zeros((4, 3, 8)), formats="onnx")
    message = r"Unknown part\(s\) \['encoder'\]. This model has \['receiver', 'transmitter'\]"
    with pytest.raises(ValueError, match=message):
        export_model(trainer, tmp_path / "out", calibration=None, check=pilots(4, 1), parts="encoder")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# FLOPs in the papers' conventions, against counts computed here from the layer sizes


def dense_flops(sizes, positions=1):
    """Cui et al. eq. (14), ``(2 L_in - 1) L_out`` per layer, for layers ``sizes[0] -> sizes[1] -> ...``."""
    return positions * sum((2 * a - 1) * b for a, b in zip(sizes, sizes[1:]))


def test_receiver_flops_are_kong_et_al_formula():
    M, N, L, B = 8, 2, 8, 6
    counts = count_complexity(build_receiver(2 * N * L, B, hidden=(40 * M * N, 30 * M * N, 20 * M * N)))
    assert counts.flops == 10 * M * N * (16 * L * N + 360 * M * N - 9) + B * (40 * M * N - 1) == 964_954
    sizes = [2 * N * L, 640, 480, 320, B]
    assert counts.mults == sum(a * b for a, b in zip(sizes, sizes[1:]))
    assert counts.params == sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def test_transmitter_flops_count_the_power_input():
    K, B, M, N = 2, 3, 4, 1
    counts = count_complexity(build_transmitter(K, B, M, N, hidden=(16, 24)))
    sizes = [K * B + 1, 16, 24, 2 * M * N * K]
    assert counts.flops == dense_flops(sizes)
    assert counts.params == sum(a * b + b for a, b in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("per_user", [True, False])
def test_csi_net_flops_count_the_per_user_network_once_per_user(per_user):
    Nt, K, hidden = 4, 3, (16, 16)
    counts = count_complexity(build_csi_net(Nt, K, hidden=hidden, per_user=per_user))
    width = 2 * Nt if per_user else 2 * K * Nt
    sizes = [width, *hidden, width]
    assert counts.flops == dense_flops(sizes, positions=K if per_user else 1)
    assert counts.mults == (K if per_user else 1) * sum(a * b for a, b in zip(sizes, sizes[1:]))
    assert counts.params == sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def test_power_net_cnn_flops_follow_zhang_et_al_convolution_count():
    Nt, K, filters, a, dense = 8, 2, (16, 8), 3, 32
    counts = count_complexity(build_power_net(Nt, K, hidden=(dense,), variant="cnn", filters=filters, kernel_size=a))
    channels = [2 * K, *filters]  # the antennas are the sequence (b = Nt), 2K channels in
    conv_mults = sum(a * Nt * c_in * c_out for c_in, c_out in zip(channels, channels[1:]))  # a_l b c_(l-1) c_l
    conv_flops = sum(2 * Nt * (c_in * a + 1) * c_out for c_in, c_out in zip(channels, channels[1:]))
    sizes = [Nt * filters[-1], dense, 2 * K]
    assert counts.mults == conv_mults + sum(x * y for x, y in zip(sizes, sizes[1:]))
    assert counts.flops == conv_flops + dense_flops(sizes)


# ----------------------------------------------------------------------------------------------
# The CLI: a run directory (or its best.keras) names the network; its config.json draws the inputs


@pytest.fixture(scope="module")
def kong_run(tmp_path_factory):
    """The run directory of a one-iteration Kong run (fit_joint): best.keras, config.json."""
    run = tmp_path_factory.mktemp("runs") / "kong_P20"
    fit_joint(kong_system(2), out_dir=run, power_db=20.0, iterations=1, steps_per_epoch=1, batch_size=8,
              val_samples=8, verbose=0)
    return run


@pytest.fixture(scope="module")
def zhang_run(tmp_path_factory):
    """The run directory of a one-epoch Zhang hybrid run (the experiment's own trainer)."""
    from mimokd.experiments.zhang import HYBRID, Setting, ZhangScale, datasets, train_scheme

    setting, scale = Setting("tdd", 4, 2, 20.0), ZhangScale(train=48, test=16, epochs=1, batch_size=16, width=0.25)
    run = tmp_path_factory.mktemp("runs") / "hybrid"
    train_scheme(run, HYBRID, setting, scale, 0, lambda: datasets(setting, scale, 0))
    return run


@pytest.mark.slow
def test_cli_exports_a_kong_run_directory(kong_run, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(kong_run), "--formats", "onnx", "tflite-int8", "--out", str(out),
                 *FAST]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(a["part"], a["format"]) for a in manifest["artifacts"]] == [
        ("receiver", "onnx"), ("receiver", "tflite-int8"), ("transmitter", "onnx"), ("transmitter", "tflite-int8")]
    assert manifest["check_samples"] == 16 and manifest["calibration_samples"] == 32
    printed = capsys.readouterr().out
    assert f"{out / 'receiver.onnx'}: " in printed and "0 of 96 bits flipped" in printed  # 16 x K=2 users x B=3
    trainer = keras.saving.load_model(kong_run / "best.keras")
    _, check = system_inputs(trainer, kong_run, calibration_samples=4, check_samples=16)
    np.testing.assert_array_equal(check, pilots(16, 1))  # the run's validation stream, seed + 1
    runner = load_runner(out / "receiver.onnx", "onnx", deployable_parts(trainer)["receiver"].endpoint)
    x = check.reshape(-1, check.shape[-1])
    np.testing.assert_array_equal(runner(x), keras.ops.convert_to_numpy(trainer.system.receiver(x)))


@pytest.mark.slow
def test_cli_reports_a_zhang_run(zhang_run, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--checkpoint", str(zhang_run / "best.keras"), "--parts", "csi_net,beamformer",
                 "--formats", "savedmodel", "--runs", "5", "--warmup", "1", "--out", str(out), *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    model = keras.saving.load_model(zhang_run / "best.keras")
    sizes = [2 * 4, *model.csi_hidden, 2 * 4]
    assert [(c["model"], c["part"]) for c in report["complexity"]] == [("hybrid", "csi_net"), ("hybrid", "beamformer")]
    assert report["complexity"][0]["flops"] == dense_flops(sizes, positions=2)
    assert [(a["part"], a["format"], a["parity"]) for a in report["artifacts"]] == [
        ("csi_net", "savedmodel", "ok"), ("beamformer", "savedmodel", "ok")]
    assert "each system's run (its config.json), 16 test samples" in (out / "report.md").read_text()
    capsys.readouterr()


@pytest.mark.slow
def test_cli_reports_every_kong_part_by_default(kong_run, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--checkpoint", str(kong_run), "--formats", "tflite-f32", "--runs", "5", "--warmup", "1",
                 "--out", str(out), *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [c["part"] for c in report["complexity"]] == ["receiver", "transmitter"]
    receiver = report["complexity"][0]
    assert receiver["flops"] == dense_flops([8, 16, 8, 3])  # 2NL -> hidden -> B
    assert [a["mismatches"] for a in report["artifacts"]] == [0, None]
    assert "| bits flipped |" in capsys.readouterr().out


def test_cli_errors_name_what_was_expected(kong_run, tmp_path, capsys):
    out = tmp_path / "export"
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_:  # refused by the argument's parser
        main(["export", "--checkpoint", str(tmp_path / "empty"), "--out", str(out), *FAST])
    assert exit_.value.code == 2
    assert "is a folder without best.keras or final.keras; expected a .keras file or a run directory" in (
        capsys.readouterr().err)
    with pytest.raises(ValueError, match="is a directory without best.keras or final.keras; expected a run dir"):
        resolve_checkpoint(tmp_path / "empty")
    receiver = tmp_path / "receiver.keras"
    build_receiver(8, 3, hidden=(8,)).save(receiver)
    assert main(["export", "--checkpoint", str(receiver), "--out", str(out), *FAST]) == 1
    err = capsys.readouterr().err
    assert "holds a model (None, 8) -> (None, 3) (unknown role); expected a CSI autoencoder" in err
    assert "or Kong et al.'s receiver and transmitter (best.keras of `mimokd experiment kong-*`)" in err
    lone = tmp_path / "lone" / "best.keras"
    lone.parent.mkdir()
    lone.write_bytes((kong_run / "best.keras").read_bytes())  # a Kong model away from its run's config.json
    assert main(["export", "--checkpoint", str(lone), "--out", str(out), *FAST]) == 1
    assert "has no config.json: the check inputs of a JointTrainer are drawn as its run drew" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(kong_run), "--parts", "encoder", "--out", str(out), *FAST]) == 1
    assert "Unknown part(s) ['encoder']. This model has ['receiver', 'transmitter']" in capsys.readouterr().err
    assert not out.exists()


def test_cli_refuses_a_trainer_whose_networks_do_not_export(tmp_path, capsys):
    from mimokd.train.learned_channel import LearnedChannelBeamformer

    keras.utils.set_random_seed(0)
    model = LearnedChannelBeamformer(build_csi_net(4, 2, hidden=(8,)), 4, 2, 10.0, 1.0, hidden=(8,))
    model(np.zeros((1, 2, 4, 2), "float32"))
    path = tmp_path / "bf.keras"
    model.save(path)
    assert main(["export", "--checkpoint", str(path), "--out", str(tmp_path / "out"), *FAST]) == 1
    err = capsys.readouterr().err
    assert "holds a LearnedChannelBeamformer (mimokd.train.learned_channel), a kind of network that does not" in err
    assert "expected a CSI autoencoder, or Kong et al.'s receiver and transmitter" in err


def test_default_formats_of_the_system_parts():
    assert all(set(f) <= set(FORMATS) for f in PART_FORMATS.values())
    # int8 flips bits of a trained receiver; no 16x8 kernels for the sign / the column norm
    assert set(FORMATS) - set(PART_FORMATS["receiver"]) == {"tflite-int8", "tflite-int16x8"}
    assert "tflite-int16x8" not in PART_FORMATS["transmitter"]  # no 16x8 kernel for its SQUARE
