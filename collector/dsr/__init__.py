"""Data subject requests: access, portability, erasure and consent withdrawal.

- `model`: request types, states, the allowed transitions and the statutory
  deadlines per jurisdiction (pure; the clock is passed in).
- `person`: raw identifiers pseudonymized in memory, resolved to a OneID, and
  what is held on that person (identifier kinds, consent history,
  destinations with counts, erasures).
- `store`: requests saved as JSON in the database.
- `export`: the access/portability zip (JSON, CSV, HTML; GDPR Art. 15(1)(a)-(h)).
- `ropa`: records of processing (GDPR Art. 30) from configuration, CSV/XLSX.
- `offline`: the same without a running server, for the CLI.

The same module serves the admin API, the CLI (`consentry dsr …`) and the
console, so the three can never disagree about a request's state or due date.
"""
