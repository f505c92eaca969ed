from __future__ import annotations

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import Keyring, Pseudonymizer, parse_pseudonym
from identity.egress import google_enhanced_conversions_hash, meta_capi_hash
from identity.pseudonym import derive_domain_key, hmac_sha256, mac

# RFC 4231 HMAC-SHA-256 test cases 1, 2, 3, 4, 6, 7 (key, data, expected).
RFC4231 = [
    (
        bytes([0x0B] * 20),
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        bytes([0xAA] * 20),
        bytes([0xDD] * 50),
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        bytes([0xCD] * 50),
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        bytes([0xAA] * 131),
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        bytes([0xAA] * 131),
        b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be"
        b" hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_rfc4231_vectors(key: bytes, data: bytes, expected: str) -> None:
    # Our MAC under every pseudonym; mac() only frames its input (next tests).
    assert hmac_sha256(key, data).hex() == expected


def test_mac_frames_kind_and_value() -> None:
    key = bytes([0x0B] * 20)
    assert mac(key, "email", "a@b.co") == hmac_sha256(key, b"email\x00a@b.co")


@pytest.mark.parametrize(("kind", "value"), [("email", "a@b.co"), ("user_id", "Hi There")])
def test_pseudonym_digest_is_hmac_sha256_under_the_domain_key(kind: str, value: str) -> None:
    # The whole derivation against the standard library's HMAC as reference:
    # ps1.<kid>.<b64url(HMAC-SHA256(HKDF(secret, domain), kind 0x00 value))>.
    kid = ring.active_kid
    framed = kind.encode() + b"\x00" + value.encode()
    want = hmac.digest(derive_domain_key(ring.secret(kid), "dest:x"), framed, "sha256")
    got = Pseudonymizer(ring).pseudonym_normalized(kind, value, "dest:x")
    assert parse_pseudonym(got) == ("ps1", kid, want)


ring = Keyring.generate()
other_ring = Keyring.generate()
ids = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=40
).filter(
    lambda s: (
        s.strip().lower() not in {"null", "none", "undefined", "anonymous", "0", "-1", "nil", "nan"}
        and s.strip()
        and set(s.strip()) - {"0", "-"}
    )
)


@given(ids, st.sampled_from(["internal", "dest:lake", "dest:ads"]))
def test_deterministic_per_key_and_domain(value: str, domain: str) -> None:
    a = Pseudonymizer(ring).pseudonym("user_id", value, domain)
    b = Pseudonymizer(ring).pseudonym("user_id", value, domain)
    assert a == b
    scheme, kid, digest = parse_pseudonym(a)  # type: ignore[misc]
    assert scheme == "ps1" and kid == "k1" and len(digest) == 32


@given(ids)
def test_differs_across_keys_domains_and_kinds(value: str) -> None:
    p = Pseudonymizer(ring)
    values = {
        p.pseudonym("user_id", value, "internal"),
        p.pseudonym("user_id", value, "dest:lake"),
        p.pseudonym("anonymous_id", value, "internal"),
        Pseudonymizer(other_ring).pseudonym("user_id", value, "internal"),
    }
    assert len(values) == 4


def test_egress_hashes_match_platform_rules() -> None:
    import hashlib

    assert (
        meta_capi_hash("email", " John.Smith@Example.com ")
        == hashlib.sha256(b"john.smith@example.com").hexdigest()
    )
    assert (
        meta_capi_hash("phone", "+1 (650) 555-1212") == hashlib.sha256(b"16505551212").hexdigest()
    )
    assert (
        google_enhanced_conversions_hash("email", "John.Smith+ads@gmail.com")
        == hashlib.sha256(b"johnsmith@gmail.com").hexdigest()
    )
