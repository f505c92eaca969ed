"""GPP decoder against published vectors (IAB iabgpp encoder tests, Prebid fixtures)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import ConsentSignalError, gpp


def test_header_section_ids() -> None:
    assert gpp.decode("DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA").section_ids == (2,)
    g = gpp.decode("DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN")
    assert g.section_ids == (2, 6) and g.names() == ["tcfeuv2", "uspv1"]
    assert g.sections[6] == "1YNN"


def test_usnat_vector_from_the_reference_encoder() -> None:
    # iabgpp-java UsNatV1Test.testEncode2: these field values encode to BVVVkkkklWA.YA
    u = gpp.decode("DBABLA~BVVVkkkklWA.YA").usnat
    assert u is not None
    assert (u.version, u.sharing_notice, u.sale_opt_out_notice, u.sharing_opt_out_notice) == (
        1,
        1,
        1,
        1,
    )
    assert (u.targeted_advertising_opt_out_notice, u.sensitive_data_processing_opt_out_notice) == (
        1,
        1,
    )
    assert u.sensitive_data_limit_use_notice == 1
    assert (u.sale_opt_out, u.sharing_opt_out, u.targeted_advertising_opt_out) == (1, 1, 1)
    assert u.sensitive_data_processing == (2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0)
    assert u.known_child_sensitive_data_consents == (2, 1)
    assert (u.personal_data_consents, u.mspa_covered_transaction) == (1, 1)
    assert (u.mspa_opt_out_option_mode, u.mspa_service_provider_mode) == (1, 2)
    assert u.gpc_segment and u.gpc
    assert u.purposes() == {"advertising": False, "marketing": False}
    assert gpp.encode_usnat(u) == "BVVVkkkklWA.YA"


def test_usnat_did_not_opt_out_grants_under_opt_out_laws() -> None:
    u = gpp.decode("DBABLA~BVVqAAEABCA.QA").usnat
    assert u is not None and not u.gpc
    assert (u.sale_opt_out, u.sharing_opt_out, u.targeted_advertising_opt_out) == (2, 2, 2)
    assert u.purposes() == {"advertising": True, "marketing": True}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("DBABLA", "lists 1 sections but the string carries 0"),
        ("CBABLA~x", "type is 2"),
        ("D!BABLA~x", "not base64url"),
    ],
)
def test_malformed_gpp_raises_consent_signal_error(text: str, needle: str) -> None:
    with pytest.raises(ConsentSignalError, match=needle):
        gpp.decode(text)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("DBABLA~B!", "not base64url"),
        ("DBABLA~BVVV", "ends early"),
        ("DBABLA~BVVVkkkklWA.wA", "unknown type"),
    ],
)
def test_an_unreadable_us_section_is_kept_as_an_opt_out(text: str, needle: str) -> None:
    g = gpp.decode(text)
    assert g.usnat is None and needle in g.unreadable[gpp.USNAT].reason
    assert g.opt_outs() == ("usnat (unreadable)",) and g.purposes() == {}


@settings(max_examples=300)
@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!", max_size=120
    )
)
def test_decoder_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(ConsentSignalError):
        gpp.decode(text)


@settings(max_examples=150)
@given(
    st.lists(
        st.integers(1, 40).filter(lambda i: i != gpp.USNAT), min_size=1, max_size=8, unique=True
    )
)
def test_header_round_trip(ids: list[int]) -> None:
    header = gpp.encode_header(ids)
    text = "~".join([header, *["x" for _ in ids]])
    assert gpp.decode(text).section_ids == tuple(sorted(ids))


two = st.integers(0, 2)


@settings(max_examples=150)
@given(
    st.lists(two, min_size=9, max_size=9),
    st.lists(two, min_size=16, max_size=16),
    st.lists(two, min_size=3, max_size=3),
    st.lists(two, min_size=4, max_size=4),
    st.booleans(),
    st.booleans(),
)
def test_usnat_v2_round_trip(head, sensitive, child, tail, seg, gpc) -> None:
    fields = (2, *head, tuple(sensitive), tuple(child), *tail, seg, gpc and seg)
    u = gpp.UsNat(*fields)
    text = gpp.encode_header([7]) + "~" + gpp.encode_usnat(u)
    assert gpp.decode(text).usnat == u
