"""Zhang et al.'s single-cell experiments at a tiny scale: tables, plots, headline, resume, CLI."""

import json
import subprocess
import sys
from dataclasses import asdict

import pytest

from mimokd.cli import main
from mimokd.experiments import zhang
from mimokd.experiments.zhang import (
    HYBRID,
    LEARNED_BF,
    LEARNED_ZF,
    REDUCED,
    WMMSE,
    ZF_LOSS,
    Setting,
    ZhangScale,
    run_zhang,
)

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

TINY = ZhangScale(train=96, test=64, epochs=1, batch_size=32, width=0.25)


def test_tiny_fig4_writes_every_scheme_the_nmse_and_resumes(tmp_path):
    rows = run_zhang("zhang-fig4", tmp_path, TINY, users=(2,))
    assert [r["scheme"] for r in rows] == [HYBRID, ZF_LOSS, LEARNED_BF, LEARNED_ZF, WMMSE]
    assert all(0 < r["fraction"] < 1.2 for r in rows)
    by = {r["scheme"]: r for r in rows}
    assert by[WMMSE]["fraction"] == 1.0 and by[WMMSE]["sum_rate"] == by[HYBRID]["wmmse_sum_rate"]
    assert by[LEARNED_BF]["channel_nmse"] is None and by[LEARNED_ZF]["channel_nmse"] > 0
    stored = json.loads((tmp_path / "results.json").read_text())
    h = stored["headline"]
    assert h["x"] == 2
    assert h["fraction_of_wmmse"] == pytest.approx(by[HYBRID]["fraction"])
    assert h["gain_over_baseline"] == pytest.approx(by[HYBRID]["sum_rate"] / by[LEARNED_ZF]["sum_rate"] - 1)
    text = (tmp_path / "results.md").read_text()
    assert all(f"| {label} |" in text for label in by) and "Headline at K = Nt = 2" in text
    for png in ("sum_rate.png", "fraction_of_wmmse.png", "channel_nmse.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    point = tmp_path / Setting("tdd", 2, 2, 20.0).tag
    assert sorted(p.name for p in point.iterdir()) == sorted(zhang.run_tag(s) for s in by if s != WMMSE)
    from mimokd.train.runs import read_log

    run = point / zhang.run_tag(HYBRID)  # a resumable run directory (train/runs.py)
    assert (run / "final.keras").exists() and (run / "best.keras").exists()
    log = read_log(run / "log.csv")
    assert len(log["loss"]) == TINY.epochs and by[HYBRID]["epoch_s"] == log["seconds"]
    # finished runs are reused, not retrained, also by a fresh process (the models load from final.keras)
    script = ("import json, sys; from mimokd.experiments.zhang import ZhangScale, run_zhang; "
              f"rows = run_zhang('zhang-fig4', sys.argv[1], ZhangScale(**{asdict(TINY)!r}), users=(2,)); "
              "print(json.dumps([r.get('train_s') for r in rows]))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [r.get("train_s") for r in rows]


def test_tiny_fig2_uses_the_squared_relation(tmp_path):
    rows = run_zhang("zhang-fig2", tmp_path, TINY, users=(2,))
    assert [r["scheme"] for r in rows] == [HYBRID, zhang.SUPERVISED, zhang.UNSUPERVISED, WMMSE]
    assert {r["channel_model"] for r in rows} == {"squared"}


def test_tiny_table1_times_the_three_recoveries(tmp_path):
    rows = run_zhang("zhang-table1", tmp_path, TINY, users=(2,), antennas=[4])
    (row,) = rows
    assert row["K"] == 2 and row["T0_s"] > 0 and row["reduced_pct"] > 0 and row["zf_pct"] > 0
    assert (row["paper_T0_s"], row["paper_reduced_pct"]) == (1570, 67.24)
    point = tmp_path / Setting("fdd", 4, 2, 10.0).tag
    times = {label: json.loads((point / zhang.run_tag(label) / "result.json").read_text())["result"]["train_s"]
             for label in (HYBRID, REDUCED, ZF_LOSS)}
    assert row["reduced_pct"] == pytest.approx(100 * times[REDUCED] / times[HYBRID])
    assert (tmp_path / "train_time.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="one Nt"):
        run_zhang("zhang-table1", tmp_path, TINY, antennas=[4, 8])


def test_network_sizes_follow_the_paper():
    tdd = zhang.network_sizes(Setting("tdd", 4, 4, 20.0), 1.0)
    assert tdd["csi_hidden"] == (64,) * 4 and tdd["power_variant"] == "fc"  # four layers of 4 K Nt
    fdd = zhang.network_sizes(Setting("fdd", 64, 6, 10.0), 1.0)
    assert fdd["csi_hidden"] == (768,) * 3 and fdd["power_variant"] == "cnn"  # three layers of 2 Nt K
    assert zhang.network_sizes(Setting("fdd", 64, 6, 10.0), 0.5)["csi_hidden"] == (384,) * 3


def test_experiment_list_names_the_zhang_experiments(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("zhang-fig2", "zhang-fig4", "zhang-fig5", "zhang-table1"))


def test_cli_passes_the_scale_and_sweeps_to_run_zhang(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(zhang, "run_zhang", lambda *args, **kwargs: calls.append((args, kwargs)))
    out = tmp_path / "fig5"
    assert main(["experiment", "zhang-fig5", "--powers", "10", "--epochs", "1", "--train-samples", "128",
                 "--test-samples", "64", "--batch-size", "32", "--width", "0.25", "--users", "2", "6",
                 "--pilots", "4", "8", "--antennas", "32", "--out", str(out)]) == 0
    (name, out_dir, scale), kwargs = calls[0]
    assert (name, out_dir) == ("zhang-fig5", str(out))
    assert scale == zhang.SMALL.with_overrides(train=128, test=64, epochs=1, batch_size=32, width=0.25)
    assert kwargs == {"users": [2, 6], "pilots": [4, 8], "antennas": [32], "powers_db": [10.0], "max_delay": None,
                      "seed": 0, "share": None}


@pytest.mark.slow
def test_rows_split_and_merge_equal_the_single_run(tmp_path):
    """fig5's points (a's, then b's) on two "machines", copied together, merged: the rows and tables of a
    single run in another folder (each point's data and networks seeded by the point alone)."""
    import shutil

    from mimokd.experiments.runner import Share

    sweep = {"users": (2,), "pilots": (2, 3), "antennas": [4], "seed": 0}
    single = run_zhang("zhang-fig5", tmp_path / "single", TINY, **sweep)
    merged = tmp_path / "merged"
    for i in (0, 1):
        assert run_zhang("zhang-fig5", tmp_path / f"m{i}", TINY, share=Share("zhang-fig5", (i, 2)), **sweep) is None
        shutil.copytree(tmp_path / f"m{i}", merged, dirs_exist_ok=True)
        shutil.rmtree(tmp_path / f"m{i}")
    rows = run_zhang("zhang-fig5", merged, TINY, share=Share("zhang-fig5", merge=True), **sweep)

    def same(rows):  # without the wall times
        return [{k: v for k, v in r.items() if k not in ("train_s", "epoch_s")} for r in rows]

    assert same(rows) == same(single)
    for part in ("a", "b"):
        assert json.loads((merged / part / "results.json").read_text())["scale"] == asdict(TINY)
        assert (merged / part / "sum_rate.png").exists()


def test_rows_are_the_points_and_merge_names_the_missing(tmp_path, monkeypatch, caplog):
    """--rows i/N trains the points of index i mod N (fig5: a's, then b's); --merge trains nothing and
    refuses, naming the missing points and the --rows that trains each."""
    import logging

    trained = []
    monkeypatch.setattr(zhang, "run_point", lambda out_dir, setting, *args: trained.append((out_dir.name, setting.K,
                                                                                               setting.pilots)))
    options = ["experiment", "zhang-fig5", "--users", "2", "4", "--pilots", "3", "5", "7", "--antennas", "8",
               "--out", str(tmp_path)]
    assert main([*options, "--rows", "1/2"]) == 0
    assert trained == [("a", 4, None), ("b", 6, 5)]  # rows 1 and 3 of a's K = 2, 4, then b's L = 3, 5, 7
    caplog.set_level(logging.ERROR, logger="mimokd")
    assert main([*options, "--merge"]) == 1
    assert len(trained) == 2 and not (tmp_path / "a" / "results.md").exists()
    setting = Setting("fdd", 8, 2, 10.0)
    assert (f"5 row(s) not finished: row 0 {HYBRID!r}, {ZF_LOSS!r}, {LEARNED_BF!r}, {LEARNED_ZF!r} at "
            f"{setting.tag} (a/{setting.tag}); row 1 ") in caplog.text
    assert "`mimokd experiment zhang-fig5 --rows k/5` trains row k alone" in caplog.text
