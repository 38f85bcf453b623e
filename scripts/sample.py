#!/usr/bin/env python
"""New samples from a trained run: `python scripts/sample.py RUN --samples N --output file.csv|.npy`."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from qgan.training.sample_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
