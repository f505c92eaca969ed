-- Version 1: the schema as released at commit 0129e50, when each module
-- created its own tables. Every statement is IF NOT EXISTS, so a data
-- directory written by that release (user_version 0, tables present) is
-- brought to version 1 without change; decisions stored before bodies were
-- shared are renamed to decisions_v1 first (see migrate.py).

-- The OneID graph (identity/graph.py): only pseudonyms.
CREATE TABLE IF NOT EXISTS id_people (
    one_id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    merged_into INTEGER,
    erased_at TEXT
);
CREATE TABLE IF NOT EXISTS id_links (
    pseudonym TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    kid TEXT NOT NULL,
    one_id INTEGER NOT NULL,
    linked_at TEXT NOT NULL,
    migrated INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS id_links_one_id ON id_links(one_id, kind, migrated);
CREATE TABLE IF NOT EXISTS id_merges (
    id INTEGER PRIMARY KEY,
    one_id INTEGER NOT NULL,
    absorbed INTEGER NOT NULL,
    cause_kind TEXT NOT NULL,
    cause TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS id_merges_one_id ON id_merges(one_id);
CREATE TABLE IF NOT EXISTS id_conflicts (
    id INTEGER PRIMARY KEY,
    one_id INTEGER NOT NULL,
    other_one_id INTEGER,
    kind TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS id_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT OR IGNORE INTO id_epoch (id, n) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS id_tombstones (
    one_id INTEGER PRIMARY KEY,
    erased_at TEXT NOT NULL,
    identifiers INTEGER NOT NULL
);

-- The consent ledger (consent/ledger.py): chained records, signed checkpoints,
-- and the effective state derived from them.
CREATE TABLE IF NOT EXISTS consent_ledger (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    public_key BLOB NOT NULL,
    signed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_state (
    one_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    granted INTEGER NOT NULL,
    record_id INTEGER NOT NULL,
    guardian INTEGER NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (one_id, key)
) WITHOUT ROWID;

-- Outbox, decisions, delivery log, quarantine, erasures.
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    message_id TEXT NOT NULL,
    one_id INTEGER NOT NULL,
    jurisdiction TEXT NOT NULL,
    gpc INTEGER NOT NULL DEFAULT 0,
    pi TEXT NOT NULL DEFAULT '',
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox(destination, dead, id);
-- No index on one_id: erasure is rare and may scan, while every ingest would pay for it.
DROP INDEX IF EXISTS outbox_one_id;
-- Decisions repeat (a person's state and an event's facts decide them, and
-- both repeat): each distinct record list is kept once and rows refer to it.
CREATE TABLE IF NOT EXISTS decision_bodies (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    message_id TEXT NOT NULL,
    at REAL NOT NULL,
    body_id INTEGER NOT NULL
);
-- No index on message_id: ids are random, so every insert would dirty another
-- b-tree page (and WAL frame). `audit why` scans this table instead.
DROP INDEX IF EXISTS decisions_message;
CREATE TABLE IF NOT EXISTS delivery_log (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    event TEXT NOT NULL,
    count INTEGER NOT NULL,
    detail TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS forwarder_state (
    destination TEXT PRIMARY KEY,
    in_flight INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    path TEXT NOT NULL,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS erasures (
    id INTEGER PRIMARY KEY,
    one_id INTEGER NOT NULL,
    one_ids TEXT NOT NULL,
    destination TEXT NOT NULL,
    outbox_rows_deleted INTEGER NOT NULL,
    status TEXT NOT NULL,
    remote_rows_deleted INTEGER,
    detail TEXT,
    at REAL NOT NULL,
    done_at REAL
);
