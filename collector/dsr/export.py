"""The access and portability export (GDPR Art. 15 and 20, PIPL Art. 45).

One zip holding:

- ``export.json``: the request and the person's summary (``person.summary``'s
  shape) plus the Art. 15(1)(a)-(h) statements, machine-readable (Art. 20(1));
- ``consent_history.csv``, ``destinations.csv``, ``erasures.csv``;
- ``index.html``: the same, readable by the person, without scripts.

No raw identifier is in it: Consentry holds none, only their kinds.
"""

from __future__ import annotations

import csv
import html
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from collector.config import ControllerConfig

PURPOSE_LABELS = {
    "necessary": "Strictly necessary operation of the service",
    "analytics": "Measuring how the service is used",
    "personalization": "Personalising what you see",
    "advertising": "Advertising",
    "marketing": "Marketing messages",
}


def statements(summary: Mapping[str, Any], *, controller: ControllerConfig) -> dict[str, str]:
    """The GDPR Art. 15(1)(a)-(h) statements for this person, in plain words;
    the controller (``[dsr.controller]``) is named as the source and as whom
    to write to."""
    ask = f" by writing to {controller.contact}" if controller.contact else ""
    dests: Sequence[Mapping[str, Any]] = summary.get("destinations", [])
    used = [d for d in dests if d.get("events")]
    purposes = sorted({p for d in used for p in d.get("purposes", [])})
    categories = sorted({c for d in used for c in d.get("pi_categories", [])})
    kinds = [i["kind"] for i in summary.get("identifiers", [])]
    return {
        "a_purposes": "; ".join(PURPOSE_LABELS.get(p, p) for p in purposes)
        or "no processing of your events for any purpose was recorded",
        "b_categories": "identifiers of these kinds, held only as pseudonyms: "
        + (", ".join(kinds) or "none")
        + "; event data"
        + (f"; {', '.join(categories)}" if categories else ""),
        "c_recipients": "; ".join(
            f"{d['recipient']} ({d.get('region') or 'region not stated'}"
            + (", third party" if d.get("third_party") else "")
            + (", transfer: " + ", ".join(f"{k} {v}" for k, v in d["cross_border"].items()))
            * bool(d.get("cross_border"))
            + ")"
            for d in used
        )
        or "no recipient received your events",
        "d_retention": "undelivered events are dropped after each recipient's retention limit;"
        " consent records are kept as proof of consent (GDPR Art. 7(1)) and made unreadable"
        " on erasure",
        "e_rights": f"you may ask {controller.name}{ask} for rectification or erasure,"
        " restriction of processing, and object to processing (GDPR Art. 16-18, 21); you may"
        " withdraw consent at any time (Art. 7(3))",
        "f_complaint": "you may lodge a complaint with a supervisory authority (GDPR Art. 77)",
        "g_source": f"collected by {controller.name} from the websites and apps you used, and from"
        " the consent choices you made there",
        "h_automated_decisions": "no automated decision-making with legal or similarly"
        " significant effects (GDPR Art. 22) is done with this data",
    }


def _csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                c: json.dumps(row.get(c), sort_keys=True)
                if isinstance(row.get(c), dict | list)
                else row.get(c)
                for c in columns
            }
        )
    return buf.getvalue()


CONSENT_COLUMNS = (
    "seq",
    "action",
    "purposes",
    "jurisdiction",
    "legal_basis",
    "method",
    "notice_id",
    "notice_version",
    "given_at",
    "received_at",
)
DEST_COLUMNS = (
    "name",
    "events",
    "first",
    "last",
    "purposes",
    "legal_bases",
    "recipient",
    "region",
    "third_party",
    "cross_border",
)
ERASURE_COLUMNS = ("destination", "status", "outbox_rows_deleted", "remote_rows_deleted", "at")


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], caption: str) -> str:
    head = "".join(f'<th scope="col">{html.escape(c.replace("_", " "))}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(columns)}">None.</td></tr>'
    return f"<table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{body}</table>"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def page(document: Mapping[str, Any]) -> str:
    """The human-readable HTML page of the export (no scripts, no external files)."""
    person = document["person"]
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        "<title>Your data</title><style>body{font:16px/1.5 sans-serif;color:#111;"
        "max-width:60em;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #555;padding:.3em .5em;text-align:left}</style></head><body>",
        "<h1>The data we hold about you</h1>",
        f"<p>From {html.escape(document['controller']['name'])}"
        + (
            f" (contact: {html.escape(document['controller']['contact'])})"
            if document["controller"].get("contact")
            else ""
        )
        + f". Request {html.escape(document['request']['id'])}, generated"
        f" {html.escape(document['generated_at'])}.</p>",
        "<h2>Why and how we process your data (GDPR Art. 15(1))</h2><dl>",
    ]
    for key, text in document["statements"].items():
        parts.append(f"<dt>({html.escape(key[0])})</dt><dd>{html.escape(text)}</dd>")
    parts.append("</dl>")
    parts.append(
        _table(
            person["identifiers"],
            ("kind", "count", "first_seen", "last_seen"),
            "Kinds of identifiers (we hold no raw values, only pseudonyms)",
        )
    )
    parts.append(
        _table(person["consent"]["history"], CONSENT_COLUMNS, "Your consent choices over time")
    )
    parts.append(_table(person["destinations"], DEST_COLUMNS, "Where your events went"))
    parts.append(_table(person["erasures"], ERASURE_COLUMNS, "Erasures and their receipts"))
    parts.append("</body></html>")
    return "".join(parts)


def build(
    request: Mapping[str, Any],
    person: Mapping[str, Any],
    *,
    controller: ControllerConfig,
    now: datetime | None = None,
) -> bytes:
    """The zip (bytes) for `request` about `person` (``person.summary``'s shape);
    ``export.json`` also names the controller (name, contact)."""
    document = {
        "generated_at": (now or datetime.now(UTC)).isoformat(),
        "controller": {"name": controller.name, "contact": controller.contact},
        "request": request,
        "person": person,
        "statements": statements(person, controller=controller),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export.json", json.dumps(document, indent=2, sort_keys=True, default=str))
        z.writestr("consent_history.csv", _csv(person["consent"]["history"], CONSENT_COLUMNS))
        z.writestr("destinations.csv", _csv(person["destinations"], DEST_COLUMNS))
        z.writestr("erasures.csv", _csv(person["erasures"], ERASURE_COLUMNS))
        z.writestr("index.html", page(document))
    return buf.getvalue()
