"""US privacy sections of the IAB Global Privacy Platform, and the US Privacy string (pure).

Sources: IAB Tech Lab, *Global Privacy Platform* section specifications
(``Sections/US-States/{CA,VA,CO,UT,CT,FL,TX}``), checked against the reference
encoders' layouts and test vectors (``IABTechLab/iabgpp-es``
``modules/cmpapi/src/encoder/segment/Us*CoreSegment.ts``, ``test/encoder/section/Us*.test.ts``;
``IABTechLab/iabgpp-java`` ``section/Us*Test.java``), and the IAB *CCPA
U.S. Privacy String* specification v1 (``uspv1``, the GPP section 6, also sent
bare as ``context.consent.usPrivacy``).

A state section is a core segment and, for some states, a GPC sub-section,
joined by '.'. The core segment is a 6-bit version (1) followed by 2-bit fields
whose order and list lengths differ per state (``LAYOUTS``). Every 2-bit field
reads 0 = not applicable, 1 = yes (opted out / notice given / consent
withheld, per field), 2 = no; 3 is undefined. The bits are padded to whole
bytes and then to whole base64url characters, which the decoder ignores.

Errors: every malformed input raises ConsentSignalError naming the section and
field, never another exception (a hypothesis test holds this).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from consent.bits import BitReader, BitWriter, decode_b64url
from consent.errors import ConsentSignalError

# Field layouts after the 6-bit Version: (IAB field name, list length or None for one value).
_N = None
_MSPA = (
    ("MspaCoveredTransaction", _N),
    ("MspaOptOutOptionMode", _N),
    ("MspaServiceProviderMode", _N),
)
LAYOUTS: dict[int, tuple[str, tuple[tuple[str, int | None], ...], bool]] = {
    # id: (name, core fields, has a GPC sub-section)
    8: (
        "usca",
        (
            ("SaleOptOutNotice", _N),
            ("SharingOptOutNotice", _N),
            ("SensitiveDataLimitUseNotice", _N),
            ("SaleOptOut", _N),
            ("SharingOptOut", _N),
            ("SensitiveDataProcessing", 9),
            ("KnownChildSensitiveDataConsents", 2),
            ("PersonalDataConsents", _N),
            *_MSPA,
        ),
        True,
    ),
    9: (
        "usva",
        (
            ("SharingNotice", _N),
            ("SaleOptOutNotice", _N),
            ("TargetedAdvertisingOptOutNotice", _N),
            ("SaleOptOut", _N),
            ("TargetedAdvertisingOptOut", _N),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", _N),
            *_MSPA,
        ),
        False,
    ),
    10: (
        "usco",
        (
            ("SharingNotice", _N),
            ("SaleOptOutNotice", _N),
            ("TargetedAdvertisingOptOutNotice", _N),
            ("SaleOptOut", _N),
            ("TargetedAdvertisingOptOut", _N),
            ("SensitiveDataProcessing", 7),
            ("KnownChildSensitiveDataConsents", _N),
            *_MSPA,
        ),
        True,
    ),
    11: (
        "usut",
        (
            ("SharingNotice", _N),
            ("SaleOptOutNotice", _N),
            ("TargetedAdvertisingOptOutNotice", _N),
            ("SensitiveDataProcessingOptOutNotice", _N),
            ("SaleOptOut", _N),
            ("TargetedAdvertisingOptOut", _N),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", _N),
            *_MSPA,
        ),
        False,
    ),
    12: (
        "usct",
        (
            ("SharingNotice", _N),
            ("SaleOptOutNotice", _N),
            ("TargetedAdvertisingOptOutNotice", _N),
            ("SaleOptOut", _N),
            ("TargetedAdvertisingOptOut", _N),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", 3),
            *_MSPA,
        ),
        True,
    ),
    13: (
        "usfl",
        (
            ("ProcessingNotice", _N),
            ("SaleOptOutNotice", _N),
            ("TargetedAdvertisingOptOutNotice", _N),
            ("SaleOptOut", _N),
            ("TargetedAdvertisingOptOut", _N),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", 3),
            ("AdditionalDataProcessingConsent", _N),
            *_MSPA,
        ),
        False,
    ),
    16: (
        "ustx",
        (
            ("ProcessingNotice", _N),
            ("SaleOptOutNotice", _N),
            ("TargetedAdvertisingOptOutNotice", _N),
            ("SaleOptOut", _N),
            ("TargetedAdvertisingOptOut", _N),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", _N),
            ("AdditionalDataProcessingConsent", _N),
            *_MSPA,
        ),
        True,
    ),
}
# The fields that record an opt-out of sale, sharing or targeted advertising.
OPT_OUT_FIELDS = ("SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut")
# 1 is an opt-out; 3 is undefined and read as one.
NOT_APPLICABLE, DID_NOT_OPT_OUT = 0, 2

FieldValue = int | tuple[int, ...]


def opt_outs_of(name: str, values: Mapping[str, FieldValue]) -> tuple[str, ...]:
    """``section.Field`` for each sale/sharing/targeted-advertising field that is an
    opt-out: 1, or the undefined 3 (read as an opt-out: fail closed)."""
    return tuple(
        f"{name}.{f}"
        for f in OPT_OUT_FIELDS
        if isinstance(values.get(f), int) and values[f] not in (NOT_APPLICABLE, DID_NOT_OPT_OUT)
    )


def ad_purposes(values: Mapping[str, FieldValue]) -> dict[str, bool]:
    """Sale/sharing/targeted-advertising fields as purpose states: any opt-out
    denies advertising and marketing; all stated fields 2 (did not opt out)
    grants them; fields that are 0 (not applicable) say nothing."""
    stated = [v for f in OPT_OUT_FIELDS if isinstance(v := values.get(f), int) and v != 0]
    if not stated:
        return {}
    granted = all(v == DID_NOT_OPT_OUT for v in stated)
    return {"advertising": granted, "marketing": granted}


@dataclass(frozen=True, slots=True)
class UsSection:
    """A decoded GPP US state section: ``fields`` by their IAB names (lists as tuples)."""

    section_id: int
    name: str
    version: int
    fields: Mapping[str, FieldValue]
    gpc_segment: bool = False
    gpc: bool = False

    def opt_outs(self) -> tuple[str, ...]:
        return opt_outs_of(self.name, self.fields)

    def purposes(self) -> dict[str, bool]:
        return ad_purposes(self.fields)


def read_gpc_subsections(parts: list[str], name: str) -> tuple[bool, bool]:
    """(a GPC sub-section was present, its Gpc flag) from the '.'-separated
    sub-sections after a core segment; sub-section type 1 is GPC, others are errors."""
    gpc_segment = gpc = False
    for i, sub in enumerate(parts, start=1):
        what = f"{name} sub-section {i}"
        s = BitReader(decode_b64url(sub, what), what)
        kind = s.uint(2, "SubsectionType")
        if kind != 1:
            raise ConsentSignalError(f"{what} has unknown type {kind}")
        gpc_segment = True
        gpc = s.flag("Gpc")
    return gpc_segment, gpc


def decode_state(section_id: int, text: str) -> UsSection:
    """One US state section (ids in ``LAYOUTS``); raises ConsentSignalError."""
    name, layout, has_gpc = LAYOUTS[section_id]
    parts = text.split(".")
    what = f"{name} core segment"
    r = BitReader(decode_b64url(parts[0], what), what)
    version = r.uint(6, "Version")
    if version != 1:
        raise ConsentSignalError(f"{name} version {version} is not supported; expected 1")
    values: dict[str, FieldValue] = {}
    for fname, count in layout:
        if count is None:
            values[fname] = r.uint(2, fname)
        else:
            values[fname] = tuple(r.uint(2, f"{fname}[{i}]") for i in range(count))
    if len(parts) > 1 and not has_gpc:
        raise ConsentSignalError(f"{name} has no sub-sections, but the string carries one")
    gpc_segment, gpc = read_gpc_subsections(parts[1:], name)
    return UsSection(section_id, name, version, values, gpc_segment, gpc)


def encode_state(
    section_id: int, values: Mapping[str, FieldValue], *, gpc: bool | None = None
) -> str:
    """The inverse of decode_state (tests and fixtures); ``gpc=None`` omits the sub-section."""
    name, layout, has_gpc = LAYOUTS[section_id]
    w = BitWriter()
    w.uint(1, 6)
    for fname, _ in layout:
        value = values.get(fname, 1 if fname == "MspaCoveredTransaction" else 0)
        for v in (value,) if isinstance(value, int) else value:
            w.uint(v, 2)
    out = w.b64()
    if gpc is not None:
        if not has_gpc:
            raise ValueError(f"{name} has no GPC sub-section")
        g = BitWriter()
        g.uint(1, 2)
        g.flag(gpc)
        out += "." + g.b64()
    return out


# -- US Privacy string (uspv1) -----------------------------------------------------
_USP_LETTERS = frozenset("YN-")


@dataclass(frozen=True, slots=True)
class UsPrivacy:
    """The CCPA U.S. Privacy String v1: four characters, version ``1`` then
    ``Notice``, ``OptOutSale`` and ``LspaCovered``, each Y, N or '-' (not applicable)."""

    version: int
    notice: str
    opt_out_sale: str
    lspa_covered: str
    name: str = "uspv1"

    def opt_outs(self) -> tuple[str, ...]:
        return (f"{self.name}.OptOutSale",) if self.opt_out_sale == "Y" else ()

    def purposes(self) -> dict[str, bool]:
        """Y (opted out of sale) denies advertising and marketing, N grants them, '-' says nothing."""
        if self.opt_out_sale == "-":
            return {}
        granted = self.opt_out_sale == "N"
        return {"advertising": granted, "marketing": granted}


def decode_usp(text: object, *, name: str = "uspv1") -> UsPrivacy:
    """``"1YYN"`` -> UsPrivacy; raises ConsentSignalError for anything else
    (case-insensitive letters are accepted, as CMPs send both)."""
    if not isinstance(text, str):
        raise ConsentSignalError(f"{name} must be a string such as 1YNN")
    value = text.strip().upper()
    if len(value) != 4:
        raise ConsentSignalError(f"{name} must be 4 characters (version, notice, opt-out, LSPA)")
    if value[0] != "1":
        raise ConsentSignalError(f"{name} version must be 1")
    for label, ch in zip(("Notice", "OptOutSale", "LspaCovered"), value[1:], strict=True):
        if ch not in _USP_LETTERS:
            raise ConsentSignalError(f"{name} {label} must be Y, N or -")
    return UsPrivacy(1, value[1], value[2], value[3], name)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A section the string carries but that could not be read: counted as an opt-out."""

    section_id: int
    name: str
    reason: str

    def opt_outs(self) -> tuple[str, ...]:
        return (f"{self.name} (unreadable)",)
