"""Decode, validate and pseudonymize incoming messages (stage A of the flow).

Pure apart from the clock and the pseudonymizer passed in: bytes in, Prepared
messages and Rejections out. Runs before anything touches the database, so
raw identifiers are gone from everything that leaves this module except the
rejected payloads, which only the encrypted quarantine keeps.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from collector.config import DestinationConfig
from collector.errors import InvalidMessage
from collector.event_facts import SignalClock, locate
from collector.pipeline import integrations as flags
from collector.pipeline import ip as client_ips
from collector.pipeline import scrub as pii_scrub
from collector.pipeline.limits import DEFAULT_MAX_DEPTH, deep_path, too_deep
from collector.pipeline.relax import relax
from collector.pipeline.timestamps import iso_z, segment_times
from collector.pipeline.warnings import InputWarning
from collector.sources.cookies import with_request_consent
from collector.sources.wechat import WechatKeys, app_id_of, find_key, namespaced_openid
from consent.decide import EventFacts
from consent.errors import ConsentSignalError
from consent.signals import Signals, read_context
from identity.egress import meta_capi_hash
from identity.errors import InvalidIdentifier
from identity.graph import Identifier
from identity.normalize import is_placeholder, normalize
from identity.pii import key_kind, redact_path, redact_text
from identity.pseudonym import INTERNAL, Pseudonymizer, looks_like_pseudonym
from sdk_python.messages import MAX_MESSAGE_BYTES, MESSAGE_TYPES, Message

_message_decoder = msgspec.json.Decoder(Message)
_single_decoders = {k: msgspec.json.Decoder(v) for k, v in MESSAGE_TYPES.items()}
_encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `\$(.*)`$")
_QUOTED = re.compile(r" '.*'$")
PERSON_TRAIT_KINDS = (("email", "email"), ("phone", "phone"))
_NONCE = f"__cs{uuid.uuid4().hex}_"
_MARKER = re.compile(re.escape(_NONCE.encode()) + rb"([a-z0-9]+)_")
# Memo sizes: enough for the people active in the last minutes. A full memo is
# dropped whole and refilled: with the pseudonym cache, about 100 MB per worker
# at the caps (measured with 100,000 distinct people).
_MEMO_MAX = 50_000


@functools.cache
def _key(i: int) -> bytes:
    """The template value name of the i-th identifier found in a message."""
    return str(i).encode()


@functools.cache
def _placeholder(i: int) -> str:
    return f"{_NONCE}{i}_"


def _json_str(value: str) -> bytes:
    """A value as it appears inside a JSON string (escaped, no quotes)."""
    return _encoder.encode(value)[1:-1]


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    reason: str
    path: str
    raw: bytes


@dataclass(slots=True)
class Prepared:
    index: int
    message_id: str
    type: str
    identifiers: list[Identifier]
    subject: str
    signals: Signals
    facts: EventFacts
    payloads: dict[str, bytes]
    pi_by_destination: dict[str, frozenset[str]] = field(default_factory=dict)
    # What the PII scan replaced, as decision notes (kind, action, path; no value).
    scrubbed: tuple[str, ...] = ()
    alias_user_payloads: dict[str, bytes] | None = None
    alias_ids: tuple[Identifier, Identifier] | None = None
    warnings: list[InputWarning] = field(default_factory=list)
    blocked: frozenset[str] = frozenset()  # destinations the integrations flags keep out
    generated_id: bool = False  # messageId made here (never a repeat)
    signal_at: float | None = None  # the event's own time (epoch s), for its consent signals


@dataclass(frozen=True, slots=True, eq=False)
class _Lane:
    config: DestinationConfig
    domain: str
    pi: frozenset[str]
    rules: bool  # allow-lists or field rules: this destination gets its own encode
    constants: Mapping[bytes, bytes]  # template values that are the same for every message
    position: int


@dataclass(frozen=True, slots=True)
class IngestOptions:
    destinations: Sequence[DestinationConfig]
    category_map: Mapping[str, tuple[str, ...]]
    pi_rules: Mapping[str, str]
    country_jurisdictions: Mapping[str, str]
    pii_fields: Sequence[str] = ()
    # Personal data anywhere in properties/traits/context (None: scan off).
    scrub: pii_scrub.ScrubPolicy | None = pii_scrub.DEFAULT_POLICY
    # WeChat openid/unionid in traits: linked identifiers (None: not read).
    wechat: WechatKeys | None = None


def split_error(text: str, prefix: str) -> tuple[str, str]:
    """msgspec's 'Expected `str`, got `int` - at `$.userId`' -> (reason, JSON path).

    msgspec quotes the offending value in some messages ("Invalid value 'x'");
    it may be personal data, and reasons are stored unencrypted beside the
    quarantine and logged by clients, so the value is cut out."""
    match = _PATH.search(text)
    reason, path = (text[: match.start()], prefix + match.group(1)) if match else (text, prefix)
    return _QUOTED.sub("", reason), path


def truncate_ip(value: str) -> str | None:
    """/24 for IPv4, /48 for IPv6; None when the value holds no IP address
    (the forms ``collector.pipeline.ip`` reads: port, brackets, list, mapped)."""
    head, dot, last = value.rpartition(".")
    if dot and ":" not in value and last.isdigit() and len(last) <= 3:
        octets = head.split(".")
        if len(octets) == 3 and all(o.isdigit() and len(o) <= 3 and int(o) < 256 for o in octets):
            if int(last) < 256:
                return f"{head}.0"
            return None
    ip = client_ips.client_ip(value)
    return None if ip is None else client_ips.truncate(ip)


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


class Preparer:
    """Turns decoded messages into Prepared units: identifiers pseudonymized for
    the graph (internal domain, every live key version) and for each destination
    (its own domain), IP truncated, consent signals read."""

    def __init__(self, pseudonymizer: Pseudonymizer, options: IngestOptions) -> None:
        self._ps = pseudonymizer
        self._opt = options
        self._pii = frozenset(options.pii_fields)
        self._names = tuple(d.name for d in options.destinations)
        # Per destination, what does not change between messages.
        self._lanes = [
            _Lane(
                d,
                d.domain(),
                frozenset(d.pi_categories),
                bool(d.fields) or d.allow_properties is not None or d.allow_traits is not None,
                {b"dom": _json_str(d.domain())},
                position,
            )
            for position, d in enumerate(options.destinations)
        ]
        # Returning people send the same identifiers and consent again and again:
        # remember what is pure to derive from them (bounded, and keyed by the
        # live key versions so a rotation starts afresh).
        self._kids: tuple[str, ...] = ()
        self._norm_memo: dict[tuple[str, str], str | None] = {}
        self._ident_memo: dict[tuple[str, str], Identifier] = {}
        # Per set of identifiers: each destination's template values for them.
        self._lane_memo: dict[tuple[tuple[str, str], ...], list[dict[bytes, bytes]]] = {}
        self._ip_memo: dict[str, tuple[bytes, bytes, str] | None] = {}
        self._at: tuple[datetime, str] | None = None
        self._signal_memo: dict[bytes, Signals] = {}
        self._facts_memo: dict[tuple[object, ...], EventFacts] = {}
        self._clock = SignalClock()

    def memo_sizes(self) -> dict[str, int]:
        """Entries per memo (benchmarks/ingest_memory.py)."""
        return {
            "normalized": len(self._norm_memo),
            "identifiers": len(self._ident_memo),
            "destination values": len(self._lane_memo),
            "ips": len(self._ip_memo),
            "signals": len(self._signal_memo),
            "pseudonyms": self._ps.cached,
        }

    def _normalized(self, kind: str, value: object, path: str) -> str | None:
        if type(value) is str:
            memo_key = (kind, value)
            if memo_key in self._norm_memo:
                return self._norm_memo[memo_key]
            result = self._normalize(kind, value, path)
            if len(self._norm_memo) >= _MEMO_MAX:
                self._norm_memo.clear()
            self._norm_memo[memo_key] = result
            return result
        return self._normalize(kind, value, path)

    def _normalize(self, kind: str, value: object, path: str) -> str | None:
        if is_placeholder(value):
            return None
        if isinstance(value, str) and looks_like_pseudonym(value):
            # Pseudonymized in the storefront backend by the SDK: opaque, re-keyed here.
            return value
        try:
            return normalize(kind, value, self._ps.options)
        except InvalidIdentifier as exc:
            raise InvalidMessage(str(exc), path) from None

    def prepare(
        self,
        msg: Message,
        *,
        index: int,
        prefix: str,
        received_at: datetime,
        batch_context: Mapping[str, Any] | None = None,
        request_consent: Mapping[str, Any] | None = None,
        sent_at: datetime | None = None,
        batch_integrations: Mapping[str, Any] | None = None,
    ) -> Prepared:
        """Raises InvalidMessage(reason, JSON path); neither quotes a key or
        value that may be personal data (issue 14 §1). ``sent_at``: the batch's
        ``sentAt`` (a message's own wins)."""
        try:
            return self._prepare(
                msg,
                index=index,
                prefix=prefix,
                received_at=received_at,
                batch_context=batch_context,
                request_consent=request_consent,
                sent_at=sent_at,
                batch_integrations=batch_integrations,
            )
        except InvalidMessage as exc:
            raise InvalidMessage(redact_text(exc.reason), redact_path(exc.path)) from None

    def _prepare(
        self,
        msg: Message,
        *,
        index: int,
        prefix: str,
        received_at: datetime,
        batch_context: Mapping[str, Any] | None = None,
        request_consent: Mapping[str, Any] | None = None,
        sent_at: datetime | None = None,
        batch_integrations: Mapping[str, Any] | None = None,
    ) -> Prepared:
        data: dict[str, Any] = msgspec.to_builtins(msg)
        data["messageId"] = msg.messageId or str(uuid.uuid4())
        self._times(msg, data, received_at, sent_at)
        warnings: list[InputWarning] = []
        if batch_context:
            data["context"] = {**batch_context, **(data.get("context") or {})}
        if request_consent:  # the browser's CMP cookies (collector.sources.cookies)
            data["context"] = with_request_consent(data.get("context"), request_consent)
        context: Mapping[str, Any] = data.get("context") or {}
        msg_type = data["type"]

        found: list[tuple[str, str, tuple[str, ...]]] = []  # (kind, normalized, json path)
        user = self._normalized("user_id", data.get("userId"), f"{prefix}.userId")
        anon = self._normalized("anonymous_id", data.get("anonymousId"), f"{prefix}.anonymousId")
        if user is None:
            data.pop("userId", None)
        else:
            found.append(("user_id", user, ("userId",)))
        if anon is None:
            data.pop("anonymousId", None)
        else:
            found.append(("anonymous_id", anon, ("anonymousId",)))
        if user is None and anon is None:
            raise InvalidMessage(
                "a message needs a userId or an anonymousId (placeholders do not count)",
                f"{prefix}.userId",
            )
        # Group traits describe the company, not the person: pseudonymize, do not link.
        trait_sources: list[tuple[tuple[str, ...], bool]] = [(("context", "traits"), True)]
        if "traits" in data:
            trait_sources.append((("traits",), msg_type != "group"))
        for base, link in trait_sources:
            traits = data.get(base[0]) if len(base) == 1 else _get(data, base)
            if not isinstance(traits, dict):
                continue
            for key, kind in PERSON_TRAIT_KINDS:
                if key not in traits:
                    continue
                where = f"{prefix}.{'.'.join(base)}.{key}"
                try:
                    value = self._normalized(kind, traits[key], where)
                except InvalidMessage as exc:
                    # Kept, never linked, never raw: pseudonymized as personal data.
                    found.append((f"~pii:{key}", _pii_text(traits[key]), (*base, key)))
                    warnings.append(_unusable_trait(index, exc.reason, where))
                    continue
                if value is None:
                    _set(data, (*base, key), None, delete=True)
                    continue
                found.append((kind, value, (*base, key)))
                if not link:
                    found[-1] = (f"~{kind}", value, (*base, key))
            if self._opt.wechat is not None:
                found += self._wechat_ids(data, base, traits, link, prefix)
        # Other personal fields of the person: pseudonymized per destination, never
        # linked. Only person traits: `properties.name` is a product's name, and a
        # group's traits describe a company.
        person_traits = [("context", "traits")] + ([("traits",)] if msg_type != "group" else [])
        for base in person_traits:
            section = data.get(base[0]) if len(base) == 1 else _get(data, base)
            if not isinstance(section, dict) or not section:
                continue
            for name in sorted(self._pii.intersection(section)):
                value = section[name]
                if value is None or value == "":
                    continue
                found.append((f"~pii:{name}", _pii_text(value), (*base, name)))
        # Identifiers anywhere else (issue 14 §1): placed in the message as
        # placeholders, filled per destination like the ones above.
        raw = data
        scrubbed = None
        if self._opt.scrub is not None:
            scrubbed = pii_scrub.scrub(
                data,
                self._opt.scrub,
                placeholder=_placeholder,
                first=len(found),
                handled={p for _, _, p in found},
            )
            if scrubbed is not None:
                data = scrubbed.data
                found.extend((f"~{kind}", value, ()) for kind, value in scrubbed.values)
        previous = None
        if msg_type == "alias":
            previous = self._normalized(
                "anonymous_id", data.get("previousId"), f"{prefix}.previousId"
            )
            if previous is None:
                raise InvalidMessage(
                    "previousId is a placeholder, not an identifier", f"{prefix}.previousId"
                )

        kids = self._ps.lookup_kids()
        if kids != self._kids:
            self._kids = kids
            self._ident_memo.clear()
            self._lane_memo.clear()
        try:
            signals = self._signals(data.get("context"))
        except ConsentSignalError as exc:
            text = str(exc)
            raise InvalidMessage(text, at_path(prefix, text.split(" ", 1)[0])) from None

        identifiers = [self._identifier(kind, value) for kind, value, _ in found if kind[0] != "~"]
        alias_ids = None
        if previous is not None:
            alias_ids = (
                Identifier(
                    "anonymous_id",
                    self._ps.pseudonym_normalized("anonymous_id", previous),
                    self._previous("anonymous_id", previous),
                ),
                Identifier(
                    "user_id",
                    self._ps.pseudonym_normalized("user_id", previous),
                    self._previous("user_id", previous),
                ),
            )

        country, subdivision = locate(signals.region, context)
        jurisdiction = signals.jurisdiction or (
            self._opt.country_jurisdictions.get(country) if country else None
        )
        pi = self._pi_categories(data)
        age = _age(data)
        facts_key = (
            signals.jurisdiction,
            country,
            subdivision,
            signals.gpc,
            pi,
            age,
            signals.opt_outs,
        )
        facts = self._facts_memo.get(facts_key)
        if facts is None:
            # The label as given: the router resolves label + country to packs.
            facts = EventFacts(
                jurisdiction=signals.jurisdiction,
                country=country,
                subdivision=subdivision,
                gpc=signals.gpc,
                pi_categories=pi,
                age=age,
                opt_outs=signals.opt_outs,
            )
            if len(self._facts_memo) >= _MEMO_MAX // 10:
                self._facts_memo.clear()
            self._facts_memo[facts_key] = facts

        payloads: dict[str, bytes] = {}
        alias_user: dict[str, bytes] | None = {} if previous is not None else None
        pi_by_dest: dict[str, frozenset[str]] = {}
        ip = context.get("ip") if isinstance(context.get("ip"), str) else None
        ips = self._ip(ip) if ip else None
        if ip is not None and ips is None:
            data["context"] = context = {k: v for k, v in context.items() if k != "ip"}
            ip = None
            warnings.append(
                InputWarning(
                    index,
                    "ip_unreadable",
                    "context.ip holds no IP address and was removed",
                    f"{prefix}.context.ip",
                )
            )
        short_ip = ips[2] if ips else None
        ip_ok = ip is None or short_ip is not None
        simple = [lane for lane in self._lanes if not lane.rules and pi <= lane.pi and ip_ok]
        if simple:
            self._template_payloads(
                simple,
                data,
                found,
                ip,
                ips,
                jurisdiction,
                previous,
                pi,
                payloads,
                alias_user,
                pi_by_dest,
            )
        for lane in self._lanes:
            if lane in simple:
                continue
            dest, domain = lane.config, lane.domain
            out = dict(data)  # nested dicts are copied on write by _set
            for kind, value, field_path in found:
                if field_path:
                    _set(
                        out,
                        field_path,
                        self._ps.pseudonym_normalized(kind.lstrip("~"), value, domain),
                    )
            ctx = dict(out.get("context") or {})
            if ip is not None and not dest.full_ip:
                if short_ip is None:
                    ctx.pop("ip", None)
                else:
                    ctx["ip"] = short_ip
            ctx["consentry"] = {"jurisdiction": jurisdiction, "domain": domain}
            out["context"] = ctx
            allowed_pi = pi & lane.pi
            pi_by_dest[dest.name] = allowed_pi
            for field_name, category in self._opt.pi_rules.items():
                if category not in allowed_pi:
                    for section in ("properties", "traits"):
                        _set(out, (section, field_name), None, delete=True)
            if lane.rules:
                identifier_paths: set[tuple[Any, ...]] = {
                    p for k, _, p in found if not k.startswith("~pii:") and p
                }
                if scrubbed is not None:
                    identifier_paths |= scrubbed.paths
                self._apply_field_policy(dest, raw, data, out, domain, identifier_paths)
            if previous is not None:
                assert alias_user is not None
                out["previousId"] = self._ps.pseudonym_normalized("anonymous_id", previous, domain)
                alias_user[dest.name] = _encoder.encode(
                    {
                        **out,
                        "previousId": self._ps.pseudonym_normalized("user_id", previous, domain),
                    }
                )
            payloads[dest.name] = _encoder.encode(out)
            if scrubbed is not None:
                payloads[dest.name] = self._fill_scrubbed(payloads[dest.name], found, domain)
                if previous is not None:
                    assert alias_user is not None
                    alias_user[dest.name] = self._fill_scrubbed(
                        alias_user[dest.name], found, domain
                    )
        return Prepared(
            index=index,
            message_id=data["messageId"],
            generated_id=msg.messageId is None,
            type=msg_type,
            identifiers=identifiers,
            subject=identifiers[0].pseudonym if identifiers else "",
            signals=signals,
            facts=facts,
            payloads=payloads,
            pi_by_destination=pi_by_dest,
            scrubbed=tuple(r.note() for r in scrubbed.replaced) if scrubbed else (),
            alias_user_payloads=alias_user,
            alias_ids=alias_ids,
            warnings=warnings + _signal_warnings(index, prefix, signals),
            blocked=flags.blocked(
                flags.merged(data.get("integrations"), batch_integrations), self._names
            ),
            signal_at=self._clock(msg, received_at, context) if not signals.empty else None,
        )

    def _times(
        self, msg: Message, data: dict[str, Any], received_at: datetime, sent_at: datetime | None
    ) -> None:
        """Segment's four times (collector.pipeline.timestamps), as UTC ``Z`` text."""
        if self._at is None or self._at[0] is not received_at:
            self._at = (received_at, iso_z(received_at))  # one per batch
        received = self._at[1]
        data["receivedAt"] = received
        if msg.timestamp is None and msg.originalTimestamp is None:
            data["timestamp"] = received
            if msg.sentAt is not None:
                data["sentAt"] = iso_z(msg.sentAt)
            elif sent_at is not None:
                data["sentAt"] = iso_z(sent_at)
            return
        times = segment_times(
            timestamp=msg.timestamp,
            original_timestamp=msg.originalTimestamp,
            sent_at=msg.sentAt or sent_at,
            received_at=received_at,
        )
        data["timestamp"] = iso_z(times.timestamp)
        if times.original_timestamp is not None:
            data["originalTimestamp"] = iso_z(times.original_timestamp)
        if times.sent_at is not None:
            data["sentAt"] = iso_z(times.sent_at)

    def _fill_scrubbed(
        self, payload: bytes, found: list[tuple[str, str, tuple[str, ...]]], domain: str
    ) -> bytes:
        """Fill the scrub step's placeholders with this domain's pseudonyms."""

        def value(m: re.Match[bytes]) -> bytes:
            kind, normalized, _ = found[int(m.group(1))]
            return self._ps.pseudonym_normalized(kind.lstrip("~"), normalized, domain).encode()

        return _MARKER.sub(value, payload)

    def _identifier(self, kind: str, value: str) -> Identifier:
        memo_key = (kind, value)
        ident = self._ident_memo.get(memo_key)
        if ident is None:
            ident = Identifier(
                kind, self._ps.pseudonym_normalized(kind, value), self._previous(kind, value)
            )
            if len(self._ident_memo) >= _MEMO_MAX:
                self._ident_memo.clear()
            self._ident_memo[memo_key] = ident
        return ident

    def _lane_values(
        self, lanes: list[_Lane], found: list[tuple[str, str, tuple[str, ...]]]
    ) -> list[dict[bytes, bytes]]:
        """Per lane, its domain and its pseudonyms of ``found`` as template values."""
        memo_key = tuple((kind, value) for kind, value, _ in found)
        memo = self._lane_memo.get(memo_key)
        if memo is None:
            memo = [
                {
                    **lane.constants,
                    **{
                        _key(i): self._ps.pseudonym_normalized(
                            kind.lstrip("~"), value, lane.domain
                        ).encode()
                        for i, (kind, value) in enumerate(memo_key)
                    },
                }
                for lane in self._lanes
            ]
            if len(self._lane_memo) >= _MEMO_MAX // 2:
                self._lane_memo.clear()
            self._lane_memo[memo_key] = memo
        return [memo[lane.position] for lane in lanes]

    def _ip(self, ip: str) -> tuple[bytes, bytes, str] | None:
        """(the address and its /24 or /48 as JSON string contents, the /24 or
        /48); None if it is not an IP address."""
        if ip in self._ip_memo:
            return self._ip_memo[ip]
        address = client_ips.client_ip(ip)
        result = None
        if address is not None:
            short = client_ips.truncate(address)
            result = (_json_str(str(address)), _json_str(short), short)
        if len(self._ip_memo) >= _MEMO_MAX // 4:
            self._ip_memo.clear()
        self._ip_memo[ip] = result
        return result

    def _signals(self, context: Any) -> Signals:
        """read_context is pure: memoized on the parts of the context it reads."""
        if not isinstance(context, dict):
            return read_context(context, category_map=self._opt.category_map)
        try:
            memo_key = _encoder.encode((context.get("consent"), context.get("consentManagement")))
        except (TypeError, msgspec.EncodeError):
            return read_context(context, category_map=self._opt.category_map)
        signals = self._signal_memo.get(memo_key)
        if signals is None:
            signals = read_context(context, category_map=self._opt.category_map)
            if len(self._signal_memo) >= _MEMO_MAX // 10:
                self._signal_memo.clear()
            self._signal_memo[memo_key] = signals
        return signals

    def _template_payloads(
        self,
        lanes: list[_Lane],
        data: dict[str, Any],
        found: list[tuple[str, str, tuple[str, ...]]],
        ip: str | None,
        ips: tuple[bytes, bytes, str] | None,
        jurisdiction: str | None,
        previous: str | None,
        pi: frozenset[str],
        payloads: dict[str, bytes],
        alias_user: dict[str, bytes] | None,
        pi_by_dest: dict[str, frozenset[str]],
    ) -> None:
        """Encode the message once with placeholders where the destinations differ
        (pseudonyms, IP, domain), then fill them in per destination: one JSON
        encode per message instead of one per destination. The placeholders carry
        a random per-process nonce, so event data cannot collide with them."""
        out = dict(data)  # nested dicts are copied on write by _set
        for i, (_, _, field_path) in enumerate(found):
            if field_path:  # () : the scrub step placed it already
                _set(out, field_path, _placeholder(i))
        ctx = dict(out.get("context") or {})
        if ip is not None:
            ctx["ip"] = f"{_NONCE}ip_"
        ctx["consentry"] = {"jurisdiction": jurisdiction, "domain": f"{_NONCE}dom_"}
        out["context"] = ctx
        if previous is not None:
            out["previousId"] = f"{_NONCE}prev_"
        # Split once at the placeholders; each destination joins its own values in.
        parts = _MARKER.split(_encoder.encode(out))
        names = parts[1::2]
        for lane, memo in zip(lanes, self._lane_values(lanes, found), strict=True):
            dest, domain = lane.config, lane.domain
            values = memo
            if ip is not None or previous is not None:
                values = dict(memo)
                if ip is not None:
                    assert ips is not None  # lanes get a template only for a valid address
                    values[b"ip"] = ips[0] if dest.full_ip else ips[1]
                if previous is not None:
                    assert alias_user is not None
                    values[b"prev"] = self._ps.pseudonym_normalized(
                        "user_id", previous, domain
                    ).encode()
                    alias_user[dest.name] = _fill(parts, names, values)
                    values[b"prev"] = self._ps.pseudonym_normalized(
                        "anonymous_id", previous, domain
                    ).encode()
            payloads[dest.name] = _fill(parts, names, values)
            pi_by_dest[dest.name] = pi

    def _apply_field_policy(
        self,
        dest: DestinationConfig,
        raw: dict[str, Any],
        scrubbed: dict[str, Any],
        out: dict[str, Any],
        domain: str,
        identifier_paths: set[tuple[Any, ...]],
    ) -> None:
        """The destination's allow-lists and per-path rules. Rules read the raw
        value (before pseudonymization), so hashing an email hashes the address;
        ``keep`` reads the scrubbed message and never releases an identifier
        (nor an object holding one)."""
        for section, allowed in (
            ("properties", dest.allow_properties),
            ("traits", dest.allow_traits),
        ):
            values = out.get(section)
            if allowed is not None and isinstance(values, dict):
                out[section] = {k: v for k, v in values.items() if k in allowed}
        for path, rule in dest.fields.items():
            keys = tuple(path.split("."))
            value = _get(raw, keys)
            if value is None:
                continue
            if rule == "keep":
                # Explicitly allowed to see a personal field's raw value; identifiers
                # themselves never leave as raw values.
                if not any(p[: len(keys)] == keys for p in identifier_paths):
                    _set(out, keys, _get(scrubbed, keys))
                continue
            if rule == "drop":
                _set(out, keys, None, delete=True)
                continue
            leaf = key_kind(keys[-1])
            kind = leaf if leaf in ("email", "phone") else None
            if rule == "truncate_ip":
                _set(out, keys, truncate_ip(str(value)))
            elif rule == "pseudonymize":
                try:
                    norm = normalize(kind, value, self._ps.options) if kind else str(value)
                except InvalidIdentifier:
                    _set(out, keys, None, delete=True)
                    continue
                _set(
                    out, keys, self._ps.pseudonym_normalized(kind or f"field:{path}", norm, domain)
                )
            elif rule == "hash_sha256_normalized":
                try:
                    digest = (
                        meta_capi_hash(kind, str(value), self._ps.options)
                        if kind
                        else hashlib.sha256(str(value).strip().lower().encode()).hexdigest()
                    )
                except InvalidIdentifier:
                    _set(out, keys, None, delete=True)
                    continue
                _set(out, keys, digest)

    def _previous(self, kind: str, value: str) -> tuple[str, ...]:
        if self._single_key:
            return ()
        return tuple(self._ps.all_versions(kind, value, INTERNAL)[1:])

    @property
    def _single_key(self) -> bool:
        return len(self._ps.lookup_kids()) == 1

    def _pi_categories(self, data: Mapping[str, Any]) -> frozenset[str]:
        if not self._opt.pi_rules:
            return frozenset()
        found = set()
        for section in ("properties", "traits"):
            values = data.get(section)
            if isinstance(values, dict):
                for name, category in self._opt.pi_rules.items():
                    if name in values:
                        found.add(category)
        return frozenset(found)

    def _wechat_ids(
        self,
        data: Mapping[str, Any],
        base: tuple[str, ...],
        traits: Mapping[str, Any],
        link: bool,
        prefix: str,
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """WeChat ids of one traits object, as (kind, normalized value, path). An
        openid is namespaced by its app (``context.app.id``, else the configured
        id); without an app it is pseudonymized but not linked."""
        keys = self._opt.wechat
        assert keys is not None
        out: list[tuple[str, str, tuple[str, ...]]] = []
        for kind, names in (
            ("wechat_unionid", keys.unionid_keys),
            ("wechat_openid", keys.openid_keys),
        ):
            hit = find_key(traits, names)
            if hit is None:
                continue
            key, raw = hit
            where = f"{prefix}.{'.'.join(base)}.{key}"
            linked = link
            if kind == "wechat_openid":
                scoped = namespaced_openid(raw, app_id_of(data.get("context"), keys.app_id))
                linked = link and scoped is not None
                raw = scoped or raw
            value = self._normalized(kind, raw, where)
            if value is not None:
                out.append((kind if linked else f"~{kind}", value, (*base, key)))
        return out

    def identifiers_for(
        self, user_id: object, anonymous_id: object, traits: Mapping[str, Any] | None, prefix: str
    ) -> list[Identifier]:
        """Identifiers of a consent call or erasure request."""
        found: list[tuple[str, str]] = []
        for kind, value, key in (
            ("user_id", user_id, "userId"),
            ("anonymous_id", anonymous_id, "anonymousId"),
        ):
            norm = self._normalized(kind, value, f"{prefix}.{key}")
            if norm is not None:
                found.append((kind, norm))
        for key, kind in PERSON_TRAIT_KINDS:
            if traits and key in traits:
                norm = self._normalized(kind, traits[key], f"{prefix}.traits.{key}")
                if norm is not None:
                    found.append((kind, norm))
        if not found:
            raise InvalidMessage(
                "needs a userId, anonymousId, traits.email or traits.phone", f"{prefix}.userId"
            )
        return [
            Identifier(
                kind, self._ps.pseudonym_normalized(kind, value), self._previous(kind, value)
            )
            for kind, value in found
        ]


def at_path(prefix: str, path: str) -> str:
    """A path relative to the message (``$.context.x``) under the message's
    own prefix (``$.batch[3]``): ``$.batch[3].context.x``. Anything that is
    not such a path gives the prefix alone."""
    if path == "$" or path.startswith(("$.", "$[")):
        return prefix + path[1:]
    return prefix


def _pii_text(value: object) -> str:
    """Personal data that is not an identifier, as pseudonymized: its text
    (JSON for other values), NFC, trimmed, lower case."""
    text = value if isinstance(value, str) else _encoder.encode(value).decode()
    return unicodedata.normalize("NFC", text).strip().lower()


def _signal_warnings(index: int, prefix: str, signals: Signals) -> list[InputWarning]:
    return [
        InputWarning(index, "consent_unreadable", w.reason, at_path(prefix, w.path))
        for w in signals.warnings
    ]


def _unusable_trait(index: int, why: str, path: str) -> InputWarning:
    return InputWarning(
        index,
        "trait_unusable",
        f"{why}; kept pseudonymized as personal data and not used to link people",
        path,
    )


def _fill(parts: list[bytes], names: list[bytes], values: Mapping[bytes, bytes]) -> bytes:
    """Put a destination's values where a split template had its placeholders."""
    pieces = list(parts)
    pieces[1::2] = [values[name] for name in names]
    return b"".join(pieces)


def _get(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    # Decoded JSON objects are plain dicts: isinstance(x, dict) skips the ABC
    # machinery that a Mapping check costs on every event.
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def _set(data: dict[str, Any], path: Sequence[str], value: Any, *, delete: bool = False) -> None:
    """Set or delete at a path, copying each dict on the way: destinations share
    the nested dicts of the decoded message, and one must not see another's edit."""
    cur = data
    for key in path[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            return
        nxt = dict(nxt)
        cur[key] = nxt
        cur = nxt
    if delete:
        cur.pop(path[-1], None)
    else:
        cur[path[-1]] = value


def _age(data: Mapping[str, Any]) -> int | None:
    context = data.get("context")
    in_context = context.get("traits") if isinstance(context, dict) else None
    for base in (data.get("traits"), in_context):
        if isinstance(base, dict) and base:
            age = base.get("age")
            if isinstance(age, int) and not isinstance(age, bool) and 0 <= age < 150:
                return age
    return None
