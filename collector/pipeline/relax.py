"""What Segment's API accepts beyond the strict schema (pure).

The wire Structs (``sdk_python.messages``) say what a well-formed message is.
Real clients send more, and Segment accepts it; so does Consentry, by
repairing a decoded message before it is validated again:

- ``userId``, ``anonymousId``, ``groupId`` and ``previousId`` given as
  numbers (database integer ids) become their decimal string (``12345`` ->
  ``"12345"``), so they pseudonymize exactly like the string form;
- ``timestamp``, ``originalTimestamp`` and ``sentAt`` given as epoch numbers
  or ISO 8601 forms the strict decoder does not read become ISO 8601 strings;
  a value that is not a time at all is removed with a ``time_unreadable``
  warning (the event then gets Segment's ``timestamp = receivedAt``);
- a client's ``receivedAt`` is dropped: the collector sets it.

Only messages that fail the strict decoder take this path, so well-formed
traffic pays nothing for it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from collector.pipeline.timestamps import TIME_FIELDS, UnreadableTime, iso_z, parse_time
from collector.pipeline.warnings import InputWarning

ID_FIELDS = ("userId", "anonymousId", "groupId", "previousId")


def id_text(value: object) -> object:
    """A numeric id as its decimal string; anything else unchanged (bools are
    not numbers here, and stay invalid)."""
    if type(value) is int:
        return str(value)
    if type(value) is float and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


def relax(data: dict[str, Any], *, index: int | None, prefix: str) -> list[InputWarning]:
    """Repair ``data`` (one decoded message, changed in place) as the module
    docstring says; the warnings for what had to be dropped. ``prefix`` is
    the message's JSON path (``$.batch[3]`` or ``$``)."""
    warnings: list[InputWarning] = []
    data.pop("receivedAt", None)  # the collector's to set
    for key in ID_FIELDS:
        if key in data:
            data[key] = id_text(data[key])
    for key in TIME_FIELDS:
        if key not in data:
            continue
        try:
            value = parse_time(data[key])
        except UnreadableTime as exc:
            del data[key]
            warnings.append(
                InputWarning(
                    index,
                    "time_unreadable",
                    f"{key} is unreadable ({exc}); the event's timestamp is the receive time",
                    f"{prefix}.{key}",
                )
            )
            continue
        data[key] = None if value is None else iso_z(value)
    return warnings


def relax_sent_at(value: object, *, prefix: str) -> tuple[datetime | None, list[InputWarning]]:
    """A batch's ``sentAt`` in UTC (None when absent), or None and a warning
    when it cannot be read."""
    try:
        parsed = parse_time(value)
    except UnreadableTime as exc:
        reason = f"sentAt is unreadable ({exc}); messages are not corrected for clock skew"
        return None, [InputWarning(None, "time_unreadable", reason, f"{prefix}.sentAt")]
    return parsed, []
