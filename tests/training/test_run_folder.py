"""prepare_run_dir: folders of runs named by the clock never collide."""

import os

from qgan.training import run_folder
from qgan.training.config import TrainConfig


def test_runs_started_in_the_same_second_each_claim_their_own_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(run_folder.time, "strftime", lambda _: "20261125-052440")
    config = TrainConfig(results_dir=str(tmp_path / "fresh"))
    claimed = [run_folder.prepare_run_dir(config) for _ in range(3)]
    names = [os.path.basename(run_dir) for run_dir, _, _ in claimed]
    base = f"{config.dataset}-{config.generator_label()}-20261125-052440"
    assert names == [base, f"{base}-2", f"{base}-3"]
    assert [resumed for _, resumed, _ in claimed] == [False] * 3
    for run_dir, _, lock in claimed:
        assert os.listdir(run_dir) == [run_folder.LOCK_FILE]  # held, and nothing else written
        lock.close()
