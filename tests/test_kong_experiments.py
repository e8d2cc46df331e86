"""Kong et al.'s figures as experiments, at a tiny scale: tables, plots, resume, FLOPs."""

import json

import pytest

from mimokd.cli import main
from mimokd.experiments.kong import DNN_SCHEMES, KongScale, receiver_flops_formula, run_kong

TINY = KongScale(iterations=4, batch_size=16, steps_per_epoch=2, width=0.05, test_channels=40, val_channels=20,
                 codebook_channels=128, lloyd_iterations=1)


def test_receiver_flops_formula_gives_the_reference_number():
    # REFERENCE.md: the paper's formula gives 964,954 at L = M = 8, N = 2, B = 6
    assert receiver_flops_formula(8, 2, 8, 6) == 964_954


def test_tiny_fig2_writes_every_scheme_and_resumes(tmp_path):
    rows = run_kong("kong-fig2", tmp_path, TINY, powers_db=(30,))
    schemes = [r["scheme"] for r in rows]
    assert schemes == [*DNN_SCHEMES, "BD", "RBD", "RBD, infinite feedback"]
    assert all(r["sum_rate"] > 0 for r in rows)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert [f["flops"] for f in stored["flops"]][0] == 964_954
    assert stored["flops"][2]["flops"] == 310_336  # the baseline formula, REFERENCE.md
    assert (tmp_path / "sum_rate_M8_N2_K4_B6.png").read_bytes()[:4] == b"\x89PNG"
    assert "| DNN, KD |" in (tmp_path / "results.md").read_text()
    # a second run reuses every finished DNN run (same scale, same seed): identical figures
    again = run_kong("kong-fig2", tmp_path, TINY, powers_db=(30,))
    assert [r["train_s"] for r in again[:4]] == [r["train_s"] for r in rows[:4]]


def test_tiny_fig4_plots_the_losses(tmp_path):
    rows = run_kong("kong-fig4", tmp_path, TINY)
    assert [r["scheme"] for r in rows] == ["DNN, KD", "DNN, no KD"]
    assert all(r["final_loss"] < 0 for r in rows)  # minus a sum rate
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_experiment_list_names_the_kong_figures(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("kong-fig2", "kong-fig3", "kong-fig4"))


def test_rows_and_merge_are_refused_with_the_reason(capsys):
    for options in (["--rows", "0/2"], ["--merge"]):
        with pytest.raises(SystemExit) as exit_:  # a usage error, before any work
            main(["experiment", "kong-fig2", *options])
        err = capsys.readouterr().err
        assert exit_.value.code == 2
        assert "kong-fig2 is not split: its figure is computed from all of its runs together" in err
