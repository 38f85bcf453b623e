"""qgan-tune: search spaces from flags, Optuna studies shared by processes, pruning, resume, reports."""

import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from qgan.tune import cli
from qgan.tune.report import heatmap_cells
from qgan.tune.space import SpaceError, parse_space
from qgan.tune.study import Heartbeat, reclaim_abandoned


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
