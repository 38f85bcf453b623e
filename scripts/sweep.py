#!/usr/bin/env python
"""Train a grid of runs over flag values and tabulate them: `python scripts/sweep.py --help`."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from qgan.sweep import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
