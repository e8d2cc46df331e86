"""Zhang et al.'s multicell experiments (fig6-8) at a tiny scale: views, references, resume, CLI."""

import json

import numpy as np
import pytest

from mimokd.cli import main
from mimokd.experiments import zhang_multicell as mc
from mimokd.experiments.zhang import ZhangScale

pytestmark = pytest.mark.eager  # orchestration of tiny fits: tests/conftest.py

TINY = ZhangScale(train=48, test=12, epochs=1, batch_size=64, width=0.05)


def test_neighbour_views_are_the_training_views_at_seven_cells_and_the_nearest_beyond():
    data = mc.dataset(mc.CellSetting(4), 3, 0, 2)
    s = data["channel_scale"]
    np.testing.assert_array_equal(mc.neighbour_views(data, s), data["uplink"])
    np.testing.assert_array_equal(mc.neighbour_views(data, s, key="h_down"), data["downlink"])
    big = mc.dataset(mc.CellSetting(4, num_cells=19), 2, 0, 2, channel_scale=s)
    views = mc.neighbour_views(big, s).reshape(2, 19, 7, 4, 2)
    # BS 0 is the centre: its 6 nearest are cells 1-6; an outer BS sees itself first, then 6 neighbours
    np.testing.assert_allclose(views[:, 0], big["uplink"].reshape(2, 19, 19, 4, 2)[:, 0, :7], rtol=1e-6)
    bs = big["bs_positions"]
    i = 12
    users = []
    for k in range(7):  # which user sits in slot k of BS i's view
        slot = views[0, i, k, ..., 0] + 1j * views[0, i, k, ..., 1]
        users.append(int(np.argmin(np.abs(big["ls"][0, i] / s - slot).sum(-1))))
    nearest = np.argsort(np.hypot(*(bs - bs[i]).T), kind="stable")[:7]
    assert users[0] == i and sorted(users) == sorted(nearest.tolist()) and users[1:] == sorted(users[1:])
    with pytest.raises(ValueError, match="7 cells"):
        mc.neighbour_views(mc.dataset(mc.CellSetting(4, num_cells=3), 1, 0, 2), s)


def test_tiny_fig6_references_and_resume(tmp_path):
    rows = mc.run_multicell("zhang-fig6", tmp_path, TINY, antennas=[8], pilots=[5])
    point = [r for r in rows if r["x"] == 8]
    by = {r["scheme"]: r for r in point}
    assert set(by) == {*mc.SCHEMES, *mc.REFERENCES}
    assert by[mc.WMMSE]["fraction"] == 1.0
    assert by[mc.WMMSE]["sum_rate"] >= by[mc.SLNR_PERFECT]["sum_rate"] - 1e-9  # WMMSE starts from SLNR
    assert all(0 < r["sum_rate"] for r in point)
    run = tmp_path / "a" / mc.CellSetting(8).tag / "model-driven-SLNR-loss-eq-35-36" / "result.json"
    first = json.loads(run.read_text())["result"]
    assert first["sum_rate"] == by[mc.SLNR_LOSS]["sum_rate"] and first["channel_scale"] > 0
    assert (tmp_path / "a" / "sum_rate.png").read_bytes()[:4] == b"\x89PNG"
    assert "| learned channel + SLNR |" in (tmp_path / "b" / "results.md").read_text()
    again = mc.run_multicell("zhang-fig6", tmp_path, TINY, antennas=[8], pilots=[5])
    assert [r["sum_rate"] for r in again] == [r["sum_rate"] for r in rows]  # reused, not retrained


def test_tiny_fig8_at_zero_doppler_reproduces_the_trained_point(tmp_path):
    rows = mc.run_multicell("zhang-fig8", tmp_path, TINY, antennas=[8])
    base = mc.CellSetting(8)
    stored = json.loads((tmp_path / "trained" / base.tag / "learned-channel-SLNR" / "result.json").read_text())
    at_zero = {r["scheme"]: r["sum_rate"] for r in rows if r["x"] == 0}
    assert at_zero[mc.LEARNED_SLNR] == pytest.approx(stored["result"]["sum_rate"], rel=1e-9)
    wmmse = [r["sum_rate"] for r in rows if r["scheme"] == mc.WMMSE]
    assert len(wmmse) == 5 and all(w > 0 for w in wmmse)


def test_tiny_fig7_powers_and_cells(tmp_path):
    rows = mc.fig7(tmp_path, TINY, antennas=8, powers_dbm=(0, 10), cells=(7, 8))
    power = {(r["scheme"], r["x"]): r["sum_rate"] for r in rows[:len(rows) // 2]}
    assert power[(mc.WMMSE, 10)] > power[(mc.WMMSE, 0)]  # same networks, more power
    cells = json.loads((tmp_path / "b" / "results.json").read_text())["rows"]
    assert {r["x"] for r in cells} == {7, 8}
    assert (tmp_path / "a" / "sum_rate.png").exists() and (tmp_path / "b" / "sum_rate.png").exists()


def test_cli_routes_the_multicell_experiments(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="one --antennas"):
        mc.run_multicell("zhang-fig8", tmp_path, TINY, antennas=[8, 16])
    calls = []
    monkeypatch.setattr(mc, "run_multicell", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert main(["experiment", "zhang-fig7", "--antennas", "16", "--powers", "0", "20", "--epochs", "1",
                 "--out", str(tmp_path)]) == 0
    (name, out, scale), kwargs = calls[0]
    assert (name, out, scale) == ("zhang-fig7", str(tmp_path), mc.SMALL.with_overrides(epochs=1))
    assert kwargs == {"antennas": [16], "pilots": None, "powers_db": [0.0, 20.0], "max_delay": None, "seed": 0,
                      "share": None}


@pytest.mark.slow
def test_fig6_rows_split_and_merge_equal_the_single_run(tmp_path):
    """fig6's points (a's, then b's) on two "machines", copied together, merged: a single run's rows;
    a merge with points missing names them."""
    import shutil

    from mimokd.experiments.runner import Share

    sweep = {"antennas": [8], "pilots": [5]}
    single = mc.run_multicell("zhang-fig6", tmp_path / "single", TINY, **sweep)
    merged = tmp_path / "merged"
    assert mc.run_multicell("zhang-fig6", tmp_path / "m0", TINY, share=Share("zhang-fig6", (0, 2)), **sweep) is None
    shutil.copytree(tmp_path / "m0", merged)
    with pytest.raises(ValueError, match=r"1 row\(s\) not finished: row 1 .* at Nt64_cells7_P10dBm_L5_fd0 "
                                         r"\(b/Nt64_cells7_P10dBm_L5_fd0\)"):
        mc.run_multicell("zhang-fig6", merged, TINY, share=Share("zhang-fig6", merge=True), **sweep)
    assert not (merged / "a" / "results.md").exists()
    assert mc.run_multicell("zhang-fig6", tmp_path / "m1", TINY, share=Share("zhang-fig6", (1, 2)), **sweep) is None
    shutil.copytree(tmp_path / "m1", merged, dirs_exist_ok=True)
    shutil.rmtree(tmp_path / "m0")
    shutil.rmtree(tmp_path / "m1")
    rows = mc.run_multicell("zhang-fig6", merged, TINY, share=Share("zhang-fig6", merge=True), **sweep)
    assert rows == single
    for part in ("a", "b"):
        assert (merged / part / "results.md").read_text() == (tmp_path / "single" / part / "results.md").read_text()


def test_fig7_and_fig8_refuse_rows_with_the_reason(tmp_path):
    """fig7 / fig8 train one point whose networks are tested together: --rows / --merge are refused."""
    from mimokd.experiments.runner import Share

    with pytest.raises(SystemExit) as exit_:  # a usage error, before any work
        main(["experiment", "zhang-fig7", "--rows", "0/2"])
    assert exit_.value.code == 2
    with pytest.raises(ValueError, match="zhang-fig8 is not split"):
        mc.run_multicell("zhang-fig8", tmp_path, TINY, share=Share("zhang-fig8", merge=True))
