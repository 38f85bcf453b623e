"""Command line of qgan-train and scripts/train_coordinate_quantum_gan.py: flags → TrainConfig → train."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from qgan.config import DATASETS, ENGINE_NAMES, ConfigError, TrainConfig

PROGRAM = "train_coordinate_quantum_gan.py"
DEFAULTS = TrainConfig()


class _OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr with exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of every training flag; defaults come from TrainConfig."""
    parser = _OneLineErrorParser(
        prog=PROGRAM,
        description="Train a continuous-variable quantum GAN on 2-D coordinates; measure its mode coverage.",
        formatter_class=_HelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=DATASETS,
        default=DEFAULTS.dataset,
        help="target: ring (8 Gaussians, radius 2, std 0.02), grid (25 Gaussians at "
        "{-4,-2,0,2,4}², std 0.05) or file (your own points, see --data)",
    )
    data.add_argument(
        "--data",
        default=DEFAULTS.data,
        help="with --dataset file: .csv or .npy file of N×2 points (x, y)",
    )
    data.add_argument(
        "--centers",
        default=DEFAULTS.centers,
        help="with --dataset file: .csv or .npy file of K×2 mode centres, to measure coverage",
    )
    data.add_argument(
        "--std",
        type=float,
        default=DEFAULTS.std,
        help="with --centers: per-axis std of each mode for the 3·std rule; "
        "estimated from the data when not given",
    )

    circuit = parser.add_argument_group("generator circuit")
    circuit.add_argument(
        "--engine",
        choices=ENGINE_NAMES,
        default=DEFAULTS.engine,
        help="simulator that runs the circuit: sf = Strawberry Fields' tf backend",
    )
    circuit.add_argument(
        "--modes",
        type=int,
        default=DEFAULTS.modes,
        help="optical modes (the first two are read out as x, y; the latent dimension)",
    )
    circuit.add_argument(
        "--layers",
        type=int,
        default=DEFAULTS.layers,
        help="CV neural-network layers (interferometer, squeezing, interferometer, displacement, Kerr)",
    )
    circuit.add_argument(
        "--cutoff", type=int, default=DEFAULTS.cutoff, help="Fock-space cutoff per mode (≥ 2)"
    )
    circuit.add_argument(
        "--latent-scale",
        type=float,
        default=DEFAULTS.latent_scale,
        help="displacement per unit of latent noise z ∈ [-1, 1]",
    )
    circuit.add_argument(
        "--max-squeeze",
        type=float,
        default=DEFAULTS.max_squeeze,
        help="bound on each squeezing magnitude (r = max·tanh(w))",
    )
    circuit.add_argument(
        "--max-displacement",
        type=float,
        default=DEFAULTS.max_displacement,
        help="bound on each layer's displacement (d = max·tanh(w))",
    )
    circuit.add_argument(
        "--max-kerr",
        type=float,
        default=DEFAULTS.max_kerr,
        help="bound on each Kerr strength (κ = max·tanh(w))",
    )
    circuit.add_argument(
        "--init-std",
        type=float,
        default=DEFAULTS.init_std,
        help="standard deviation of the initial circuit weights",
    )

    critic = parser.add_argument_group("critic")
    critic.add_argument(
        "--critic-units",
        type=_critic_units,
        default=",".join(str(width) for width in DEFAULTS.critic_units),
        help="hidden-layer widths of the MLP critic, comma separated",
    )

    optimisation = parser.add_argument_group("optimisation")
    optimisation.add_argument(
        "--g-lr", type=float, default=DEFAULTS.g_lr, help="generator Adam learning rate"
    )
    optimisation.add_argument("--d-lr", type=float, default=DEFAULTS.d_lr, help="critic Adam learning rate")
    optimisation.add_argument("--g-beta1", type=float, default=DEFAULTS.g_beta1, help="generator Adam beta_1")
    optimisation.add_argument("--g-beta2", type=float, default=DEFAULTS.g_beta2, help="generator Adam beta_2")
    optimisation.add_argument("--d-beta1", type=float, default=DEFAULTS.d_beta1, help="critic Adam beta_1")
    optimisation.add_argument("--d-beta2", type=float, default=DEFAULTS.d_beta2, help="critic Adam beta_2")
    optimisation.add_argument(
        "--n-critic", type=int, default=DEFAULTS.n_critic, help="critic steps per generator step"
    )
    optimisation.add_argument(
        "--gp-weight",
        type=float,
        default=DEFAULTS.gp_weight,
        help="weight λ of the gradient penalty in the critic loss",
    )
    optimisation.add_argument(
        "--trace-penalty",
        type=float,
        default=DEFAULTS.trace_penalty,
        help="weight of mean(1 − Fock trace) in the generator loss; keeps the "
        "state inside the cutoff (0 = off)",
    )
    optimisation.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULTS.batch_size,
        help="samples per critic step and per generator step",
    )
    optimisation.add_argument(
        "--steps",
        type=int,
        default=DEFAULTS.steps,
        help="generator steps (each after --n-critic critic steps)",
    )
    optimisation.add_argument(
        "--clip-value",
        type=float,
        default=DEFAULTS.clip_value,
        help="element-wise gradient clipping bound of both players (0 = off)",
    )

    output = parser.add_argument_group("evaluation and output")
    output.add_argument(
        "--eval-every",
        type=int,
        default=DEFAULTS.eval_every,
        help="generator steps between evaluations (a metrics.csv row and a progress line)",
    )
    output.add_argument(
        "--eval-samples",
        type=int,
        default=DEFAULTS.eval_samples,
        help="fresh generated samples per evaluation of mode coverage",
    )
    output.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of weights, data and noise")
    output.add_argument(
        "--results-dir",
        default=DEFAULTS.results_dir,
        help="folder that receives one sub-folder per run",
    )
    output.add_argument(
        "--run-name",
        default=DEFAULTS.run_name,
        help="name of this run's folder (default: <dataset>-<engine>-<date>-<time>)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed flags (raises ConfigError for a value that is not allowed)."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)}
    if values["clip_value"] == 0:
        values["clip_value"] = None
    return TrainConfig(**values)


def main(argv=None) -> int:
    """Parses flags, trains, and returns the exit status (2 for bad input, with a one-line error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from qgan.targets import DataError
    from qgan.train import train

    try:
        train(config, log=lambda line: print(line, flush=True))
    except (ConfigError, DataError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    return 0
