"""IAB Global Privacy Platform strings: header, section ids, and the US sections.

``DBABLA~BVVqAAEABCA.QA``: sections joined by '~'. The header (type 3,
version 1) lists the section ids in a Fibonacci-coded range, each id an
offset from the previous one. Every US section is decoded: 7 (``usnat``, US
National Privacy, v1 with 12 sensitive-data categories and 2 child consents,
v2 with 16 and 3, optional GPC sub-section), the state sections 8-13 and 16
(``usca``, ``usva``, ``usco``, ``usut``, ``usct``, ``usfl``, ``ustx``; layouts in
``consent.gpp_us``) and 6 (``uspv1``). Other sections are kept as their raw text.

A malformed header raises ConsentSignalError (the whole string is unreadable).
A US section that cannot be read does not: it is kept in ``unreadable`` with
its reason and counts as an opt-out of sale, sharing and targeted advertising
(fail closed), as do the US sections this version does not decode yet
(14, 15 and 17-27).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consent.bits import BitReader, BitWriter, decode_b64url
from consent.errors import ConsentSignalError
from consent.gpp_us import (
    LAYOUTS,
    Unreadable,
    UsPrivacy,
    UsSection,
    ad_purposes,
    decode_state,
    decode_usp,
    opt_outs_of,
    read_gpc_subsections,
)

MAX_LENGTH = 16_384
SECTION_NAMES = {
    2: "tcfeuv2",
    3: "gppheader",
    5: "tcfcav1",
    6: "uspv1",
    7: "usnat",
    8: "usca",
    9: "usva",
    10: "usco",
    11: "usut",
    12: "usct",
    13: "usfl",
    14: "usmt",
    15: "usor",
    16: "ustx",
    17: "usde",
    18: "usia",
    19: "usne",
    20: "usnh",
    21: "usnj",
    22: "ustn",
    23: "usmn",
    24: "usmd",
    25: "usin",
    26: "usky",
    27: "usri",
}
USP = 6
USNAT = 7
# Section ids of US privacy sections (US Privacy, National, states).
US_SECTIONS = frozenset(range(6, 28))


@dataclass(frozen=True, slots=True)
class UsNat:
    version: int
    sharing_notice: int
    sale_opt_out_notice: int
    sharing_opt_out_notice: int
    targeted_advertising_opt_out_notice: int
    sensitive_data_processing_opt_out_notice: int
    sensitive_data_limit_use_notice: int
    sale_opt_out: int
    sharing_opt_out: int
    targeted_advertising_opt_out: int
    sensitive_data_processing: tuple[int, ...]
    known_child_sensitive_data_consents: tuple[int, ...]
    personal_data_consents: int
    mspa_covered_transaction: int
    mspa_opt_out_option_mode: int
    mspa_service_provider_mode: int
    gpc_segment: bool = False
    gpc: bool = False

    name = "usnat"

    def _ad_fields(self) -> dict[str, int]:
        return {
            "SaleOptOut": self.sale_opt_out,
            "SharingOptOut": self.sharing_opt_out,
            "TargetedAdvertisingOptOut": self.targeted_advertising_opt_out,
        }

    def opt_outs(self) -> tuple[str, ...]:
        """``usnat.SaleOptOut`` etc. for each field that is an opt-out (1, or the undefined 3)."""
        return opt_outs_of(self.name, self._ad_fields())

    def purposes(self) -> dict[str, bool]:
        """Opt-outs as purpose states: sale/sharing/targeted advertising map to
        advertising and marketing; a field that is 0 (not applicable) says nothing."""
        return ad_purposes(self._ad_fields())


UsReading = UsNat | UsSection | UsPrivacy


@dataclass(frozen=True, slots=True)
class GppString:
    """A decoded GPP string: raw sections by id, decoded US sections by id, and
    the US sections that were present but could not be read."""

    version: int
    section_ids: tuple[int, ...]
    sections: dict[int, str] = field(default_factory=dict)
    us: dict[int, UsReading] = field(default_factory=dict)
    unreadable: dict[int, Unreadable] = field(default_factory=dict)

    @property
    def usnat(self) -> UsNat | None:
        found = self.us.get(USNAT)
        return found if isinstance(found, UsNat) else None

    def names(self) -> list[str]:
        return [SECTION_NAMES.get(i, f"section{i}") for i in self.section_ids]

    def opt_outs(self) -> tuple[str, ...]:
        """Every opt-out of sale, sharing or targeted advertising, named
        ``section.Field`` (``usca.SaleOptOut``), unreadable sections included."""
        out: list[str] = []
        for i in self.section_ids:
            reading = self.us.get(i) or self.unreadable.get(i)
            if reading is not None:
                out.extend(reading.opt_outs())
        return tuple(out)

    def purposes(self) -> dict[str, bool]:
        """What the readable US sections say as purpose states; any denial wins."""
        out: dict[str, bool] = {}
        for reading in self.us.values():
            for purpose, value in reading.purposes().items():
                out[purpose] = out.get(purpose, True) and value
        return out

    @property
    def gpc(self) -> bool:
        """True when any US section's GPC sub-section says the browser sent GPC."""
        return any(isinstance(r, UsNat | UsSection) and r.gpc for r in self.us.values())


def _fibonacci_range(r: BitReader, what: str) -> list[int]:
    ids: list[int] = []
    last = 0
    for _ in range(r.uint(12, f"{what}.numEntries")):
        if r.flag(f"{what}.isRange"):
            start = last + r.fibonacci(f"{what}.start")
            end = start + r.fibonacci(f"{what}.end")
            if end - start > 1000:
                raise ConsentSignalError(f"GPP {what}: range {start}-{end} is implausibly large")
            ids.extend(range(start, end + 1))
            last = end
        else:
            last = last + r.fibonacci(f"{what}.id")
            ids.append(last)
    return ids


def _usnat(text: str) -> UsNat:
    parts = text.split(".")
    r = BitReader(decode_b64url(parts[0], "usnat core segment"), "usnat core segment")
    version = r.uint(6, "version")
    if version not in (1, 2):
        raise ConsentSignalError(f"usnat version {version} is not supported; expected 1 or 2")
    n_sensitive, n_child = (12, 2) if version == 1 else (16, 3)
    names = (
        "sharing_notice",
        "sale_opt_out_notice",
        "sharing_opt_out_notice",
        "targeted_advertising_opt_out_notice",
        "sensitive_data_processing_opt_out_notice",
        "sensitive_data_limit_use_notice",
        "sale_opt_out",
        "sharing_opt_out",
        "targeted_advertising_opt_out",
    )
    head = {name: r.uint(2, name) for name in names}
    sensitive = tuple(r.uint(2, f"sensitive_data_processing[{i}]") for i in range(n_sensitive))
    child = tuple(r.uint(2, f"known_child_sensitive_data_consents[{i}]") for i in range(n_child))
    tail_names = (
        "personal_data_consents",
        "mspa_covered_transaction",
        "mspa_opt_out_option_mode",
        "mspa_service_provider_mode",
    )
    tail = {name: r.uint(2, name) for name in tail_names}
    gpc_segment, gpc = read_gpc_subsections(parts[1:], "usnat")
    return UsNat(
        version=version,
        sensitive_data_processing=sensitive,
        known_child_sensitive_data_consents=child,
        gpc_segment=gpc_segment,
        gpc=gpc,
        **head,
        **tail,
    )


def decode(text: str) -> GppString:
    if not isinstance(text, str) or not text.strip():
        raise ConsentSignalError("GPP string is empty")
    if len(text) > MAX_LENGTH:
        raise ConsentSignalError(f"GPP string is longer than {MAX_LENGTH} characters")
    parts = text.strip().split("~")
    r = BitReader(decode_b64url(parts[0], "GPP header"), "GPP header")
    kind = r.uint(6, "type")
    if kind != 3:
        raise ConsentSignalError(f"GPP header type is {kind}; expected 3")
    version = r.uint(6, "version")
    if version != 1:
        raise ConsentSignalError(f"GPP version {version} is not supported; expected 1")
    ids = _fibonacci_range(r, "sectionIds")
    if len(ids) != len(parts) - 1:
        raise ConsentSignalError(
            f"GPP header lists {len(ids)} sections but the string carries {len(parts) - 1}"
        )
    sections = dict(zip(ids, parts[1:], strict=True))
    us: dict[int, UsReading] = {}
    unreadable: dict[int, Unreadable] = {}
    for sid, text_ in sections.items():
        if sid not in US_SECTIONS:
            continue
        name = SECTION_NAMES[sid]
        try:
            us[sid] = _us_section(sid, text_)
        except ConsentSignalError as exc:
            unreadable[sid] = Unreadable(sid, name, str(exc))
    return GppString(version, tuple(ids), sections, us, unreadable)


def _us_section(sid: int, text: str) -> UsReading:
    if sid == USNAT:
        return _usnat(text)
    if sid == USP:
        return decode_usp(text)
    if sid in LAYOUTS:
        return decode_state(sid, text)
    raise ConsentSignalError(
        f"{SECTION_NAMES[sid]} (section {sid}) is not decoded by this version of Consentry"
    )


# -- encoder (tests and fixtures) ----------------------------------------------------
def encode_header(ids: list[int]) -> str:
    w = BitWriter()
    w.uint(3, 6)
    w.uint(1, 6)
    w.uint(len(ids), 12)
    last = 0
    for i in sorted(ids):
        w.flag(False)
        w.fibonacci(i - last)
        last = i
    return w.b64()


def encode_usnat(u: UsNat) -> str:
    w = BitWriter()
    w.uint(u.version, 6)
    for value in (
        u.sharing_notice,
        u.sale_opt_out_notice,
        u.sharing_opt_out_notice,
        u.targeted_advertising_opt_out_notice,
        u.sensitive_data_processing_opt_out_notice,
        u.sensitive_data_limit_use_notice,
        u.sale_opt_out,
        u.sharing_opt_out,
        u.targeted_advertising_opt_out,
        *u.sensitive_data_processing,
        *u.known_child_sensitive_data_consents,
        u.personal_data_consents,
        u.mspa_covered_transaction,
        u.mspa_opt_out_option_mode,
        u.mspa_service_provider_mode,
    ):
        w.uint(value, 2)
    out = w.b64()
    if u.gpc_segment:
        g = BitWriter()
        g.uint(1, 2)
        g.flag(u.gpc)
        out += "." + g.b64()
    return out
