-- Version 4: per-person keys that seal ledger subjects and signals, destroyed
-- at erasure (crypto-shredding, consent/shred.py); consent_state gains the
-- scope of a sensitive consent (GDPR Art. 9(2)(a)) and the notice version
-- (its columns are added by migrate.py, which skips any already there).
CREATE TABLE IF NOT EXISTS consent_subject_keys (
    one_id INTEGER PRIMARY KEY,
    key BLOB NOT NULL
);
