"""Benchmark the engines side by side: python scripts/benchmark.py --help."""

from __future__ import annotations

import argparse
import itertools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from qgan.benchmarks import engines as benchmark  # noqa: E402
from qgan.benchmarks import guard as guard_benchmark  # noqa: E402


def _integers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}; give comma-separated integers, e.g. 8,12"
        ) from None
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; every entry must be ≥ 1")
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the sf and fock engines (eager, tf.function, XLA) on a grid of settings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--cutoffs", type=_integers, default=[8], help="Fock cutoffs, comma separated")
    parser.add_argument("--layers", type=_integers, default=[2, 4], help="circuit layers, comma separated")
    parser.add_argument("--batches", type=_integers, default=[32, 128], help="batch sizes, comma separated")
    parser.add_argument("--modes", type=int, default=2, help="optical modes of the generator")
    parser.add_argument("--n-critic", type=int, default=5, help="critic steps per training iteration")
    parser.add_argument(
        "--engines",
        default=",".join(benchmark.MODES),
        help=f"engine modes, from {', '.join(benchmark.MODES)}",
    )
    parser.add_argument(
        "--guard",
        choices=("yes", "no", "only"),
        default="yes",
        help="also (or only) time the guard's overhead",
    )
    parser.add_argument(
        "--output-dir", default=os.path.join("results", "benchmarks"), help="folder of the JSON report"
    )
    args = parser.parse_args(argv)
    modes = args.engines.split(",")
    unknown = [mode for mode in modes if mode not in benchmark.MODES]
    if unknown:
        parser.error(f"--engines: unknown {', '.join(unknown)}; allowed: {', '.join(benchmark.MODES)}")
    settings = [
        benchmark.Setting(cutoff=cutoff, layers=layers, batch=batch, modes=args.modes)
        for cutoff, layers, batch in itertools.product(args.cutoffs, args.layers, args.batches)
    ]
    log = lambda line: print(line, flush=True)  # noqa: E731
    records = (
        [] if args.guard == "only" else benchmark.run_grid(settings, modes, n_critic=args.n_critic, log=log)
    )
    guard_records = [] if args.guard == "no" else guard_benchmark.run_guard_overheads(log=log)
    if records:
        print()
        print(benchmark.markdown_table(records))
    if guard_records:
        print()
        print(guard_benchmark.guard_table(guard_records))
    path = benchmark.write_report(records, args.output_dir, extra={"guard_overhead": guard_records})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
