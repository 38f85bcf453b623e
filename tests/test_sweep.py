"""Tests of qgan.sweep and scripts/sweep.py: grid parsing, tables, heatmap, and a real two-run sweep."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from qgan import sweep, sweep_tables
from qgan.coverage import mode_coverage
from qgan.targets import ring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "sweep.py")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_comma_separated_values_become_axes_in_flag_order():
    grid = sweep.parse_grid(["--g-lr", "1e-3,3e-4", "--steps", "10", "--seed=0,1,2", "--no-jit-compile"])
    assert grid.fixed == ("--steps", "10", "--no-jit-compile")
    assert [axis.field for axis in grid.axes] == ["g_lr", "seed"]
    points = grid.points()
    assert len(points) == 6
    assert points[0] == ("--steps", "10", "--no-jit-compile", "--g-lr", "1e-3", "--seed", "0")
    assert points[5] == ("--steps", "10", "--no-jit-compile", "--g-lr", "3e-4", "--seed", "2")


def test_on_off_flags_and_list_valued_flags_sweep():
    grid = sweep.parse_grid(["--reupload", "yes,no", "--critic-units", "64,64:32", "--jit-compile", "off"])
    assert grid.fixed == ("--no-jit-compile",)
    assert grid.axes[0].options == (("--reupload",), ("--no-reupload",))
    assert grid.axes[1].options == (("--critic-units", "64,64"), ("--critic-units", "32"))
    runs = sweep.plan_runs(grid)
    assert [run.name for run in runs] == ["run-0", "run-1", "run-2", "run-3"]
    assert [run.values for run in runs] == [
        {"reupload": True, "critic_units": [64, 64]},
        {"reupload": True, "critic_units": [32]},
        {"reupload": False, "critic_units": [64, 64]},
        {"reupload": False, "critic_units": [32]},
    ]
    assert runs[3].config["jit_compile"] is False


@pytest.mark.parametrize(
    "tokens, message",
    [
        (["--warp", "1"], "unknown training flag --warp"),
        (["--g-lr"], "--g-lr needs a value"),
        (["--g-lr", "1e-3,"], "--g-lr '1e-3,' holds an empty alternative"),
        (["--g-lr", "1e-3", "--g-lr", "1e-4"], "--g-lr is given twice"),
        (["--run-name", "x"], "--run-name is set by the sweep"),
        (["--results-dir", "x"], "--results-dir is set by the sweep"),
        (["--resume"], "--resume is set by the sweep"),
        (["--reupload", "maybe"], "--reupload value 'maybe' is not allowed; use yes or no"),
        (["1e-3"], "unexpected argument '1e-3'"),
    ],
)
def test_bad_grids_name_the_flag(tokens, message):
    with pytest.raises(sweep.SweepError, match=None) as error:
        sweep.plan_runs(sweep.parse_grid(tokens))
    assert message in str(error.value)


def test_a_value_the_training_script_refuses_names_the_run():
    with pytest.raises(sweep.SweepError) as error:
        sweep.plan_runs(sweep.parse_grid(["--g-lr", "1e-3,-1"]))
    assert str(error.value) == "run 1 (--g-lr -1): --g-lr -1.0 is not allowed; use a finite number > 0"


def row(run, seed, modes, hq, kl, trace_mean=0.999, trace_min=0.95, seconds=100.0, g_lr="0.001"):
    return {
        "run": run,
        "g_lr": g_lr,
        "seed": seed,
        "status": "ok",
        "modes_captured": modes,
        "num_modes": 8,
        "high_quality_fraction": hq,
        "kl_uniform": kl,
        "trace_mean": trace_mean,
        "trace_min": trace_min,
        "seconds": seconds,
    }


def test_group_table_takes_medians_and_extremes_over_seeds():
    rows = [
        row("run-0", "0", 8, 0.9, 0.01, trace_min=0.93, seconds=100.0),
        row("run-1", "1", 6, 0.5, 0.30, trace_mean=0.991, seconds=120.0),
        row("run-2", "2", 7, 0.7, 0.10, seconds=110.0),
        {**row("run-3", "0", 0, 0, 0, g_lr="0.003"), "status": "failed (exit 1)"}
        | {key: "" for key in sweep_tables.COLUMNS[2:]},
    ]
    table = sweep_tables.markdown_groups(rows).splitlines()
    assert table[0].startswith("| g_lr | runs | modes median | modes min | HQ % median |")
    assert table[2] == "| 0.001 | 3/3 | 7/8 | 6 | 70.0 | 50.0 | 0.100 | 0.300 | 0.9910 | 0.9300 | 110 |"
    assert table[3] == "| 0.003 | 0/1 | – | – | – | – | – | – | – | – | – |"


def test_heatmap_cells_are_medians_per_pair():
    runs = [
        sweep.Run(f"run-{index}", (), {}, {"g_lr": g_lr, "d_lr": 1e-3, "seed": seed})
        for index, (g_lr, seed) in enumerate([(1e-3, 0), (1e-3, 1), (1e-3, 2), (3e-3, 0)])
    ]
    rows = [row("run-0", 0, 8, 0.9, 0.0), row("run-1", 1, 4, 0.1, 0.0), row("run-2", 2, 6, 0.2, 0.0)]
    rows.append({**row("run-3", 0, 0, 0, 0), "modes_captured": ""})
    cells = sweep.heatmap_cells(rows, runs, "g_lr", "d_lr")
    assert cells["x"] == [1e-3, 3e-3] and cells["y"] == [1e-3]
    assert cells["hq"] == {(1e-3, 1e-3): 0.2}
    assert cells["modes"] == {(1e-3, 1e-3): 6.0}


def test_bad_sweep_flags_exit_2_with_one_line(tmp_path, capsys):
    for argv, message in [
        (["--jobs", "0", "--g-lr", "1e-3"], "--jobs 0 is not allowed"),
        (["--heatmap", "g_lr", "--g-lr", "1e-3"], "--heatmap 'g_lr' is not allowed"),
        (["--name", "../x", "--g-lr", "1e-3"], "--name '../x' is not allowed"),
        (["--g-lr", "1e-3,zero"], "run 1 (--g-lr zero): argument --g-lr: invalid float value: 'zero'"),
    ]:
        status = sweep.main([*argv, "--output-dir", str(tmp_path)], log=lambda line: None)
        error = capsys.readouterr().err
        assert status == 2
        assert error.count("\n") == 1 and message in error
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_script_runs_a_two_run_grid_in_parallel_and_tabulates_it(tmp_path):
    tiny = "--layers 1 --cutoff 4 --batch-size 8 --n-critic 1 --steps 2 --eval-every 2 --eval-samples 60"
    command = [
        sys.executable,
        SCRIPT,
        *tiny.split(),
        "--no-jit-compile",
        "--g-lr",
        "1e-3,3e-3",
        "--jobs",
        "2",
        "--output-dir",
        str(tmp_path),
        "--name",
        "tiny",
    ]
    process = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert process.returncode == 0, process.stderr[-2000:]
    sweep_dir = tmp_path / "tiny"
    assert "sweep: 2 runs, 2 at a time" in process.stdout

    with open(sweep_dir / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["run"], row["g_lr"], row["status"]) for row in rows] == [
        ("run-0", "0.001", "ok"),
        ("run-1", "0.003", "ok"),
    ]
    target = ring()
    for row in rows:
        run_dir = sweep_dir / row["run"]
        assert json.loads((run_dir / "config.json").read_text())["g_lr"] == float(row["g_lr"])
        samples = np.load(run_dir / "samples.npy")
        assert samples.shape == (60, 2)
        coverage = mode_coverage(samples, target.centers, target.std)
        assert int(row["modes_captured"]) == coverage.modes_captured
        assert float(row["high_quality_fraction"]) == coverage.high_quality_fraction
        assert float(row["kl_uniform"]) == pytest.approx(coverage.kl_uniform, abs=1e-12)
        final = json.loads((run_dir / "coverage.json").read_text())
        assert float(row["trace_min"]) == final["trace_min"] and float(row["seconds"]) == final["elapsed_s"]
        command_line = (sweep_dir / f"{row['run']}.log").read_text().splitlines()[0]
        assert command_line.startswith("$ scripts/train_coordinate_quantum_gan.py " + tiny)

    markdown = (sweep_dir / "summary.md").read_text()
    assert "scripts/sweep.py " + tiny in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| run-")]
    assert len(table) == 2 and table[0].startswith("| run-0 | 0.001 | ")
    heatmap = (sweep_dir / "heatmap.png").read_bytes()
    assert heatmap.startswith(PNG_SIGNATURE) and len(heatmap) > 5_000

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("finished earlier") == 2
    with open(sweep_dir / "summary.csv", newline="") as handle:
        reused = list(csv.DictReader(handle))
    assert [row["status"] for row in reused] == ["reused", "reused"]
    assert [row["high_quality_fraction"] for row in reused] == [row["high_quality_fraction"] for row in rows]


def test_a_sweep_folder_holding_other_settings_is_refused_before_anything_runs(tmp_path, capsys):
    sweep_dir = tmp_path / "earlier"
    (sweep_dir / "run-0").mkdir(parents=True)
    (earlier_run,) = sweep.plan_runs(sweep.parse_grid(["--g-lr", "1e-3", "--steps", "10"]))
    saved = dict(earlier_run.config, results_dir=str(tmp_path), run_name="run-0")
    (sweep_dir / "run-0" / "config.json").write_text(json.dumps(saved))
    same = sweep.plan_runs(sweep.parse_grid(["--g-lr", "1e-3", "--steps", "20"]))
    sweep.check_existing_runs(same, str(sweep_dir))  # only the step budget differs: allowed
    argv = ["--g-lr", "3e-3", "--seed", "0,1", "--output-dir", str(tmp_path), "--name", "earlier"]
    status = sweep.main(argv, log=lambda line: None)
    error = capsys.readouterr().err
    assert status == 2
    assert error == (
        "sweep.py: error: --name 'earlier': its run-0 holds a run with other settings (--g-lr); "
        "choose another --name\n"
    )
    assert sorted(os.listdir(sweep_dir)) == ["run-0"]


def children_of(pid):
    """(pid, session id) of each live child process of `pid`, read from /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append((int(entry), int(fields[3])))
    return children


@pytest.mark.slow
def test_ctrl_c_at_the_terminal_reaches_each_run_once_and_every_run_saves(tmp_path):
    import signal
    import time

    tiny = "--layers 1 --cutoff 4 --batch-size 8 --n-critic 1 --steps 100000 --eval-every 5 --eval-samples 60"
    command = [sys.executable, SCRIPT, *tiny.split(), "--no-jit-compile", "--seed", "0,1", "--jobs", "2"]
    command += ["--output-dir", str(tmp_path), "--name", "stopped"]
    # a session of its own stands for the terminal: Ctrl-C there signals its whole foreground group
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    sweep_dir = tmp_path / "stopped"
    deadline = time.time() + 300
    while not all((sweep_dir / f"run-{index}" / "metrics.csv").exists() for index in range(2)):
        assert process.poll() is None and time.time() < deadline, process.communicate()[1][-2000:]
        time.sleep(0.1)
    children = children_of(process.pid)
    assert len(children) == 2
    # each run is in a session of its own, so the terminal's Ctrl-C reaches it once: forwarded by the sweep
    assert all(session != os.getsid(process.pid) for _, session in children)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    for index in range(2):
        run_dir = sweep_dir / f"run-{index}"
        log = (sweep_dir / f"run-{index}.log").read_text()
        assert "Traceback" not in log and "interrupted; checkpoint at step" in log
        final = json.loads((run_dir / "coverage.json").read_text())
        assert final["status"] == "interrupted"
        assert os.path.exists(run_dir / "checkpoints" / f"ckpt-{final['step']}.index")
    with open(sweep_dir / "summary.csv", newline="") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["interrupted", "interrupted"]
