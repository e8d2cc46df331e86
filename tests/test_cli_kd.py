"""The KD commands: `mimokd distill`, the two roles of `mimokd ip-kd`, `mimokd experiment`."""

import numpy as np
import pytest

from mimokd.cli import main
from mimokd.train.checkpoints import load_checkpoint
from mimokd.train.ip_kd import load_pairs

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

SAMPLES = ["--train-samples", "40", "--val-samples", "20", "--test-samples", "20"]
FAST = ["--epochs", "1", "--batch-size", "20"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A (barely) trained teacher checkpoint: CsiNet at 1/32 (the commands' mechanics, on the zoo's
    lightest model; the students below are CsiNet too)."""
    run = tmp_path_factory.mktemp("teacher")
    assert main(["train", "--model", "csinet", "--cr", "32", *FAST, *SAMPLES, "--out", str(run)]) == 0
    return run / "best.keras"


@pytest.mark.parametrize("method", ["autoencoder-kd", "encoder-kd"])
def test_distill_writes_the_student(method, teacher, tmp_path, capsys):
    out = tmp_path / method
    assert main(["distill", "--method", method, "--teacher", str(teacher), "--student", "csinet",
                 *FAST, *SAMPLES, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"csinet 1/32 {method}: NMSE" in printed
    best = out / ("finetune" if method == "encoder-kd" else "") / "best.keras"
    assert load_checkpoint(best).codeword_dim == 64


def test_ip_kd_roles_exchange_only_pairs_files(teacher, tmp_path, capsys):
    bs_pairs, ue_pairs = tmp_path / "bs_pairs.npz", tmp_path / "ue_pairs.npz"
    assert main(["ip-kd", "bs-export", "--model", str(teacher), "--out", str(bs_pairs),
                 "--train-samples", "40", "--codeword-bits", "8"]) == 0
    with np.load(bs_pairs) as data:
        # nothing about either network travels: CSI, codes and their quantizer ranges only
        assert set(data) == {"version", "csi", "codewords", "codewords_bits", "codewords_low", "codewords_high"}
        assert data["codewords"].dtype == np.uint8 and data["codewords"].shape == (40, 64)
    assert main(["ip-kd", "ue-train", "--pairs", str(bs_pairs), "--encoder", "csinet", *FAST,
                 "--out", str(tmp_path / "ue")]) == 0
    encoder = tmp_path / "ue" / "best.keras"
    assert load_checkpoint(encoder, role="encoder").output_shape == (None, 64)
    assert main(["ip-kd", "ue-export", "--encoder", str(encoder), "--pairs", str(bs_pairs),
                 "--out", str(ue_pairs)]) == 0
    csi_bs, _ = load_pairs(bs_pairs)
    csi_ue, codewords_ue = load_pairs(ue_pairs)
    np.testing.assert_array_equal(csi_ue, csi_bs)  # the UE encoded the CSI it received
    ue = load_checkpoint(encoder, role="encoder")
    np.testing.assert_allclose(codewords_ue, ue.predict(csi_ue, verbose=0), atol=1e-5)
    assert main(["ip-kd", "bs-finetune", "--model", str(teacher), "--pairs", str(ue_pairs), *FAST,
                 "--out", str(tmp_path / "bs")]) == 0
    decoder = tmp_path / "bs" / "best.keras"
    assert load_checkpoint(decoder, role="decoder").input_shape == (None, 64)
    capsys.readouterr()
    assert main(["ip-kd", "evaluate", "--encoder", str(encoder), "--decoder", str(decoder),
                 "--test-samples", "20"]) == 0
    assert "UE encoder + BS decoder: NMSE" in capsys.readouterr().out
    # sequential training deploys the BS autoencoder's decoder as it is
    assert main(["ip-kd", "evaluate", "--encoder", str(encoder), "--decoder", str(teacher),
                 "--test-samples", "20"]) == 0


def test_ip_kd_errors_name_the_problem(teacher, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["ip-kd", "ue-train", "--pairs", str(tmp_path / "none.npz"), "--encoder", "csinet",
              "--out", str(tmp_path / "ue")])
    assert exit_.value.code == 2 and f"--pairs: {tmp_path / 'none.npz'}: no such file" in capsys.readouterr().err
    assert main(["ip-kd", "ue-export", "--encoder", str(teacher), "--out", str(tmp_path / "x.npz")]) == 1
    assert "expected a UE encoder" in capsys.readouterr().err


def test_experiment_list_and_unknown(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert "lu-table1" in out and "cui-table12" in out
    assert main(["experiment", "cui-table99"]) == 1
    assert "Unknown experiment" in capsys.readouterr().err
