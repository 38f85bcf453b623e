#!/usr/bin/env python
"""Tune training flags with Optuna: `python scripts/tune.py --help`."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from qgan.tune.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
