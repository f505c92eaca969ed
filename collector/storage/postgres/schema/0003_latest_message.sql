-- Version 3: mirrors SQLite version 8 (issue 15): the latest message each
-- person had routed to each destination, kept by the counting trigger, so the
-- console links a person's deliveries to the decision that allowed them.
ALTER TABLE subject_destinations ADD COLUMN last_message_id TEXT;
CREATE OR REPLACE FUNCTION consentry_subject_destinations_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subject_destinations (one_id, destination, events, first_at, last_at,
        last_message_id)
    VALUES (NEW.one_id, NEW.destination, 1, NEW.created_at, NEW.created_at, NEW.message_id)
    ON CONFLICT (one_id, destination) DO UPDATE SET
        events = subject_destinations.events + 1,
        first_at = least(subject_destinations.first_at, excluded.first_at),
        last_message_id = CASE WHEN excluded.last_at >= subject_destinations.last_at
            THEN excluded.last_message_id ELSE subject_destinations.last_message_id END,
        last_at = greatest(subject_destinations.last_at, excluded.last_at);
    RETURN NULL;
END $$;
