-- Version 5: messageId keys seen within the dedupe window, in two
-- generations (see dedupe.py; a rotation drops the previous one and renames
-- the current one).
CREATE TABLE IF NOT EXISTS dedupe_current (k INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dedupe_previous (k INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dedupe_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    started REAL NOT NULL
);
