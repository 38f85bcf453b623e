"""qgan-sample: new samples from a trained run's generator, written to a .csv or .npy file."""

from __future__ import annotations

import sys

import numpy as np

from qgan.runtime.errors import InputError
from qgan.training.cli import HelpFormatter, OneLineErrorParser
from qgan.training.config import SEED_MAX
from qgan.training.readers import check_output_file, saved_generator_config

PROGRAM = "qgan-sample"
FORMATS = (".csv", ".npy")


def build_parser():
    parser = OneLineErrorParser(
        prog=PROGRAM,
        description="Draw new samples from the trained generator of a run folder.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run", help="a run folder written by training (e.g. results/ring-fock-20261124-0800)")
    parser.add_argument("--samples", type=int, default=1000, help="how many samples")
    parser.add_argument(
        "--output",
        required=True,
        help="file to write: .csv (columns x,y, and outcome for generators with outcomes) or .npy (N×2)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent noise")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument(
        "--detector-efficiency",
        type=float,
        default=None,
        help="heralded circuits: read out by detectors of this efficiency η (0 < η ≤ 1) instead of "
        "those the run trained with",
    )
    parser.add_argument(
        "--dark-counts",
        type=float,
        default=None,
        help="heralded circuits: the detectors' mean dark counts ν (≥ 0) instead of the run's",
    )
    return parser


MAX_SAMPLES = 10**7  # 80 MB of float32 coordinates; larger requests are refused before anything runs


def check_arguments(args) -> None:
    """Raises InputError naming the first argument that cannot be used (the run folder included)."""
    if not 1 <= args.samples <= MAX_SAMPLES:
        raise InputError(
            f"--samples {args.samples} is not allowed; use a whole number from 1 to {MAX_SAMPLES}"
        )
    if not 0 <= args.seed <= SEED_MAX:
        raise InputError(f"--seed {args.seed} is not allowed; use an integer from 0 to {SEED_MAX}")
    if args.detector_efficiency is not None and not 0 < args.detector_efficiency <= 1:
        raise InputError(
            f"--detector-efficiency {args.detector_efficiency} is not allowed; use a number in (0, 1]"
        )
    if args.dark_counts is not None and not 0 <= args.dark_counts < float("inf"):
        raise InputError(f"--dark-counts {args.dark_counts} is not allowed; use a finite number ≥ 0")
    check_output_file(args.output, "--output", FORMATS, args.overwrite)
    saved_generator_config(args.run)


def write_samples(path: str, samples: np.ndarray, outcomes: np.ndarray | None) -> None:
    """Writes samples (N, 2) (and their outcomes as a third CSV column) to a .csv or .npy file."""
    from qgan.runtime.files import save_atomic

    if path.lower().endswith(".npy"):
        save_atomic(path, lambda temporary: np.save(temporary, samples))
        return
    header = "x,y,outcome" if outcomes is not None else "x,y"
    columns = [samples[:, 0], samples[:, 1]] + ([outcomes] if outcomes is not None else [])
    formats = ["%.9g", "%.9g"] + (["%d"] if outcomes is not None else [])
    save_atomic(
        path,
        lambda temporary: np.savetxt(
            temporary, np.column_stack(columns), delimiter=",", header=header, comments="", fmt=formats
        ),
    )


def main(argv=None) -> int:
    """Parses arguments, loads the run's generator and writes the samples; 2 for bad input."""
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
    except InputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    from qgan.runtime.quiet import import_tensorflow

    import_tensorflow()
    from qgan.runtime.heap import freeze_imports
    from qgan.training.saved_generator import load_run

    freeze_imports()
    try:
        generator = load_run(args.run, args.detector_efficiency, args.dark_counts)
    except InputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    samples, _, outcomes = generator.generate(
        args.samples, chunk_size=min(250, args.samples), seed=args.seed, outcomes=True
    )
    write_samples(args.output, samples, outcomes if generator.outcomes else None)
    print(
        f"{PROGRAM}: wrote {args.samples} samples of {args.run} ({type(generator).__name__}) to {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
