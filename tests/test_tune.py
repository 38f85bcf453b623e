"""qgan-tune: search spaces from flags, Optuna studies shared by processes, pruning, resume, reports."""

import csv
import json
import os
import shlex
import shutil
import signal
import threading
import time

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from qgan.tune import cli
from qgan.tune.report import heatmap_cells
from qgan.tune.runs import child_environment, run_training
from qgan.tune.space import SpaceError, parse_space
from qgan.tune.study import Heartbeat, reclaim_abandoned

from run_scripts import run_script, start_script

TUNE = "tune.py"


@pytest.fixture
def far_cluster(tmp_path):
    """Training flags of a tiny real run: the classical MLP learns one cluster at (2, 2) in ~30 steps."""
    rng = np.random.default_rng(0)
    data, centres = tmp_path / "far.csv", tmp_path / "far_centres.csv"
    np.savetxt(data, rng.normal([2.0, 2.0], 0.3, size=(2000, 2)), delimiter=",")
    np.savetxt(centres, [[2.0, 2.0]], delimiter=",")
    return [
        "--generator", "classical", "--dataset", "file", "--data", str(data), "--centers", str(centres),
        "--std", "0.3", "--batch-size", "32", "--n-critic", "1", "--eval-samples", "100",
        "--no-jit-compile", "--no-tensorboard", "--d-lr", "1e-2",
    ]  # fmt: skip


def summary_rows(study_dir):
    with open(os.path.join(study_dir, "summary.csv")) as handle:
        return list(csv.DictReader(handle))


def training_commands(study_dir):
    """Every training command a study started, from its runs' logs: {log path: count}."""
    counts = {}
    for path, _, names in os.walk(study_dir):
        for name in names:
            if name.endswith(".log") and name.startswith("seed-"):
                with open(os.path.join(path, name)) as handle:
                    counts[os.path.join(path, name)] = sum(line.startswith("$ qgan-train") for line in handle)
    return counts


def test_flags_become_distributions_and_fixed_tokens():
    space = parse_space(
        [
            "--g-lr",
            "loguniform:1e-4:1e-2",
            "--layers",
            "int:2:8",
            "--reupload",
            "choice:yes,no",
            "--steps",
            "50",
        ]
    )
    assert space.fixed == ("--steps", "50")
    distributions = space.distributions()
    assert distributions["g_lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert distributions["layers"] == IntDistribution(2, 8)
    assert distributions["reupload"] == CategoricalDistribution(["yes", "no"])
    assert space.tokens({"g_lr": 0.003, "layers": 3, "reupload": "no"}) == (
        "--steps", "50", "--g-lr", "0.003", "--layers", "3", "--no-reupload",
    )  # fmt: skip
    assert not space.is_grid()
    grid = parse_space(["--g-lr", "choice:1e-3,3e-4", "--d-lr=choice:1e-4,1e-3,1e-2"])
    assert grid.is_grid() and len(grid.grid()) == 6
    assert grid.grid()[1] == {"g_lr": "1e-3", "d_lr": "1e-3"}


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--g-lr", "loguniform:1e-2:1e-4"], "--g-lr 'loguniform:1e-2:1e-4': the low bound must be below"),
        (["--layers", "int:a:b"], "--layers 'int:a:b': 'a' is not an integer"),
        (["--no-such-flag", "3"], "unknown training flag '--no-such-flag'"),
        (["--g-lr", "loguniform:0:1e-2"], "loguniform bounds must be positive"),
        (["--seed", "choice:0,1"], "--seed is set by the study for each run; use --seeds"),
        (["--g-lr", "choice:1e-3,-1"], "--g-lr -1"),
        (["--reupload", "choice:yes,maybe"], "an on/off flag takes choice:yes,no"),
        (["--g-lr", "loguniform:1e-4:1e-2", "--sampler", "grid"], "--sampler grid needs every searched flag"),
        (["--workers", "0"], "--workers 0 is not allowed"),
        (["--pruner-warmup", "1"], "--pruner-warmup 1 is not allowed; use a fraction in [0, 1)"),
        (["--stale-after", "0"], "--stale-after 0 is not allowed; use a number of seconds > 0"),
        (["--seeds", "0,x"], "--seeds '0,x' is not allowed"),
        (["--storage", "nosuch://host/db"], "--storage 'nosuch://host/db' cannot be used"),
    ],
)
def test_bad_input_is_one_line_with_exit_2_before_anything_runs(tmp_path, capsys, flags, message):
    output = tmp_path / "tune"
    assert cli.main([*flags, "--output-dir", str(output)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("qgan-tune: error: ")
    assert message in error
    assert not output.exists()


def test_a_value_the_training_script_refuses_names_the_parameter():
    with pytest.raises(SpaceError, match=r"^--layers 0 is not allowed; use an integer from 1 to 64$"):
        parse_space(["--layers", "int:0:3"])


@pytest.mark.slow
def test_two_machines_on_one_storage_finish_a_grid_without_running_a_trial_twice(tmp_path, far_cluster):
    output = tmp_path / "tune"
    flags = [
        *far_cluster, "--steps", "20", "--eval-every", "10", "--g-lr", "choice:1e-2,1e-3",
        "--critic-units", "choice:16,16/32", "--study", "shared", "--output-dir", str(output),
    ]  # fmt: skip
    machines = [start_script(TUNE, *flags) for _ in range(2)]
    for machine in machines:
        stdout, stderr = machine.communicate(timeout=600)
        assert machine.returncode == 0, stderr[-2000:]
    study_dir = output / "shared"
    rows = summary_rows(study_dir)
    assert len(rows) == 4
    assert {(row["g_lr"], row["critic_units"]) for row in rows} == {
        ("1e-2", "16,16"), ("1e-2", "32"), ("1e-3", "16,16"), ("1e-3", "32"),
    }  # fmt: skip
    assert all(row["state"] == "completed" and row["seeds_done"] == "1" for row in rows)
    assert list(training_commands(study_dir).values()) == [1, 1, 1, 1]
    assert all((study_dir / name).stat().st_size > 0 for name in ("summary.md", "history.png", "heatmap.png"))
    study = optuna.load_study(
        study_name="shared",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(study_dir / "journal.log"))
        ),
    )
    ran = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    assert len(ran) == 4
    assert all("skipped" in trial.user_attrs for trial in study.trials if trial not in ran)


def training_processes(study_dir):
    """Process ids of the qgan-train runs whose command line names `study_dir`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                arguments = handle.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "qgan.cli" in arguments and any(study_dir in argument for argument in arguments):
            found.append(int(pid))
    return found


def run_dir_of(study_dir, steps):
    """The seed-0 run folder of the setting with `steps`, once it has written an evaluation, else None."""
    for path, _, names in os.walk(study_dir):
        if "config.json" in names and "metrics.csv" in names:
            with open(os.path.join(path, "config.json")) as handle:
                if json.load(handle)["steps"] == steps:
                    return path
    return None


@pytest.mark.slow
def test_an_interrupted_study_continues_without_rerunning_a_finished_trial(tmp_path, far_cluster):
    output = tmp_path / "tune"
    flags = [
        *far_cluster, "--eval-every", "10", "--steps", "choice:20,400", "--study", "stopped",
        "--output-dir", str(output), "--pruner", "none",
    ]  # fmt: skip
    first = start_script(TUNE, *flags)
    study_dir = str(output / "stopped")
    deadline = time.time() + 300
    while run_dir_of(study_dir, 400) is None:  # trial 0 (20 steps) is done, trial 1 has evaluated
        assert first.poll() is None, first.communicate()[1][-2000:]
        assert time.time() < deadline, "trial 1 did not start"
        time.sleep(0.1)
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr[-2000:]
    assert "continue with:" in stdout and "Traceback" not in stderr
    assert [(row["steps"], row["state"]) for row in summary_rows(study_dir)] == [
        ("20", "completed"), ("400", "interrupted"),
    ]  # fmt: skip
    interrupted_dir = run_dir_of(study_dir, 400)
    with open(os.path.join(interrupted_dir, "coverage.json")) as handle:
        stopped_at = json.load(handle)["step"]
    assert 0 < stopped_at < 400

    again = run_script(TUNE, *flags)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [(row["trial"], row["steps"], row["state"]) for row in summary_rows(study_dir)] == [
        ("0", "20", "completed"), ("1", "400", "interrupted"), ("2", "400", "completed"),
    ]  # fmt: skip
    commands = training_commands(study_dir)
    assert sorted(commands.values()) == [1, 2]  # the finished setting trained once
    with open(interrupted_dir + ".log") as handle:
        started = [line for line in handle if line.startswith("$ qgan-train")]
    assert ["--resume" in line for line in started] == [False, True]  # went on from its checkpoint
    with open(os.path.join(interrupted_dir, "metrics.csv")) as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == sorted({*range(10, 401, 10), stopped_at})  # an interrupted run evaluates where it stops


@pytest.mark.slow
def test_the_median_pruner_stops_a_hopeless_trial_on_a_database_storage(tmp_path, far_cluster, capsys):
    output = tmp_path / "tune"
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    flags = [
        *far_cluster, "--steps", "200", "--eval-every", "10", "--g-lr", "choice:1e-2,1e-7",
        "--pruner-startup-trials", "1", "--pruner-warmup", "0.25", "--storage", storage,
        "--study", "pruned",
        "--output-dir", str(output),
    ]  # fmt: skip
    assert cli.main(flags) == 0
    rows = summary_rows(output / "pruned")
    assert [(row["g_lr"], row["state"]) for row in rows] == [("1e-2", "completed"), ("1e-7", "pruned")]
    assert float(rows[0]["value"]) > 0.5
    hopeless = os.path.join(str(output / "pruned"), rows[1]["setting"], "seed-0")
    with open(os.path.join(hopeless, "coverage.json")) as handle:
        pruned_at = json.load(handle)["step"]
    assert 50 <= pruned_at < 200  # the run gets its SIGINT while it trains on past step 50
    assert os.path.exists(os.path.join(hopeless, "checkpoints", "checkpoint"))  # kept for a later look
    study = optuna.load_study(study_name="pruned", storage=storage)
    intermediate = study.trials[1].intermediate_values
    # pruned at its first evaluation after the warm-up, a quarter of 200 steps (the other trial's HQ
    # is > 0 from step 20)
    assert sorted(intermediate) == [10, 20, 30, 40, 50] and set(intermediate.values()) == {0.0}

    # the report needs only the storage: without the run folders it still holds both trials
    for row in rows:
        shutil.rmtree(os.path.join(str(output / "pruned"), row["setting"]))
    os.remove(output / "pruned" / "summary.csv")
    capsys.readouterr()
    assert cli.main([*flags, "--report-only"]) == 0
    assert summary_rows(output / "pruned") == rows
    summary = (output / "pruned" / "summary.md").read_text()
    assert "--g-lr 1e-2 --seed 0" in summary
    assert f"Continue it with:\n\n    qgan-tune {shlex.join(flags)}\n" in summary  # not with --report-only


def test_dry_run_prints_the_space_and_writes_nothing(tmp_path):
    lines = []
    flags = ["--g-lr", "loguniform:1e-4:1e-2", "--layers", "int:2:8", "--output-dir", str(tmp_path / "tune")]
    assert cli.main([*flags, "--dry-run"], log=lines.append) == 0
    assert lines[0].startswith("qgan-tune: study study-") and "tpe sampler, 20 trials × seeds [0]" in lines[0]
    assert lines[1:] == [
        "  g_lr: FloatDistribution(high=0.01, log=True, low=0.0001, step=None)",
        "  layers: IntDistribution(high=8, log=False, low=2, step=1)",
    ]
    assert not (tmp_path / "tune").exists()


def test_a_running_trial_without_a_heartbeat_is_reclaimed_and_a_beating_one_is_not():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    silent, beating, finished = study.ask(), study.ask(), study.ask()
    study.tell(finished, 1.0)
    now = time.time()
    silent.set_user_attr("heartbeat", now - 1000.0)
    beating.set_user_attr("heartbeat", now - 10.0)
    lines = []
    assert reclaim_abandoned(study, 600.0, lines.append) == [0]
    assert [trial.state.name for trial in study.trials] == ["FAIL", "RUNNING", "COMPLETE"]
    assert study.trials[0].user_attrs["status"] == "abandoned"
    assert len(lines) == 1 and lines[0].startswith("trial 0 abandoned (no heartbeat for 10")
    assert reclaim_abandoned(study, 5.0, lines.append) == [1]
    assert reclaim_abandoned(study, 5.0, lines.append) == []


def test_a_heartbeat_keeps_writing_while_the_trial_runs_and_stops_when_it_ends():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial = study.ask()
    started = time.time()
    with Heartbeat(study, trial, interval=0.05):
        first = study.trials[0].user_attrs["heartbeat"]
        time.sleep(0.3)
        latest = study.trials[0].user_attrs["heartbeat"]
        study.tell(trial, 1.0)
        time.sleep(0.1)  # a beat after the trial ended is refused quietly
    assert started <= first < latest
    assert reclaim_abandoned(study, 0.01, lambda line: None) == []


@pytest.mark.slow
def test_a_study_whose_process_was_killed_reclaims_its_trial_and_resumes_the_run(tmp_path, far_cluster):
    output = tmp_path / "tune"
    flags = [
        *far_cluster, "--eval-every", "10", "--checkpoint-every", "10", "--steps", "300",
        "--study", "killed", "--output-dir", str(output), "--pruner", "none",
    ]  # fmt: skip
    lost = start_script(TUNE, *flags, start_new_session=True)
    study_dir = str(output / "killed")
    deadline = time.time() + 300
    while run_dir_of(study_dir, 300) is None or not os.path.exists(
        os.path.join(run_dir_of(study_dir, 300), "checkpoints", "checkpoint")
    ):
        assert lost.poll() is None, lost.communicate()[1][-2000:]
        assert time.time() < deadline, "the run did not checkpoint"
        time.sleep(0.1)
    # the machine is lost: the study and its run (in a session of its own) die with no handler run,
    # and the trial stays RUNNING
    runs = training_processes(study_dir)
    assert len(runs) == 1
    os.killpg(lost.pid, signal.SIGKILL)
    os.kill(runs[0], signal.SIGKILL)
    lost.communicate(timeout=60)
    killed_dir = run_dir_of(study_dir, 300)

    patient = run_script(TUNE, *flags)
    assert patient.returncode == 0, patient.stderr[-2000:]
    assert "abandoned" not in patient.stdout and "trial 1" not in patient.stdout  # the trial is still young

    time.sleep(1.5)
    again = run_script(TUNE, *flags, "--stale-after", "1")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "trial 0 abandoned (no heartbeat for " in again.stdout
    assert [(row["trial"], row["state"]) for row in summary_rows(study_dir)] == [
        ("0", "abandoned"), ("1", "completed"),
    ]  # fmt: skip
    with open(killed_dir + ".log") as handle:
        started = [line for line in handle if line.startswith("$ qgan-train")]
    assert ["--resume" in line for line in started] == [False, True]
    with open(os.path.join(killed_dir, "coverage.json")) as handle:
        assert json.load(handle)["step"] == 300


@pytest.mark.slow
def test_kill_stops_a_study_like_ctrl_c(tmp_path, far_cluster):
    output = tmp_path / "tune"
    flags = [
        *far_cluster,
        "--eval-every",
        "10",
        "--steps",
        "2000",
        "--study",
        "termed",
        "--output-dir",
        str(output),
    ]
    study = start_script(TUNE, *flags)
    study_dir = str(output / "termed")
    deadline = time.time() + 300
    while run_dir_of(study_dir, 2000) is None:
        assert study.poll() is None, study.communicate()[1][-2000:]
        assert time.time() < deadline, "the run did not start"
        time.sleep(0.1)
    study.send_signal(signal.SIGTERM)
    stdout, stderr = study.communicate(timeout=300)
    assert study.returncode == 130, stderr[-2000:]
    assert "SIGTERM: stopping every run (each saves a checkpoint first)" in stdout
    assert [row["state"] for row in summary_rows(study_dir)] == ["interrupted"]
    with open(os.path.join(run_dir_of(study_dir, 2000), "coverage.json")) as handle:
        assert 0 < json.load(handle)["step"] < 2000
    assert training_processes(study_dir) == []


@pytest.mark.slow
def test_a_run_killed_before_its_first_checkpoint_is_moved_aside_and_started_afresh(tmp_path, far_cluster):
    results_dir = tmp_path / "setting"
    lost = results_dir / "seed-0"
    lost.mkdir(parents=True)
    (lost / "config.json").write_text("{}")
    (lost / "metrics.csv").write_text("step,high_quality_fraction\n10,0.5\n")
    reported = []
    outcome = run_training(
        (*far_cluster, "--steps", "20", "--eval-every", "10", "--seed", "0"),
        str(results_dir),
        "seed-0",
        metric="high_quality_fraction",
        on_evaluation=lambda step, value: reported.append(step) and False,
        stop=threading.Event(),
        environment=child_environment(1),
    )
    assert outcome.status == "completed" and outcome.result["step"] == 20
    assert reported == [10, 20]
    (aside,) = [path for path in results_dir.iterdir() if path.name.startswith("seed-0.no-checkpoint-")]
    assert (aside / "metrics.csv").read_text() == "step,high_quality_fraction\n10,0.5\n"
    log = (results_dir / "seed-0.log").read_text()
    assert f"moved to {aside}, starting afresh" in log and "--resume" not in log


@pytest.mark.slow
def test_a_choice_space_runs_under_a_sampler_other_than_grid(tmp_path, far_cluster):
    output = tmp_path / "tune"
    flags = [
        *far_cluster, "--steps", "20", "--eval-every", "10", "--g-lr", "choice:1e-2", "--sampler", "random",
        "--trials", "1", "--study", "sampled", "--output-dir", str(output),
    ]  # fmt: skip
    assert cli.main(flags, log=lambda line: None) == 0
    assert [(row["g_lr"], row["state"]) for row in summary_rows(output / "sampled")] == [
        ("1e-2", "completed")
    ]


def test_the_heatmap_speaks_for_a_pair_by_its_finished_trials_and_names_a_pair_only_stopped_runs_fill():
    def row(g_lr, d_lr, state, hq, modes):
        return {"g_lr": g_lr, "d_lr": d_lr, "state": state, "hq_median": hq, "modes_median": modes}

    rows = [
        row("1e-3", "5e-4", "completed", 0.5, 8),
        row("1e-3", "5e-4", "pruned", 0.1, 2),
        row("1e-3", "2.5e-4", "pruned", 0.098, 3),
        row("2e-3", "5e-4", "completed", 0.9, 8),
        row("2e-3", "5e-4", "completed", 0.7, 6),
        {"g_lr": "2e-3", "d_lr": "2.5e-4", "state": "abandoned"},
    ]
    cells = heatmap_cells(rows, "g_lr", "d_lr")
    assert cells["x"] == [1e-3, 2e-3] and cells["y"] == [2.5e-4, 5e-4]
    assert cells["hq"] == {(1e-3, 5e-4): 0.5, (1e-3, 2.5e-4): 0.098, (2e-3, 5e-4): 0.8}
    assert cells["modes"] == {(1e-3, 5e-4): 8, (1e-3, 2.5e-4): 3, (2e-3, 5e-4): 7}
    assert cells["stopped"] == {(1e-3, 2.5e-4): "pruned"}
