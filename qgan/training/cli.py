"""Command line of qgan-train and scripts/train_coordinate_quantum_gan.py: flags → TrainConfig → train."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from qgan.runtime.errors import InputError
from qgan.training.config import (
    DATASETS,
    DEFAULT_HOLDOUT,
    DETECTORS,
    ENGINE_NAMES,
    GENERATORS,
    LATENT_DISTRIBUTIONS,
    LR_SCHEDULE_PLAYERS,
    LR_SCHEDULES,
    NONFINITE_POLICIES,
    QUADRATURES,
    READOUTS,
    RECOVERIES,
    ConfigError,
    TrainConfig,
    flag_name,
    flag_setting,
)

PROGRAM = "qgan-train"  # the console script; scripts/train_coordinate_quantum_gan.py is the same main
EXIT_NONFINITE = 1  # --nonfinite raise met a NaN/Inf
EXIT_BAD_INPUT = 2
EXIT_GUARD_STOP = 3  # --recovery stop ended the run early (checkpoint and results written)
EXIT_INTERRUPTED = 130  # Ctrl-C (results written)
DEFAULTS = TrainConfig()


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr with exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: …)" to every flag's help, "not set" for flags without a default."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help if "default:" in action.help else action.help + " (default: not set)"
        return super()._get_help_string(action)


def _critic_units(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}; give comma-separated positive integers, e.g. 64,64"
        ) from None
    return units


def _option(group, field: str, help: str, **kwargs) -> None:
    """Adds the flag of a TrainConfig field, its default taken from TrainConfig."""
    kwargs.setdefault("default", getattr(DEFAULTS, field))
    group.add_argument(flag_name(field), dest=field, help=help, **kwargs)


def program_name() -> str:
    """How this process was started, for its messages: the script's file name, or qgan-train."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name.startswith(("qgan-", "train_coordinate")) else PROGRAM


def build_parser() -> argparse.ArgumentParser:
    """The parser of every training flag; defaults come from TrainConfig."""
    parser = OneLineErrorParser(
        prog=program_name(),
        description="Train a continuous-variable quantum GAN on 2-D coordinates; measure its mode coverage.",
        epilog="exit status: 0 done, 1 stopped by --nonfinite raise, 2 bad input, 3 stopped by "
        "--recovery stop, 130 stopped by Ctrl-C (3 and 130 write a checkpoint and the results first)",
        formatter_class=HelpFormatter,
    )
    data = parser.add_argument_group("data")
    _option(
        data,
        "dataset",
        "target: ring (8 Gaussians, radius 2, std 0.02), grid (25 Gaussians at "
        "{-4,-2,0,2,4}², std 0.05) or file (your own points, see --data)",
        choices=DATASETS,
    )
    _option(data, "data", "with --dataset file: .csv or .npy file of N×2 points (x, y)")
    _option(
        data, "centers", "with --dataset file: .csv or .npy file of K×2 mode centres, to measure coverage"
    )
    _option(
        data,
        "std",
        "with --centers: per-axis std of each mode for the 3·std rule; "
        "estimated from the data when not given",
        type=float,
    )
    _option(
        data,
        "holdout",
        f"with --dataset file: the share of the points held out of training, to measure the generator's "
        f"distance to unseen data (default: {DEFAULT_HOLDOUT:g}; 0 holds out nothing)",
        type=float,
    )

    circuit = parser.add_argument_group("generator circuit")
    _option(
        circuit,
        "generator",
        "quantum = the CV circuit below; classical = a LeakyReLU MLP with two equal hidden layers sized to "
        "about the circuit's number of trainable parameters, trained by the same loop (a baseline: "
        "only --modes, as its latent dimension, applies to it); classical-mixture = learned categorical "
        "logits over as many outcomes as --ancillas/--detector/--cutoff give, and an MLP of the "
        "outcome and the latent sized to about the circuit, trained by the same marginalised loss",
        choices=GENERATORS,
    )
    _option(
        circuit,
        "engine",
        "simulator that runs the circuit: fock = our batched TensorFlow Fock simulation (compiled, fast), "
        "sf = Strawberry Fields' tf backend (the reference, eager, slow)",
        choices=ENGINE_NAMES,
    )
    _option(
        circuit,
        "jit_compile",
        "compile the training step and sampling with XLA (fock engine; --no-jit-compile runs them as "
        "plain tf.function graphs, which start faster but step slower)",
        action=argparse.BooleanOptionalAction,
    )
    _option(
        circuit,
        "xla_fusion_emitters",
        "compile with XLA's newer CPU fusion emitters: on the current engine they step about as fast "
        "as the older ones, compile about 1.5 s longer and take 350 MB more peak memory (the default "
        "run: 1.18 against 1.52 GiB); an XLA_FLAGS setting of --xla_cpu_use_fusion_emitters wins",
        action=argparse.BooleanOptionalAction,
    )
    _option(
        circuit,
        "compile_cache",
        "keep XLA's compiled steps in $XDG_CACHE_HOME/qgan/xla (~/.cache/qgan/xla), so a repeated run "
        "of the same shapes (a resume, the seeds of a study) compiles faster; --no-compile-cache writes none",
        action=argparse.BooleanOptionalAction,
    )
    _option(
        circuit, "modes", "optical modes (the first two are read out as x, y; the latent dimension)", type=int
    )
    _option(
        circuit,
        "layers",
        "CV neural-network layers (interferometer, squeezing, interferometer, displacement, Kerr)",
        type=int,
    )
    _option(circuit, "cutoff", "Fock-space cutoff per mode (≥ 2)", type=int)
    _option(circuit, "latent_scale", "displacement per unit of latent noise", type=float)
    _option(
        circuit,
        "latent_distribution",
        "how the generator reads its latent noise: uniform on [-1, 1], or gaussian (standard normal, "
        "through the inverse CDF of the uniform draw; a mode's cluster is then the image of a Gaussian, "
        "not of a square)",
        choices=LATENT_DISTRIBUTIONS,
    )
    _option(circuit, "max_squeeze", "bound on each squeezing magnitude (r = max·tanh(w))", type=float)
    _option(circuit, "max_displacement", "bound on each layer's displacement (d = max·tanh(w))", type=float)
    _option(circuit, "max_kerr", "bound on each Kerr strength (κ = max·tanh(w))", type=float)
    _option(circuit, "init_std", "standard deviation of the initial circuit weights", type=float)
    _option(
        circuit,
        "reupload",
        "latent re-uploading: displace the latent noise into the modes again before every layer, "
        "with a trainable weight per layer and mode",
        action=argparse.BooleanOptionalAction,
    )
    _option(
        circuit,
        "latent_output",
        "after the circuit, displace the read modes by the latent noise once more, by latent_scale·v·z "
        "with a trainable v per coordinate (mode 0 in x and p, or modes 0 and 1 in x): every outcome's "
        "cluster gains the same spread, isotropic for a Gaussian latent",
        action=argparse.BooleanOptionalAction,
    )
    _option(
        circuit,
        "readout",
        "how the final state becomes coordinates: expectation = x-quadrature expectations of modes 0 "
        "and 1; heralded = measure the last --ancillas modes by photon counting, and read the "
        "conditional state's means (see --quadratures); the outcome is drawn by the Born rule",
        choices=READOUTS,
    )
    _option(
        circuit,
        "ancillas",
        "with --readout heralded (or --generator classical-mixture): measured ancilla modes, the last "
        "ones of --modes",
        type=int,
    )
    _option(
        circuit,
        "detector",
        "with --readout heralded: pnr = photon-number resolving (cutoff^ancillas outcomes), threshold = "
        "click / no click (2^ancillas outcomes)",
        choices=DETECTORS,
    )
    _option(
        circuit,
        "detector_efficiency",
        "with --readout heralded: each detector's efficiency η, 0 < η ≤ 1 (an ideal detector after a loss "
        "channel of transmission η)",
        type=float,
    )
    _option(
        circuit,
        "dark_counts",
        "with --readout heralded: mean dark counts ν ≥ 0 per detection window, a Poisson count added to "
        "the photons' (a pnr count is truncated at the cutoff: its last outcome holds every count "
        "≥ cutoff − 1)",
        type=float,
    )
    _option(
        circuit,
        "output_loss",
        "transmission T, 0 < T ≤ 1, of a loss channel before the read modes' quadratures: ⟨a⟩ becomes "
        "√T·⟨a⟩, what a lossy homodyne path measures",
        type=float,
    )
    _option(
        circuit,
        "quadratures",
        "with --readout heralded: xp = (⟨x⟩, ⟨p⟩) of mode 0; xx = ⟨x⟩ of modes 0 and 1 (the expectation "
        "readout always reads xx)",
        choices=QUADRATURES,
    )
    _option(
        circuit,
        "ancilla_offset",
        "with --readout heralded: fixed displacement added to each ancilla's first latent displacement, "
        "so the photon counts start spread over many outcomes (|offset| ≤ 5)",
        type=float,
    )

    critic = parser.add_argument_group("critic")
    _option(
        critic,
        "critic_units",
        "hidden-layer widths of the MLP critic, comma separated",
        type=_critic_units,
        default=",".join(str(width) for width in DEFAULTS.critic_units),
    )
    _option(
        critic,
        "marginal_critic",
        "with a mixture generator: score the critic's fake term as the exact average over outcomes "
        "Σ p_n·D(G_n) rather than over Born-rule samples (lower variance)",
        action=argparse.BooleanOptionalAction,
    )

    optimisation = parser.add_argument_group("optimisation")
    _option(optimisation, "g_lr", "generator Adam learning rate", type=float)
    _option(optimisation, "d_lr", "critic Adam learning rate", type=float)
    _option(optimisation, "g_beta1", "generator Adam beta_1", type=float)
    _option(optimisation, "g_beta2", "generator Adam beta_2", type=float)
    _option(optimisation, "d_beta1", "critic Adam beta_1", type=float)
    _option(optimisation, "d_beta2", "critic Adam beta_2", type=float)
    _option(optimisation, "n_critic", "critic steps per generator step", type=int)
    _option(optimisation, "gp_weight", "weight λ of the gradient penalty in the critic loss", type=float)
    _option(
        optimisation,
        "gp_target",
        "the critic gradient norm the penalty pulls towards on real/fake interpolates: 1 is WGAN-GP; "
        "0 is the zero-centred penalty, which damps the critic so point-like modes settle on their centres",
        type=float,
    )
    _option(
        optimisation,
        "trace_penalty",
        "weight of mean(1 − Fock trace) in the generator loss; keeps the state inside the cutoff (0 = off)",
        type=float,
    )
    _option(
        optimisation,
        "energy_weight",
        "weight of the squared energy distance between the generator's batch (exact over outcomes) and "
        "the step's real points in the generator loss (0 = off): its gradient sees each mode's width, "
        "where the critic's vanishes at point-like modes",
        type=float,
    )
    _option(
        optimisation,
        "mmd_weight",
        "weight of a local MMD between the generator's batch (exact over outcomes) and the step's real "
        "points in the generator loss (0 = off): Laplace kernels at 1, 2, 4 and 8 times the data's local "
        "scale, so each mode is matched to its own real points",
        type=float,
    )
    _option(
        optimisation,
        "average_decay",
        "decay of an exponential moving average of the generator's weights (with a warm-up), which "
        "every evaluation and the saved generator use (0 = none: the last weights)",
        type=float,
    )
    _option(
        optimisation,
        "lr_schedule",
        "learning-rate decay over --steps of the players --lr-schedule-players names: constant, linear or "
        "cosine from the given rate down to --lr-final-fraction of it at the last step",
        choices=LR_SCHEDULES,
    )
    _option(
        optimisation,
        "lr_final_fraction",
        "with --lr-schedule linear or cosine: the fraction of each learning rate left at the last step",
        type=float,
    )
    _option(
        optimisation,
        "lr_schedule_players",
        "whose learning rate --lr-schedule decays: both players, or the generator only (the critic keeps "
        "its full rate, so it still resolves small offsets late in training)",
        choices=LR_SCHEDULE_PLAYERS,
    )
    _option(optimisation, "batch_size", "samples per critic step and per generator step", type=int)
    _option(optimisation, "steps", "generator steps (each after --n-critic critic steps)", type=int)

    guard = parser.add_argument_group("gradient guard (both players)")
    _option(
        guard,
        "nonfinite",
        "what a NaN/Inf gradient does: filter = leave that variable (and its Adam moments) untouched and "
        "update the rest; zero = apply zeros in its place; skip = update nothing; raise = stop with an "
        "error naming the variables. A NaN/Inf loss always updates nothing",
        choices=NONFINITE_POLICIES,
    )
    _option(guard, "clip_value", "element-wise gradient clipping bound (0 = off)", type=float)
    _option(
        guard,
        "clip_norm",
        "per-variable gradient L2-norm bound, applied after --clip-value (0 = off)",
        type=float,
    )
    _option(
        guard,
        "global_clip_norm",
        "joint L2-norm bound over all of a player's gradients, applied last (0 = off)",
        type=float,
    )
    _option(
        guard,
        "max_consecutive_bad",
        "bad steps (NaN/Inf loss or gradient) in a row that trigger --recovery",
        type=int,
    )
    _option(
        guard,
        "recovery",
        "after --max-consecutive-bad bad steps: rollback = restore the last healthy snapshot of the "
        "player's weights and optimizer and halve its learning rate; stop = end training cleanly, "
        "write the results and exit with status 3 (resuming clears the stop); none = carry on",
        choices=RECOVERIES,
    )

    output = parser.add_argument_group("evaluation and output")
    _option(
        output,
        "eval_every",
        "generator steps between evaluations (a metrics.csv row and a progress line)",
        type=int,
    )
    _option(output, "eval_samples", "fresh generated samples per evaluation of mode coverage", type=int)
    _option(output, "seed", "seed of weights, data and noise", type=int)
    _option(
        output,
        "checkpoint_every",
        "generator steps between checkpoints of the whole training state (the last 3 are kept; "
        "one is also written at the end and on Ctrl-C)",
        type=int,
    )
    _option(output, "results_dir", "folder that receives one sub-folder per run")
    _option(output, "run_name", "name of this run's folder (default: <dataset>-<engine>-<date>-<time>)")
    _option(
        output,
        "tensorboard",
        "write TensorBoard logs into the run folder's tensorboard/: the losses, Wasserstein estimate, "
        "penalty, gradient norms, trace, guard counters and each evaluation's modes, high quality and KL "
        "(one epoch = one --eval-every interval), and an image of the samples per evaluation",
        action=argparse.BooleanOptionalAction,
    )
    _option(
        output,
        "resume",
        "continue the run in --run-name from its last checkpoint (re-running the same --run-name does "
        "the same); every setting must match the saved config.json except --steps",
        action="store_true",
    )
    return parser


def given_flags(argv) -> set[str]:
    """The config fields that `argv` sets explicitly (whatever their values)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    parser.error = lambda message: None  # the real parse reports errors
    known, _ = parser.parse_known_args(list(argv))
    return set(vars(known))


def config_from_args(args: argparse.Namespace, given=()) -> TrainConfig:
    """The TrainConfig of parsed flags.

    Args:
        args: the parsed flags.
        given: the fields set explicitly (given_flags); one that does not apply to the config is refused.

    Raises:
        ConfigError: a value that is not allowed, or a flag given that does not apply.
    """
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)}
    for field in ("clip_value", "clip_norm", "global_clip_norm"):
        if values[field] == 0:
            values[field] = None
    config = TrainConfig(**values)
    config.check_applicable()
    inapplicable = config.inapplicable_fields()
    for field in sorted(set(given) & set(inapplicable), key=list(values).index):
        setting = flag_setting(field, values[field])
        raise ConfigError(f"{setting} does not apply with {inapplicable[field]}; leave it out")
    return config


def check_files(config: TrainConfig) -> None:
    """Reads the data and centres files before TensorFlow starts (DataError for one that cannot be used)."""
    if config.dataset == "file":
        from qgan.evaluation.targets import load_points

        load_points(config.data, "data file")
        if config.centers is not None:
            load_points(config.centers, "centres file")


def main(argv=None) -> int:
    """Parses flags, trains, and returns the exit status (2 for bad input, with a one-line error)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args, given_flags(argv))
        check_files(config)
    except InputError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from qgan.runtime.quiet import import_tensorflow
    from qgan.training.compiler import prepare_compiler

    prepare_compiler(config)
    tf = import_tensorflow()

    from qgan.guard import NonFiniteError
    from qgan.runtime.heap import freeze_imports
    from qgan.training.train import train

    freeze_imports()
    try:
        result = train(config, log=lambda line: print(line, flush=True))
    except InputError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (NonFiniteError, tf.errors.InvalidArgumentError) as error:
        message = getattr(error, "message", None) or str(error)
        if "non-finite values in" not in message:
            raise
        detail = message[message.index("non-finite values in") :].splitlines()[0]
        print(f"{parser.prog}: training stopped by --nonfinite raise: {detail}", file=sys.stderr)
        return EXIT_NONFINITE
    return {"interrupted": EXIT_INTERRUPTED, "guard-stop": EXIT_GUARD_STOP}.get(result.status, 0)


if __name__ == "__main__":
    sys.exit(main())
