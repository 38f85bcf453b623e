"""Running a study: workers that claim trials in a shared storage, so no setting trains twice."""

from __future__ import annotations

import dataclasses
import os
import socket
import statistics
import threading
import time

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from qgan.tune.runs import OBJECTIVES, child_environment, objective_value, run_training
from qgan.tune.space import Space, config_of, setting_key

LIVE_STATES = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
SEED_STEP = 10**9  # seed i reports evaluation step s as i·SEED_STEP + s, so seeds never share a step
DUPLICATES_BEFORE_STOP = 20
HEARTBEAT_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class StudyPlan:
    """Everything a worker needs to run trials.

    Attributes:
        space: the search space.
        seeds: every setting trains once per seed; its value is the median over them.
        objective: a key of OBJECTIVES.
        trials: how many trials the study holds when done (the grid's size for a grid).
        study_dir: folder of the run folders (<study_dir>/<setting>/seed-<seed>).
        workers: trainings at a time on this machine.
        warmup: fraction of each run's steps before the pruner may stop it.
        stale_after: seconds without a heartbeat after which a running trial counts as abandoned.
        grid: the grid sampler: trials are the enqueued grid points, not sampled.
    """

    space: Space
    seeds: tuple[int, ...]
    objective: str
    trials: int
    study_dir: str
    workers: int
    warmup: float = 0.0
    stale_after: float = 600.0
    grid: bool = False


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler of `--sampler`; a grid's points are enqueued, so its trials need no sampling."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def trial_params(trial) -> dict:
    """The parameters of a trial, including those fixed for a trial still waiting."""
    return trial.params or trial.system_attrs.get("fixed_params", {})


def counted(trial) -> bool:
    """A trial that ran or runs a setting (not one skipped as a duplicate or over the budget)."""
    return trial.state in LIVE_STATES and "skipped" not in trial.user_attrs


def enqueue_grid(study: optuna.Study, space: Space) -> None:
    """Enqueues every grid point that no live trial holds (points of failed trials come back)."""
    held = [trial_params(trial) for trial in study.get_trials(deepcopy=False) if counted(trial)]
    for point in space.grid():
        if point not in held:
            study.enqueue_trial(point, skip_if_exists=False)


def last_sign_of_life(trial) -> float:
    """When a running trial was last known alive (its heartbeat, else its start), as a Unix time."""
    if "heartbeat" in trial.user_attrs:
        return trial.user_attrs["heartbeat"]
    return trial.datetime_start.timestamp() if trial.datetime_start else time.time()


def reclaim_abandoned(study: optuna.Study, stale_after: float, log) -> list[int]:
    """Fails running trials whose worker stopped beating (a killed process, a lost machine).

    Their settings then count as free again: a grid's point is enqueued anew, and its run goes on
    from its last checkpoint.

    Returns:
        The numbers of the trials reclaimed.
    """
    now = time.time()
    reclaimed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        silent = now - last_sign_of_life(trial)
        if silent < stale_after:
            continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "status", "abandoned")
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        except (UpdateFinishedTrialError, RuntimeError):
            continue  # another worker reclaimed it first
        reclaimed.append(trial.number)
        log(f"trial {trial.number} abandoned (no heartbeat for {silent:.0f} s); its setting runs again")
    return reclaimed


class Heartbeat:
    """Writes the time into a running trial every `interval` seconds, so other workers see it alive."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial, interval: float):
        self.storage, self.trial_id, self.interval = study._storage, trial._trial_id, interval
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _write(self) -> bool:
        try:
            self.storage.set_trial_user_attr(self.trial_id, "heartbeat", time.time())
        except (UpdateFinishedTrialError, RuntimeError):
            return False  # the trial is over
        return True

    def _beat(self) -> None:
        while not self.done.wait(self.interval) and self._write():
            pass

    def __enter__(self) -> Heartbeat:
        self._write()
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()
        self.thread.join()


class Worker(threading.Thread):
    """Claims trials one after another and trains each setting on every seed.

    A claimed trial is dropped (told FAIL with a "skipped" attribute) when a trial of a lower
    number holds the same setting, or when the budget is spent by trials of lower numbers: with
    that rule two workers, or two machines, that claim at the same moment never both train.
    While it trains, a trial carries a heartbeat; a running trial whose heartbeat stops for
    `plan.stale_after` seconds is reclaimed by any worker (see `reclaim_abandoned`).
    """

    def __init__(self, study: optuna.Study, plan: StudyPlan, stop: threading.Event, log, hurry=None):
        super().__init__(daemon=True)
        self.study, self.plan, self.stop_event, self.log = study, plan, stop, log
        self.hurry = hurry or threading.Event()
        self.environment = child_environment(plan.workers)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            duplicates = 0
            while not self.stop_event.is_set() and duplicates < DUPLICATES_BEFORE_STOP:
                if reclaim_abandoned(self.study, self.plan.stale_after, self.log) and self.plan.grid:
                    enqueue_grid(self.study, self.plan.space)
                if self.plan.grid:
                    waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                    if not waiting:
                        return
                elif self._spent(None):
                    return
                trial = self.study.ask(self.plan.space.distributions())
                reason = self._skip_reason(trial)
                if reason == "budget":
                    self._skip(trial, reason)
                    return
                if reason is not None:
                    self._skip(trial, reason)
                    duplicates += 1
                    continue
                duplicates = 0
                try:
                    with Heartbeat(self.study, trial, min(HEARTBEAT_SECONDS, self.plan.stale_after / 4)):
                        self._run_trial(trial)
                except BaseException:
                    if self.study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                        trial.set_user_attr("status", "failed")
                        self.study.tell(trial, state=TrialState.FAIL)
                    raise
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which reports it
            self.error = error
            self.stop_event.set()

    def _spent(self, number: int | None) -> bool:
        trials = self.study.get_trials(deepcopy=False)
        return sum(counted(trial) and (number is None or trial.number < number) for trial in trials) >= (
            self.plan.trials
        )

    def _skip_reason(self, trial: optuna.Trial) -> str | None:
        params = trial.params
        for other in self.study.get_trials(deepcopy=False):
            if other.number < trial.number and counted(other) and trial_params(other) == params:
                return f"duplicate of trial {other.number}"
        if self._spent(trial.number):
            return "budget"
        return None

    def _skip(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr("skipped", reason)
        self.study.tell(trial, state=TrialState.FAIL)

    def _run_trial(self, trial: optuna.Trial) -> None:
        plan = self.plan
        tokens = plan.space.tokens(trial.params)
        setting = setting_key(tokens)
        setting_dir = os.path.join(plan.study_dir, setting)
        metric, direction = OBJECTIVES[plan.objective]
        trial.set_user_attr("setting", setting)
        trial.set_user_attr("flags", list(tokens))
        trial.set_user_attr("host", socket.gethostname())
        described = " ".join(f"{name}={value}" for name, value in trial.params.items()) or "(fixed flags)"
        self.log(f"trial {trial.number} started: {described} -> {setting_dir}")
        warmup_steps = plan.warmup * config_of(tokens).steps
        seeds: dict[str, dict] = {}
        for index, seed in enumerate(plan.seeds):

            def report(step, value, index=index):
                trial.report(objective_value(plan.objective, value), index * SEED_STEP + step)
                return step >= warmup_steps and trial.should_prune()

            outcome = run_training(
                (*tokens, "--seed", str(seed)),
                setting_dir,
                f"seed-{seed}",
                metric=metric,
                on_evaluation=report,
                stop=self.stop_event,
                hurry=self.hurry,
                environment=self.environment,
            )
            seeds[str(seed)] = {
                "status": outcome.status,
                "run_dir": os.path.join(setting_dir, f"seed-{seed}"),
                **(outcome.result or {}),
            }
            trial.set_user_attr("seeds", seeds)
            if outcome.status in ("pruned", "interrupted", "failed"):
                state = {"pruned": TrialState.PRUNED}.get(outcome.status, TrialState.FAIL)
                trial.set_user_attr("status", outcome.status)
                self.study.tell(trial, state=state)
                self.log(
                    f"trial {trial.number} {outcome.status} at seed {seed} "
                    f"(see {os.path.join(setting_dir, f'seed-{seed}.log')})"
                )
                return
        values = [objective_value(plan.objective, seed_result[metric]) for seed_result in seeds.values()]
        value = statistics.median(values)
        trial.set_user_attr("status", "completed")
        self.study.tell(trial, value)
        best = self.study.best_trial
        self.log(
            f"trial {trial.number} done: {plan.objective} {value:.4g} (median of {len(values)} seeds); "
            f"best so far trial {best.number}, {best.value:.4g} ({direction})"
        )
