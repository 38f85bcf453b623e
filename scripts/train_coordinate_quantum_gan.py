#!/usr/bin/env python
"""Train a CV quantum GAN on 2-D coordinates: `python scripts/train_coordinate_quantum_gan.py --help`."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from qgan.training.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
