-- Version 2: webhook delivery ids already stored, per source, so an order
-- system's retry of a delivery is acknowledged without being stored twice
-- (see deliveries.py).
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    source TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (source, delivery_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_deliveries_age ON webhook_deliveries(received_at);
