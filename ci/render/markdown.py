"""What every writer of the pull-request comment shares: the marker that makes it sticky.

The comment that carries :data:`MARKER` (and was written by the token's own account) is
the one :mod:`ci.post.github` edits in place on every run.
"""

from __future__ import annotations

MARKER = "<!-- perfci:comment -->"
