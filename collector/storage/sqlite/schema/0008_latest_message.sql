-- Version 8 (issue 15): the latest message each person had routed to each
-- destination, so the console can link a person's deliveries to the decision
-- that allowed them ("which consent justified sending event X to Y"). Kept by
-- the same trigger that counts the events: no extra write per outbox row.
ALTER TABLE subject_destinations ADD COLUMN last_message_id TEXT;
DROP TRIGGER IF EXISTS subject_destinations_count;
CREATE TRIGGER subject_destinations_count AFTER INSERT ON outbox
BEGIN
    INSERT INTO subject_destinations (one_id, destination, events, first_at, last_at,
        last_message_id)
    VALUES (NEW.one_id, NEW.destination, 1, NEW.created_at, NEW.created_at, NEW.message_id)
    ON CONFLICT (one_id, destination) DO UPDATE SET
        events = events + 1,
        first_at = min(first_at, excluded.first_at),
        last_message_id = CASE WHEN excluded.last_at >= last_at
            THEN excluded.last_message_id ELSE last_message_id END,
        last_at = max(last_at, excluded.last_at);
END;
