"""WeChat: ``session_key`` never enters, openids are namespaced by app (pure).

A mini-program's ``session_key`` (WeChat Open Platform, "code2Session": the
key that signs and decrypts user data, which "must not be sent to the client")
is a secret of the brand's backend. Wherever it appears in a message, at any
depth, it is removed before the message is decoded further, never stored, and
reported as a warning naming its JSON path (never its value).

An ``openid`` identifies a person within one app only, so it is stored as
``<app id length>:<app id>:<openid>``: two apps' openids never collide; a ``unionid`` is
already unique across the brand's apps and is kept as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

SESSION_KEY = "session_key"
_NEEDLE = SESSION_KEY.encode()
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class WechatKeys:
    """Where WeChat ids are found in ``traits``/``context.traits`` (first key
    present wins) and the app id for openids when ``context.app.id`` is absent."""

    app_id: str | None = None
    openid_keys: tuple[str, ...] = ("wechat_openid", "openid", "openId")
    unionid_keys: tuple[str, ...] = ("wechat_unionid", "unionid", "unionId")


def strip_session_keys(raw: bytes, prefix: str = "$") -> tuple[bytes, list[str]]:
    """The message without any ``session_key`` member, and the JSON paths removed.
    Bytes that are not JSON are returned as they are (the pipeline rejects them)."""
    if _NEEDLE not in raw:
        return raw, []
    try:
        data = _decoder.decode(raw)
    except msgspec.DecodeError:
        return raw, []
    removed: list[str] = []
    cleaned = _strip(data, prefix, removed)
    if not removed:
        return raw, []
    return _encoder.encode(cleaned), removed


def _strip(value: Any, path: str, removed: list[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == SESSION_KEY:
                removed.append(f"{path}.{key}")
                continue
            out[key] = _strip(item, f"{path}.{key}", removed)
        return out
    if isinstance(value, list):
        return [_strip(item, f"{path}[{i}]", removed) for i, item in enumerate(value)]
    return value


def namespaced_openid(openid: str, app_id: str | None) -> str | None:
    """``<length of app id>:<app id>:<openid>`` (length-prefixed, so no pair of app
    id and openid can spell another's); None when no app id is known (an openid
    without its app cannot be told apart from another app's)."""
    if not app_id:
        return None
    return f"{len(app_id)}:{app_id}:{openid}"


def app_id_of(context: Mapping[str, Any] | None, configured: str | None) -> str | None:
    app = context.get("app") if isinstance(context, Mapping) else None
    if isinstance(app, Mapping):
        value = app.get("id") or app.get("namespace")
        if isinstance(value, str) and value:
            return value
    return configured


def find_key(traits: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, str] | None:
    for key in keys:
        value = traits.get(key)
        if isinstance(value, str) and value.strip():
            return key, value.strip()
    return None
