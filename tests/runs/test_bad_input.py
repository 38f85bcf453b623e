"""The bad-input campaign: every entry point refuses bad flags and damaged files in a line, changing nothing.

Each case runs as its command's main in a fresh process that runs a batch of cases
(tests/runs/bad_input_driver.py), with sys.argv[0] set to the command; a few run through
scripts/ as separate processes. Every case must exit 2, print exactly one line on stderr that
names the offending flag or file, let no exception escape, and leave every file in the workspace
as it was (nothing created, changed or removed).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, TINY_RUN, console_script, run_script

WORKSPACE_FILES = {
    "good.csv": b"x,y\n0,0\n1,1\n2,2\n3,3\n",
    "latin1.csv": "x (\u00b5m),y\n0,0\n1,1\n".encode("latin-1"),
    "random.csv": bytes(np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8)),
    "empty.csv": b"",
    "header_only.csv": b"x,y\n",
    "nan_row.csv": b"0,0\nnan,1\n",
    "inf_row.csv": b"0,0\n1,inf\n",
    "three_columns.csv": b"1,2,3\n4,5,6\n",
    "ragged.csv": b"1,2\n3\n",
    "words.csv": b"x,y\n1,2\na,b\n",
    "points.txt": b"1,2\n",
    "text.npy": b"0,0\n1,1\n",
    "random.npy": b"\x93NUMPY" + bytes(np.random.default_rng(1).integers(0, 256, 60, dtype=np.uint8)),
    "not_json.json": b"{ not json",
    "storage.log": b"my own notes, not a journal\n",
}


def numpy_file(path, array, **options):
    with open(path, "wb") as handle:
        np.save(handle, array, **options)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_run):
    """A folder of damaged files and run folders, and a copy of the session's tiny run (qgan-train's)."""
    root = tmp_path_factory.mktemp("bad-input")
    for name, content in WORKSPACE_FILES.items():
        (root / name).write_bytes(content)
    numpy_file(root / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    numpy_file(root / "complex.npy", np.ones((3, 2), complex))
    numpy_file(root / "good.npy", np.arange(8.0).reshape(4, 2))
    truncated = (root / "good.npy").read_bytes()
    (root / "truncated.npy").write_bytes(truncated[: len(truncated) - 20])
    (root / "folder.csv").mkdir()
    (root / "a_file").write_text("a file, not a folder\n")
    shutil.copytree(tiny_run, root / "results" / "run")
    run = root / "results" / "run"
    damaged = {
        "no-weights": lambda folder: os.remove(folder / "generator.weights.h5"),
        "truncated-weights": lambda folder: truncate(folder / "generator.weights.h5", 0.5),
        "random-weights": lambda folder: (folder / "generator.weights.h5").write_bytes(os.urandom(2048)),
        "text-weights": lambda folder: (folder / "generator.weights.h5").write_text("not hdf5"),
        "bad-json": lambda folder: (folder / "generator.json").write_text("{ truncated"),
        "list-json": lambda folder: (folder / "generator.json").write_text("[1, 2]"),
        "classical-json": lambda folder: rename_class(folder, "qgan>ClassicalGenerator"),
        "foreign-json": lambda folder: rename_class(folder, "keras>Dense"),
        "no-generator": lambda folder: [
            os.remove(folder / name) for name in ("generator.json", "generator.weights.h5")
        ],
        "bad-config": lambda folder: (folder / "config.json").write_text("{ not json"),
    }
    for name, damage in damaged.items():
        shutil.copytree(run, root / "results" / name)
        damage(root / "results" / name)
    return root


def truncate(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def rename_class(folder, registered_name):
    config = json.loads((folder / "generator.json").read_text())
    config["registered_name"] = registered_name
    (folder / "generator.json").write_text(json.dumps(config))


def train_cases():
    """(argv, the words the one-line error must hold) of qgan-train."""
    cases = []
    integers = {
        "--modes": ["1", "7"], "--layers": ["0", "65"], "--cutoff": ["1", "65"], "--ancillas": ["0", "9"],
        "--n-critic": ["0", "101"], "--batch-size": ["0", "100001"], "--steps": ["0"], "--eval-every": ["0"],
        "--eval-samples": ["0"], "--checkpoint-every": ["0"], "--max-consecutive-bad": ["0"],
        "--seed": ["-1", "2147483648"],
    }  # fmt: skip
    for flag, values in integers.items():
        for value in [*values, "1.5", "abc"]:
            cases.append(([flag, value], flag))
    floats = {
        "--latent-scale": ["0", "-1"], "--max-squeeze": ["-1"], "--max-displacement": ["-0.5"],
        "--max-kerr": ["-1"], "--init-std": ["0"], "--ancilla-offset": ["5.5", "-6"], "--g-lr": ["0", "-1"],
        "--d-lr": ["-0.1"], "--g-beta1": ["1", "-0.1"], "--g-beta2": ["1.5"], "--d-beta1": ["1"],
        "--d-beta2": ["-1"], "--gp-weight": ["-1"], "--gp-target": ["-2"], "--trace-penalty": ["-1"],
        "--energy-weight": ["-1"], "--mmd-weight": ["-0.5"], "--average-decay": ["1", "-0.1"],
        "--lr-final-fraction": ["0", "1"], "--clip-value": ["-1"], "--clip-norm": ["-2"],
        "--global-clip-norm": ["-3"], "--detector-efficiency": ["0", "1.5", "-0.2"],
        "--dark-counts": ["-0.1"],
        "--output-loss": ["0", "2"],
    }  # fmt: skip
    for flag, values in floats.items():
        for value in [*values, "nan", "inf", "x"]:
            cases.append(([flag, value], flag))
    choices = (
        "--dataset", "--generator", "--engine", "--readout", "--detector", "--quadratures",
        "--latent-distribution", "--lr-schedule", "--lr-schedule-players", "--nonfinite", "--recovery",
    )  # fmt: skip
    cases += [([flag, "bogus"], flag) for flag in choices]
    cases += [(["--critic-units", value], "--critic-units") for value in ("0", "a,b", "64,-1", "")]
    cases += [(["--run-name", value], "--run-name") for value in ("../x", "a b", ".hidden")]
    inapplicable = [
        ["--readout", "expectation", "--ancillas", "2"],
        ["--readout", "expectation", "--detector", "threshold"],
        ["--readout", "expectation", "--quadratures", "xx"],
        ["--readout", "expectation", "--ancilla-offset", "1"],
        ["--readout", "expectation", "--detector-efficiency", "0.9"],
        ["--readout", "expectation", "--dark-counts", "0.1"],
        ["--readout", "expectation", "--no-marginal-critic"],
        ["--readout", "expectation", "--ancillas", "1"],
        ["--generator", "classical", "--latent-scale", "0.1"],
        ["--generator", "classical", "--engine", "sf"],
        ["--generator", "classical", "--cutoff", "5"],
        ["--generator", "classical", "--trace-penalty", "2"],
        ["--generator", "classical", "--max-kerr", "0.1"],
        ["--generator", "classical", "--readout", "heralded"],
        ["--generator", "classical", "--output-loss", "0.9"],
        ["--generator", "classical-mixture", "--quadratures", "xx"],
        ["--generator", "classical-mixture", "--ancilla-offset", "0.5"],
        ["--generator", "classical-mixture", "--dark-counts", "0.2"],
        ["--no-jit-compile", "--xla-fusion-emitters"],
        ["--engine", "sf", "--no-xla-fusion-emitters"],
        ["--lr-schedule", "constant", "--lr-final-fraction", "0.1"],
        ["--lr-schedule", "constant", "--lr-schedule-players", "both"],
        ["--dataset", "ring", "--data", "good.csv"],
        ["--dataset", "grid", "--std", "1"],
        ["--dataset", "ring", "--holdout", "0.1"],
        ["--dataset", "ring", "--centers", "good.csv"],
    ]
    cases += [(argv, argv[-2] if not argv[-1].startswith("--") else argv[-1]) for argv in inapplicable]
    files = {
        "missing.csv": "does not exist", "folder.csv": "is a folder", "random.csv": "not UTF-8 text",
        "latin1.csv": "not UTF-8 text", "empty.csv": "is empty", "header_only.csv": "is empty",
        "nan_row.csv": "NaN or Inf", "inf_row.csv": "NaN or Inf", "three_columns.csv": "expected (N, 2)",
        "ragged.csv": "rows of different lengths", "words.csv": "line 3 is not numeric",
        "points.txt": "allowed: .csv, .npy", "text.npy": "not a NumPy .npy file",
        "random.npy": "damaged .npy file", "truncated.npy": "damaged .npy file",
        "objects.npy": "holds Python objects", "complex.npy": "holds complex128 values",
    }  # fmt: skip
    for name, words in files.items():
        cases.append((["--dataset", "file", "--data", name], (f"data file '{name}'", words)))
        cases.append(
            (
                ["--dataset", "file", "--data", "good.csv", "--centers", name],
                f"centres file '{name}'",
            )
        )
    cases += [
        (["--dataset", "file"], "--dataset file needs --data"),
        (["--dataset", "file", "--data", "good.csv", "--holdout", "1"], "--holdout"),
        (["--dataset", "file", "--data", "good.csv", "--holdout", "-0.1"], "--holdout"),
        (["--dataset", "file", "--data", "good.csv", "--centers", "good.csv", "--std", "0"], "--std"),
        (["--resume"], "--resume needs --run-name"),
        (["--results-dir", "a_file"], "--results-dir 'a_file' is a file"),
        (["--results-dir", "results", "--run-name", "../a_file"], "--run-name"),
        (["--results-dir", "results", "--run-name", "absent", "--resume"], "holds no checkpoint"),
        (
            ["--results-dir", "results", "--run-name", "run", "--g-lr", "0.01"],
            "holds a run with other settings",
        ),
        (["--results-dir", "results", "--run-name", "bad-config"], "config.json"),
        ([*TINY_RUN, "--steps", "1", "--results-dir", "results", "--run-name", "no-generator"], "trained 2"),
        (["--unknown-flag", "1"], "unrecognized arguments: --unknown-flag"),
    ]
    return cases


def sample_cases():
    cases = [
        (["missing", "--output", "s.csv"], "run 'missing' does not exist"),
        (["a_file", "--output", "s.csv"], "is a file, not a run folder"),
        (["results/no-generator", "--output", "s.csv"], "holds no trained generator"),
        (["results/no-weights", "--output", "s.csv"], "generator.weights.h5' is missing"),
        (["results/truncated-weights", "--output", "s.csv"], "generator.weights.h5' is damaged"),
        (["results/random-weights", "--output", "s.csv"], "is not an HDF5 weights file"),
        (["results/text-weights", "--output", "s.csv"], "is not an HDF5 weights file"),
        (["results/bad-json", "--output", "s.csv"], "generator.json' is not readable JSON"),
        (["results/list-json", "--output", "s.csv"], "does not hold a JSON object"),
        (["results/foreign-json", "--output", "s.csv"], "does not describe a qgan generator"),
        (["results/run", "--output", "s.csv", "--samples", "0"], "--samples 0"),
        (["results/run", "--output", "s.csv", "--samples", "100000000000"], "--samples 100000000000"),
        (["results/run", "--output", "s.csv", "--samples", "many"], "--samples"),
        (["results/run", "--output", "s.csv", "--seed", "-1"], "--seed -1"),
        (["results/run", "--output", "s.csv", "--seed", "2147483648"], "--seed 2147483648"),
        (["results/run", "--output", "s.txt"], "unknown format .txt"),
        (["results/run", "--output", "s"], "unknown format (none)"),
        (["results/run", "--output", "no/such/folder/s.csv"], "does not exist"),
        (["results/run", "--output", "/proc/qgan-samples.csv"], "cannot be written"),
        (["results/run", "--output", "good.csv"], "exists already"),
        (["results/run", "--output", "folder.csv"], "is a folder"),
        (["results/run"], "--output"),
    ]
    return cases


def tune_cases():
    fixed = ["--steps", "2", "--output-dir", "studies"]
    cases = [
        (["--study", "no-such", "--report-only", *fixed], "no such study"),
        (["--storage", "storage.log", "--g-lr", "choice:0.1", *fixed], "is not an Optuna journal"),
        (["--storage", "folder.csv", *fixed], "is a folder"),
        (["--sampler-seed", "-1", *fixed], "--sampler-seed -1"),
        (["--dataset", "file", "--data", "missing.csv", *fixed], "data file 'missing.csv' does not exist"),
        (["--dataset", "file", "--data", "latin1.csv", *fixed], "not UTF-8 text"),
        (["--dataset", "file", "--data", "choice:good.csv,random.csv", *fixed], "data file 'random.csv'"),
        (
            ["--dataset", "file", "--data", "good.csv", "--objective", "std-ratio", *fixed],
            "--objective std-ratio",
        ),
        (
            ["--dataset", "file", "--data", "good.csv", "--holdout", "0", "--objective", "w1", *fixed],
            "--objective w1",
        ),
        (["--seeds", "a", *fixed], "--seeds"),
        (["--seeds", "-1", *fixed], "--seeds"),
        (["--seeds", "0,0", *fixed], "--seeds"),
        (["--workers", "0", *fixed], "--workers 0"),
        (["--trials", "0", *fixed], "--trials 0"),
        (["--stale-after", "0", *fixed], "--stale-after"),
        (["--pruner-warmup", "1", *fixed], "--pruner-warmup"),
        (["--pruner-startup-trials", "-1", *fixed], "--pruner-startup-trials"),
        (["--heatmap", "g_lr", "--g-lr", "choice:0.1,0.2", *fixed], "--heatmap"),
        (["--g-lr", "loguniform:1e-2:1e-4", *fixed], "--g-lr"),
        (["--g-lr", "loguniform:-1:1", *fixed], "--g-lr"),
        (["--layers", "int:a:b", *fixed], "--layers"),
        (["--reupload", "choice:maybe", *fixed], "--reupload"),
        (["--g-lr", "choice:", *fixed], "--g-lr"),
        (["--g-lr", "choice:1,1", *fixed], "repeats a choice"),
        (["--seed", "1", *fixed], "--seed is set by the study"),
        (["--results-dir", "x", *fixed], "--results-dir is set by the study"),
        (["--no-such-flag", "1", *fixed], "unknown training flag"),
        (["--g-lr", "-1", *fixed], "--g-lr"),
        (["--readout", "expectation", "--ancillas", "2", *fixed], "--ancillas"),
        (["--readout", "choice:expectation,heralded", "--ancillas", "2", *fixed], "--ancillas"),
        (["--layers", "2", "--layers", "3", *fixed], "given twice"),
        (["--study", "bad name", *fixed], "--study"),
        (["--sampler", "grid", "--g-lr", "loguniform:1e-4:1e-2", *fixed], "--sampler grid"),
        (["--study", "existing", "--g-lr", "choice:0.1,0.2", *fixed], "another search space"),
        (["--study", "existing", "--g-lr", "choice:0.1", "--objective", "kl", *fixed], "another --objective"),
    ]
    return cases


def export_cases():
    return [
        (["missing", "--latent", "0,0", "--output", "c.xbb"], "does not exist"),
        (["results/run", "--latent", "0", "--output", "c.xbb"], "has 1 numbers"),
        (["results/run", "--latent", "0,0,0", "--output", "c.xbb"], "has 3 numbers"),
        (["results/run", "--latent", "0,x", "--output", "c.xbb"], "--latent '0,x'"),
        (["results/run", "--latent", "0,2", "--output", "c.xbb"], "[-1, 1]"),
        (["results/run", "--latent", "0,nan", "--output", "c.xbb"], "[-1, 1]"),
        (["results/classical-json", "--latent", "0,0", "--output", "c.xbb"], "holds no quantum generator"),
        (["results/bad-json", "--latent", "0,0", "--output", "c.xbb"], "not readable JSON"),
        (["results/run", "--latent", "0,0", "--output", "c.txt"], "unknown format .txt"),
        (["results/run", "--latent", "0,0", "--output", "good.csv"], "unknown format .csv"),
        (["results/run", "--output", "c.xbb"], "--latent"),
    ]


CASES = [
    *(("qgan-train", argv, words) for argv, words in train_cases()),
    *(("qgan-sample", argv, words) for argv, words in sample_cases()),
    *(("qgan-tune", argv, words) for argv, words in tune_cases()),
    *(("qgan-export", argv, words) for argv, words in export_cases()),
]


def make_existing_study(root):
    """A study of --g-lr choice:0.1 (objective high-quality), made by qgan-tune's own storage code."""
    import optuna

    from qgan.tune.cli import check_same_study
    from qgan.tune.space import parse_space
    from qgan.tune.storage import open_storage

    location = str(root / "studies" / "existing" / "journal.log")
    study = optuna.create_study(study_name="existing", storage=open_storage(location), direction="maximize")
    study.set_user_attr("objective", "high-quality")
    check_same_study(
        study, "existing", location, "high-quality", parse_space(["--g-lr", "choice:0.1", "--steps", "2"])
    )


@pytest.fixture(scope="module")
def results(workspace):
    """Every case's result, from one driver process (cases run in the workspace as their folder)."""
    make_existing_study(workspace)
    cases = [{"command": command, "argv": argv} for command, argv, _ in CASES]
    (workspace.parent / "cases.json").write_text(json.dumps(cases))
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.runs.bad_input_driver",
            str(workspace.parent / "cases.json"),
            str(workspace),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(workspace),
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_the_campaign_holds_at_least_150_cases():
    assert len(CASES) >= 150


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c}:{' '.join(a)}"[:90] for c, a, _ in CASES])
def test_each_case_is_one_line_exit_2_no_traceback_nothing_changed(results, workspace, index):
    command, argv, words = CASES[index]
    result = results[index]
    assert result["traceback"] is None, result["traceback"]
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert result["code"] == 2, result
    assert len(lines) == 1, result["stderr"]
    assert lines[0].startswith(f"{command}: error: "), lines[0]
    for fragment in (words,) if isinstance(words, str) else words:
        assert fragment in lines[0], lines[0]
    assert result["changed"] == [], result["changed"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, words",
    [
        (["--g-lr", "-1"], "--g-lr -1"),
        (["--dataset", "file", "--data", "random.csv"], "not UTF-8 text"),
        (["--readout", "expectation", "--ancillas", "3"], "--ancillas 3 does not apply"),
    ],
)
def test_the_training_script_refuses_as_qgan_train_does(workspace, argv, words):
    process = run_script("train_coordinate_quantum_gan.py", *argv, cwd=str(workspace), timeout=120)
    lines = process.stderr.strip().splitlines()
    assert process.returncode == 2 and len(lines) == 1 and "Traceback" not in process.stderr
    assert lines[0].startswith("train_coordinate_quantum_gan.py: error: ") and words in lines[0]


def resume_to_step_three(results_dir):
    """qgan-train resuming the copied run in `results_dir` to step 3, as a user runs it."""
    command = [console_script("qgan-train"), *TINY_RUN, "--steps", "3", "--results-dir", str(results_dir)]
    return subprocess.run([*command, "--run-name", "run"], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_damaged_latest_checkpoint_is_skipped_for_the_one_before_it(workspace, tmp_path):
    shutil.copytree(workspace / "results" / "run", tmp_path / "run")
    data = sorted((tmp_path / "run" / "checkpoints").glob("ckpt-2.data-*"))
    truncate(data[0], 0.5)
    process = resume_to_step_three(tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    skipped = [line for line in process.stdout.splitlines() if "cannot be read" in line]
    assert len(skipped) == 1 and "checkpoint ckpt-2 cannot be read" in skipped[0]
    assert skipped[0].endswith("resuming from ckpt-1")
    assert "resuming at step 1" in process.stdout and "done at step 3" in process.stdout
    assert json.loads((tmp_path / "run" / "coverage.json").read_text())["step"] == 3


@pytest.mark.slow
def test_a_run_whose_checkpoints_are_all_damaged_is_refused_and_left_as_it_was(workspace, tmp_path):
    from tests.runs.bad_input_driver import snapshot

    shutil.copytree(workspace / "results" / "run", tmp_path / "run")
    for data in (tmp_path / "run" / "checkpoints").glob("ckpt-*.data-*"):
        truncate(data, 0.3)
    before = snapshot(tmp_path)
    process = resume_to_step_three(tmp_path)
    lines = process.stderr.strip().splitlines()
    assert process.returncode == 2 and len(lines) == 1, process.stderr[-3000:]
    assert "none of its 2 checkpoints can be restored" in lines[0]
    assert snapshot(tmp_path) == before
