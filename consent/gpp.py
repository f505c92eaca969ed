"""IAB Global Privacy Platform strings: header, section ids, and ``usnat``.

``DBABLA~BVVqAAEABCA.QA``: sections joined by '~'. The header (type 3,
version 1) lists the section ids in a Fibonacci-coded range, each id an
offset from the previous one. Section 7 (``usnat``, US National Privacy) is
decoded field by field, v1 (12 sensitive-data categories, 2 child consents)
and v2 (16 and 3), with its optional GPC sub-section. Other sections are kept
as their raw text. Anything malformed raises ConsentSignalError.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consent.bits import BitReader, BitWriter, decode_b64url
from consent.errors import ConsentSignalError

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
}
USNAT = 7
# Values of usnat opt-out fields: 0 not applicable, 1 opted out, 2 did not opt out.
OPTED_OUT = 1


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

    def purposes(self) -> dict[str, bool]:
        """Opt-outs as purpose states: sale/sharing/targeted advertising map to
        advertising and marketing; a field that is 0 (not applicable) says nothing."""
        out: dict[str, bool] = {}
        ad = [self.sale_opt_out, self.sharing_opt_out, self.targeted_advertising_opt_out]
        stated = [v for v in ad if v in (1, 2)]
        if stated:
            granted = all(v == 2 for v in stated)
            out["advertising"] = granted
            out["marketing"] = granted
        return out


@dataclass(frozen=True, slots=True)
class GppString:
    version: int
    section_ids: tuple[int, ...]
    sections: dict[int, str] = field(default_factory=dict)
    usnat: UsNat | None = None

    def names(self) -> list[str]:
        return [SECTION_NAMES.get(i, f"section{i}") for i in self.section_ids]


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
    gpc_segment = gpc = False
    for i, sub in enumerate(parts[1:], start=1):
        s = BitReader(decode_b64url(sub, f"usnat sub-section {i}"), f"usnat sub-section {i}")
        kind = s.uint(2, "subsectionType")
        if kind != 1:
            raise ConsentSignalError(f"usnat sub-section {i} has unknown type {kind}")
        gpc_segment = True
        gpc = s.flag("gpc")
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
    usnat = _usnat(sections[USNAT]) if USNAT in sections else None
    return GppString(version, tuple(ids), sections, usnat)


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
