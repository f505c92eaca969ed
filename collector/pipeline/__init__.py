"""DESIGN's flow, one module per step; ``pipeline.Pipeline.ingest`` is the entry.

- ``decode.py`` (2), ``signals.py`` (3), ``pseudonymize.py`` (4) and
  ``egress.py`` (each destination's payload), composed by ``prepare.py``;
- ``resolve.py`` (5), ``consent_records.py``, ``decide.py`` (6),
  ``outbox.py`` (7) and ``erase.py``, composed by ``route.py`` on the writer;
- ``memo.py``: the one bounded memo the steps use.
"""
