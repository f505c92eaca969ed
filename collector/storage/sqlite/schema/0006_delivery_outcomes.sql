-- Version 6: what became of each message at each destination once it left
-- the outbox (issue 14 §6; `consentry audit why` reports it): delivered (with
-- the delivery_log id of its batch), dropped at send time (the ledger records
-- and reasons of the new decision), purged dead letters. Rows still in the
-- outbox are pending or dead and are read from there. No index on
-- message_id, as for decisions: `audit why` scans, deliveries pay nothing.
CREATE TABLE IF NOT EXISTS delivery_outcomes (
    message_id TEXT NOT NULL,
    destination TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at REAL NOT NULL,
    batch INTEGER,
    attempts INTEGER NOT NULL,
    records TEXT,
    detail TEXT
);
