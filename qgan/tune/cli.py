"""Command line of qgan-tune and scripts/tune.py: a search space from flags → an Optuna study."""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import signal
import sys
import threading
import time

import optuna

from qgan.runtime.errors import InputError
from qgan.training.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, HelpFormatter, OneLineErrorParser
from qgan.training.config import RUN_NAME_PATTERN
from qgan.tune.report import best_command, write_report
from qgan.tune.runs import OBJECTIVES, OBJECTIVES_HELP
from qgan.tune.space import KINDS_HELP, SpaceError, check_files, config_of, parse_space, space_record
from qgan.tune.storage import StorageError, open_storage, study_exists
from qgan.tune.study import StudyPlan, Worker, enqueue_grid, make_sampler, reclaim_abandoned

PROGRAM = "qgan-tune"
SAMPLERS = ("tpe", "grid", "random")
PRUNERS = ("median", "none")
DEFAULT_TRIALS = 20


def build_tune_parser() -> argparse.ArgumentParser:
    """The study's own flags; every other flag is a training flag with a fixed value or a distribution."""
    parser = OneLineErrorParser(
        prog=PROGRAM,
        description=(
            "Tune training flags with Optuna. Give any training flag (see qgan-train --help) a fixed value "
            f"or a distribution: {KINDS_HELP}, e.g. --g-lr loguniform:1e-4:1e-2 --layers int:2:8 "
            "--reupload choice:yes,no; choices of --critic-units are separated by '/': choice:64,64/128. "
            "Each trial trains its setting once per --seeds in a fresh process. "
            "Running the same command again continues the study; several commands (on several machines) "
            "on one --storage share it."
        ),
        epilog="exit status: 0 done, 1 a trial failed, 2 bad input, 130 stopped by Ctrl-C "
        "(runs write a checkpoint first; finished trials are never rerun)",
        formatter_class=HelpFormatter,
        allow_abbrev=False,  # a training flag such as --seed must not be read as an abbreviation of --seeds
    )
    parser.add_argument(
        "--study", default=None, help="study name (default: study-<hash of the command's flags>)"
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="a journal file path, or a database URL (sqlite:///…, postgresql://…) (default: "
        "<output-dir>/<study>/journal.log)",
    )
    parser.add_argument(
        "--output-dir", default=os.path.join("results", "tune"), help="folder that receives the study folder"
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=None,
        help="tpe = Optuna's TPE, random, or grid = every combination of choice: values, each once "
        "(default: grid when every searched flag is a choice:, tpe otherwise)",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help=f"trials the study holds when done, over all its workers (default: the grid's size, "
        f"{DEFAULT_TRIALS} for tpe/random)",
    )
    parser.add_argument(
        "--seeds", default="0", help="comma-separated seeds; each setting trains once per seed"
    )
    parser.add_argument(
        "--objective", choices=tuple(OBJECTIVES), default="high-quality", help=OBJECTIVES_HELP
    )
    parser.add_argument(
        "--pruner",
        choices=PRUNERS,
        default="median",
        help="median = stop a trial whose best evaluation so far is worse than the median of earlier "
        "trials at the same step (its run keeps its checkpoint); none = never stop early",
    )
    parser.add_argument(
        "--pruner-startup-trials",
        type=int,
        default=2,
        help="trials that finish before the median pruner stops any",
    )
    parser.add_argument(
        "--pruner-warmup",
        type=float,
        default=0.5,
        help="fraction of each run's --steps before the median pruner may stop it (a GAN's first "
        "evaluations are noisy; 0 judges from the first evaluation)",
    )
    parser.add_argument(
        "--stale-after",
        type=float,
        default=600.0,
        help="seconds without a heartbeat after which a running trial counts as abandoned (its worker "
        "was killed or its machine lost) and its setting runs again from its checkpoint",
    )
    parser.add_argument("--workers", type=int, default=1, help="trainings at a time on this machine")
    parser.add_argument("--sampler-seed", type=int, default=0, help="seed of the tpe/random sampler")
    parser.add_argument(
        "--heatmap",
        default=None,
        help="two searched flags' config names for heatmap.png's axes (x,y), e.g. g_lr,d_lr "
        "(default: the first two searched flags)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the summary and plots from the storage and stop (no training; run folders not needed)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the search space and stop")
    return parser


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SpaceError(
            f"--seeds {text!r} is not allowed; give comma-separated integers, e.g. 0,1,2"
        ) from None
    if len(set(seeds)) != len(seeds) or any(seed < 0 for seed in seeds):
        raise SpaceError(f"--seeds {text!r} is not allowed; give distinct integers ≥ 0")
    return seeds


def _pruner(args) -> optuna.pruners.BasePruner:
    if args.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=args.pruner_startup_trials)


def _check(args, space) -> tuple[str, ...]:
    """Checks the study's own flags; returns the heatmap's axes (or an empty tuple)."""
    for flag, value, least in (
        ("--workers", args.workers, 1),
        ("--trials", args.trials, 1),
        ("--pruner-startup-trials", args.pruner_startup_trials, 0),
    ):
        if value is not None and value < least:
            raise SpaceError(f"{flag} {value} is not allowed; use an integer ≥ {least}")
    if not args.stale_after > 0:
        raise SpaceError(f"--stale-after {args.stale_after:g} is not allowed; use a number of seconds > 0")
    if args.sampler_seed < 0:
        raise SpaceError(f"--sampler-seed {args.sampler_seed} is not allowed; use an integer ≥ 0")
    if not 0.0 <= args.pruner_warmup < 1.0:
        raise SpaceError(f"--pruner-warmup {args.pruner_warmup:g} is not allowed; use a fraction in [0, 1)")
    if args.sampler == "grid" and not space.is_grid():
        raise SpaceError("--sampler grid needs every searched flag as choice:A,B,…")
    if args.study is not None and not RUN_NAME_PATTERN.match(args.study):
        raise SpaceError(f"--study {args.study!r} is not allowed; use letters, digits, '.', '_' and '-'")
    names = [parameter.field for parameter in space.parameters]
    if args.heatmap is None:
        return tuple(names[:2]) if len(names) >= 2 else ()
    axes = tuple(args.heatmap.split(","))
    if len(axes) != 2 or any(name not in names for name in axes):
        raise SpaceError(
            f"--heatmap {args.heatmap!r} is not allowed; give two searched flags' config names, "
            f"from: {', '.join(names) or 'none searched'}"
        )
    return axes


def check_objective(objective: str, config) -> None:
    """Raises SpaceError when the objective cannot be measured on the study's dataset."""
    if config.dataset != "file":
        return
    if objective == "w1" and config.holdout_fraction() == 0:
        raise SpaceError("--objective w1 needs held-out points of --data: --holdout above 0")
    if objective != "w1" and config.centers is None:
        raise SpaceError(f"--objective {objective} needs --centers with --dataset file (or --objective w1)")


def check_same_study(study, study_name: str, location: str, objective: str, space) -> None:
    """Raises StorageError when an existing study was made with another objective or search space.

    A study records its search space when it is made; a study from before that record is compared
    by the distributions of its trials.
    """
    if (
        study.direction.name.lower() != OBJECTIVES[objective][1]
        or study.user_attrs.get("objective", objective) != objective
    ):
        raise StorageError(
            f"study {study_name!r} in {location!r} was made with another --objective; choose another --study"
        )
    record = space_record(space)
    saved = study.user_attrs.get("space")
    if saved is None:  # a new study, or one made before studies recorded their space
        searched = {
            name: optuna.distributions.distribution_to_json(distribution)
            for trial in study.get_trials(deepcopy=False)
            for name, distribution in trial.distributions.items()
        }
        if all(record["parameters"].get(name) == value for name, value in searched.items()):
            study.set_user_attr("space", record)
            return
    if saved != record:
        raise StorageError(
            f"study {study_name!r} in {location!r} was made with another search space or fixed flags; "
            "repeat its command (see its summary.md) or choose another --study"
        )


def main(argv=None, log=None) -> int:
    """Runs or continues a study from the command line; returns the exit status."""
    log = log or (lambda line: print(line, flush=True))
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_tune_parser()
    args, training_tokens = parser.parse_known_args(argv)
    try:
        space = parse_space(training_tokens)
        seeds = _seeds(args.seeds)
        heatmap = _check(args, space)
        first = space.tokens({parameter.field: parameter.probe_values()[0] for parameter in space.parameters})
        for seed in seeds:
            config_of((*first, "--seed", str(seed)))
        check_files(space)
        check_objective(args.objective, config_of(first))
    except InputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sampler_name = args.sampler or ("grid" if space.is_grid() else "tpe")
    grid_size = len(space.grid()) if sampler_name == "grid" else None
    trials = args.trials or grid_size or DEFAULT_TRIALS
    if grid_size is not None:
        trials = min(trials, grid_size)
    study_name = (
        args.study
        or "study-"
        + hashlib.sha1(
            "\0".join([*training_tokens, args.seeds, args.objective, sampler_name]).encode()
        ).hexdigest()[:8]
    )
    study_dir = os.path.join(args.output_dir, study_name)
    location = args.storage or os.path.join(study_dir, "journal.log")
    continuing = [token for token in argv if token not in ("--report-only", "--dry-run")]
    command = shlex.join([PROGRAM, *continuing, *([] if args.study else ["--study", study_name])])
    log(
        f"{PROGRAM}: study {study_name}, {sampler_name} sampler, {trials} trials × seeds {list(seeds)}, "
        f"objective {args.objective}, {args.workers} at a time -> {study_dir} (storage {location})"
    )
    for parameter in space.parameters:
        log(f"  {parameter.field}: {parameter.distribution}")
    if args.dry_run:
        return 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        exists = study_exists(location, study_name)
        if args.report_only and not exists:
            raise StorageError(f"--study {study_name!r}: no such study in {location!r}; nothing to report")
        options = dict(
            study_name=study_name,
            storage=open_storage(location),
            sampler=make_sampler(sampler_name, args.sampler_seed),
            pruner=_pruner(args),
        )
        # an existing study is loaded, which writes nothing; creating one appends to a journal
        study = (
            optuna.load_study(**options)
            if exists
            else optuna.create_study(**options, direction=OBJECTIVES[args.objective][1], load_if_exists=True)
        )
        check_same_study(study, study_name, location, args.objective, space)
    except InputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    study.set_user_attr("objective", args.objective)
    study.set_user_attr("seeds", list(seeds))
    if args.report_only:
        for path in write_report(study, study_dir, seeds, command, heatmap):
            log(f"wrote {path}")
        return 0
    reclaim_abandoned(study, args.stale_after, log)
    if sampler_name == "grid":
        enqueue_grid(study, space)
    plan = StudyPlan(
        space,
        seeds,
        args.objective,
        trials,
        study_dir,
        args.workers,
        args.pruner_warmup,
        args.stale_after,
        grid=sampler_name == "grid",
    )
    stop, hurry = threading.Event(), threading.Event()
    workers = [Worker(study, plan, stop, log, hurry) for _ in range(args.workers)]
    started = time.time()

    def on_ctrl_c(signum, frame):
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if stop.is_set():
            log(f"{name} again: stopping every run at once ...")
            hurry.set()
        else:
            log(f"{name}: stopping every run (each saves a checkpoint first) ...")
            stop.set()

    # a handler, not KeyboardInterrupt: a Thread.join interrupted by KeyboardInterrupt can return early.
    # The runs sit in sessions of their own, so a plain `kill` (SIGTERM) must stop them the same way.
    previous_handlers = {
        signum: signal.signal(signum, on_ctrl_c) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        for worker in workers:
            worker.start()
        while any(worker.is_alive() for worker in workers):
            time.sleep(0.2)
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    errors = [worker.error for worker in workers if worker.error is not None]
    interrupted = stop.is_set() and not errors
    paths = write_report(study, study_dir, seeds, command, heatmap)
    log(f"study {study_name}: {time.time() - started:.0f} s; report: {', '.join(paths)}")
    if errors:
        raise errors[0]
    best = best_command(study, seeds)
    if best:
        log(f"best: trial {study.best_trial.number}, {args.objective} {study.best_trial.value:.4g}: {best}")
    if interrupted:
        log(f"interrupted; continue with: {command}")
        return EXIT_INTERRUPTED
    failed = [
        trial for trial in study.get_trials(deepcopy=False) if trial.user_attrs.get("status") == "failed"
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
