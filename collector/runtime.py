"""Wiring: everything a running collector needs, built from a Config.

The CLI, the app and the tests all go through here, so they run the same
objects the same way.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import importlib
import json
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgspec

from collector.audit import witness
from collector.config import Config, DestinationConfig, env_secret
from collector.delivery.destinations.base import Destination
from collector.delivery.forwarder import Forwarder, Lane
from collector.errors import ConfigError
from collector.metrics import Metrics
from collector.pipeline import scrub
from collector.pipeline.pipeline import IngestLimits, Pipeline
from collector.pipeline.prepare import IngestOptions, Preparer
from collector.pipeline.route import Router, destination_facts
from collector.quality.plan import TrackingPlan, load_plan
from collector.sources.wechat import WechatKeys
from collector.storage.backend import open_backend
from collector.storage.ports import WriteUnitOfWork
from collector.storage.sqlite.connection import DB_NAME as DB_NAME  # the CLI's import
from collector.storage.writer import Writer
from collector.vault import Vault
from consent.errors import PolicyError
from consent.ledger import Ledger
from consent.policy import Policies
from consent.purposes import DEFAULT_CATEGORY_MAP
from identity.graph import DEFAULT_LIMITS, DEFAULT_PRIORITY, Graph
from identity.keyring import Keyring, load_master_key
from identity.normalize import NormalizeOptions, valid_kind_name
from identity.pseudonym import Pseudonymizer

log = logging.getLogger("consentry.collector")
WRITE_KEYS = "write-keys.json"
DESTINATION_GROUP = "consentry.destinations"


def tune_gc() -> None:
    """Request garbage is freed by reference counting; the cyclic collector would
    mostly rescan long-lived caches (pseudonyms, links, consent states). Freeze
    what start-up built and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def open_keyring(
    config: Config, *, create: bool = True, create_master_anywhere: bool = False
) -> tuple[Keyring, bytes, bool]:
    """The keyring (made if ``create``), its master key and whether it was made.
    A missing master key file is made only inside the data directory, or
    anywhere when ``create_master_anywhere`` (``consentry keys init``): a copied
    example path such as /etc/consentry/master.key is never made silently."""
    path = config.master_key_path()
    inside = _inside(path, config.data_dir)
    master = load_master_key(path, create=create and (inside or create_master_anywhere))
    path = config.keyring_path()
    if create:
        ring, created = Keyring.open_or_create(path, master)
        return ring, master, created
    return Keyring.load(path, master), master, False


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def destination_types() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=DESTINATION_GROUP)}


BUILTIN_TYPES = {
    "jsonl": "collector.delivery.destinations.jsonl:JsonlDestination",
    "http": "collector.delivery.destinations.http:HttpDestination",
    "postgres": "collector.delivery.destinations.postgres:PostgresDestination",
    "segment": "collector.delivery.destinations.segment:SegmentDestination",
}


def build_destination(config: DestinationConfig, data_dir: Path) -> Destination:
    kind = str(type(config).__struct_config__.tag)
    ep = destination_types().get(kind)
    if kind in BUILTIN_TYPES:
        # Built-in types load from the source tree, not through their entry
        # points: an install made before a module moved must still run them.
        module, _, name = BUILTIN_TYPES[kind].partition(":")
        cls = getattr(importlib.import_module(module), name)
    elif ep is not None:
        cls = ep.load()
    else:
        raise ConfigError(f"destination {config.name}: no type {kind!r} is installed")
    destination: Destination = cls(config, data_dir=data_dir)
    return destination


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Sources:
    """Write keys by their SHA-256, so a generated key is shown once and never stored."""

    by_hash: dict[str, str] = field(default_factory=dict)
    generated: dict[str, str] = field(default_factory=dict)

    def authenticate(self, key: str | None) -> str | None:
        if not key:
            return None
        digest = _hash_key(key)
        for known, name in self.by_hash.items():
            if hmac.compare_digest(known, digest):
                return name
        return None


def load_sources(config: Config) -> Sources:
    sources = Sources()
    stored_path = config.data_dir / WRITE_KEYS
    stored: dict[str, str] = json.loads(stored_path.read_text()) if stored_path.exists() else {}
    changed = False
    for source in config.effective_sources():
        if source.type != "http_api":
            continue  # webhook sources authenticate by signature, not write key
        key = env_secret(source.write_key, source.write_key_env)
        if key:
            sources.by_hash[_hash_key(key)] = source.name
            continue
        if source.name in stored:
            sources.by_hash[stored[source.name]] = source.name
            continue
        key = "csk_" + secrets.token_urlsafe(24)
        sources.generated[source.name] = key
        stored[source.name] = _hash_key(key)
        sources.by_hash[stored[source.name]] = source.name
        changed = True
    if changed:
        fd = os.open(stored_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
    return sources


def validate(config: Config) -> None:
    """What ``serve`` checks before it opens anything, for ``consentry config``
    to check exactly the same: the jurisdiction packs and maps, identity options,
    the PII scan, and every destination secret named by a ``*_env`` key whose
    variable is unset (a destination could never be built). Raises ConfigError
    naming the key or the variable."""
    build_policies(config)
    normalize_options(config)
    check_storage(config)
    load_plans(config)
    try:
        scrub_policy(config)
    except ValueError as exc:
        raise ConfigError(f"privacy: {exc}") from exc
    for i, dest in enumerate(config.destinations or []):
        for key in msgspec.structs.fields(dest):
            name = key.name
            if not name.endswith("_env"):
                continue
            variable = getattr(dest, name)
            given = getattr(dest, name.removesuffix("_env"), None)
            if variable and not given and not os.environ.get(variable):
                raise ConfigError(
                    f"destinations[{i}] ({dest.name}).{name}: the environment variable"
                    f" {variable} is not set"
                )


def check_storage(config: Config) -> None:
    """``[storage] backend = "postgres"``: the DSN variable must be set (raises
    ConfigError naming it), before anything is opened."""
    if config.storage.backend != "postgres":
        return
    from collector.storage.postgres.connection import dsn_from_env

    dsn_from_env(config.storage.dsn_env)


def load_plans(config: Config) -> dict[str, TrackingPlan]:
    """Each source's tracking plan, compiled once (raises ConfigError naming
    the source, the file and the key)."""
    plans: dict[str, TrackingPlan] = {}
    for i, source in enumerate(config.effective_sources()):
        if source.tracking_plan:
            try:
                plans[source.name] = load_plan(source.tracking_plan)
            except ConfigError as exc:
                raise ConfigError(f"sources[{i}] ({source.name}).tracking_plan: {exc}") from None
    return plans


def consent_authorities(config: Config) -> frozenset[str] | None:
    """The sources that may record consent: those with ``consent_authority =
    true`` if any has it, else every source except those set false; None when
    that is every source (the default)."""
    sources = config.effective_sources()
    chosen = [s.name for s in sources if s.consent_authority]
    if chosen:
        return frozenset(chosen)
    if any(s.consent_authority is False for s in sources):
        return frozenset(s.name for s in sources if s.consent_authority is not False)
    return None


def scrub_policy(config: Config) -> scrub.ScrubPolicy | None:
    """The PII scan from ``[privacy]`` (None when ``pii_scan = false``)."""
    privacy = config.privacy
    if not privacy.pii_scan:
        return None
    return scrub.policy(
        region=config.identity.phone_region,
        actions=privacy.pii_actions,
        kinds=privacy.pii_kinds,
        skip=[tuple(p.split(".")) for p in privacy.pii_skip_paths],
    )


def build_policies(config: Config) -> Policies:
    """The packs, with the configured default, unknown-name rule and country map;
    a pack or map that does not load is a ConfigError naming it."""
    p = config.privacy
    try:
        return Policies.builtin(
            default=p.default_jurisdiction,
            unknown=p.unknown_jurisdiction,
            override_dir=Path(p.policy_dir) if p.policy_dir else None,
            countries=p.country_jurisdictions,
        )
    except PolicyError as exc:
        raise ConfigError(f"privacy: {exc}") from exc


def normalize_options(config: Config) -> NormalizeOptions:
    for kind in config.identity.custom_kinds:
        if not valid_kind_name(kind):
            raise ConfigError(
                f"identity.custom_kinds: {kind!r} is not a valid kind name (a-z, 0-9, _)"
            )
    return NormalizeOptions(
        fold_gmail=config.identity.fold_gmail,
        phone_region=config.identity.phone_region,
        custom_kinds=frozenset(config.identity.custom_kinds),
    )


def ingest_options(config: Config, destinations: Sequence[DestinationConfig]) -> IngestOptions:
    """What the preparing steps need from the configuration."""
    categories = {
        **DEFAULT_CATEGORY_MAP,
        **{k.lower(): tuple(v) for k, v in config.privacy.categories.items()},
    }
    return IngestOptions(
        destinations=destinations,
        category_map=categories,
        pi_rules=config.privacy.pi_rules,
        pii_fields=config.privacy.pii_fields,
        country_jurisdictions=config.privacy.country_jurisdictions,
        wechat=WechatKeys(
            app_id=config.identity.wechat_app_id,
            openid_keys=config.identity.wechat_openid_keys,
            unionid_keys=config.identity.wechat_unionid_keys,
        ),
        scrub=scrub_policy(config),
    )


class Runtime:
    """Owns the database writer, the pipeline objects and (optionally) the forwarder."""

    def __init__(self, config: Config, *, worker: int = 0) -> None:
        self.config = config
        self.worker = worker
        check_storage(config)
        self.data_dir = config.data_dir
        if not self.data_dir.exists():
            # Ours: private. An existing directory keeps the mode its owner chose.
            self.data_dir.mkdir(parents=True, mode=0o700)
        self.keyring, self.master_key, self.keyring_created = open_keyring(config)
        self.metrics = Metrics()
        self.policies = build_policies(config)
        self.destinations = config.effective_destinations()
        options = normalize_options(config)
        self.pseudonymizer = Pseudonymizer(
            self.keyring, options=options, cache_size=config.identity.cache_size
        )
        self.sources = load_sources(config)
        self.plans = load_plans(config)
        # The keyring, the master key and the write keys stay files in each
        # replica's data directory; the database may be shared (PostgreSQL).
        self.backend = open_backend(config, worker=worker)
        self.db_path = self.backend.db_path  # the SQLite file (None on PostgreSQL)
        conn = self._uow = self.backend.uow  # the writer's connection and its stores
        self.graph = Graph(
            conn.graph_store,
            limits={**DEFAULT_LIMITS, **config.identity.limits},
            priority=config.identity.priority or DEFAULT_PRIORITY,
        )
        # A checkpoint at every commit that appended records, witnessed outside
        # the database: cutting records off the end is then always detectable
        # (issue 14 §6; cost: benchmarks/ledger_checkpoints.py).
        self.ledger = Ledger(
            conn.ledger_store,
            signer=self.keyring.signing_key,
            subject_keys=conn.subject_keys,
            checkpoint_every=1,
        )
        self.witnesses = witness.from_config(config.audit.witness_file, config.audit.witness_url)
        self.preparer = Preparer(self.pseudonymizer, ingest_options(config, self.destinations))
        self.router = Router(
            graph=self.graph,
            ledger=self.ledger,
            policies=self.policies,
            destinations=self.destinations,
            vault=Vault(self.keyring.vault_key),
            event_consent=config.privacy.event_consent,
            decisions=config.storage.decisions,
            quarantine_ttl_s=config.privacy.quarantine_ttl_days * 86400.0,
            notice_versions=config.privacy.min_notice_versions,
            dedupe_window_s=config.ingest.dedupe_window_hours * 3600.0,
            consent_sources=consent_authorities(config),
        )
        self.forwarder: Forwarder | None = None
        self._last_expiry = 0.0
        self.writer: Writer[Any] = Writer(
            conn,
            max_group=config.storage.group_commit_max,
            after_commit=self._after_commit,
            before_commit=self._before_commit,
            on_begin=self._on_begin,
            lock_path=self.backend.lock_path,
        )
        self.writer.on_rollback(self._rolled_back)
        self.pipeline = Pipeline(
            preparer=self.preparer,
            router=self.router,
            writer=self.writer,
            metrics=self.metrics,
            limits=IngestLimits(
                max_depth=config.ingest.max_depth,
                max_quarantined=config.server.max_quarantined_per_request,
                max_warnings=config.server.max_warnings_per_request,
            ),
            plans=self.plans,
        )
        self.writer.on_recovered(self.backend.recovered)

    def _on_begin(self, uow: WriteUnitOfWork) -> None:
        # Other worker processes or replicas (and `consentry forward`, and the
        # CLI) share the database, and a transaction of ours may have rolled
        # back: the heads in memory are never trusted across transactions. One
        # statement reads the ledger head and the graph epoch (on PostgreSQL
        # after taking the replicas' write lock); the caches drop what changed.
        head, epoch = uow.heads()
        self.ledger.sync(head)
        self.graph.sync(epoch)

    def _before_commit(self, uow: WriteUnitOfWork) -> None:
        self.router.flush(uow)
        now = datetime.now(UTC)
        if self.ledger.due(now):
            sealed = self.ledger.checkpoint(now)
            if sealed is not None and self.witnesses:
                self.witnesses.seal(sealed)
        stamp = now.timestamp()
        if stamp - self._last_expiry >= 60:
            # Quarantined payloads may hold raw identifiers: they live only for their TTL.
            self._last_expiry = stamp
            uow.quarantine.expire(stamp)

    def _after_commit(self) -> None:
        self.witnesses.publish()
        if self.forwarder is not None:
            self.forwarder.wake()

    def _rolled_back(self) -> None:
        self.witnesses.discard()
        self.router.discard()
        self._uow.dedupe.discard()
        self.ledger.reload_head()
        self.graph.reset()

    def make_forwarder(self) -> Forwarder:
        lanes = {}
        for dest in self.destinations:
            lanes[dest.name] = Lane(
                dest,
                build_destination(dest, self.data_dir),
                destination_facts(dest, self.config.privacy.min_notice_versions),
            )
        self.forwarder = Forwarder(
            storage=self.backend.delivery,
            writer=self.writer,
            lanes=lanes,
            policies=self.policies,
            pseudonymizer=self.pseudonymizer,
            metrics=self.metrics,
        )
        return self.forwarder

    def truncate_wal(self) -> bool:
        """After an erasure: no WAL frame may keep the person's deleted rows
        (issue 14 §4). Blocking; returns whether the WAL was emptied (on
        PostgreSQL, always True: the server's WAL is its operator's)."""
        return self.backend.truncate()

    def close(self) -> None:
        self.writer.close()
        self.witnesses.close()
        self.backend.close()
