"""Tests of the command line: flags reach the config, bad input is a one-line error with exit status 2."""

import dataclasses
import os

import numpy as np
import pytest

from qgan.training import cli
from qgan.training.config import ENGINE_NAMES, ConfigError, TrainConfig


def run_main(argv, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.err


BAD_INPUTS = [
    (["--g-lr", "-0.001"], "--g-lr -0.001 is not allowed; use a finite number > 0"),
    (["--d-lr", "0"], "--d-lr 0.0 is not allowed"),
    (["--g-lr", "abc"], "argument --g-lr: invalid float value: 'abc'"),
    (["--cutoff", "1"], "--cutoff 1 is not allowed; use an integer from 2 to 64"),
    (["--cutoff", "7.5"], "argument --cutoff: invalid int value: '7.5'"),
    (["--dataset", "moons"], "argument --dataset: invalid choice: 'moons'"),
    (["--engine", "warp"], "argument --engine: invalid choice: 'warp'"),
    (["--layers", "0"], "--layers 0 is not allowed"),
    (["--modes", "1"], "--modes 1 is not allowed; use an integer from 2 to 6"),
    (["--batch-size", "0"], "--batch-size 0 is not allowed"),
    (["--n-critic", "-1"], "--n-critic -1 is not allowed"),
    (["--g-beta1", "1.0"], "--g-beta1 1.0 is not allowed; use a finite number ≥ 0 and < 1"),
    (["--gp-weight", "nan"], "--gp-weight nan is not allowed"),
    (["--clip-value", "-1"], "--clip-value -1.0 is not allowed"),
    (["--critic-units", "64,x"], "invalid value '64,x'"),
    (["--readout", "homodyne"], "argument --readout: invalid choice: 'homodyne'"),
    (["--lr-schedule-players", "critic"], "argument --lr-schedule-players: invalid choice: 'critic'"),
    (["--detector", "apd"], "argument --detector: invalid choice: 'apd'"),
    (["--quadratures", "pp"], "argument --quadratures: invalid choice: 'pp'"),
    (
        ["--readout", "heralded", "--ancillas", "2"],
        "--ancillas 2 is not allowed; use an integer from 1 to 1",
    ),
    (
        ["--readout", "heralded", "--quadratures", "xx"],
        "--modes 2 leaves no ancilla: --quadratures xx reads 2 modes; allowed: --modes 3 or more",
    ),
    (["--ancilla-offset", "inf"], "--ancilla-offset inf is not allowed; use a finite number from -5 to 5"),
    (
        ["--readout", "heralded", "--modes", "4", "--ancillas", "3", "--cutoff", "17"],
        "--ancillas 3 with --cutoff 17 and --detector pnr gives 4913 outcomes; allowed: at most 4096",
    ),
    (["--generator", "boson"], "argument --generator: invalid choice: 'boson'"),
    (["--lr-schedule", "step"], "argument --lr-schedule: invalid choice: 'step'"),
    (["--lr-final-fraction", "1.5"], "--lr-final-fraction 1.5 is not allowed; use a finite number > 0"),
    (["--run-name", "../escape"], "--run-name '../escape' is not allowed"),
    (["--dataset", "file"], "--dataset file needs --data PATH"),
    (["--data", "{good.csv}"], "--data is only allowed with --dataset file"),
    (["--dataset", "file", "--data", "{missing.csv}"], "data file '{missing.csv}' does not exist"),
    (["--dataset", "file", "--data", "{malformed.csv}"], "line 3 is not numeric"),
    (["--dataset", "file", "--data", "{three_columns.csv}"], "has shape (2, 3); expected (N, 2)"),
    (["--dataset", "file", "--data", "{nan_row.csv}"], "row(s) with NaN or Inf"),
    (["--dataset", "file", "--data", "{empty.csv}"], "is empty"),
    (["--dataset", "file", "--data", "{good.csv}", "--centers", "{missing.csv}"], "centres file"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(argv) for argv, _ in BAD_INPUTS])
def test_bad_input_is_a_one_line_error_with_status_2(argv, message, files, capsys):
    def fill(text):
        for name, path in files.items():
            text = text.replace("{" + name + "}", path)
        return text

    argv = [fill(arg) for arg in argv] + ["--results-dir", files["results"]]
    if "--run-name" not in argv:
        argv += ["--run-name", "r"]
    status, err = run_main(argv, capsys)
    assert status == 2
    assert err.count("\n") == 1, err
    assert fill(message) in err
    assert err.startswith("qgan-train: error: ")
    assert not os.path.exists(os.path.join(files["results"], "r"))


def test_unwritable_results_dir_is_a_clear_error(files, capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    status, err = run_main(["--results-dir", str(blocker / "sub"), "--steps", "1"], capsys)
    assert status == 2
    assert "cannot be written" in err and str(blocker / "sub") in err


def test_existing_run_is_never_overwritten(files, capsys):
    run_dir = os.path.join(files["results"], "taken")
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "metrics.csv"), "w") as handle:
        handle.write("precious")
    status, err = run_main(["--results-dir", files["results"], "--run-name", "taken"], capsys)
    assert status == 2 and "already holds files but no checkpoint" in err
    with open(os.path.join(run_dir, "metrics.csv")) as handle:
        assert handle.read() == "precious"


def test_flags_map_onto_every_config_field():
    args = cli.build_parser().parse_args(
        ["--g-lr", "0.002", "--critic-units", "32,16", "--clip-value", "0", "--steps", "7"]
    )
    config = cli.config_from_args(args)
    assert config.g_lr == 0.002
    assert config.critic_units == (32, 16)
    assert config.clip_value is None
    assert config.steps == 7
    defaults = cli.config_from_args(cli.build_parser().parse_args([]))
    assert defaults == TrainConfig()


def test_help_documents_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        assert flag in text, flag
    assert text.count("(default:") >= len(dataclasses.fields(TrainConfig))


def test_config_is_frozen_and_serialisable():
    config = TrainConfig(steps=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 4
    import json

    assert json.loads(config.to_json())["steps"] == 3
    with pytest.raises(ConfigError):
        TrainConfig(cutoff=64, modes=6)


def test_engine_names_match_the_engine_registry():
    from qgan.engines import ENGINES

    assert set(ENGINE_NAMES) == set(ENGINES)


def test_file_dataset_with_centres_loads(files, tmp_path):
    from qgan.training.builders import make_target

    centers = tmp_path / "centers.npy"
    np.save(centers, np.array([[0.0, 0.0], [2.0, 2.0]]))
    config = TrainConfig(dataset="file", data=files["good.csv"], centers=str(centers), holdout=0.0)
    target = make_target(config)
    assert target.centers.shape == (2, 2)
    assert target.std == pytest.approx(np.sqrt(2.0 / 3.0 / 2.0))


def test_a_saved_config_without_a_newer_flag_stands_for_the_behaviour_before_it():
    from qgan.training.config import conflicting_settings

    before = dict(readout="expectation", marginal_critic=False, gp_target=1.0)
    saved = TrainConfig(g_lr=0.01, **before).to_dict()
    del saved["readout"], saved["marginal_critic"], saved["gp_target"]  # saved before these flags existed
    assert TrainConfig(g_lr=0.01, **before).resume_conflicts(saved) == []
    # today's defaults differ from how that run was trained
    assert TrainConfig(g_lr=0.01).resume_conflicts(saved) == ["gp_target", "marginal_critic", "readout"]
    assert conflicting_settings(TrainConfig(**before).to_dict(), saved) == ["g_lr"]
