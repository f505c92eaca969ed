"""Step 4b: personal data found anywhere in a message never leaves raw (issue 14 §1).

Applies :func:`identity.pii.scan` to a decoded message (``properties``,
``traits``, ``context`` and everything nested in them) and rewrites what it
finds, copying on write (nested objects may be shared with other messages of
the batch):

- kinds whose action is ``pseudonymize`` (default: email, phone, device id):
  the identifier is replaced by a placeholder that the payload step fills with
  the destination-domain pseudonym (``kind`` and normalized value in
  ``Scrubbed.values``), so each recipient sees its own unlinkable value;
- kinds whose action is ``drop`` (default: PRC resident ID and card numbers):
  a value that is only the identifier is removed (its key deleted, a list
  element set to null); an identifier inside longer text is cut out and
  replaced by ``[removed]``.

What was replaced is recorded as kind, action and JSON path (keys that may
themselves be personal data masked), never the value. Pure: no clock, keys
or I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from identity.pii import Finding, Kind, Path, ScanOptions, redact_path, scan

Action = Literal["pseudonymize", "drop"]
DEFAULT_ACTIONS: Mapping[Kind, Action] = {
    "email": "pseudonymize",
    "phone": "pseudonymize",
    "device_id": "pseudonymize",
    "cn_resident_id": "drop",
    "card": "drop",
}
REMOVED = "[removed]"
# Parts of a message that are not the person's data, or that the pipeline
# reads and rewrites itself (consent strings, the IP, our own marker).
ALWAYS_SKIPPED: frozenset[Path] = frozenset(
    {
        ("context", "consent"),
        ("context", "consentManagement"),
        ("context", "consentry"),
        ("context", "ip"),
    }
)


@dataclass(frozen=True, slots=True)
class ScrubPolicy:
    """From ``[privacy]``: the scan's options and the action per kind."""

    options: ScanOptions
    actions: Mapping[Kind, Action]


@dataclass(frozen=True, slots=True)
class Replaced:
    """One replacement as recorded in the decision: never the value."""

    kind: Kind
    action: Action
    path: str  # "$.properties.note", keys that look like personal data masked

    def note(self) -> str:
        verb = "pseudonymized" if self.action == "pseudonymize" else "removed"
        return f"pii: {self.kind} {verb} at {self.path}"


@dataclass(frozen=True, slots=True)
class Scrubbed:
    """The rewritten message; ``values[j]`` is the (kind, normalized value)
    behind placeholder ``first + j``; ``paths``: every value rewritten."""

    data: dict[str, Any]
    values: tuple[tuple[Kind, str], ...]
    replaced: tuple[Replaced, ...]
    paths: frozenset[Path]


def policy(
    *,
    region: str | None,
    actions: Mapping[Kind, Action] | None = None,
    kinds: Collection[Kind] | None = None,
    skip: Collection[Path] = (),
) -> ScrubPolicy:
    """A policy from configuration values (kinds and actions already validated)."""
    merged: dict[Kind, Action] = {**DEFAULT_ACTIONS, **(actions or {})}
    wanted = frozenset(kinds) if kinds is not None else frozenset(merged)
    return ScrubPolicy(
        ScanOptions(
            region=region,
            kinds=frozenset(k for k in merged if k in wanted),
            skip=ALWAYS_SKIPPED | frozenset(skip),
        ),
        merged,
    )


DEFAULT_POLICY = policy(region=None)


def json_path(path: Path) -> str:
    """``("properties", "items", 0, "note")`` -> ``$.properties.items[0].note``, keys masked."""
    text = "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)
    return redact_path(text)


def scrub(
    data: dict[str, Any],
    rules: ScrubPolicy,
    *,
    placeholder: Callable[[int], str],
    first: int,
    handled: Collection[Path] = (),
) -> Scrubbed | None:
    """Rewrite every identifier found in ``data`` (see module docstring);
    ``handled``: paths the caller already replaces (the identifiers it links).
    None when nothing was found (``data`` is then untouched)."""
    findings = [f for f in scan(data, rules.options) if f.path not in handled]
    if not findings:
        return None
    out = dict(data)
    slots: dict[tuple[Kind, str], int] = {}
    values: list[tuple[Kind, str]] = []
    replaced: list[Replaced] = []
    for finding in findings:
        new = _rewrite(finding, rules.actions, slots, values, placeholder, first)
        where = json_path(finding.path)
        seen = set()
        for span in finding.spans:
            action = rules.actions.get(span.kind, "drop")
            if (span.kind, action) not in seen:
                seen.add((span.kind, action))
                replaced.append(Replaced(span.kind, action, where))
        _put(out, finding.path, new)
    return Scrubbed(out, tuple(values), tuple(replaced), frozenset(f.path for f in findings))


_DELETE = object()


def _rewrite(
    finding: Finding,
    actions: Mapping[Kind, Action],
    slots: dict[tuple[Kind, str], int],
    values: list[tuple[Kind, str]],
    placeholder: Callable[[int], str],
    first: int,
) -> object:
    """The value that replaces the finding's (``_DELETE``: remove it)."""
    pieces: list[str] = []
    at = 0
    text = finding.text
    for span in finding.spans:
        pieces.append(text[at : span.start])
        if actions.get(span.kind, "drop") == "pseudonymize":
            key = (span.kind, span.normalized)
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = first + len(values)
                values.append(key)
            pieces.append(placeholder(slot))
        else:
            pieces.append(REMOVED)
        at = span.end
    pieces.append(text[at:])
    new = "".join(pieces)
    if new.strip() == REMOVED:
        return _DELETE
    return new


def _put(data: dict[str, Any], path: Path, value: object) -> None:
    """Set (or delete, for ``_DELETE``) at a path of keys and list indices,
    copying every dict and list on the way."""
    cur: Any = data
    for key in path[:-1]:
        nxt = cur[key]
        nxt = dict(nxt) if isinstance(nxt, dict) else list(nxt)
        cur[key] = nxt
        cur = nxt
    last = path[-1]
    if value is _DELETE:
        if isinstance(cur, dict):
            cur.pop(last, None)
        else:
            cur[last] = None
    else:
        cur[last] = value
