"""Prometheus metrics, on a registry owned by the app (no global state)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from collector.pipeline.route import Tally


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, str], Any] = {}
        r = self.registry
        self.received = Counter(
            "consentry_messages_received", "Messages received", ["source"], registry=r
        )
        self.accepted = Counter(
            "consentry_messages_accepted", "Messages accepted", ["source"], registry=r
        )
        self.quarantined = Counter(
            "consentry_messages_quarantined", "Messages quarantined", ["source"], registry=r
        )
        self.routed = Counter(
            "consentry_outbox_enqueued", "Outbox rows written", ["destination"], registry=r
        )
        self.denied = Counter(
            "consentry_consent_denied",
            "Messages not routed for lack of consent",
            ["destination"],
            registry=r,
        )
        self.forwarded = Counter(
            "consentry_forwarded", "Messages delivered", ["destination"], registry=r
        )
        self.dropped_consent = Counter(
            "consentry_dropped_for_consent",
            "Outbox rows dropped at send time after a withdrawal",
            ["destination"],
            registry=r,
        )
        self.dead = Counter(
            "consentry_dead_lettered", "Rows moved to dead letter", ["destination"], registry=r
        )
        self.retries = Counter(
            "consentry_delivery_retries", "Failed delivery attempts", ["destination"], registry=r
        )
        self.consent_records = Counter(
            "consentry_consent_records", "Ledger records appended", registry=r
        )
        self.webhooks = Counter(
            "consentry_webhook_deliveries",
            "Webhook deliveries by source and outcome (stored, duplicate, unknown_topic,"
            " bad_signature, ping)",
            ["source", "outcome"],
            registry=r,
        )
        self.browser = Counter(
            "consentry_browser_requests",
            "Browser requests by source and outcome (pixel_rejected, origin_refused,"
            " rate_limited, cookie_set, cookie_cleared)",
            ["source", "outcome"],
            registry=r,
        )
        self.warnings = Counter(
            "consentry_ingest_warnings",
            "Warnings listed in 200 responses: a part of an accepted message changed or"
            " not used, per code (collector.pipeline.warnings.CODES)",
            ["source", "warning"],
            registry=r,
        )
        self.plan_violations = Counter(
            "consentry_plan_violations",
            "Tracking-plan violations per source, event (planned names only;"
            " '(unplanned)' otherwise), kind and what was done (flag, omit, quarantine, block)",
            ["source", "event", "kind", "action"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "consentry_outbox_depth",
            "Pending outbox rows",
            ["destination"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.outbox_dead = Gauge(
            "consentry_outbox_dead",
            "Dead-lettered outbox rows (consentry outbox replay DEST queues them again)",
            ["destination"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.next_attempt = Gauge(
            "consentry_outbox_next_attempt_seconds",
            "Seconds until the destination's next delivery attempt (its back-off or"
            " Retry-After, or the first waiting row); 0 when rows are due now or none wait",
            ["destination"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.key_unmigrated = Gauge(
            "consentry_identifiers_unmigrated",
            "Identifiers linked only under a previous key",
            ["kid"],
            registry=r,
            multiprocess_mode="mostrecent",
        )

    def ingested(self, source: str, received: int, tally: Tally) -> None:
        """One request's counts."""
        self._child(self.received, source).inc(received)
        self._child(self.accepted, source).inc(tally.accepted)
        if tally.quarantined:
            self._child(self.quarantined, source).inc(tally.quarantined)
        for dest, n in tally.routed.items():
            self._child(self.routed, dest).inc(n)
        for dest, n in tally.denied.items():
            self._child(self.denied, dest).inc(n)
        if tally.consent_records:
            self.consent_records.inc(tally.consent_records)

    def warned(self, source: str, codes: Iterable[str]) -> None:
        """One request's warnings, by code (collector.pipeline.warnings.CODES)."""
        for code in codes:
            self.warnings.labels(source, code).inc()

    def plan_checked(self, source: str, event: str, action: str, kinds: Iterable[str]) -> None:
        """One message's tracking-plan violations."""
        for kind in kinds:
            self.plan_violations.labels(source, event, kind, action).inc()

    def _child(self, counter: Counter, label: str) -> Any:
        # labels() takes a lock and builds a key on every call; the set of
        # sources and destinations is small and fixed.
        key = (id(counter), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(label)
        return child

    def exposition(self) -> bytes:
        """Our counters, or with several workers the sum over all of them."""
        path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not path:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=path)
        return generate_latest(merged)
