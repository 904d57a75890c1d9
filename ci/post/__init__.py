"""Posting to GitHub: ``checks`` (the ``perf/gate`` check run), ``github`` (the sticky PR
comment), ``pr_check`` (both, for one perf-pr run), ``issues`` (the history's regression
issues), ``summary`` (the Actions job summary). Nothing here renders or decides."""
