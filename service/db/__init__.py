"""PostgreSQL + pgvector: pool, schema, the query/index contract, the service's queries,
and two command-line tools that use the same contract (``loader``, ``sweep``)."""
