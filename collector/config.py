"""Configuration: one TOML file decoded into frozen Structs.

Every section is optional and the defaults run a working collector. Unknown
keys are errors that name the key, so a typo never silently changes
behaviour. The names here are a contract shared with docs and other tools:
extend them, never rename them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from collector.access.principals import AccessConfig
from collector.dsr.model import DeadlineRule
from collector.errors import ConfigError

Country = Annotated[str, Meta(pattern="^[A-Z]{2}$")]
DestName = Annotated[str, Meta(pattern="^[a-z0-9][a-z0-9_-]{0,62}$")]


PiiKind = Literal["email", "phone", "cn_resident_id", "card", "device_id"]


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ServerConfig(_Section, frozen=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8787
    # Worker processes; 0 = one per CPU core, at most 8 (Python runs one core per process).
    workers: Annotated[int, Meta(ge=0, le=256)] = 0
    forward: bool = True
    access_log: bool = False
    admin_token_env: str = "CONSENTRY_ADMIN_TOKEN"
    # Proxies (IP addresses or CIDR networks) whose X-Forwarded-For is believed;
    # from anyone else the connection's address is the client's.
    trusted_proxies: list[str] = []
    # Per-request bounds (collector/limits.py): messages per batch (more: 413),
    # rejections quarantined one row each and warnings listed (the rest: one summary).
    max_batch_messages: Annotated[int, Meta(ge=1)] = 2500
    max_quarantined_per_request: Annotated[int, Meta(ge=1)] = 100
    max_warnings_per_request: Annotated[int, Meta(ge=1)] = 100
    # Slow and greedy clients (collector/http/server.py): request head size,
    # seconds to send a request head / a body, idle keep-alive seconds.
    max_header_bytes: Annotated[int, Meta(ge=1024)] = 32 * 1024
    header_timeout_seconds: Annotated[float, Meta(gt=0)] = 10.0
    body_timeout_seconds: Annotated[float, Meta(gt=0)] = 30.0
    idle_timeout_seconds: Annotated[float, Meta(gt=0)] = 5.0


class StorageConfig(_Section, frozen=True):
    data_dir: str = "./consentry-data"
    synchronous: Literal["full", "normal"] = "full"
    group_commit_max: Annotated[int, Meta(ge=1)] = 512
    decisions: Literal["all", "allowed", "none"] = "all"
    # Consentry's own database: "sqlite" (one file in data_dir, the embedded
    # default) or "postgres" (one database shared by several replicas, issue
    # 18). The PostgreSQL DSN is read from the environment variable named by
    # dsn_env, never from this file (it may carry a password).
    backend: Literal["sqlite", "postgres"] = "sqlite"
    dsn_env: Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "CONSENTRY_DATABASE_DSN"
    # PostgreSQL: how long a replica's forwarder holds the outbox rows it
    # claimed (seconds). A replica that dies mid-batch delays its rows this
    # long; a send slower than this may be repeated by another replica.
    lease_seconds: Annotated[float, Meta(gt=0)] = 30.0


class PrivacyConfig(_Section, frozen=True):
    default_jurisdiction: str = "GDPR"
    unknown_jurisdiction: str = "strictest"
    event_consent: Literal["record", "restrict_only", "ignore"] = "record"
    policy_dir: str | None = None
    # Added on top of the built-in map (EEA -> GDPR, GB -> GDPR, CN -> PIPL,
    # US -> the US packs); see consent.jurisdiction.
    country_jurisdictions: dict[Country, str] = {}
    # Minimum notice version per purpose, for every destination: consent given
    # under an older notice counts as absent (PIPL Art. 14 para. 2).
    min_notice_versions: dict[str, str] = {}
    categories: dict[str, list[str]] = {}
    pi_rules: dict[str, str] = {}
    # Personal trait fields (traits, context.traits; not a group's traits) that
    # are pseudonymized like identifiers (in each destination's domain) unless a
    # destination's `fields` rule says `keep`.
    pii_fields: tuple[str, ...] = (
        "name",
        "firstName",
        "first_name",
        "lastName",
        "last_name",
        "address",
        "street",
        "birthday",
        "dateOfBirth",
        "date_of_birth",
        "ssn",
        "passport",
        "idNumber",
        "id_number",
    )
    quarantine_ttl_days: Annotated[int, Meta(ge=1)] = 30
    # Identifiers anywhere in properties, traits and context (issue 14 §1): on
    # by default; which kinds are looked for, what happens to each (emails,
    # phones and device ids pseudonymized per destination; PRC resident ID and
    # card numbers removed), and dotted paths not scanned (e.g. "properties.sku").
    pii_scan: bool = True
    pii_kinds: tuple[PiiKind, ...] = ("email", "phone", "cn_resident_id", "card", "device_id")
    pii_actions: dict[PiiKind, Literal["pseudonymize", "drop"]] = {}
    pii_skip_paths: list[str] = []


class IdentityConfig(_Section, frozen=True):
    phone_region: Country | None = None
    fold_gmail: bool = False
    custom_kinds: list[str] = []
    limits: dict[str, Annotated[int, Meta(ge=1)]] = {}
    priority: list[str] = []
    cache_size: Annotated[int, Meta(ge=0)] = 100_000
    # WeChat: an openid is scoped to one app (namespaced by `context.app.id` or
    # this id); a unionid links one person across a brand's apps.
    wechat_app_id: str | None = None
    wechat_openid_keys: tuple[str, ...] = ("wechat_openid", "openid", "openId")
    wechat_unionid_keys: tuple[str, ...] = ("wechat_unionid", "unionid", "unionId")


class IngestConfig(_Section, frozen=True):
    # Objects and arrays a message may nest (the top object is level 1); past
    # it a single message is a 400 and a batch's message is quarantined.
    max_depth: Annotated[int, Meta(ge=2, le=512)] = 64
    # A repeated messageId from the same source within this window is
    # acknowledged and stored once (0 turns the check off).
    dedupe_window_hours: Annotated[float, Meta(ge=0, le=24 * 30)] = 24.0


class KeysConfig(_Section, frozen=True):
    keyring_file: str | None = None
    master_key_file: str | None = None


SourceType = Literal["http_api", "shopify", "woocommerce", "shoplazza", "shopline"]
WEBHOOK_TYPES: tuple[str, ...] = ("shopify", "woocommerce", "shoplazza", "shopline")
Origin = Annotated[str, Meta(pattern=r"^https?://[^/\s?#]+$")]


class SourceConfig(_Section, frozen=True):
    """A way in. ``http_api`` (the default) authenticates by write key and serves
    server clients and browsers (``allowed_origins`` for CORS); the webhook
    types take an order system's signed webhooks at ``POST /v1/webhooks/<name>``
    with the signing secret from ``secret_env`` or a 0600 ``secret_file``."""

    name: DestName
    type: SourceType = "http_api"
    write_key: str | None = None
    write_key_env: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    allowed_origins: list[Origin] = []
    # Who may record consent (explicit calls and event signals): when any
    # source sets true, only those do; false excludes this source. Default:
    # every source, each record naming it (issue 19 item 9).
    consent_authority: bool | None = None
    # A tracking plan file (YAML or JSON; collector.quality.plan), relative to
    # the working directory like data_dir. Checked after pseudonymization.
    tracking_plan: str | None = None


class BrowserConfig(_Section, frozen=True):
    """Browser-facing behaviour: the first-party anonymous-id cookie and the rate
    limits of the public endpoints (``limits`` syntax, e.g. ``"600/minute"``;
    empty turns a limit off)."""

    cookie: bool = False
    cookie_name: Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{1,64}$")] = "consentry_aid"
    cookie_domain: str | None = None
    cookie_max_age_days: Annotated[int, Meta(ge=1, le=400)] = 390
    cookie_purpose: str = "analytics"
    rate_limit_per_ip: str = "600/minute"
    rate_limit_per_source: str = "60000/minute"


FieldRule = Literal["drop", "pseudonymize", "hash_sha256_normalized", "truncate_ip", "keep"]
LegalBasisName = Literal[
    "consent", "contract", "legal_obligation", "legitimate_interests", "soft_opt_in"
]
TransferMechanism = Literal[
    "adequacy",
    "dpf",
    "scc",
    "bcr",
    "art49_consent",
    "security_assessment",
    "standard_contract",
    "certification",
    "contract_necessity",
    "volume_exemption",
]


class AuditConfig(_Section, frozen=True):
    """Where sealed ledger checkpoints are witnessed outside the database.

    ``witness_file``: a path; each checkpoint is appended as one JSON line
    (``collector.audit.witness``), so ``consentry audit verify --witness FILE``
    detects ledger records deleted after it. ``witness_url``: optionally, an
    HTTP endpoint each checkpoint is also POSTed to (best effort, in the
    background)."""

    witness_file: str | None = None
    witness_url: str | None = None


class ControllerConfig(_Section, frozen=True):
    """Who answers data subject requests (GDPR Art. 4(7), 13(1)(a), 30(1)(a)):
    named in access exports and the records of processing."""

    name: str = "the organisation named in the privacy notice"
    contact: str | None = None  # an address or web form for privacy requests


class DsrConfig(_Section, frozen=True):
    """Data subject requests. ``deadlines``: per jurisdiction (``GDPR``,
    ``CCPA``, ``US``, ``US-VA``, ``PIPL`` ...), replacing the default period
    (``collector.dsr.model.DEFAULT_DEADLINES``): ``unit`` (months, days or
    working_days), ``amount`` and ``extension`` in that unit."""

    controller: ControllerConfig = ControllerConfig()
    deadlines: dict[str, DeadlineRule] = {}


class DestinationConfig(_Section, frozen=True, kw_only=True, tag_field="type"):
    """Options every destination type has; a type's own Struct subclasses this
    with ``tag="<type>"`` and is found through the ``consentry.destinations``
    entry point of the same name (its class's ``config_type``)."""

    name: DestName
    purposes: list[str] = []
    region: Country | None = None
    recipient: str | None = None
    third_party: bool = False
    pi_categories: list[str] = []
    # Legal facts decide() reads (issue 20): the basis per purpose, how data may
    # leave each law's zone (keyed by pack name: GDPR, PIPL, ...), the CCPA role,
    # and the oldest notice version consent must have been given under.
    legal_bases: dict[str, LegalBasisName] = {}
    transfer: dict[str, TransferMechanism] = {}
    ccpa_role: Literal["service_provider", "contractor", "third_party"] | None = None
    min_notice_version: str | None = None
    full_ip: bool = False
    pseudonym_domain: str | None = None
    batch_size: Annotated[int, Meta(ge=1, le=10_000)] = 100
    max_attempts: Annotated[int, Meta(ge=1)] = 12
    max_age_seconds: Annotated[float, Meta(gt=0)] = 3 * 86400.0
    backoff_base_seconds: Annotated[float, Meta(gt=0)] = 1.0
    backoff_max_seconds: Annotated[float, Meta(gt=0)] = 600.0
    allow_properties: list[str] | None = None
    allow_traits: list[str] | None = None
    fields: dict[str, FieldRule] = {}

    def domain(self) -> str:
        """The pseudonym domain: the destination's own unless the brand opts into
        one shared space."""
        return self.pseudonym_domain or f"dest:{self.name}"


class JsonlDestinationConfig(DestinationConfig, frozen=True, kw_only=True, tag="jsonl"):
    path: str | None = None
    max_bytes: Annotated[int, Meta(ge=1024)] = 64 * 1024 * 1024


class HttpDestinationConfig(DestinationConfig, frozen=True, kw_only=True, tag="http"):
    url: str
    secret: str | None = None
    secret_env: str | None = None
    timeout_seconds: Annotated[float, Meta(gt=0)] = 10.0
    headers: dict[str, str] = {}


class PostgresDestinationConfig(DestinationConfig, frozen=True, kw_only=True, tag="postgres"):
    dsn: str | None = None
    dsn_env: str | None = None
    table: Annotated[str, Meta(pattern="^[a-z_][a-z0-9_]{0,62}$")] = "events"
    schema: Annotated[str, Meta(pattern="^[a-z_][a-z0-9_]{0,62}$")] = "public"


class SegmentDestinationConfig(DestinationConfig, frozen=True, kw_only=True, tag="segment"):
    url: str = "https://api.segment.io/v1/batch"
    write_key: str | None = None
    write_key_env: str | None = None
    timeout_seconds: Annotated[float, Meta(gt=0)] = 15.0
    gzip: bool = True
    delete_hook_url: str | None = None
    delete_hook_secret_env: str | None = None


BUILTIN_DESTINATIONS: dict[str, type[DestinationConfig]] = {
    "jsonl": JsonlDestinationConfig,
    "http": HttpDestinationConfig,
    "postgres": PostgresDestinationConfig,
    "segment": SegmentDestinationConfig,
}


def destination_config_type(kind: str) -> type[DestinationConfig] | None:
    from importlib.metadata import entry_points

    if kind in BUILTIN_DESTINATIONS:
        return BUILTIN_DESTINATIONS[kind]
    for ep in entry_points(group="consentry.destinations", name=kind):
        cls = ep.load()
        config_type = getattr(cls, "config_type", None)
        if isinstance(config_type, type) and issubclass(config_type, DestinationConfig):
            return config_type
    return BUILTIN_DESTINATIONS.get(kind)


class Config(_Section, frozen=True):
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    identity: IdentityConfig = IdentityConfig()
    ingest: IngestConfig = IngestConfig()
    keys: KeysConfig = KeysConfig()
    browser: BrowserConfig = BrowserConfig()
    audit: AuditConfig = AuditConfig()
    # Who may use the admin API and the console (issue 15): tokens and users, each with a role.
    access: AccessConfig = AccessConfig()
    dsr: DsrConfig = DsrConfig()
    sources: list[SourceConfig] = []
    # Decoded in two steps: each table by the config Struct of its ``type``.
    destinations: list[Any] | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir)

    def keyring_path(self) -> Path:
        return (
            Path(self.keys.keyring_file)
            if self.keys.keyring_file
            else self.data_dir / "keyring.json"
        )

    def master_key_path(self) -> Path:
        return (
            Path(self.keys.master_key_file)
            if self.keys.master_key_file
            else self.data_dir / "master.key"
        )

    def effective_destinations(self) -> list[DestinationConfig]:
        if self.destinations is not None:
            return self.destinations
        return [
            JsonlDestinationConfig(
                name="lake", purposes=["analytics"], path=str(self.data_dir / "out")
            )
        ]

    def effective_sources(self) -> list[SourceConfig]:
        return self.sources or [SourceConfig(name="default", write_key_env="CONSENTRY_WRITE_KEY")]


_PATH = re.compile(r" - at `\$(.*)`$")


def _explain(exc: msgspec.ValidationError | msgspec.DecodeError, where: str) -> str:
    text = str(exc)
    match = _PATH.search(text)
    if match:
        key = match.group(1).lstrip(".") or "(top level)"
        return f"{where}: at {key}: {text[: match.start()]}"
    return f"{where}: {text}"


def parse(data: bytes | str, *, where: str = "config") -> Config:
    try:
        config = msgspec.toml.decode(data, type=Config)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(_explain(exc, where)) from exc
    if config.destinations is not None:
        config = msgspec.structs.replace(
            config,
            destinations=[_destination(d, i, where) for i, d in enumerate(config.destinations)],
        )
    _check(config, where)
    return config


def _destination(raw: object, index: int, where: str) -> DestinationConfig:
    at = f"destinations[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: at {at}: expected a table")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise ConfigError(
            f"{where}: at {at}: missing type (jsonl, http, postgres, segment or a plugin)"
        )
    config_type = destination_config_type(kind)
    if config_type is None:
        raise ConfigError(
            f"{where}: at {at}.type: no destination type {kind!r} is installed;"
            f" built in: {', '.join(BUILTIN_DESTINATIONS)}"
        )
    try:
        return msgspec.convert(raw, config_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        if match:
            key = at + match.group(1)
            raise ConfigError(f"{where}: at {key}: {text[: match.start()]}") from exc
        raise ConfigError(f"{where}: at {at}: {text}") from exc


def load(path: Path | None, *, data_dir: str | None = None) -> Config:
    data = None
    if path is not None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"--config {path}: cannot read it ({exc.strerror})") from None
    config = parse(data, where=str(path)) if data is not None else Config()
    if data_dir is not None:
        config = msgspec.structs.replace(
            config, storage=msgspec.structs.replace(config.storage, data_dir=data_dir)
        )
    return config


def _check(config: Config, where: str) -> None:
    from consent.purposes import PURPOSES

    names = [d.name for d in config.effective_destinations()]
    for name in {n for n in names if names.count(n) > 1}:
        raise ConfigError(f"{where}: at destinations: the name {name!r} is used twice")
    for i, dest in enumerate(config.destinations or []):
        for purpose in dest.purposes:
            if purpose not in PURPOSES:
                raise ConfigError(
                    f"{where}: at destinations[{i}].purposes: unknown purpose {purpose!r};"
                    f" use one of {', '.join(PURPOSES)}"
                )
        _check_legal_bases(dest.legal_bases, f"{where}: at destinations[{i}].legal_bases")
        url = getattr(dest, "url", None)
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}: at destinations[{i}].url: must start with http:// or https://"
            )
        for path, rule in dest.fields.items():
            if path.split(".")[0] not in ("properties", "traits", "context"):
                raise ConfigError(
                    f"{where}: at destinations[{i}].fields.{path}: rules apply under properties.,"
                    " traits. or context."
                )
            if rule == "hash_sha256_normalized" and "advertising" not in dest.purposes:
                raise ConfigError(
                    f"{where}: at destinations[{i}].fields.{path}: hash_sha256_normalized is only"
                    " allowed for a destination that declares the advertising purpose"
                )
    _check_sources(config, where)
    for law in config.dsr.deadlines:
        if not re.fullmatch(r"[A-Z][A-Z0-9]*(-[A-Z0-9]+)?", law):
            raise ConfigError(
                f"{where}: at dsr.deadlines.{law}: name a jurisdiction in capitals,"
                " such as GDPR, CCPA, US-VA or PIPL"
            )
    for category, purposes in config.privacy.categories.items():
        for purpose in purposes:
            if purpose not in PURPOSES:
                raise ConfigError(
                    f"{where}: at privacy.categories.{category}: unknown purpose {purpose!r}"
                )


def _check_sources(config: Config, where: str) -> None:
    import ipaddress

    from consent.purposes import PURPOSES

    names = [s.name for s in config.sources]
    for name in {n for n in names if names.count(n) > 1}:
        raise ConfigError(f"{where}: at sources: the name {name!r} is used twice")
    for i, source in enumerate(config.sources):
        if source.type == "http_api":
            if source.write_key is None and source.write_key_env is None:
                raise ConfigError(f"{where}: at sources[{i}]: give write_key or write_key_env")
            if source.secret_env or source.secret_file:
                raise ConfigError(
                    f"{where}: at sources[{i}]: secret_env/secret_file are for webhook sources;"
                    " an http_api source has a write key"
                )
            continue
        if source.secret_env is None and source.secret_file is None:
            raise ConfigError(
                f"{where}: at sources[{i}]: a {source.type} source needs its signing secret:"
                " give secret_env or secret_file"
            )
        if source.write_key or source.write_key_env or source.allowed_origins:
            raise ConfigError(
                f"{where}: at sources[{i}]: a {source.type} source is authenticated by its"
                " webhook signature: remove write_key, write_key_env and allowed_origins"
            )
    for i, proxy in enumerate(config.server.trusted_proxies):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(
                f"{where}: at server.trusted_proxies[{i}]: {proxy!r} is not an IP address or network"
            ) from None
    if config.browser.cookie_purpose not in PURPOSES:
        raise ConfigError(
            f"{where}: at browser.cookie_purpose: unknown purpose"
            f" {config.browser.cookie_purpose!r}; use one of {', '.join(PURPOSES)}"
        )
    for key in ("rate_limit_per_ip", "rate_limit_per_source"):
        value = getattr(config.browser, key)
        if value:
            from limits import parse_many

            try:
                parse_many(value)
            except ValueError:
                raise ConfigError(
                    f"{where}: at browser.{key}: {value!r} is not a rate such as '600/minute'"
                ) from None


def _check_legal_bases(bases: dict[str, str], where: str) -> None:
    """Which basis fits which purpose: contract and legal obligation only carry
    ``necessary`` (GDPR Art. 6(1)(b)-(c)); legitimate interests and the soft
    opt-in never do; the soft opt-in is for direct marketing only (ePrivacy
    Art. 13(2))."""
    from consent.purposes import PURPOSES

    for purpose, basis in bases.items():
        if purpose not in PURPOSES:
            raise ConfigError(
                f"{where}.{purpose}: unknown purpose; use one of {', '.join(PURPOSES)}"
            )
        if purpose == "necessary" and basis not in ("contract", "legal_obligation", "consent"):
            raise ConfigError(f"{where}.necessary: {basis} does not apply to necessary processing")
        if purpose != "necessary" and basis in ("contract", "legal_obligation"):
            raise ConfigError(
                f"{where}.{purpose}: {basis} only carries necessary processing; use consent,"
                " legitimate_interests (analytics) or soft_opt_in (marketing)"
            )
        if basis == "soft_opt_in" and purpose != "marketing":
            raise ConfigError(f"{where}.{purpose}: soft_opt_in is for marketing (email) only")


def env_secret(value: str | None, env: str | None) -> str | None:
    if value:
        return value
    if env:
        return os.environ.get(env) or None
    return None
