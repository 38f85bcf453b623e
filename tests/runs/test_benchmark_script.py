"""scripts/benchmark.py end to end: a tiny real run writes a report with its ratios."""

import json
import os

import pytest

from tests.helpers import run_script


@pytest.mark.slow
def test_script_writes_a_report_with_ratios(tmp_path):
    process = run_script(
        "benchmark.py",
        "--cutoffs", "4", "--layers", "1", "--batches", "4", "--n-critic", "2",
        "--engines", "sf,fock-graph", "--guard", "no", "--output-dir", tmp_path,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-2000:]
    assert "| 4 | 1 | 4 | fock-graph |" in process.stdout
    (report_name,) = os.listdir(tmp_path)
    report = json.loads((tmp_path / report_name).read_text())
    records = {entry["mode"]: entry for entry in report["engines"]}
    assert set(records) == {"sf", "fock-graph"}
    for entry in records.values():
        assert entry["pass_median_s"] > 0 and entry["iteration_median_s"] > 0 and entry["peak_rss_mib"] > 0
        assert 0 < entry["pass_best_s"] <= entry["pass_median_s"]
        assert 0 < entry["iteration_best_s"] <= entry["iteration_median_s"]
    assert records["sf"]["pass_tf_function_median_s"] is None
    assert records["fock-graph"]["pass_tf_function_median_s"] > 0
    assert records["fock-graph"]["pass_speedup"] == pytest.approx(
        records["sf"]["pass_median_s"] / records["fock-graph"]["pass_median_s"]
    )
    assert records["fock-graph"]["pass_best_speedup"] == pytest.approx(
        records["sf"]["pass_best_s"] / records["fock-graph"]["pass_best_s"]
    )
