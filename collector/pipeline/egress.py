"""Per-destination payloads (the egress half of steps 4 and 6): each destination
receives the message with its own pseudonyms (its domain), the IP form it may
have (/24 or /48 unless ``full_ip``), only the personal-information
categories it declared, and its allow-lists and field rules applied. Plain
SHA-256 (Meta CAPI / Google formats) exists only here, per field rule.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from collector.config import DestinationConfig
from collector.pipeline import ip as client_ips
from collector.pipeline import scrub as pii_scrub
from collector.pipeline.memo import PEOPLE, Memo
from collector.pipeline.options import IngestOptions
from collector.pipeline.paths import get_path as _get
from collector.pipeline.paths import set_path as _set
from collector.pipeline.pseudonymize import Found
from collector.pipeline.warnings import InputWarning
from identity.egress import meta_capi_hash
from identity.errors import InvalidIdentifier
from identity.normalize import normalize
from identity.pii import key_kind
from identity.pseudonym import Pseudonymizer

_encoder = msgspec.json.Encoder()
_NONCE = f"__cs{uuid.uuid4().hex}_"
_MARKER = re.compile(re.escape(_NONCE.encode()) + rb"([a-z0-9]+)_")


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


@dataclass(frozen=True, slots=True, eq=False)
class Lane:
    """A destination and what does not change between messages."""

    config: DestinationConfig
    domain: str
    pi: frozenset[str]
    rules: bool  # allow-lists or field rules: this destination gets its own encode
    constants: Mapping[bytes, bytes]  # template values that are the same for every message
    position: int


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


class EgressStep:
    """The per-destination half of ``Preparer`` (a mixin: the preparer composes the steps)."""

    _ps: Pseudonymizer
    _opt: IngestOptions
    _lanes: list[Lane]
    _lane_memo: Memo[tuple[tuple[str, str], ...], list[dict[bytes, bytes]]]
    _ip_memo: Memo[str, tuple[bytes, bytes, str] | None]

    def _init_egress(self, options: IngestOptions) -> None:
        self._lanes = [
            Lane(
                d,
                d.domain(),
                frozenset(d.pi_categories),
                bool(d.fields) or d.allow_properties is not None or d.allow_traits is not None,
                {b"dom": _json_str(d.domain())},
                position,
            )
            for position, d in enumerate(options.destinations)
        ]
        # Per set of identifiers: each destination's template values for them.
        self._lane_memo = Memo(PEOPLE // 2)
        self._ip_memo = Memo(PEOPLE // 4)

    def _payloads(
        self,
        data: dict[str, Any],
        context: Mapping[str, Any],
        found: list[Found],
        *,
        index: int,
        prefix: str,
        warnings: list[InputWarning],
        previous: str | None,
        jurisdiction: str | None,
        pi: frozenset[str],
        scrubbed: pii_scrub.Scrubbed | None,
        raw: dict[str, Any],
    ) -> tuple[dict[str, bytes], dict[str, bytes] | None, dict[str, frozenset[str]]]:
        """Per destination: the payload (its pseudonyms, its fields), the alias
        payload with previousId as a user id (aliases only), and the
        personal-information categories it may receive. Destinations without
        field rules share one encode (``_template_payloads``); the others get
        their own (``_lane_payload``). An unreadable ``context.ip`` is removed
        with a warning."""
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
            self._lane_payload(
                lane,
                data,
                found,
                ip=ip,
                short_ip=short_ip,
                jurisdiction=jurisdiction,
                previous=previous,
                pi=pi,
                scrubbed=scrubbed,
                raw=raw,
                out_payloads=payloads,
                alias_user=alias_user,
                pi_by_dest=pi_by_dest,
            )
        return payloads, alias_user, pi_by_dest

    def _lane_payload(
        self,
        lane: Lane,
        data: dict[str, Any],
        found: list[Found],
        *,
        ip: str | None,
        short_ip: str | None,
        jurisdiction: str | None,
        previous: str | None,
        pi: frozenset[str],
        scrubbed: pii_scrub.Scrubbed | None,
        raw: dict[str, Any],
        out_payloads: dict[str, bytes],
        alias_user: dict[str, bytes] | None,
        pi_by_dest: dict[str, frozenset[str]],
    ) -> None:
        """One destination's own encode: pseudonyms in its domain, its IP form,
        its personal-information rules, allow-lists and field rules."""
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
        out_payloads[dest.name] = _encoder.encode(out)
        if scrubbed is not None:
            out_payloads[dest.name] = self._fill_scrubbed(out_payloads[dest.name], found, domain)
            if previous is not None:
                assert alias_user is not None
                alias_user[dest.name] = self._fill_scrubbed(alias_user[dest.name], found, domain)

    def _template_payloads(
        self,
        lanes: list[Lane],
        data: dict[str, Any],
        found: list[Found],
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

    def _lane_values(self, lanes: list[Lane], found: list[Found]) -> list[dict[bytes, bytes]]:
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
            self._lane_memo.put(memo_key, memo)
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
        self._ip_memo.put(ip, result)
        return result

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

    def _fill_scrubbed(self, payload: bytes, found: list[Found], domain: str) -> bytes:
        """Fill the scrub step's placeholders with this domain's pseudonyms."""

        def value(m: re.Match[bytes]) -> bytes:
            kind, normalized, _ = found[int(m.group(1))]
            return self._ps.pseudonym_normalized(kind.lstrip("~"), normalized, domain).encode()

        return _MARKER.sub(value, payload)


def _fill(parts: list[bytes], names: list[bytes], values: Mapping[bytes, bytes]) -> bytes:
    """Put a destination's values where a split template had its placeholders."""
    pieces = list(parts)
    pieces[1::2] = [values[name] for name in names]
    return b"".join(pieces)
