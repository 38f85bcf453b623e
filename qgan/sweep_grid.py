"""A sweep's grid: training flags with comma-separated alternatives, planned as named runs."""

from __future__ import annotations

import dataclasses
import itertools
import shlex

from qgan.cli import build_parser, config_from_args
from qgan.config import ConfigError, flag_name

TRAIN_PROGRAM = "scripts/train_coordinate_quantum_gan.py"
MANAGED_FLAGS = ("--results-dir", "--run-name", "--resume")
LIST_VALUED = {"--critic-units"}  # a value is itself a comma list, so alternatives are split on ":"
BOOLEAN_WORDS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}


class SweepError(ValueError):
    """A sweep that cannot run as asked; the message names the flag or value."""


@dataclasses.dataclass(frozen=True)
class Axis:
    """One swept training flag.

    Attributes:
        field: the TrainConfig field, e.g. "g_lr".
        options: per value, the command-line tokens that set it, e.g. (("--g-lr", "1e-3"), …).
    """

    field: str
    options: tuple[tuple[str, ...], ...]


@dataclasses.dataclass(frozen=True)
class Grid:
    """Training flags shared by every run, and the axes whose values are crossed."""

    fixed: tuple[str, ...]
    axes: tuple[Axis, ...]

    def points(self) -> list[tuple[str, ...]]:
        """The training flags of every run, the last axis varying fastest."""
        return [
            self.fixed + tuple(token for option in choice for token in option)
            for choice in itertools.product(*(axis.options for axis in self.axes))
        ]


def _training_actions() -> dict:
    return build_parser()._option_string_actions


def parse_grid(tokens: list[str]) -> Grid:
    """Reads training flags whose values may be comma-separated alternatives.

    `--g-lr 1e-3,3e-4` sweeps two values; `--reupload yes,no` sweeps an on/off flag;
    `--critic-units 64,64:128,128` separates alternatives of a list-valued flag with ":".

    Args:
        tokens: command-line tokens of train_coordinate_quantum_gan.py.

    Returns:
        The Grid.

    Raises:
        SweepError: an unknown flag, a missing value, a flag the sweep sets itself, or a repeated flag.
    """
    actions = _training_actions()
    fixed: list[str] = []
    axes: list[Axis] = []
    seen: set[str] = set()
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        flag, _, attached = token.partition("=")
        if not flag.startswith("--") or flag == "--":
            raise SweepError(f"unexpected argument {token!r}; give training flags such as --g-lr 1e-3,3e-4")
        action = actions.get(flag)
        if action is None or action.dest == "help":
            raise SweepError(f"unknown training flag {flag}; see {TRAIN_PROGRAM} --help")
        if flag in MANAGED_FLAGS or action.dest in ("results_dir", "run_name", "resume"):
            raise SweepError(f"{flag} is set by the sweep for each run; use --output-dir and --name instead")
        if action.dest in seen:
            raise SweepError(
                f"{flag_name(action.dest)} is given twice; give its alternatives once, comma separated"
            )
        seen.add(action.dest)
        value = attached or None
        takes_value = action.nargs != 0
        boolean = not takes_value and flag_name(action.dest) in action.option_strings
        if value is None and position < len(tokens) and not tokens[position].startswith("--"):
            if takes_value or boolean:
                value = tokens[position]
                position += 1
        if not takes_value:
            if value is None:
                fixed.append(flag)
                continue
            if not boolean:
                raise SweepError(f"{flag} takes no value, got {value!r}")
            options = []
            for word in value.split(","):
                if word.lower() not in BOOLEAN_WORDS:
                    raise SweepError(
                        f"{flag_name(action.dest)} value {word!r} is not allowed; "
                        "use yes or no (comma separated)"
                    )
                on = BOOLEAN_WORDS[word.lower()]
                options.append((flag_name(action.dest) if on else "--no-" + flag_name(action.dest)[2:],))
        else:
            if value is None or value == "":
                raise SweepError(f"{flag} needs a value (or comma-separated values to sweep)")
            separator = ":" if flag_name(action.dest) in LIST_VALUED else ","
            words = value.split(separator)
            if any(word == "" for word in words):
                raise SweepError(
                    f"{flag} {value!r} holds an empty alternative; separate values with {separator!r}"
                )
            options = [(flag_name(action.dest), word) for word in words]
        if len(options) == 1:
            fixed.extend(options[0])
        else:
            axes.append(Axis(action.dest, tuple(options)))
    return Grid(tuple(fixed), tuple(axes))


class _RaisingParser:
    """The training parser, raising SweepError instead of exiting on a bad flag."""

    def __init__(self):
        self.parser = build_parser()

        def fail(message):
            raise SweepError(message)

        self.parser.error = fail

    def config(self, tokens):
        try:
            return config_from_args(self.parser.parse_args(list(tokens)))
        except ConfigError as error:
            raise SweepError(str(error)) from None


@dataclasses.dataclass
class Run:
    """One run of a sweep.

    Attributes:
        name: run folder name inside the sweep folder.
        tokens: its training flags (without --results-dir and --run-name).
        values: the swept fields' values as written in its config, by field.
        config: its TrainConfig as a dict.
    """

    name: str
    tokens: tuple[str, ...]
    values: dict
    config: dict


def plan_runs(grid: Grid) -> list[Run]:
    """Validates every point of a grid and names its run.

    Raises:
        SweepError: the first run whose flags the training script would refuse, with its message.
    """
    parser = _RaisingParser()
    runs = []
    points = grid.points()
    digits = len(str(len(points)))
    for index, tokens in enumerate(points):
        try:
            config = parser.config(tokens)
        except SweepError as error:
            raise SweepError(f"run {index} ({shlex.join(tokens)}): {error}") from None
        settings = config.to_dict()
        values = {axis.field: settings[axis.field] for axis in grid.axes}
        runs.append(Run(f"run-{index:0{digits}d}", tokens, values, settings))
    return runs


def format_value(value) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
