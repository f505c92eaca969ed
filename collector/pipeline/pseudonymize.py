"""Step 4 of the flow: pseudonymize identifiers (HMAC-SHA256, versioned keys).

Finds a message's identifiers (``userId``, ``anonymousId``, person traits'
email and phone, WeChat ids) and the person's other personal fields,
normalizes them (identity.normalize) and derives their pseudonyms for the
graph: the internal domain under the active key, plus every older key still
in the rotation window (``Identifier.previous``). Per-destination pseudonyms
are derived at egress (``egress.py``). Raw values never leave this step
except inside the prepared payload templates' placeholders.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from collector.errors import InvalidMessage
from collector.pipeline.memo import PEOPLE, Memo
from collector.pipeline.options import IngestOptions
from collector.pipeline.paths import get_path as _get
from collector.pipeline.paths import set_path as _set
from collector.pipeline.warnings import InputWarning
from collector.sources.wechat import app_id_of, find_key, namespaced_openid
from identity.errors import InvalidIdentifier
from identity.graph import Identifier
from identity.normalize import is_placeholder, normalize
from identity.pseudonym import INTERNAL, Pseudonymizer, looks_like_pseudonym

PERSON_TRAIT_KINDS = (("email", "email"), ("phone", "phone"))
# (kind, normalized value, path in the message); "~kind": pseudonymized, never linked.
Found = tuple[str, str, tuple[str, ...]]
_encoder = msgspec.json.Encoder()


class PseudonymizeStep:
    """The identifier half of ``Preparer`` (a mixin: the preparer composes the steps)."""

    _ps: Pseudonymizer
    _opt: IngestOptions
    _pii: frozenset[str]
    _kids: tuple[str, ...]
    _norm_memo: Memo[tuple[str, str], str | None]
    _ident_memo: Memo[tuple[str, str], Identifier]
    _lane_memo: Memo[tuple[tuple[str, str], ...], list[dict[bytes, bytes]]]

    def _init_pseudonymize(self) -> None:
        self._kids = ()
        self._norm_memo = Memo(PEOPLE)
        self._ident_memo = Memo(PEOPLE)

    def _normalized(self, kind: str, value: object, path: str) -> str | None:
        if type(value) is str:
            memo_key = (kind, value)
            if memo_key in self._norm_memo:
                return self._norm_memo[memo_key]
            result = self._normalize(kind, value, path)
            self._norm_memo.put(memo_key, result)
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

    def _found(
        self,
        data: dict[str, Any],
        msg_type: str,
        *,
        index: int,
        prefix: str,
        warnings: list[InputWarning],
    ) -> list[Found]:
        """The message's identifiers and the person's personal fields, as
        (kind, normalized value, path in the message): linked kinds first seen
        in ``userId``/``anonymousId`` and person traits, ``~kind`` for values
        pseudonymized but never linked (a group's traits, unusable traits,
        ``[privacy] pii_fields``). Placeholders are removed from ``data``.
        Raises InvalidMessage when no identifier is usable."""
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
        return found

    def _alias_ids(self, previous: str) -> tuple[Identifier, Identifier]:
        """An alias's previousId as an anonymous id and as a user id (which one
        the graph knows decides, at resolve)."""
        return (
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

    def _refresh_keys(self) -> None:
        """A key rotation (live key versions changed) starts the key-bound memos afresh."""
        kids = self._ps.lookup_kids()
        if kids != self._kids:
            self._kids = kids
            self._ident_memo.clear()
            self._lane_memo.clear()

    def _identifier(self, kind: str, value: str) -> Identifier:
        memo_key = (kind, value)
        ident = self._ident_memo.get(memo_key)
        if ident is None:
            ident = Identifier(
                kind, self._ps.pseudonym_normalized(kind, value), self._previous(kind, value)
            )
            self._ident_memo.put(memo_key, ident)
        return ident

    def _previous(self, kind: str, value: str) -> tuple[str, ...]:
        if self._single_key:
            return ()
        return tuple(self._ps.all_versions(kind, value, INTERNAL)[1:])

    @property
    def _single_key(self) -> bool:
        return len(self._ps.lookup_kids()) == 1

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
        self,
        user_id: object,
        anonymous_id: object,
        traits: Mapping[str, Any] | None,
        prefix: str,
        *,
        extra: Sequence[tuple[str, object, str]] = (),
    ) -> list[Identifier]:
        """Identifiers of a consent call, erasure request or person lookup;
        ``extra``: more (kind, raw value, JSON path), e.g. a WeChat unionid or
        an openid already namespaced by its app (``wechat.namespaced_openid``)."""
        found: list[tuple[str, str]] = []
        for kind, value, where in extra:
            norm = self._normalized(kind, value, where)
            if norm is not None:
                found.append((kind, norm))
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


def _pii_text(value: object) -> str:
    """Personal data that is not an identifier, as pseudonymized: its text
    (JSON for other values), NFC, trimmed, lower case."""
    text = value if isinstance(value, str) else _encoder.encode(value).decode()
    return unicodedata.normalize("NFC", text).strip().lower()


def _unusable_trait(index: int, why: str, path: str) -> InputWarning:
    return InputWarning(
        index,
        "trait_unusable",
        f"{why}; kept pseudonymized as personal data and not used to link people",
        path,
    )
