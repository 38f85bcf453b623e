"""qgan.benchmarks.engines: timing helpers, speed-up ratios, the table, and a tiny real run of the script."""

import json

import pytest

from qgan.benchmarks import engines as benchmark
from tests.helpers import run_script


def record(mode, pass_s, iteration_s, cutoff=8):
    return {
        "cutoff": cutoff,
        "layers": 2,
        "batch": 32,
        "modes": 2,
        "mode": mode,
        "pass_first_s": 1.0,
        "pass_median_s": pass_s,
        "iteration_first_s": 2.0,
        "iteration_median_s": iteration_s,
        "peak_rss_mib": 900.0,
    }


def test_speedups_divide_the_sf_time_of_the_same_setting():
    records = [
        record("sf", 2.0, 8.0),
        record("fock-xla", 0.004, 0.016),
        record("fock-xla", 0.5, 1.0, cutoff=12),
    ]
    benchmark.add_speedups(records)
    assert records[0]["pass_speedup"] == 1.0
    assert records[1]["pass_speedup"] == pytest.approx(500.0)
    assert records[1]["iteration_speedup"] == pytest.approx(500.0)
    assert records[2]["pass_speedup"] is None  # no sf measurement at cutoff 12
    assert records[1]["pass_best_speedup"] is None  # records without best calls

    best = [record("sf", 2.0, 8.0) | {"pass_best_s": 1.5, "iteration_best_s": 6.0}]
    best.append(record("fock-xla", 0.004, 0.016) | {"pass_best_s": 0.0025, "iteration_best_s": 0.012})
    benchmark.add_speedups(best)
    assert best[1]["pass_best_speedup"] == pytest.approx(600.0)
    assert best[1]["iteration_best_speedup"] == pytest.approx(500.0)
    assert best[1]["pass_speedup"] == pytest.approx(500.0)
    table = benchmark.markdown_table(records).splitlines()
    assert table[2] == "| 8 | 2 | 32 | sf | 2,000.00 | 1 | – | – | – | – | 8,000.00 | 1 | 3.0 | 900 |"
    assert table[3] == "| 8 | 2 | 32 | fock-xla | 4.00 | 500 | – | – | – | – | 16.00 | 500 | 3.0 | 900 |"
    assert table[4] == "| 12 | 2 | 32 | fock-xla | 500.00 | – | – | – | – | – | 1,000.00 | – | 3.0 | 900 |"
    # the best calls and their ratio beside the medians
    table = benchmark.markdown_table(best).splitlines()
    assert table[3] == "| 8 | 2 | 32 | fock-xla | 4.00 | 500 | 2.50 | 600 | – | – | 16.00 | 500 | 3.0 | 900 |"


def test_flop_floor_counts_dense_gates_per_amplitude():
    # one re-uploading layer on 2 modes: 4 displacements and 2 squeezers (c×c), 2 beamsplitters
    # (c²×c²), 4 rotations and 2 Kerr gates (diagonal); cutoff 3, batch 2: 18 amplitudes
    amplitudes, cutoff = 2 * 3**2, 3
    forward = (4 + 2) * 8 * amplitudes * cutoff + 2 * 8 * amplitudes * cutoff**2 + (4 + 2) * 6 * amplitudes
    assert forward == 5832
    assert benchmark.circuit_flops(benchmark.Setting(cutoff=3, layers=1, batch=2)) == 3 * forward
    records = [record("fock-xla", 0.004, 0.016)]
    flops = benchmark.circuit_flops(benchmark.Setting(cutoff=8, layers=2, batch=32))
    benchmark.add_floors(records, gflops=100.0)
    assert records[0]["floor_ms"] == pytest.approx(1e3 * flops / 100e9)
    assert records[0]["above_floor"] == pytest.approx(0.004 / (flops / 100e9))
    row = benchmark.markdown_table(records).splitlines()[2]
    assert f"| {records[0]['floor_ms']:,.2f} | {records[0]['above_floor']:,.1f} |" in row


def test_median_seconds_warms_up_then_repeats():
    # a clock read before and after each call: the first call takes 9 s, the warm-up call is not
    # timed, the five repeats take 3, 1, 7, 2 and 5 s
    readings = iter([0.0, 9.0, 10.0, 13.0, 13.0, 14.0, 14.0, 21.0, 21.0, 23.0, 23.0, 28.0])
    calls = []
    first, median, best = benchmark.median_seconds(
        lambda: calls.append(1), repeats=5, warmup=2, clock=lambda: next(readings)
    )
    assert len(calls) == 7
    assert (first, median, best) == (9.0, 3.0, 1.0)


def test_measure_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="unknown mode 'gpu'; allowed: sf, fock-eager, fock-graph, fock-xla"):
        benchmark.measure(benchmark.Setting(cutoff=4, layers=1, batch=4), "gpu")


def test_script_rejects_an_unknown_engine():
    process = run_script("benchmark.py", "--engines", "sf,warp", timeout=120)
    assert process.returncode == 2
    assert "--engines: unknown warp; allowed: sf, fock-eager, fock-graph, fock-xla" in process.stderr


def test_the_report_names_the_processor_and_its_vector_extensions(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 sse4_1 avx avx2 fma avx512f aes\n\n"
        "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse2 sse4_1 avx avx2 fma avx512f aes\n"
    )
    assert benchmark.cpu_description(str(cpuinfo)) == {
        "model": "Test CPU 9000",
        "vector_extensions": ["avx", "avx2", "avx512f", "fma", "sse4_1"],
    }
    assert benchmark.cpu_description(str(tmp_path / "missing")) == {}
    path = benchmark.write_report([], str(tmp_path / "reports"))
    assert json.loads(open(path).read())["machine"]["cpu"] == benchmark.cpu_description()
