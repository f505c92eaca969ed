-- Version 3: a destination that failed (or asked to be left alone with
-- Retry-After) gets no batch before `until` (Unix seconds): the back-off is
-- per destination, not per batch.
CREATE TABLE IF NOT EXISTS destination_backoff (
    destination TEXT PRIMARY KEY,
    until REAL NOT NULL,
    reason TEXT
);
