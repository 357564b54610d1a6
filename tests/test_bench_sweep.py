"""The sweep benchmark suite (benchmarks/sweep.py): registered with the runner, and its
per-family summary picks each family's worst case. No timing is asserted."""
from __future__ import annotations

import importlib

import pytest


def _suites():
    from pydl import bench

    return bench.suites_package()


def test_sweep_is_a_registered_suite():
    package = _suites()
    runner = importlib.import_module(package.__name__ + ".__main__")
    assert "sweep" in runner.available_suites()


def test_summary_reports_the_worst_case_of_each_family():
    package = _suites()
    sweep = importlib.import_module(package.__name__ + ".sweep")
    harness = importlib.import_module(package.__name__ + ".harness")

    def result(name, family, times):
        r = harness.Result("sweep", name, times)
        peers = [r.speedup(p) for p in times if p != "pydl"]
        r.extra.update(family=family, speedup_vs_best_peer=min(peers))
        return r

    results = [
        result("sgemm a", "sgemm", {"pydl": 1.0, "numpy": 2.0, "torch": 1.5}),  # 1.5x
        result("sgemm b", "sgemm", {"pydl": 2.0, "numpy": 1.8, "torch": 3.0}),  # 0.9x
        result("sgemm c", "sgemm", {"pydl": 1.0, "numpy": 1.2, "torch": 1.1}),  # 1.1x
        result("pool a", "pool", {"pydl": 1.0, "torch": 4.0}),
        harness.Result("sweep", "unrelated", {"pydl": 1.0}),  # no family: ignored
    ]
    rows = {row["family"]: row for row in sweep.summarize(results)}
    assert set(rows) == {"sgemm", "pool"}
    assert rows["sgemm"]["worst_case"] == "sgemm b"
    assert rows["sgemm"]["worst_speedup"] == pytest.approx(0.9)
    assert rows["sgemm"]["median_speedup"] == pytest.approx(1.1)
    assert rows["sgemm"]["cases"] == 3 and rows["sgemm"]["below_1x"] == 1
    assert rows["pool"]["worst_speedup"] == pytest.approx(4.0)
