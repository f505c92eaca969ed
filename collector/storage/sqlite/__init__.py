"""The SQLite adapter: every SQL statement against Consentry's own database.

- ``connection.py``: opening a connection (WAL, pragmas) and the database file
- ``migrate.py`` + ``schema/NNNN_*.sql``: versioned schema, applied in order
- ``writer.py``: the group-commit writer; ``checkpointer.py``: WAL checkpoints
- ``unit.py``: ``SqliteUnitOfWork``, the stores bound to one connection
- ``graph.py``, ``ledger.py``, ``outbox.py``, ``decisions.py``,
  ``quarantine.py``, ``erasures.py``: one store per table family
- ``audit.py``: the read-only ``AuditStore``; ``statements.py``: the
  connection as the ``portable`` stores use it (DSR, outbox admin, key links)
"""
