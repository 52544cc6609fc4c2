-- MCP Registry (v0.1) fields: a stable server name, a version and a transport for every registration.
-- Existing rows are backfilled: name = <namespace>/<slug of endpoint_name>, made unique with a piece of
-- the registration id. The namespace comes from the migration runner (MCP_SERVER_NAMESPACE), else a default.

ALTER TABLE registrations
    ADD COLUMN server_name text,
    ADD COLUMN version     text NOT NULL DEFAULT '1.0.0',
    ADD COLUMN transport   text NOT NULL DEFAULT 'streamable-http';

WITH named AS (
    SELECT registration_id,
           coalesce(nullif(current_setting('mcp_registry.namespace', true), ''), 'com.example.mcp') AS namespace,
           coalesce(
               nullif(left(trim(BOTH '-' FROM regexp_replace(lower(endpoint_name), '[^a-z0-9._-]+', '-', 'g')), 80), ''),
               'server'
           ) AS slug
      FROM registrations
), ranked AS (
    SELECT registration_id, namespace, slug,
           row_number() OVER (PARTITION BY slug ORDER BY created_at, registration_id) AS nth
      FROM named JOIN registrations USING (registration_id)
)
UPDATE registrations r
   SET server_name = ranked.namespace || '/' || ranked.slug
                     || CASE WHEN ranked.nth > 1 THEN '-' || left(replace(r.registration_id::text, '-', ''), 8) ELSE '' END
  FROM ranked
 WHERE ranked.registration_id = r.registration_id;

ALTER TABLE registrations
    ALTER COLUMN server_name SET NOT NULL,
    ADD CONSTRAINT registrations_server_name_key UNIQUE (server_name),
    ADD CONSTRAINT registrations_server_name_format CHECK (
        char_length(server_name) BETWEEN 3 AND 200 AND server_name ~ '^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$'
    ),
    ADD CONSTRAINT registrations_version_format CHECK (
        char_length(version) BETWEEN 1 AND 255 AND version <> 'latest'
        AND version !~ '[\s^~<>=*|]' AND version !~* '(^|\.)x(\.|$)'
    ),
    ADD CONSTRAINT registrations_transport_check CHECK (transport IN ('streamable-http', 'sse'));

-- The registry lists approved servers by name (keyset paging) and searches names.
CREATE INDEX registrations_approved_server_name_idx ON registrations (server_name) WHERE status = 'Approved';
CREATE INDEX registrations_server_name_trgm_idx ON registrations USING gin (server_name gin_trgm_ops);
