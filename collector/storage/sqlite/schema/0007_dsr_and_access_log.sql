-- Version 7 (issue 15): data subject requests, the access log, and per-person
-- destination counts for access exports.
--
-- dsr_requests holds a request as JSON (collector.dsr.model's fields: kinds of
-- identifiers, never their values; the OneID it resolved to) plus the columns
-- the queue sorts and filters on.
CREATE TABLE IF NOT EXISTS dsr_requests (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at REAL NOT NULL,
    due_at REAL NOT NULL,
    body BLOB NOT NULL
) WITHOUT ROWID;
-- Who used a person-level permission, when, on what (PIPL Art. 54, GDPR
-- Art. 5(2)). `subject` is a OneID or a request id, never a raw identifier.
CREATE TABLE IF NOT EXISTS access_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    principal TEXT NOT NULL,
    role TEXT NOT NULL,
    permission TEXT NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT,
    subject TEXT,
    outcome TEXT NOT NULL
);
-- Events each person had routed to each destination (queued after consent
-- allowed them), for GDPR Art. 15(1)(c) "recipients": kept by a trigger so the
-- pipeline pays one upsert per outbox row; gone when the person is erased.
CREATE TABLE IF NOT EXISTS subject_destinations (
    one_id INTEGER NOT NULL,
    destination TEXT NOT NULL,
    events INTEGER NOT NULL,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL,
    PRIMARY KEY (one_id, destination)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS subject_destinations_count AFTER INSERT ON outbox
BEGIN
    INSERT INTO subject_destinations (one_id, destination, events, first_at, last_at)
    VALUES (NEW.one_id, NEW.destination, 1, NEW.created_at, NEW.created_at)
    ON CONFLICT (one_id, destination) DO UPDATE SET
        events = events + 1,
        first_at = min(first_at, excluded.first_at),
        last_at = max(last_at, excluded.last_at);
END;
CREATE TRIGGER IF NOT EXISTS subject_destinations_erase AFTER UPDATE OF erased_at ON id_people
WHEN NEW.erased_at IS NOT NULL
BEGIN
    DELETE FROM subject_destinations WHERE one_id = NEW.one_id;
END;
