-- A server suspended for drift (registration_verifications.suspended, sql/0012) stops being served like a
-- deleted one, so an incremental sync must learn it too: suspending writes its tombstone (as leaving Approved
-- does, sql/0015), and reinstating it (an admin approves the new tools) removes the tombstone and touches the
-- registration, whose new updated_at brings it back to mirrors that saw it removed.
CREATE FUNCTION registration_verifications_maintain_tombstones() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.suspended AND (TG_OP = 'INSERT' OR NOT OLD.suspended) THEN
        PERFORM pg_current_xact_id();
        INSERT INTO registry_tombstones (
            server_name, registration_id, endpoint_name, description, endpoint_url, transport, version,
            available_tools, published_at, deleted_at, updated_at
        )
        SELECT r.server_name, r.registration_id, r.endpoint_name, r.description, r.endpoint_url, r.transport,
               r.version, r.available_tools, r.approved_at, clock_timestamp(), clock_timestamp()
          FROM registrations r
         WHERE r.registration_id = NEW.registration_id AND r.status = 'Approved'
        ON CONFLICT (server_name) DO UPDATE SET
            registration_id = EXCLUDED.registration_id, endpoint_name = EXCLUDED.endpoint_name,
            description = EXCLUDED.description, endpoint_url = EXCLUDED.endpoint_url,
            transport = EXCLUDED.transport, version = EXCLUDED.version,
            available_tools = EXCLUDED.available_tools, published_at = EXCLUDED.published_at,
            deleted_at = EXCLUDED.deleted_at, updated_at = EXCLUDED.updated_at;
    ELSIF TG_OP = 'UPDATE' AND OLD.suspended AND NOT NEW.suspended THEN
        -- The registration's own trigger (sql/0015) gives it a new updated_at and removes the tombstone.
        UPDATE registrations SET updated_at = clock_timestamp() WHERE registration_id = NEW.registration_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER registration_verifications_maintain_tombstones
    AFTER INSERT OR UPDATE OF suspended ON registration_verifications
    FOR EACH ROW EXECUTE FUNCTION registration_verifications_maintain_tombstones();
