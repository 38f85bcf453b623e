"""TrainConfig: every knob of a training run, frozen and validated with one-line errors."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shlex

from qgan.runtime.errors import InputError

DATASETS = ("ring", "grid", "file")
NONFINITE_POLICIES = ("filter", "zero", "skip", "raise")
RECOVERIES = ("rollback", "stop", "none")
ENGINE_NAMES = ("fock", "sf")
GENERATORS = ("quantum", "classical", "classical-mixture")
READOUTS = ("expectation", "heralded")
DETECTORS = ("pnr", "threshold")
QUADRATURES = ("xp", "xx")
LR_SCHEDULES = ("constant", "linear", "cosine")
LR_SCHEDULE_PLAYERS = ("both", "generator")
LATENT_DISTRIBUTIONS = ("uniform", "gaussian")
DEFAULT_HOLDOUT = 0.2  # the share of a --data file held out of training when --holdout is not given
# what may differ between a saved run and the config that resumes it: the step budget, where it lives, logging
RESUMABLE_CHANGES = ("steps", "resume", "results_dir", "run_name", "tensorboard", "compile_cache")
SEED_MAX = 2**31 - 1
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# the value a run trained with when its config.json predates the flag (the behaviour before it)
VALUES_BEFORE_FLAGS = {
    "readout": "expectation",
    "ancillas": 1,
    "detector": "pnr",
    "quadratures": "xp",
    "ancilla_offset": 0.0,
    "marginal_critic": False,
    "gp_target": 1.0,
    "lr_schedule_players": "both",
    "xla_fusion_emitters": True,  # XLA's own default
    "latent_distribution": "uniform",
    "energy_weight": 0.0,
    "mmd_weight": 0.0,
    "average_decay": 0.0,
    "holdout": 0.0,
    "detector_efficiency": 1.0,
    "dark_counts": 0.0,
    "output_loss": 1.0,
    "latent_output": False,
}


# the circuit's own knobs, which no classical generator reads
CIRCUIT_ONLY_FIELDS = (
    "engine",
    "latent_scale",
    "max_squeeze",
    "max_displacement",
    "max_kerr",
    "init_std",
    "readout",
    "quadratures",
    "ancilla_offset",
    "trace_penalty",
    "output_loss",
    "latent_output",
)
# knobs of the heralded circuit's detectors and readout
HERALDED_ONLY_FIELDS = ("quadratures", "ancilla_offset", "detector_efficiency", "dark_counts")


def conflicting_settings(current: dict, saved: dict) -> list[str]:
    """Fields of a config dict that differ from a saved run's config.json, outside RESUMABLE_CHANGES.

    A key the saved file lacks (a flag added after the run was saved) stands for the behaviour
    before the flag existed (VALUES_BEFORE_FLAGS), which is how the run was trained.

    Returns:
        The differing field names, sorted.
    """
    return sorted(
        key
        for key in current
        if key not in RESUMABLE_CHANGES
        and saved.get(key, VALUES_BEFORE_FLAGS.get(key, object())) != current[key]
    )


class ConfigError(InputError):
    """A knob with a value that is not allowed; the message names the flag, the value and the rule."""


def flag_name(field: str) -> str:
    """The command-line flag of a config field, e.g. g_lr → --g-lr."""
    return "--" + field.replace("_", "-")


def flag_setting(field: str, value) -> str:
    """A field's value as the command line sets it: --g-lr 0.1, --reupload, --no-reupload."""
    if isinstance(value, bool):
        return flag_name(field) if value else "--no-" + flag_name(field)[2:]
    return f"{flag_name(field)} {value!r}"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run; the flags of train_coordinate_quantum_gan.py map onto it.

    Defaults are chosen so that the default run (compiled fock engine) finishes in under
    10 minutes on a 2-core CPU.
    """

    # data
    dataset: str = "ring"
    data: str | None = None
    centers: str | None = None
    std: float | None = None
    holdout: float | None = None
    # generator circuit
    generator: str = "quantum"
    engine: str = "fock"
    jit_compile: bool = True
    compile_cache: bool = True
    xla_fusion_emitters: bool = False
    modes: int = 2
    layers: int = 4
    cutoff: int = 10
    latent_scale: float = 0.02
    latent_distribution: str = "uniform"
    max_squeeze: float = 0.5
    max_displacement: float = 1.0
    max_kerr: float = 0.5
    init_std: float = 0.1
    reupload: bool = True
    readout: str = "heralded"
    ancillas: int = 1
    detector: str = "pnr"
    quadratures: str = "xp"
    ancilla_offset: float = 1.8
    detector_efficiency: float = 1.0
    dark_counts: float = 0.0
    output_loss: float = 1.0
    latent_output: bool = False
    # critic
    critic_units: tuple[int, ...] = (64, 64)
    marginal_critic: bool = True
    # optimisation
    g_lr: float = 2e-3
    d_lr: float = 2.5e-4
    g_beta1: float = 0.5
    g_beta2: float = 0.9
    d_beta1: float = 0.5
    d_beta2: float = 0.9
    n_critic: int = 5
    gp_weight: float = 1.0
    gp_target: float = 0.0
    trace_penalty: float = 1.0
    energy_weight: float = 0.0
    mmd_weight: float = 0.0
    average_decay: float = 0.999
    lr_schedule: str = "cosine"
    lr_final_fraction: float = 0.02
    lr_schedule_players: str = "generator"
    batch_size: int = 128
    steps: int = 3000
    # gradient guard of both players
    nonfinite: str = "filter"
    clip_value: float | None = 1.0
    clip_norm: float | None = None
    global_clip_norm: float | None = None
    max_consecutive_bad: int = 10
    recovery: str = "rollback"
    # evaluation and output
    eval_every: int = 500
    eval_samples: int = 2500
    checkpoint_every: int = 500
    seed: int = 0
    results_dir: str = "results"
    run_name: str | None = None
    resume: bool = False
    tensorboard: bool = True

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raises ConfigError naming the first setting that is not allowed."""
        if self.dataset not in DATASETS:
            raise ConfigError(f"--dataset {self.dataset!r} is unknown; allowed: {', '.join(DATASETS)}")
        if self.dataset == "file" and not self.data:
            raise ConfigError("--dataset file needs --data PATH (a .csv or .npy file of N×2 points)")
        if self.dataset != "file":
            for field in ("data", "centers", "std", "holdout"):
                if getattr(self, field) is not None:
                    raise ConfigError(f"{flag_name(field)} is only allowed with --dataset file")
        if self.generator not in GENERATORS:
            raise ConfigError(f"--generator {self.generator!r} is unknown; allowed: {', '.join(GENERATORS)}")
        if self.engine not in ENGINE_NAMES:
            raise ConfigError(f"--engine {self.engine!r} is unknown; allowed: {', '.join(ENGINE_NAMES)}")
        for field in (
            "jit_compile",
            "compile_cache",
            "xla_fusion_emitters",
            "reupload",
            "marginal_critic",
            "tensorboard",
            "latent_output",
        ):
            if not isinstance(getattr(self, field), bool):
                value = getattr(self, field)
                raise ConfigError(f"{flag_name(field)} {value!r} is not allowed; use true or false")
        for field, allowed in (
            ("readout", READOUTS),
            ("detector", DETECTORS),
            ("quadratures", QUADRATURES),
            ("latent_distribution", LATENT_DISTRIBUTIONS),
        ):
            if getattr(self, field) not in allowed:
                raise ConfigError(
                    f"{flag_name(field)} {getattr(self, field)!r} is unknown; allowed: {', '.join(allowed)}"
                )
        self._check_int("modes", 2, 6)
        heralded_circuit = self.generator == "quantum" and self.readout == "heralded"
        free_modes = self.modes - (1 if self.quadratures == "xp" else 2)
        if heralded_circuit and free_modes < 1:
            raise ConfigError(
                f"--modes {self.modes} leaves no ancilla: --quadratures {self.quadratures} reads "
                f"{self.modes - free_modes} modes; allowed: --modes {self.modes - free_modes + 1} or more"
            )
        self._check_int("ancillas", 1, free_modes if heralded_circuit else 6)
        if self.mixture_outcomes() > 4096:
            raise ConfigError(
                f"--ancillas {self.ancillas} with --cutoff {self.cutoff} and --detector {self.detector} "
                f"gives {self.mixture_outcomes()} outcomes; allowed: at most 4096"
            )
        if (
            not isinstance(self.ancilla_offset, int | float)
            or isinstance(self.ancilla_offset, bool)
            or not (math.isfinite(self.ancilla_offset) and abs(self.ancilla_offset) <= 5.0)
        ):
            raise ConfigError(
                f"--ancilla-offset {self.ancilla_offset!r} is not allowed; use a finite number from -5 to 5"
            )
        self._check_int("layers", 1, 64)
        self._check_int("cutoff", 2, 64)
        if self.cutoff**self.modes > 2**20:
            raise ConfigError(
                f"--cutoff {self.cutoff} with --modes {self.modes} gives a Fock space of "
                f"{self.cutoff**self.modes} amplitudes per sample; allowed: at most {2**20}"
            )
        for field in ("latent_scale", "g_lr", "d_lr", "init_std"):
            self._check_float(field, minimum=0.0, inclusive=False)
        for field in (
            "max_squeeze",
            "max_displacement",
            "max_kerr",
            "gp_weight",
            "gp_target",
            "trace_penalty",
            "energy_weight",
            "mmd_weight",
        ):
            self._check_float(field, minimum=0.0, inclusive=True)
        self._check_float("average_decay", minimum=0.0, inclusive=True, maximum=1.0)
        for field in ("detector_efficiency", "output_loss"):
            self._check_float(field, minimum=0.0, inclusive=False, maximum=1.0, maximum_inclusive=True)
        self._check_float("dark_counts", minimum=0.0, inclusive=True)
        if self.holdout is not None:
            self._check_float("holdout", minimum=0.0, inclusive=True, maximum=1.0)
        for field in ("g_beta1", "g_beta2", "d_beta1", "d_beta2"):
            self._check_float(field, minimum=0.0, inclusive=True, maximum=1.0)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"--lr-schedule {self.lr_schedule!r} is unknown; allowed: {', '.join(LR_SCHEDULES)}"
            )
        self._check_float("lr_final_fraction", minimum=0.0, inclusive=False, maximum=1.0)
        if self.lr_schedule_players not in LR_SCHEDULE_PLAYERS:
            raise ConfigError(
                f"--lr-schedule-players {self.lr_schedule_players!r} is unknown; "
                f"allowed: {', '.join(LR_SCHEDULE_PLAYERS)}"
            )
        if self.std is not None:
            self._check_float("std", minimum=0.0, inclusive=False)
        for field in ("clip_value", "clip_norm", "global_clip_norm"):
            if getattr(self, field) is not None:
                self._check_float(field, minimum=0.0, inclusive=False)
        if self.nonfinite not in NONFINITE_POLICIES:
            raise ConfigError(
                f"--nonfinite {self.nonfinite!r} is unknown; allowed: {', '.join(NONFINITE_POLICIES)}"
            )
        if self.recovery not in RECOVERIES:
            raise ConfigError(f"--recovery {self.recovery!r} is unknown; allowed: {', '.join(RECOVERIES)}")
        self._check_int("max_consecutive_bad", 1, 1_000_000)
        if not self.critic_units or not all(
            isinstance(width, int) and not isinstance(width, bool) and width >= 1
            for width in self.critic_units
        ):
            raise ConfigError(
                f"--critic-units {self.critic_units!r} is not allowed; give positive integers, e.g. 64,64"
            )
        self._check_int("n_critic", 1, 100)
        self._check_int("batch_size", 1, 100_000)
        self._check_int("steps", 1, 10_000_000)
        self._check_int("eval_every", 1, 10_000_000)
        self._check_int("eval_samples", 1, 10_000_000)
        self._check_int("checkpoint_every", 1, 10_000_000)
        if not isinstance(self.resume, bool):
            raise ConfigError(f"--resume {self.resume!r} is not allowed; use true or false")
        if self.resume and self.run_name is None:
            raise ConfigError("--resume needs --run-name NAME (the run folder to continue)")
        self._check_int("seed", 0, SEED_MAX)
        if not self.results_dir:
            raise ConfigError("--results-dir must not be empty")
        if self.run_name is not None and not RUN_NAME_PATTERN.match(self.run_name):
            raise ConfigError(
                f"--run-name {self.run_name!r} is not allowed; use letters, digits, '.', '_' and '-', "
                "starting with a letter or digit"
            )

    def inapplicable_fields(self) -> dict[str, str]:
        """The fields that do nothing in this config, each with the flag that makes it so.

        check_applicable() refuses such a field at a value other than its default; the command line
        also refuses one given explicitly (see cli.config_from_args).
        """
        reasons = {}
        quantum = self.generator == "quantum"
        heralded = quantum and self.readout == "heralded"

        def mark(fields, reason):
            for field in fields:
                reasons.setdefault(field, reason)

        if not quantum:
            mark(CIRCUIT_ONLY_FIELDS, f"--generator {self.generator}")
        if self.generator == "classical":
            mark(("cutoff", "ancillas", "detector", "marginal_critic"), "--generator classical")
        if quantum and not heralded:
            mark(HERALDED_ONLY_FIELDS + ("ancillas", "detector", "marginal_critic"), "--readout expectation")
        if self.generator == "classical-mixture":
            mark(HERALDED_ONLY_FIELDS, "--generator classical-mixture")
        if quantum and self.engine == "sf":
            mark(("xla_fusion_emitters",), "--engine sf (it runs eagerly)")
        if not self.jit_compile:
            mark(("xla_fusion_emitters",), "--no-jit-compile")
        if self.lr_schedule == "constant":
            mark(("lr_final_fraction", "lr_schedule_players"), "--lr-schedule constant")
        return reasons

    def check_applicable(self) -> None:
        """Raises ConfigError for a field that does nothing in this config but is set off its default.

        Training (and the command line) calls it; a config read back from an old run folder, whose
        VALUES_BEFORE_FLAGS may sit off the defaults, is not checked.
        """
        defaults = {field.name: field.default for field in dataclasses.fields(self)}
        for field, reason in self.inapplicable_fields().items():
            if getattr(self, field) != defaults[field]:
                raise ConfigError(
                    f"{flag_setting(field, getattr(self, field))} does not apply with {reason}; leave it out"
                )

    def _check_int(self, field: str, minimum: int, maximum: int) -> None:
        value = getattr(self, field)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ConfigError(
                f"{flag_name(field)} {value!r} is not allowed; use an integer from {minimum} to {maximum}"
            )

    def _check_float(
        self,
        field: str,
        minimum: float,
        inclusive: bool,
        maximum: float | None = None,
        maximum_inclusive: bool = False,
    ) -> None:
        value = getattr(self, field)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and math.isfinite(value):
            above = value >= minimum if inclusive else value > minimum
            below = maximum is None or (value <= maximum if maximum_inclusive else value < maximum)
            if above and below:
                return
        rule = f"{'≥' if inclusive else '>'} {minimum:g}"
        if maximum is not None:
            rule += f" and {'≤' if maximum_inclusive else '<'} {maximum:g}"
        raise ConfigError(f"{flag_name(field)} {value!r} is not allowed; use a finite number {rule}")

    def holdout_fraction(self) -> float:
        """The share of a --data file held out of training (DEFAULT_HOLDOUT unless --holdout says)."""
        return DEFAULT_HOLDOUT if self.holdout is None else self.holdout

    def generator_label(self) -> str:
        """Short name of the generator in run names and titles: the engine (and readout), or the MLP's."""
        if self.generator != "quantum":
            return self.generator
        return self.engine if self.readout == "expectation" else f"{self.engine}-heralded"

    def mixture_outcomes(self) -> int:
        """Outcomes of a mixture generator (heralded circuit or classical mixture); 0 for a plain map."""
        heralded_circuit = self.generator == "quantum" and self.readout == "heralded"
        if self.generator == "classical-mixture" or heralded_circuit:
            return self.cutoff**self.ancillas if self.detector == "pnr" else 2**self.ancillas
        return 0

    def guard_options(self) -> dict:
        """Keyword arguments of qgan.guard.GradientGuard for both players."""
        return {
            "nonfinite": self.nonfinite,
            "clip_value": self.clip_value,
            "clip_norm": self.clip_norm,
            "global_clip_norm": self.global_clip_norm,
            "max_consecutive_bad": self.max_consecutive_bad,
            "recovery": self.recovery,
        }

    def resume_conflicts(self, saved: dict) -> list[str]:
        """Fields in which this config differs from a saved run's, ignoring the step budget.

        Args:
            saved: the saved run's config.json.

        Returns:
            The differing field names, sorted; a key the saved file lacks stands for its default.
        """
        return conflicting_settings(self.to_dict(), saved)

    def command_line(self, program: str) -> str:
        """A shell command that runs `program` with this config's non-default flags."""
        defaults = TrainConfig().to_dict()
        parts = [program]
        for key, value in self.to_dict().items():
            if value == defaults[key]:
                continue
            if isinstance(value, bool):
                parts.append(flag_name(key) if value else "--no-" + flag_name(key)[2:])
            elif isinstance(value, list):
                parts += [flag_name(key), ",".join(str(item) for item in value)]
            else:
                parts += [flag_name(key), shlex.quote(str(0 if value is None else value))]
        return " ".join(parts)

    def to_dict(self) -> dict:
        """The config as JSON-ready values."""
        values = dataclasses.asdict(self)
        values["critic_units"] = list(self.critic_units)
        return values

    def to_json(self) -> str:
        """The config as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
