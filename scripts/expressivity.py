#!/usr/bin/env python
"""Fit generators directly to a clustered latent map: `python scripts/expressivity.py --help`."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from qgan.models.expressivity import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
