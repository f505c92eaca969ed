"""Key rotation never splits a person at a destination (issue 14 §3): a
destination's pseudonyms change only when that destination's key is rotated."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from identity import Keyring, Pseudonymizer
from identity.keyring import new_master_key, parse_master_key
from identity.pseudonym import INTERNAL

DOMAINS = ["dest:lake", "dest:ads", "shared"]
MASTER = parse_master_key(new_master_key())
ops = st.lists(
    st.one_of(
        st.just(("rotate",)),
        st.tuples(st.just("rotate_domain"), st.sampled_from(DOMAINS)),
        st.just(("retire",)),
        st.just(("reload",)),
    ),
    max_size=8,
)


def _seen(ring: Keyring) -> dict[str, str]:
    ps = Pseudonymizer(ring)
    return {d: ps.pseudonym("email", "jane@example.com", d) for d in [*DOMAINS, INTERNAL]}


@settings(max_examples=60, deadline=None)
@given(ops)
def test_a_destination_pseudonym_changes_only_when_that_destination_rotates(
    tmp_path_factory: object, steps: list[tuple[str, ...]]
) -> None:
    path = Path(str(tmp_path_factory.mktemp("ring"))) / "keyring.json"  # type: ignore[attr-defined]
    ring = Keyring.generate()
    before = _seen(ring)
    history = {d: [before[d]] for d in DOMAINS}
    for op in steps:
        if op[0] == "rotate":
            ring.rotate(pin=DOMAINS)
        elif op[0] == "rotate_domain":
            ring.rotate_domain(op[1])
        elif op[0] == "retire":
            for v in ring.versions:
                if v.state == "previous":
                    ring.retire(v.kid)
        else:
            ring.save(path, MASTER)
            ring = Keyring.load(path, MASTER)
        after = _seen(ring)
        for d in DOMAINS:
            if op == ("rotate_domain", d):
                assert after[d] != before[d]
                history[d].append(after[d])
            else:
                assert after[d] == before[d], (op, d)
        before = after
    # Erasure can still find every version a destination was sent.
    ps = Pseudonymizer(ring)
    for d in DOMAINS:
        found = {
            ps.pseudonym_normalized("email", "jane@example.com", d, kid=k)
            for k in ps.domain_kids(d)
            if ring.domain_secret(k, d) is not None or k in ring.lookup_kids()
        }
        assert set(history[d]) <= found


def test_internal_pseudonyms_still_rotate_and_new_destinations_follow_the_active_key() -> None:
    ring = Keyring.generate()
    old = Pseudonymizer(ring)
    first = old.pseudonym("user_id", "u-1")
    ring.rotate(pin=["dest:lake"])
    ps = Pseudonymizer(ring)
    assert ps.pseudonym("user_id", "u-1") != first
    assert ps.pseudonym("user_id", "u-1").startswith("ps1.k2.")
    assert ps.pseudonym("user_id", "u-1", "dest:lake").startswith("ps1.k1.")
    assert ps.pseudonym("user_id", "u-1", "dest:new").startswith("ps1.k2.")
    assert ps.domain_kids("dest:lake")[0] == "k1"
    kid = ring.rotate_domain("dest:lake")
    assert kid == "d2"
    assert Pseudonymizer(ring).pseudonym("user_id", "u-1", "dest:lake").startswith("ps1.d2.")
    assert Pseudonymizer(ring).domain_kids("dest:lake")[:2] == ("d2", "k1")


def test_pinned_keys_are_sealed_in_the_keyring_file(tmp_path: Path) -> None:
    ring = Keyring.generate()
    ring.rotate(pin=["dest:lake"])
    ring.rotate_domain("dest:lake")
    path = tmp_path / "keyring.json"
    ring.save(path, MASTER)
    text = path.read_text()
    for kid in ("k1", "d2"):
        secret = ring.domain_secret(kid, "dest:lake")
        assert secret is not None
        assert secret.hex() not in text
    loaded = Keyring.load(path, MASTER)
    assert loaded.domain_kids("dest:lake") == ring.domain_kids("dest:lake")
