"""Posting to GitHub: ``github`` (the PR comment and the ``perf/gate`` commit status),
``summary`` (the Actions job summary). Nothing here renders."""
