-- A change counter for registrations, bumped in the same transaction as every insert, update, delete or
-- truncate: a filtered total computed at generation N is still exact while the generation is N (see
-- FILTERED_TOTAL_SQL in shared/registrations.py). One row, so concurrent registration writes queue on it until
-- they commit: they are short transactions written by people (creates and decisions already queue on
-- registration_counts), measured at ~1 000 creates/s at 100 concurrent requests.
-- Anything that writes registrations with triggers disabled (bulk loads) must bump it itself.
CREATE TABLE registration_changes (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation bigint NOT NULL
);
INSERT INTO registration_changes (generation) VALUES (0);

CREATE FUNCTION registrations_bump_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registration_changes SET generation = generation + 1;
    RETURN NULL;
END;
$$;

-- Per statement, not per row: a statement changing many rows bumps it once (a statement changing none
-- bumps it too, which only costs the next filtered list one count).
CREATE TRIGGER registrations_bump_generation
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON registrations
    FOR EACH STATEMENT EXECUTE FUNCTION registrations_bump_generation();
