"""qgan-export: a trained quantum generator's circuit at one latent point, written as a Blackbird program."""

from __future__ import annotations

import math
import os
import sys

from qgan.runtime.errors import InputError
from qgan.training.cli import HelpFormatter, OneLineErrorParser
from qgan.training.readers import (
    QUANTUM_GENERATOR_NAME,
    RunFolderError,
    check_output_file,
    saved_generator_config,
)

PROGRAM = "qgan-export"
FORMATS = (".xbb",)


def build_parser():
    parser = OneLineErrorParser(
        prog=PROGRAM,
        description="Write the trained circuit of a run folder, for one latent point, as a Blackbird "
        "program that Strawberry Fields loads with sf.load and runs on its own engines.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run", help="a run folder of the quantum generator")
    parser.add_argument(
        "--latent",
        required=True,
        help="the latent point: one number in [-1, 1] per mode, comma separated (the raw latent noise, "
        "before --latent-distribution)",
    )
    parser.add_argument("--output", required=True, help="the Blackbird file to write (.xbb)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    return parser


def parse_latent(text: str, modes: int) -> list[float]:
    """The --latent numbers, checked against the generator's mode count and [-1, 1]."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(f"--latent {text!r} is not allowed; give {modes} comma-separated numbers") from None
    if len(values) != modes:
        raise InputError(
            f"--latent {text!r} has {len(values)} numbers; the generator has {modes} modes, so give {modes}"
        )
    if not all(math.isfinite(value) and -1.0 <= value <= 1.0 for value in values):
        raise InputError(f"--latent {text!r} is not allowed; every number must lie in [-1, 1]")
    return values


def main(argv=None) -> int:
    """Checks the arguments, loads the run's generator and writes its circuit; 2 for bad input."""
    args = build_parser().parse_args(argv)
    try:
        check_output_file(args.output, "--output", FORMATS, args.overwrite)
        config = saved_generator_config(args.run)
        if config is None or config["registered_name"] != QUANTUM_GENERATOR_NAME:
            raise RunFolderError(
                f"run {args.run!r} holds no quantum generator; only circuits can be exported"
            )
        latent = parse_latent(args.latent, int(config["config"]["modes"]))
    except InputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    from qgan.runtime.quiet import import_tensorflow

    import_tensorflow()
    from qgan.models.blackbird import blackbird_text
    from qgan.runtime.files import write_atomic
    from qgan.training.saved_generator import load_run

    try:
        generator = load_run(args.run)
    except InputError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    write_atomic(args.output, blackbird_text(generator, latent, source=os.path.abspath(args.run)))
    print(f"{PROGRAM}: wrote the circuit of {args.run} at latent point {args.latent} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
