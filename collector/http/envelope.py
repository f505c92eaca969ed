"""Reading a Segment request body into messages, leniently (pure).

A batch body (``{"batch": [...], "sentAt": ..., "context": ..., ...}``) is
split into its raw messages, each validated later on its own so that one bad
message never loses its neighbours. Before that:

- text that is not UTF-8, or a lone surrogate escape, is repaired
  (``collector.http.body.repair_utf8``) and reported as a ``text_repaired``
  warning on the message that held it (``$.batch[i]``; ``$`` for a single
  message or the envelope), naming the byte offset within the message;
- the batch's ``sentAt`` is read as any time form (``relax_sent_at``); an
  unreadable one is a warning, not a rejection;
- the batch's ``context`` is held to the same depth limit as a message.

Errors are ``RequestError`` (400) with the JSON path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from collector.errors import RequestError
from collector.http.body import repair_utf8
from collector.pipeline.decode import split_error
from collector.pipeline.limits import deep_path, element_spans, member_span, too_deep
from collector.pipeline.relax import relax_sent_at
from collector.pipeline.warnings import InputWarning


class _Envelope(msgspec.Struct, kw_only=True):
    batch: list[msgspec.Raw]
    writeKey: str | None = None
    sentAt: Any = None
    context: msgspec.Raw = msgspec.Raw(b"null")  # Raw cannot be in a union
    integrations: dict[str, Any] | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)


@dataclass(slots=True)
class BatchBody:
    """A batch body taken apart: raw messages and what applies to all of them."""

    messages: list[bytes]
    write_key: str | None = None
    sent_at: datetime | None = None  # UTC
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    warnings: list[InputWarning] = field(default_factory=list)


def read_single(body: bytes) -> tuple[bytes, list[InputWarning]]:
    """A single-message body with its text repaired, and the warning if it was."""
    repaired = repair_utf8(body)
    if not repaired.offsets:
        return body, []
    return repaired.data, [_repair_warning(0, "$", repaired.offsets[0], len(repaired.offsets))]


def read_batch(body: bytes, *, max_depth: int) -> BatchBody:
    """Take a batch body apart (module docstring). Raises RequestError(400)
    naming the JSON path when it is not a batch."""
    repaired = repair_utf8(body)
    data = repaired.data
    try:
        envelope = _decode_envelope(data)
        messages = [bytes(raw) for raw in envelope.batch]
    except RecursionError:
        # Nested past what the decoder follows: split the batch by hand, so
        # that only the deep messages are lost (to the quarantine).
        envelope, messages = _split_deep(data, max_depth)
    result = BatchBody(messages, write_key=envelope.writeKey, integrations=envelope.integrations)
    if repaired.offsets:
        result.warnings += _attribute(data, messages, repaired.offsets)
    if envelope.sentAt is not None:
        result.sent_at, warnings = relax_sent_at(envelope.sentAt, prefix="$")
        result.warnings += warnings
    raw = bytes(envelope.context)
    if raw != b"null":
        if too_deep(raw, max_depth - 1):
            path = "$.context" + deep_path(raw, max_depth - 1)
            raise RequestError(400, f"context is nested deeper than {max_depth} levels", path)
        context = msgspec.json.decode(raw)
        if context is not None and not isinstance(context, dict):
            raise RequestError(400, "not a batch: context must be an object", "$.context")
        result.context = context
    return result


def _decode_envelope(data: bytes) -> _Envelope:
    try:
        return _envelope_decoder.decode(data)
    except msgspec.ValidationError as exc:
        reason, path = split_error(str(exc), "$")
        raise RequestError(400, f"not a batch: {reason}", path) from None
    except msgspec.DecodeError as exc:
        raise RequestError(400, f"body is not valid JSON: {exc}", "$") from None


def _split_deep(data: bytes, max_depth: int) -> tuple[_Envelope, list[bytes]]:
    span = member_span(data, b"batch")
    spans = element_spans(data, *span) if span is not None else None
    if span is None or spans is None:
        raise RequestError(
            400, f"body is nested too deeply (messages may nest {max_depth} levels)", "$"
        )
    try:
        envelope = _decode_envelope(data[: span[0]] + b"[]" + data[span[1] :])
    except RecursionError:
        raise RequestError(
            400, f"body is nested too deeply (messages may nest {max_depth} levels)", "$"
        ) from None
    return envelope, [data[start:end] for start, end in spans]


def _attribute(data: bytes, messages: list[bytes], offsets: tuple[int, ...]) -> list[InputWarning]:
    """One warning per message holding a repaired character (raw messages lie
    in the body in order, so a forward search finds each one's position)."""
    spans: list[tuple[int, int]] = []
    at = 0
    for raw in messages:
        start = data.find(raw, at)
        spans.append((start, start + len(raw)))
        at = start + len(raw)
    found: dict[int | None, list[int]] = {}
    for offset in offsets:
        index = next((i for i, (s, e) in enumerate(spans) if s <= offset < e), None)
        start = spans[index][0] if index is not None else 0
        found.setdefault(index, []).append(offset - start)
    return [
        _repair_warning(index, "$" if index is None else f"$.batch[{index}]", hits[0], len(hits))
        for index, hits in found.items()
    ]


def _repair_warning(index: int | None, path: str, offset: int, count: int) -> InputWarning:
    return InputWarning(
        index,
        "text_repaired",
        f"{count} character(s) were not valid UTF-8 or were lone surrogates and became U+FFFD"
        f" (first at byte {offset})",
        path,
    )
