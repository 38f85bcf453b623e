"""qgan-tune workers sharing a study on a real PostgreSQL server, started in a throw-away cluster."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import optuna
import pytest

from tests.helpers import start_script
from tests.runs.test_studies import (
    TUNE,
    assert_the_next_worker_reclaims_and_resumes,
    lose_a_study_after_its_first_checkpoint,
    run_dir_of,
    training_commands,
)

SERVER_USER = "postgres"  # initdb refuses to run as root


def server_binaries():
    """The folder of PostgreSQL's initdb and pg_ctl, or None."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return folder
    found = shutil.which("pg_ctl")
    return os.path.dirname(found) if found and shutil.which("initdb") else None


def as_server_user(command):
    """The command run as an unprivileged user when this process is root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A URL of an empty database on a fresh local server (a Unix socket), stopped at the end."""
    folder = server_binaries()
    if folder is None:
        if os.environ.get("QGAN_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL's server (initdb, pg_ctl) is not installed; .ci/run installs it")
        pytest.skip("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
    base = tempfile.mkdtemp(prefix="qgan-postgres-")
    os.chmod(base, 0o755)
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(base, user.pw_uid, user.pw_gid)
    data, port = os.path.join(base, "data"), free_port()

    def server(*arguments):
        subprocess.run(as_server_user(list(arguments)), check=True, capture_output=True, timeout=120)

    server(os.path.join(folder, "initdb"), "-D", data, "--auth=trust", "-U", "qgan")
    options = f"-k {base} -p {port} -c listen_addresses='' -c max_connections=50"
    server(
        os.path.join(folder, "pg_ctl"),
        "-D",
        data,
        "-l",
        os.path.join(base, "log"),
        "-o",
        options,
        "-w",
        "start",
    )
    try:
        yield f"postgresql://qgan@/postgres?host={base}&port={port}"
    finally:
        server(os.path.join(folder, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


def rdb_study(name, url):
    storage = optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg://", 1))
    return optuna.load_study(study_name=name, storage=storage)


@pytest.mark.slow
def test_two_workers_started_together_on_an_empty_database_train_each_grid_point_once(
    tmp_path,
    far_cluster,
    postgres_url,
):
    output = tmp_path / "tune"
    flags = [
        *far_cluster, "--steps", "20", "--eval-every", "10", "--g-lr", "choice:1e-2,1e-3",
        "--study", "together", "--output-dir", str(output),
        "--storage", postgres_url,
    ]  # fmt: skip
    workers = [start_script(TUNE, *flags) for _ in range(2)]  # the same instant, on an empty database
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-2000:]
    study_dir = output / "together"
    assert list(training_commands(study_dir).values()) == [1, 1]
    study = rdb_study("together", postgres_url)
    completed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(trial.params["g_lr"] for trial in completed) == ["1e-2", "1e-3"]
    assert all("skipped" in trial.user_attrs for trial in study.trials if trial not in completed)


@pytest.mark.slow
def test_a_killed_workers_trial_is_taken_up_again_from_its_checkpoint(
    tmp_path,
    far_cluster,
    postgres_url,
):
    output = tmp_path / "tune"
    flags = [
        *far_cluster, "--eval-every", "10", "--checkpoint-every", "10", "--steps", "300",
        "--study", "killed", "--output-dir", str(output), "--pruner", "none", "--storage", postgres_url,
    ]  # fmt: skip
    study_dir = str(output / "killed")
    lose_a_study_after_its_first_checkpoint(flags, study_dir)
    assert_the_next_worker_reclaims_and_resumes(flags, study_dir, run_dir_of(study_dir, 300))
