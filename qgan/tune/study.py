"""Running a study: workers that claim trials in a shared storage, so no setting trains twice."""

from __future__ import annotations

import dataclasses
import os
import socket
import statistics
import threading

import optuna
from optuna.trial import TrialState

from qgan.tune.runs import OBJECTIVES, child_environment, run_training
from qgan.tune.space import Space, config_of, setting_key

LIVE_STATES = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
SEED_STEP = 10**9  # seed i reports evaluation step s as i·SEED_STEP + s, so seeds never share a step
DUPLICATES_BEFORE_STOP = 20


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
    """

    space: Space
    seeds: tuple[int, ...]
    objective: str
    trials: int
    study_dir: str
    workers: int
    warmup: float = 0.0


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


class Worker(threading.Thread):
    """Claims trials one after another and trains each setting on every seed.

    A claimed trial is dropped (told FAIL with a "skipped" attribute) when a trial of a lower
    number holds the same setting, or when the budget is spent by trials of lower numbers: with
    that rule two workers, or two machines, that claim at the same moment never both train.
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
                if self.plan.space.is_grid():
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
                trial.report(value, index * SEED_STEP + step)
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
        values = [seed_result[metric] for seed_result in seeds.values()]
        value = statistics.median(values)
        trial.set_user_attr("status", "completed")
        self.study.tell(trial, value)
        best = self.study.best_trial
        self.log(
            f"trial {trial.number} done: {plan.objective} {value:.4g} (median of {len(values)} seeds); "
            f"best so far trial {best.number}, {best.value:.4g} ({direction})"
        )
