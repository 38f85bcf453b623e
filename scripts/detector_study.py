#!/usr/bin/env python
"""A detector study: ideal-trained circuits under each imperfect detector, beside those trained under it.

`python scripts/detector_study.py results/tune/ring-detectors` writes ideal-under-detectors.csv
and coverage-vs-efficiency.png into the study folder.
"""

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from qgan.runtime.quiet import import_tensorflow  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="a qgan-tune study folder over detector_efficiency and dark_counts")
    parser.add_argument("--efficiencies", default="1,0.95,0.9,0.8,0.6", help="comma-separated η")
    parser.add_argument("--dark-counts", default="0,0.01,0.1", help="comma-separated ν")
    args = parser.parse_args(argv)
    efficiencies = [float(value) for value in args.efficiencies.split(",")]
    dark_counts = [float(value) for value in args.dark_counts.split(",")]
    import_tensorflow()
    from qgan.evaluation.plots import plot_detector_study
    from qgan.training.reevaluation import detector_curves, detector_study

    rows = detector_study(args.study, efficiencies, dark_counts)
    path = os.path.join(args.study, "ideal-under-detectors.csv")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(args.study, "summary.csv"), encoding="utf-8") as handle:
        trained = [row for row in csv.DictReader(handle) if row["state"] == "completed"]
    curves = detector_curves(rows, trained, efficiencies, dark_counts)
    plot_detector_study(os.path.join(args.study, "coverage-vs-efficiency.png"), curves)
    print(f"wrote {path} and coverage-vs-efficiency.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
