"""qgan-tune studies end to end: shared storages, interruption, pruning, killed workers."""

import csv
import json
import os
import shlex
import shutil
import signal
import threading
import time

import optuna
import pytest

from qgan.tune import cli
from qgan.tune.runs import child_environment, run_training
from tests.helpers import run_script, start_script

TUNE = "tune.py"


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
        if "qgan.training.cli" in arguments and any(study_dir in argument for argument in arguments):
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


def lose_a_study_after_its_first_checkpoint(flags, study_dir, steps=300):
    """Starts qgan-tune with `flags`; once the run of `steps` has checkpointed, kills the study and
    its run (in a session of its own) with SIGKILL, as a lost machine: no handler runs and the
    trial stays RUNNING."""
    lost = start_script(TUNE, *flags, start_new_session=True)
    deadline = time.time() + 300
    while run_dir_of(study_dir, steps) is None or not os.path.exists(
        os.path.join(run_dir_of(study_dir, steps), "checkpoints", "checkpoint")
    ):
        assert lost.poll() is None, lost.communicate()[1][-2000:]
        assert time.time() < deadline, "the run did not checkpoint"
        time.sleep(0.1)
    runs = training_processes(study_dir)
    assert len(runs) == 1
    os.killpg(lost.pid, signal.SIGKILL)
    os.kill(runs[0], signal.SIGKILL)
    lost.communicate(timeout=60)


def assert_the_next_worker_reclaims_and_resumes(flags, study_dir, killed_dir):
    """A worker started once the lost trial's heartbeat is stale marks it abandoned, trains its
    setting again as trial 1, and resumes the killed run from its checkpoint."""
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


@pytest.mark.slow
def test_a_study_whose_process_was_killed_reclaims_its_trial_and_resumes_the_run(tmp_path, far_cluster):
    output = tmp_path / "tune"
    flags = [
        *far_cluster, "--eval-every", "10", "--checkpoint-every", "10", "--steps", "300",
        "--study", "killed", "--output-dir", str(output), "--pruner", "none",
    ]  # fmt: skip
    study_dir = str(output / "killed")
    lose_a_study_after_its_first_checkpoint(flags, study_dir)
    killed_dir = run_dir_of(study_dir, 300)

    patient = run_script(TUNE, *flags)
    assert patient.returncode == 0, patient.stderr[-2000:]
    assert "abandoned" not in patient.stdout and "trial 1" not in patient.stdout  # the trial is still young

    assert_the_next_worker_reclaims_and_resumes(flags, study_dir, killed_dir)
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
