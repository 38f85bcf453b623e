"""A study's search space: training flags given a fixed value or a distribution, checked before any run."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from qgan.runtime.errors import InputError
from qgan.training.cli import build_parser, config_from_args, given_flags
from qgan.training.config import ConfigError, TrainConfig, flag_name

MANAGED_FLAGS = {"results_dir": "--output-dir", "run_name": "--study", "resume": "--study", "seed": "--seeds"}
BOOLEAN_WORDS = {"yes": True, "true": True, "on": True, "no": False, "false": False, "off": False}
KINDS = ("loguniform", "uniform", "int", "choice")
KINDS_HELP = "loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH or choice:A,B,…"
LIST_VALUED = {"critic_units"}  # a value is itself a comma list, so its choices are separated by "/"


class SpaceError(InputError):
    """A search space that cannot run as asked; the message names the flag or value."""


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searched training flag.

    Attributes:
        field: the TrainConfig field, e.g. "g_lr"; also the Optuna parameter name.
        distribution: what Optuna samples it from (choices are kept as the words given).
        boolean: an on/off flag, whose choices are yes/no words.
    """

    field: str
    distribution: BaseDistribution
    boolean: bool = False

    def tokens(self, value) -> tuple[str, ...]:
        """The command-line tokens that set this flag to `value`."""
        if self.boolean:
            on = BOOLEAN_WORDS[str(value).lower()]
            return (flag_name(self.field) if on else "--no-" + flag_name(self.field)[2:],)
        if isinstance(value, float):
            return (flag_name(self.field), repr(value))
        return (flag_name(self.field), str(value))

    def probe_values(self) -> list:
        """The values that check the space: both ends of a range, every choice."""
        distribution = self.distribution
        if isinstance(distribution, CategoricalDistribution):
            return list(distribution.choices)
        return [distribution.low, distribution.high]


@dataclasses.dataclass(frozen=True)
class Space:
    """Training flags shared by every trial and the parameters a sampler chooses.

    Attributes:
        fixed: command-line tokens given to every trial.
        parameters: the searched flags, in the order given.
    """

    fixed: tuple[str, ...]
    parameters: tuple[Parameter, ...]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {parameter.field: parameter.distribution for parameter in self.parameters}

    def tokens(self, params: dict) -> tuple[str, ...]:
        """The training flags of one setting (without --seed, --results-dir and --run-name)."""
        chosen = tuple(
            token for parameter in self.parameters for token in parameter.tokens(params[parameter.field])
        )
        return self.fixed + chosen

    def is_grid(self) -> bool:
        return all(
            isinstance(parameter.distribution, CategoricalDistribution) for parameter in self.parameters
        )

    def grid(self) -> list[dict]:
        """Every combination of the choices, the last parameter varying fastest (choice spaces only)."""
        names = [parameter.field for parameter in self.parameters]
        choices = [parameter.distribution.choices for parameter in self.parameters]
        return [dict(zip(names, combination)) for combination in itertools.product(*choices)]


def setting_key(tokens: tuple[str, ...]) -> str:
    """A short stable name of a setting's training flags (its run folders are named after it)."""
    return hashlib.sha1("\0".join(tokens).encode()).hexdigest()[:10]


def _number(text: str, flag: str, value: str, integer: bool) -> float:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise SpaceError(f"{flag} {value!r}: {text!r} is not {kind}; give {KINDS_HELP}") from None


def parse_distribution(flag: str, value: str, boolean: bool, separator: str = ",") -> BaseDistribution | None:
    """The distribution written as `kind:…`, or None for a fixed value.

    Raises:
        SpaceError: a malformed or empty distribution, naming the flag and the value.
    """
    kind, colon, rest = value.partition(":")
    if not colon or kind not in KINDS:
        return None
    if kind == "choice":
        words = rest.split(separator)
        if rest == "" or any(word == "" for word in words):
            raise SpaceError(f"{flag} {value!r} holds an empty choice; give choice:A{separator}B{separator}…")
        if len(set(words)) != len(words):
            raise SpaceError(f"{flag} {value!r} repeats a choice")
        if boolean and any(word.lower() not in BOOLEAN_WORDS for word in words):
            raise SpaceError(f"{flag} {value!r}: an on/off flag takes choice:yes,no")
        return CategoricalDistribution(words)
    if boolean:
        raise SpaceError(f"{flag} {value!r}: an on/off flag takes choice:yes,no")
    bounds = rest.split(":")
    if len(bounds) != 2:
        raise SpaceError(f"{flag} {value!r} needs two bounds; give {KINDS_HELP}")
    integer = kind == "int"
    low, high = (_number(bound, flag, value, integer) for bound in bounds)
    if not all(math.isfinite(bound) for bound in (low, high)) or low >= high:
        raise SpaceError(f"{flag} {value!r}: the low bound must be below the high bound")
    if kind == "loguniform" and low <= 0:
        raise SpaceError(f"{flag} {value!r}: loguniform bounds must be positive")
    if integer:
        return IntDistribution(low, high)
    return FloatDistribution(low, high, log=kind == "loguniform")


def parse_space(tokens: list[str]) -> Space:
    """Reads training flags whose values may be distributions, e.g. `--g-lr loguniform:1e-4:1e-2`.

    Args:
        tokens: command-line tokens of the training script, values as `kind:…` or fixed.

    Returns:
        The Space, with every parameter's bounds and choices checked by the training script's own
        validation.

    Raises:
        SpaceError: an unknown flag, a malformed distribution, a flag the study sets itself, a repeated
            flag, or a value the training script would refuse.
    """
    actions = build_parser()._option_string_actions
    fixed: list[str] = []
    parameters: list[Parameter] = []
    seen: set[str] = set()
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        flag, _, attached = token.partition("=")
        action = actions.get(flag) if flag.startswith("--") else None
        if action is None or action.dest == "help":
            raise SpaceError(f"unknown training flag {token!r}; see qgan-train --help")
        if action.dest in MANAGED_FLAGS:
            raise SpaceError(f"{flag} is set by the study for each run; use {MANAGED_FLAGS[action.dest]}")
        if action.dest in seen:
            raise SpaceError(f"{flag_name(action.dest)} is given twice")
        seen.add(action.dest)
        takes_value = action.nargs != 0
        boolean = not takes_value and flag_name(action.dest) in action.option_strings
        value = attached or None
        if value is None and position < len(tokens) and not tokens[position].startswith("--"):
            if takes_value or boolean:
                value = tokens[position]
                position += 1
        if value is None:
            if takes_value:
                raise SpaceError(f"{flag} needs a value or a distribution ({KINDS_HELP})")
            fixed.append(flag)
            continue
        separator = "/" if action.dest in LIST_VALUED else ","
        distribution = parse_distribution(flag, value, boolean, separator)
        if distribution is not None:
            parameters.append(Parameter(action.dest, distribution, boolean))
        elif boolean:
            raise SpaceError(f"{flag} takes no value, got {value!r}; search it with choice:yes,no")
        else:
            fixed.extend((flag, value))
    space = Space(tuple(fixed), tuple(parameters))
    check_space(space)
    return space


def space_record(space: Space) -> dict:
    """The space as JSON-ready values, which a study stores to refuse being continued with another one."""
    return {
        "fixed": list(space.fixed),
        "parameters": {
            parameter.field: distribution_to_json(parameter.distribution) for parameter in space.parameters
        },
    }


def check_files(space: Space) -> None:
    """Reads every data and centres file the space names (fixed or a choice), before anything runs.

    Raises:
        DataError: the training script's own message for a file it could not use.
    """
    from qgan.evaluation.targets import load_points

    values = {"data": [], "centers": []}
    for flag, value in zip(space.fixed, space.fixed[1:]):
        for field in values:
            if flag == flag_name(field):
                values[field].append(value)
    for parameter in space.parameters:
        if parameter.field in values:
            values[parameter.field] += list(parameter.distribution.choices)
    for field, paths in values.items():
        for path in paths:
            load_points(path, "data file" if field == "data" else "centres file")


def config_of(tokens: tuple[str, ...]) -> TrainConfig:
    """The TrainConfig the training script makes of `tokens`.

    Raises:
        SpaceError: its message when the training script would refuse them.
    """
    parser = build_parser()

    def fail(message):
        raise SpaceError(message)

    parser.error = fail
    try:
        return config_from_args(parser.parse_args(list(tokens)), given_flags(tokens))
    except ConfigError as error:
        raise SpaceError(str(error)) from None


def check_space(space: Space) -> None:
    """Runs every range end and every choice through the training script's validation.

    Each parameter is probed with the others at their first value.

    Raises:
        SpaceError: the training script's message, which names the flag and the value it refuses.
    """
    first = {parameter.field: parameter.probe_values()[0] for parameter in space.parameters}
    config_of(space.tokens(first))
    for parameter in space.parameters:
        for value in parameter.probe_values():
            config_of(space.tokens(first | {parameter.field: value}))
