"""Step 2 of the flow: decode and validate one message (msgspec Structs, limits).

Bytes in, a ``Message`` out, or ``InvalidMessage(reason, path)`` naming the
JSON path at fault; inside a batch the caller quarantines the raw bytes as a
``Rejection`` (encrypted, with a time-to-live) and the batch goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from collector.errors import InvalidMessage
from collector.pipeline.limits import DEFAULT_MAX_DEPTH, deep_path, too_deep
from collector.pipeline.relax import relax
from collector.pipeline.warnings import InputWarning
from identity.pii import redact_path, redact_text
from sdk_python.messages import MAX_MESSAGE_BYTES, MESSAGE_TYPES, Message

_message_decoder = msgspec.json.Decoder(Message)
_single_decoders = {k: msgspec.json.Decoder(v) for k, v in MESSAGE_TYPES.items()}
_PATH = re.compile(r" - at `\$(.*)`$")
_QUOTED = re.compile(r" '.*'$")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that failed decoding or preparation: its position in the
    request, why, where (JSON path), and its raw bytes (for the quarantine only).
    Reason and path never quote a key or value that looks like personal data
    (issue 14 §1): they are stored unencrypted beside the sealed payload."""

    index: int
    reason: str
    path: str
    raw: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", redact_text(self.reason))
        object.__setattr__(self, "path", redact_path(self.path))


def split_error(text: str, prefix: str) -> tuple[str, str]:
    """msgspec's 'Expected `str`, got `int` - at `$.userId`' -> (reason, JSON path).

    msgspec quotes the offending value in some messages ("Invalid value 'x'");
    it may be personal data, and reasons are stored unencrypted beside the
    quarantine and logged by clients, so the value is cut out."""
    match = _PATH.search(text)
    reason, path = (text[: match.start()], prefix + match.group(1)) if match else (text, prefix)
    return _QUOTED.sub("", reason), path


def at_path(prefix: str, path: str) -> str:
    """A path relative to the message (``$.context.x``) under the message's
    own prefix (``$.batch[3]``): ``$.batch[3].context.x``. Anything that is
    not such a path gives the prefix alone."""
    if path == "$" or path.startswith(("$.", "$[")):
        return prefix + path[1:]
    return prefix


def decode_message(
    raw: bytes,
    *,
    index: int,
    prefix: str,
    kind: str | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    warnings: list[InputWarning] | None = None,
) -> Message:
    """Decode one message; raises InvalidMessage(reason, path). A message the
    strict Structs refuse is repaired as Segment would accept it
    (``collector.pipeline.relax``: numeric ids, time forms) and validated
    again; what that repair dropped is appended to ``warnings``."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(
            f"message is {len(raw)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit", prefix
        )
    if too_deep(raw, max_depth):
        raise InvalidMessage(
            f"message nests objects and arrays deeper than {max_depth} levels",
            prefix + deep_path(raw, max_depth),
        )
    try:
        if kind is not None:
            return _single_decoders[kind].decode(raw)
        return _message_decoder.decode(raw)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise InvalidMessage(f"not valid JSON: {exc}", prefix) from None
    message, found = _relaxed(raw, index=index, prefix=prefix, kind=kind)
    if warnings is not None:
        warnings += found
    return message


def _relaxed(
    raw: bytes, *, index: int, prefix: str, kind: str | None
) -> tuple[Message, list[InputWarning]]:
    """The message after Segment's leniencies and what they dropped; raises
    InvalidMessage(reason, path) when it is still invalid."""
    data = msgspec.json.decode(raw)
    found = relax(data, index=index, prefix=prefix) if isinstance(data, dict) else []
    try:
        message = msgspec.convert(data, MESSAGE_TYPES[kind] if kind is not None else Message)
    except msgspec.ValidationError as exc:
        reason, path = split_error(str(exc), prefix)
        if "missing required field `type`" in reason or (
            "Invalid value" in reason and path.endswith(".type")
        ):
            reason = f"{reason}; type must be one of {', '.join(MESSAGE_TYPES)}"
        raise InvalidMessage(reason, path) from None
    return message, found
