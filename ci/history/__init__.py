"""The history of main: a store of CSV rows per commit, change points, backfill, the data branch.

``store`` (the CSV files Apache Otava reads) <- ``add`` (results.json -> rows) ;
``detect`` (Otava's change points and what they mean) -> ``tracking`` (one issue per
regressed metric) ; ``backfill`` (past commits, measured with today's harness) ;
``datapush`` (appending to the data branch under concurrent pushes). The dashboard and the
issue texts are rendered by ``ci.render.dashboard`` and ``ci.render.history``; issues are
posted by ``ci.post.issues``. Import the module you need.
"""
