"""Storage: the ports (protocols) the pipeline, delivery and audit code speak,
and the adapters that implement them.

- ``ports.py``: ``UnitOfWork`` and the stores (graph, ledger, outbox,
  decisions, quarantine, erasures) as protocols;
- ``sqlite/``: the embedded default, the only place that speaks SQL to
  Consentry's own SQLite database (connection, versioned schema, group-commit
  writer, checkpointer, one module per store).

A second backend (``postgres/``) implements the same ports.
"""
