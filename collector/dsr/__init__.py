"""Data subject requests: access, portability, erasure and consent withdrawal.

- `model`: request types, states, the allowed transitions and the statutory
  deadlines per jurisdiction (pure; the clock is passed in).

The same module serves the admin API, the CLI (`consentry dsr …`) and the
console, so the three can never disagree about a request's state or due date.
"""
