"""``python -m ci.cli``: what the ``perfci`` script runs (A/B runs start it this way)."""

from __future__ import annotations

import sys

from ci.cli import main

sys.exit(main())
