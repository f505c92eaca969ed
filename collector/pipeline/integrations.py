"""Segment's ``integrations`` flags, read as restrictions only (pure).

Source: Segment, "Spec: Common Fields", ``integrations``: a dictionary of
destination names to booleans (or option objects), with ``All`` as the
default for names not listed. Consentry honours the flags only where they
keep an event from a destination, never where they would send it somewhere
consent does not allow:

- ``{"<destination>": false}`` keeps the event from that destination;
- ``{"All": false}`` keeps it from every destination not explicitly enabled
  (``true`` or an options object);
- ``true`` and ``All: true`` change nothing: consent still decides.

Names match the configured destination names, case-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def blocked(integrations: Mapping[str, Any] | None, names: Sequence[str]) -> frozenset[str]:
    """The destinations (of ``names``) the flags keep the event from."""
    if not integrations:
        return frozenset()
    flags = {str(k).lower(): v for k, v in integrations.items()}
    everything = flags.get("all")
    out = []
    for name in names:
        flag = flags.get(name.lower())
        if flag is False or (
            everything is False and flag is not True and not isinstance(flag, dict)
        ):
            out.append(name)
    return frozenset(out)


def merged(
    message: Mapping[str, Any] | None, batch: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    """A message's flags over its batch's (the message's own win per name)."""
    if not batch:
        return message
    if not message:
        return batch
    return {**batch, **message}


def reason(name: str) -> str:
    """What the decision record says for a destination the flags kept out."""
    return f"integrations.{name} or integrations.All is false in the event (a restriction only)"
