-- Users, registrations and the audit log, with every index the API's filters and sorts need.
-- Applied once by `python -m shared.migrate`; never edit after it has been applied anywhere.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    user_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL,
    entra_id     text NOT NULL,
    email        text NOT NULL DEFAULT '',
    display_name text NOT NULL DEFAULT '',
    is_admin     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Identity is (tid, oid): the object id is only unique within its tenant.
    CONSTRAINT users_tenant_entra_id_key UNIQUE (tenant_id, entra_id)
);

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE registrations (
    registration_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_url    text NOT NULL,
    endpoint_name   text NOT NULL,
    description     text,
    owner_contact   text NOT NULL,
    available_tools jsonb NOT NULL DEFAULT '[]'::jsonb,
    status          text NOT NULL DEFAULT 'Pending',
    submitter_id    uuid NOT NULL REFERENCES users (user_id),
    approver_id     uuid REFERENCES users (user_id),
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    approved_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Bumped on every update; the ETag of a registration.
    row_version     bigint NOT NULL DEFAULT 1,
    CONSTRAINT registrations_endpoint_url_key UNIQUE (endpoint_url),
    CONSTRAINT registrations_status_check CHECK (status IN ('Pending', 'Approved', 'Rejected')),
    CONSTRAINT registrations_endpoint_url_length CHECK (octet_length(endpoint_url) BETWEEN 1 AND 2048),
    CONSTRAINT registrations_endpoint_name_length CHECK (char_length(endpoint_name) BETWEEN 3 AND 200),
    CONSTRAINT registrations_description_length CHECK (char_length(description) <= 1000),
    CONSTRAINT registrations_owner_contact_length CHECK (char_length(owner_contact) BETWEEN 1 AND 320),
    CONSTRAINT registrations_available_tools_array CHECK (jsonb_typeof(available_tools) = 'array'),
    -- Pending <=> no decision yet.
    CONSTRAINT registrations_decision_consistent CHECK (
        (status = 'Pending') = (approver_id IS NULL AND approved_at IS NULL)
    )
);

CREATE FUNCTION registrations_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    NEW.row_version := OLD.row_version + 1;
    RETURN NEW;
END;
$$;

CREATE TRIGGER registrations_set_updated_at
    BEFORE UPDATE ON registrations
    FOR EACH ROW EXECUTE FUNCTION registrations_before_update();

-- Newest first, with the id as the tie-breaker, so offset paging is stable.
CREATE INDEX registrations_created_at_idx ON registrations (created_at DESC, registration_id DESC);
CREATE INDEX registrations_status_created_at_idx
    ON registrations (status, created_at DESC, registration_id DESC);
CREATE INDEX registrations_submitter_created_at_idx
    ON registrations (submitter_id, created_at DESC, registration_id DESC);
CREATE INDEX registrations_approver_id_idx ON registrations (approver_id) WHERE approver_id IS NOT NULL;
-- Case-insensitive substring search over each searchable column.
CREATE INDEX registrations_endpoint_name_trgm_idx ON registrations USING gin (endpoint_name gin_trgm_ops);
CREATE INDEX registrations_description_trgm_idx ON registrations USING gin (description gin_trgm_ops);
CREATE INDEX registrations_owner_contact_trgm_idx ON registrations USING gin (owner_contact gin_trgm_ops);
CREATE INDEX registrations_endpoint_url_trgm_idx ON registrations USING gin (endpoint_url gin_trgm_ops);

-- Exact row counts per status, maintained in the same transaction as every change, so that the
-- `total` of an unfiltered or status-only list never costs a count over the whole table.
CREATE TABLE registration_counts (
    status text PRIMARY KEY CHECK (status IN ('Pending', 'Approved', 'Rejected')),
    row_count bigint NOT NULL CHECK (row_count >= 0)
);
INSERT INTO registration_counts (status, row_count) VALUES ('Pending', 0), ('Approved', 0), ('Rejected', 0);

CREATE FUNCTION registrations_maintain_counts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE registration_counts SET row_count = row_count - 1 WHERE status = OLD.status;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE registration_counts SET row_count = row_count + 1 WHERE status = NEW.status;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER registrations_count_insert_delete
    AFTER INSERT OR DELETE ON registrations
    FOR EACH ROW EXECUTE FUNCTION registrations_maintain_counts();
CREATE TRIGGER registrations_count_status_change
    AFTER UPDATE OF status ON registrations
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION registrations_maintain_counts();

CREATE TABLE audit_log (
    log_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- No foreign key: the trail of a deleted registration stays queryable.
    registration_id uuid NOT NULL,
    user_id         uuid NOT NULL REFERENCES users (user_id),
    action          text NOT NULL,
    previous_status text,
    new_status      text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    "timestamp"     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_log_action_check
        CHECK (action IN ('Created', 'Approved', 'Rejected', 'Updated', 'Deleted')),
    CONSTRAINT audit_log_previous_status_check
        CHECK (previous_status IS NULL OR previous_status IN ('Pending', 'Approved', 'Rejected')),
    CONSTRAINT audit_log_new_status_check
        CHECK (new_status IS NULL OR new_status IN ('Pending', 'Approved', 'Rejected'))
);

CREATE INDEX audit_log_timestamp_idx ON audit_log ("timestamp" DESC, log_id DESC);
CREATE INDEX audit_log_registration_timestamp_idx ON audit_log (registration_id, "timestamp" DESC, log_id DESC);
CREATE INDEX audit_log_user_timestamp_idx ON audit_log (user_id, "timestamp" DESC, log_id DESC);
CREATE INDEX audit_log_action_timestamp_idx ON audit_log (action, "timestamp" DESC, log_id DESC);
