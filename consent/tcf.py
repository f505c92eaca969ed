"""IAB TCF v2.2 / v2.3 TC strings: our own decoder (and an encoder for tests).

A TC string is base64url segments joined by '.': the core segment first, then
optional segments whose first 3 bits name their type (1 disclosed vendors,
2 allowed vendors, 3 publisher TC). Bitfields become sets of ids. Anything
malformed raises ConsentSignalError naming the field; nothing else escapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from consent.bits import BitReader, BitWriter, decode_b64url
from consent.errors import ConsentSignalError

MAX_LENGTH = 16_384


@dataclass(frozen=True, slots=True)
class PublisherRestriction:
    purpose_id: int
    restriction_type: int  # 0 not allowed, 1 require consent, 2 require legitimate interest
    vendors: frozenset[int]


@dataclass(frozen=True, slots=True)
class PublisherTC:
    purpose_consents: frozenset[int]
    purpose_legitimate_interests: frozenset[int]
    num_custom_purposes: int
    custom_purpose_consents: frozenset[int]
    custom_purpose_legitimate_interests: frozenset[int]


@dataclass(frozen=True, slots=True)
class TCString:
    version: int
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_optins: frozenset[int]
    purpose_consents: frozenset[int]
    purpose_legitimate_interests: frozenset[int]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: frozenset[int]
    vendor_legitimate_interests: frozenset[int]
    publisher_restrictions: tuple[PublisherRestriction, ...] = ()
    disclosed_vendors: frozenset[int] | None = None
    allowed_vendors: frozenset[int] | None = None
    publisher_tc: PublisherTC | None = None
    max_vendor_consent: int = field(default=0, compare=False)
    max_vendor_legitimate_interest: int = field(default=0, compare=False)


def _time(deciseconds: int) -> datetime:
    return datetime.fromtimestamp(deciseconds / 10, UTC)


def _ranges(r: BitReader, field_name: str, max_id: int | None = None) -> set[int]:
    ids: set[int] = set()
    for _ in range(r.uint(12, f"{field_name}.numEntries")):
        is_range = r.flag(f"{field_name}.isRange")
        start = r.uint(16, f"{field_name}.startVendorId")
        end = r.uint(16, f"{field_name}.endVendorId") if is_range else start
        if start < 1 or end < start or (max_id is not None and end > max_id):
            raise ConsentSignalError(f"TC string: {field_name} has an invalid range {start}-{end}")
        if end - start > 100_000:
            raise ConsentSignalError(
                f"TC string: {field_name} range {start}-{end} is implausibly large"
            )
        ids.update(range(start, end + 1))
    return ids


def _vendors(r: BitReader, field_name: str) -> tuple[set[int], int]:
    max_id = r.uint(16, f"{field_name}.maxVendorId")
    if r.flag(f"{field_name}.isRangeEncoding"):
        return _ranges(r, field_name, max_id), max_id
    return r.bitfield(max_id, field_name), max_id


def _core(data: tuple[int, int]) -> TCString:
    r = BitReader(data, "TC string core segment")
    version = r.uint(6, "version")
    if version != 2:
        raise ConsentSignalError(f"TC string version {version} is not supported; expected 2")
    created = _time(r.uint(36, "created"))
    last_updated = _time(r.uint(36, "lastUpdated"))
    cmp_id = r.uint(12, "cmpId")
    cmp_version = r.uint(12, "cmpVersion")
    consent_screen = r.uint(6, "consentScreen")
    language = r.letters(2, "consentLanguage")
    vendor_list_version = r.uint(12, "vendorListVersion")
    policy_version = r.uint(6, "tcfPolicyVersion")
    service_specific = r.flag("isServiceSpecific")
    non_standard = r.flag("useNonStandardTexts")
    special = r.bitfield(12, "specialFeatureOptIns")
    purposes = r.bitfield(24, "purposesConsent")
    purposes_li = r.bitfield(24, "purposesLITransparency")
    p1 = r.flag("purposeOneTreatment")
    publisher_cc = r.letters(2, "publisherCC")
    consents, max_consent = _vendors(r, "vendorConsents")
    li, max_li = _vendors(r, "vendorLegitimateInterests")
    restrictions = []
    for _ in range(r.uint(12, "numPubRestrictions")):
        purpose = r.uint(6, "pubRestriction.purposeId")
        kind = r.uint(2, "pubRestriction.restrictionType")
        if kind == 3:
            raise ConsentSignalError("TC string: publisher restriction type 3 is undefined")
        vendors = _ranges(r, "pubRestriction")
        restrictions.append(PublisherRestriction(purpose, kind, frozenset(vendors)))
    return TCString(
        version=version,
        created=created,
        last_updated=last_updated,
        cmp_id=cmp_id,
        cmp_version=cmp_version,
        consent_screen=consent_screen,
        consent_language=language,
        vendor_list_version=vendor_list_version,
        policy_version=policy_version,
        is_service_specific=service_specific,
        use_non_standard_texts=non_standard,
        special_feature_optins=frozenset(special),
        purpose_consents=frozenset(purposes),
        purpose_legitimate_interests=frozenset(purposes_li),
        purpose_one_treatment=p1,
        publisher_cc=publisher_cc,
        vendor_consents=frozenset(consents),
        vendor_legitimate_interests=frozenset(li),
        publisher_restrictions=tuple(restrictions),
        max_vendor_consent=max_consent,
        max_vendor_legitimate_interest=max_li,
    )


def decode(text: str) -> TCString:
    """Decode a TC string; raises ConsentSignalError for anything malformed."""
    if not isinstance(text, str) or not text.strip():
        raise ConsentSignalError("TC string is empty")
    if len(text) > MAX_LENGTH:
        raise ConsentSignalError(f"TC string is longer than {MAX_LENGTH} characters")
    segments = text.strip().split(".")
    core = _core(decode_b64url(segments[0], "TC string core segment"))
    disclosed = allowed = None
    publisher = None
    for i, segment in enumerate(segments[1:], start=1):
        r = BitReader(decode_b64url(segment, f"TC string segment {i}"), f"TC string segment {i}")
        kind = r.uint(3, "segmentType")
        if kind in (1, 2):
            ids, _ = _vendors(r, "disclosedVendors" if kind == 1 else "allowedVendors")
            if kind == 1:
                disclosed = frozenset(ids)
            else:
                allowed = frozenset(ids)
        elif kind == 3:
            pc = r.bitfield(24, "pubPurposesConsent")
            pli = r.bitfield(24, "pubPurposesLITransparency")
            n = r.uint(6, "numCustomPurposes")
            publisher = PublisherTC(
                frozenset(pc),
                frozenset(pli),
                n,
                frozenset(r.bitfield(n, "customPurposesConsent")),
                frozenset(r.bitfield(n, "customPurposesLITransparency")),
            )
        else:
            raise ConsentSignalError(f"TC string segment {i} has unknown type {kind}")
    from dataclasses import replace

    return replace(
        core, disclosed_vendors=disclosed, allowed_vendors=allowed, publisher_tc=publisher
    )


# -- encoder (tests and fixtures) ----------------------------------------------------
def _write_vendors(w: BitWriter, ids: frozenset[int], *, ranges: bool) -> None:
    max_id = max(ids, default=0)
    w.uint(max_id, 16)
    w.flag(ranges)
    if not ranges:
        w.bitfield(ids, max_id)
        return
    _write_ranges(w, ids)


def _write_ranges(w: BitWriter, ids: frozenset[int]) -> None:
    runs: list[tuple[int, int]] = []
    for i in sorted(ids):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    w.uint(len(runs), 12)
    for start, end in runs:
        w.flag(start != end)
        w.uint(start, 16)
        if start != end:
            w.uint(end, 16)


def encode(tc: TCString, *, ranges: bool = False) -> str:
    w = BitWriter()
    w.uint(tc.version, 6)
    w.uint(round(tc.created.timestamp() * 10), 36)
    w.uint(round(tc.last_updated.timestamp() * 10), 36)
    w.uint(tc.cmp_id, 12)
    w.uint(tc.cmp_version, 12)
    w.uint(tc.consent_screen, 6)
    w.letters(tc.consent_language)
    w.uint(tc.vendor_list_version, 12)
    w.uint(tc.policy_version, 6)
    w.flag(tc.is_service_specific)
    w.flag(tc.use_non_standard_texts)
    w.bitfield(tc.special_feature_optins, 12)
    w.bitfield(tc.purpose_consents, 24)
    w.bitfield(tc.purpose_legitimate_interests, 24)
    w.flag(tc.purpose_one_treatment)
    w.letters(tc.publisher_cc)
    _write_vendors(w, tc.vendor_consents, ranges=ranges)
    _write_vendors(w, tc.vendor_legitimate_interests, ranges=ranges)
    w.uint(len(tc.publisher_restrictions), 12)
    for pr in tc.publisher_restrictions:
        w.uint(pr.purpose_id, 6)
        w.uint(pr.restriction_type, 2)
        _write_ranges(w, pr.vendors)
    parts = [w.b64()]
    if tc.disclosed_vendors is not None:
        s = BitWriter()
        s.uint(1, 3)
        _write_vendors(s, tc.disclosed_vendors, ranges=ranges)
        parts.append(s.b64())
    if tc.publisher_tc is not None:
        p = tc.publisher_tc
        s = BitWriter()
        s.uint(3, 3)
        s.bitfield(p.purpose_consents, 24)
        s.bitfield(p.purpose_legitimate_interests, 24)
        s.uint(p.num_custom_purposes, 6)
        s.bitfield(p.custom_purpose_consents, p.num_custom_purposes)
        s.bitfield(p.custom_purpose_legitimate_interests, p.num_custom_purposes)
        parts.append(s.b64())
    return ".".join(parts)
