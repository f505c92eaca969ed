"""Storage: the ports (protocols) the pipeline, delivery and audit code speak,
and the adapters that implement them.

- ``ports.py``: ``UnitOfWork`` and the stores (graph, ledger, outbox,
  decisions, quarantine, erasures, outbox admin, audit, DSR, key links) as
  protocols;
- ``sqlite/``: the embedded default, the only place that speaks SQL to
  Consentry's own SQLite database (connection, versioned schema, group-commit
  writer, checkpointer, one module per store);
- ``postgres/``: the same ports on one PostgreSQL database shared by replicas;
- ``portable/``: the stores whose SQL is the same on both, written once;
- ``open.py``: ``open_uow(config)``, the configured backend's unit of work for
  commands run outside ``serve``.
"""
