-- The MCP Registry (v0.1) as a living catalogue: deprecation, tombstones of removed servers, and an
-- `updatedAt` that incremental sync can rely on.
--
-- 1. Lifecycle of an approved registration, as the official registry's `_meta` shows it: `active` or
--    `deprecated` with a message (≤ 500 characters, none when active) and when it last changed.
ALTER TABLE registrations
    ADD COLUMN lifecycle         text NOT NULL DEFAULT 'active',
    ADD COLUMN status_message    text,
    ADD COLUMN status_changed_at timestamptz,
    ADD CONSTRAINT registrations_lifecycle_check CHECK (lifecycle IN ('active', 'deprecated')),
    ADD CONSTRAINT registrations_status_message_check CHECK (
        (lifecycle = 'active' AND status_message IS NULL) OR char_length(status_message) BETWEEN 1 AND 500
    );

-- 2. updated_at is the served `updatedAt`, and sync clients ask `updated_since=<the newest updatedAt they saw>`.
--    For that to miss nothing, a change must never become visible with an updatedAt older than one a reader
--    has already seen. now() (the transaction's start) does not give that: a transaction started earlier can
--    commit later. So updated_at is the time of the write itself, taken after the transaction has its id;
--    readers then return only rows older than the start of every transaction that holds an id
--    (registry_sync_horizon()), and whatever is newer comes with the next sync.
CREATE OR REPLACE FUNCTION registrations_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_current_xact_id();  -- the transaction's id exists before the time is taken
    NEW.updated_at := clock_timestamp();
    NEW.row_version := OLD.row_version + 1;
    RETURN NEW;
END;
$$;

-- The newest time before which every change is committed or will never be: changes newer than this may still
-- be joined by a commit with an older updated_at. Run it in its own statement, before the read it bounds (a
-- later snapshot then sees every commit older than it). A long writing transaction (a bulk import) holds it back
-- until it ends. Needs to see other sessions' transactions: the app's own sessions always; other roles' only
-- with pg_read_all_stats (granted by the deploy hook).
CREATE FUNCTION registry_sync_horizon() RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
    SELECT least(clock_timestamp(), min(xact_start))
      FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database()
$$;

-- 3. A tombstone for every server that stops being served (deleted, or leaving Approved by any other path),
--    with what a client needs to show it as `deleted`; it goes when a registration of that name is approved.
CREATE TABLE registry_tombstones (
    server_name     text PRIMARY KEY,
    registration_id uuid NOT NULL,
    endpoint_name   text NOT NULL,
    description     text,
    endpoint_url    text NOT NULL,
    transport       text NOT NULL,
    version         text NOT NULL,
    available_tools jsonb NOT NULL,
    published_at    timestamptz NOT NULL,
    deleted_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX registry_tombstones_lower_name_key ON registry_tombstones (lower(server_name));
CREATE INDEX registry_tombstones_updated_at_idx ON registry_tombstones (updated_at);

CREATE FUNCTION registrations_maintain_tombstones() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'Approved'
       AND (TG_OP = 'DELETE' OR NEW.status <> 'Approved') THEN
        PERFORM pg_current_xact_id();
        INSERT INTO registry_tombstones (
            server_name, registration_id, endpoint_name, description, endpoint_url, transport, version,
            available_tools, published_at, deleted_at, updated_at
        )
        VALUES (
            OLD.server_name, OLD.registration_id, OLD.endpoint_name, OLD.description, OLD.endpoint_url,
            OLD.transport, OLD.version, OLD.available_tools, OLD.approved_at, clock_timestamp(), clock_timestamp()
        )
        ON CONFLICT (server_name) DO UPDATE SET
            registration_id = EXCLUDED.registration_id, endpoint_name = EXCLUDED.endpoint_name,
            description = EXCLUDED.description, endpoint_url = EXCLUDED.endpoint_url,
            transport = EXCLUDED.transport, version = EXCLUDED.version,
            available_tools = EXCLUDED.available_tools, published_at = EXCLUDED.published_at,
            deleted_at = EXCLUDED.deleted_at, updated_at = EXCLUDED.updated_at;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'Approved' THEN
        DELETE FROM registry_tombstones WHERE lower(server_name) = lower(NEW.server_name);
    END IF;
    RETURN NULL;
END;
$$;

-- Only rows that are or were Approved concern the registry: creates and edits of Pending rows skip the trigger.
CREATE TRIGGER registrations_maintain_tombstones_insert
    AFTER INSERT ON registrations
    FOR EACH ROW WHEN (NEW.status = 'Approved')
    EXECUTE FUNCTION registrations_maintain_tombstones();
CREATE TRIGGER registrations_maintain_tombstones_update
    AFTER UPDATE ON registrations
    FOR EACH ROW WHEN (OLD.status = 'Approved' OR NEW.status = 'Approved')
    EXECUTE FUNCTION registrations_maintain_tombstones();
CREATE TRIGGER registrations_maintain_tombstones_delete
    AFTER DELETE ON registrations
    FOR EACH ROW WHEN (OLD.status = 'Approved')
    EXECUTE FUNCTION registrations_maintain_tombstones();

-- Sync (`updated_since`) and the list's change generation (ETag) read the newest changes first.
CREATE INDEX registrations_approved_updated_at_idx ON registrations (updated_at) WHERE status = 'Approved';

-- 4. The audit log records deprecation and its undoing.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('Created', 'Approved', 'Rejected', 'Updated', 'Deleted', 'Deprecated', 'Undeprecated'));
