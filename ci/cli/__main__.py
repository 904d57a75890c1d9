"""``python -m ci.cli``: what the ``perfci`` script runs (a revision's own run starts this)."""

from __future__ import annotations

import sys

from ci.cli import main

sys.exit(main())
