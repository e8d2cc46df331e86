"""Zhang et al.'s small-scale TDD experiments at a tiny scale: tables, plots, headline, resume, CLI."""

import json

from mimokd.cli import main
from mimokd.experiments.zhang import LOSS_FORMS, SCHEMES, ZhangScale, run_zhang

TINY = ZhangScale(train=128, test=128, epochs=1, batch_size=64)


def test_tiny_fig2_writes_every_scheme_and_resumes(tmp_path):
    rows = run_zhang("zhang-fig2", tmp_path, TINY, powers_db=(20,))
    assert [r["scheme"] for r in rows] == list(SCHEMES)
    assert all(0 < r["fraction"] < 1.2 for r in rows)
    assert rows[-1]["fraction"] == 1.0  # WMMSE is the reference
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["headline"]["snr_db"] == 20.0
    assert 0 < stored["headline"]["fraction_of_wmmse"] < 1.2
    text = (tmp_path / "results.md").read_text()
    assert "fraction of WMMSE" in text.lower() or "of WMMSE's sum rate" in text
    assert "over learned channel + ZF" in text
    assert all(f"| {label} |" in text for label in SCHEMES)
    assert (tmp_path / "sum_rate.png").read_bytes()[:4] == b"\x89PNG"
    assert len([p for p in tmp_path.iterdir() if (p / "result.json").exists()]) == len(LOSS_FORMS)
    again = run_zhang("zhang-fig2", tmp_path, TINY, powers_db=(20,))  # finished runs are reused
    assert [r.get("train_s") for r in again] == [r.get("train_s") for r in rows]


def test_tiny_table1_times_the_three_loss_forms(tmp_path):
    rows = run_zhang("zhang-table1", tmp_path, TINY)
    assert [r["scheme"] for r in rows] == list(LOSS_FORMS)
    assert all(r["epoch_s"] > 0 and r["train_s"] > 0 and 0 < r["fraction"] < 1.2 for r in rows)
    text = (tmp_path / "results.md").read_text()
    assert all(f"| {label} |" in text for label in LOSS_FORMS)
    assert (tmp_path / "train_time.png").read_bytes()[:4] == b"\x89PNG"


def test_experiment_list_names_the_zhang_experiments(capsys):
    assert main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert "zhang-fig2" in out and "zhang-table1" in out


def test_cli_passes_the_scale_and_snrs_to_run_zhang(tmp_path, monkeypatch):
    import mimokd.experiments.zhang as zhang

    calls = []
    monkeypatch.setattr(zhang, "run_zhang", lambda *args, **kwargs: calls.append((args, kwargs)))
    out = tmp_path / "fig2"
    assert main(["experiment", "zhang-fig2", "--powers", "20", "--epochs", "1", "--train-samples", "128",
                 "--test-samples", "64", "--batch-size", "32", "--out", str(out)]) == 0
    (name, out_dir, scale), kwargs = calls[0]
    assert (name, out_dir) == ("zhang-fig2", str(out))
    assert scale == zhang.SMALL.with_overrides(train=128, test=64, epochs=1, batch_size=32)
    assert kwargs == {"powers_db": [20.0], "seed": 0}
