"""Kong et al.'s figures as experiments, at a tiny scale: tables, plots, resume, FLOPs, --rows / --merge."""

import json
import logging

import pytest

from mimokd.cli import main
from mimokd.experiments.kong import FIG2, DNN_SCHEMES, KongScale, receiver_flops_formula, run_kong
from mimokd.experiments.runner import Share

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

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


def _same(rows):
    """The rows without what differs between two trainings of the same runs: wall time, log paths."""
    return [{k: v for k, v in r.items() if k not in ("train_s", "log")} for r in rows]


@pytest.mark.slow
def test_rows_split_and_merge_equal_the_single_run(tmp_path):
    """--rows 0/2 and 1/2 on two "machines", their run directories copied together, then --merge: the rows
    and results.md of a single run in another folder (each DNN seeded on its own, baselines at the merge)."""
    import shutil

    single = run_kong("kong-fig2", tmp_path / "single", TINY, powers_db=(30,))
    for i in (0, 1):
        assert run_kong("kong-fig2", tmp_path / f"m{i}", TINY, powers_db=(30,), share=Share("kong-fig2", (i, 2))) is None
        assert not (tmp_path / f"m{i}" / "results.md").exists()
    tags = [f"{label.replace(', ', '_').replace(' ', '-')}_P30" for label in DNN_SCHEMES]
    assert sorted(p.name for p in (tmp_path / "m1" / FIG2.label).iterdir()) == sorted(tags[1::2])
    merged = tmp_path / "merged"
    for i in (0, 1):
        shutil.copytree(tmp_path / f"m{i}", merged, dirs_exist_ok=True)
        shutil.rmtree(tmp_path / f"m{i}")  # the copies are self-contained
    rows = run_kong("kong-fig2", merged, TINY, powers_db=(30,), share=Share("kong-fig2", merge=True))
    assert _same(rows) == _same(single)
    assert all(r["log"].startswith(str(merged)) for r in rows[:4])
    assert (merged / "results.md").read_text() == (tmp_path / "single" / "results.md").read_text()
    assert (merged / f"sum_rate_{FIG2.label}.png").exists()


def test_rows_train_their_share_and_merge_names_the_missing_runs(tmp_path, monkeypatch, caplog):
    """The rows are the DNNs, setup by setup, scheme by scheme, P by P; --rows i/N trains those of index i
    mod N; --merge trains nothing and refuses, naming the missing runs and the --rows that trains each."""
    from mimokd.experiments import kong

    runs = kong.dnn_runs(tmp_path, kong.FIG3, ["DNN, KD", "DNN, no KD"], (0, 10), TINY, 0)
    assert list(runs)[:3] == [(kong.FIG3[0], "DNN, KD", 0), (kong.FIG3[0], "DNN, KD", 10),
                              (kong.FIG3[0], "DNN, no KD", 0)]
    trained = []
    monkeypatch.setattr(kong, "train_dnn", lambda out_dir, *args: trained.append(out_dir) or {"sum_rate": 1.0})
    assert main(["experiment", "kong-fig3", "--powers", "0", "10", "--rows", "1/5", "--out", str(tmp_path)]) == 0
    assert trained == [list(runs.values())[k].run_dir for k in (1, 6, 11)]
    caplog.set_level(logging.ERROR, logger="mimokd")
    assert main(["experiment", "kong-fig3", "--powers", "0", "10", "--merge", "--out", str(tmp_path)]) == 1
    assert len(trained) == 3 and not (tmp_path / "results.md").exists()
    assert "cannot merge kong-fig3" in caplog.text and "12 row(s) not finished: row 0 'DNN, KD' at M8_N1_K8_B3, " \
        "P = 0 dB (M8_N1_K8_B3/DNN_KD_P0); row 1 " in caplog.text
    assert "`mimokd experiment kong-fig3 --rows k/12` trains row k alone" in caplog.text
    for options in (["--rows", "0/2", "--merge"], ["--rows", "teachers"]):
        with pytest.raises(SystemExit) as exit_:  # a usage error, before any work
            main(["experiment", "kong-fig2", *options])
        assert exit_.value.code == 2
