-- Verification: what probing each registration's endpoint over MCP found, the tool set an admin approved, and
-- when the scheduled run may probe it next (shared/verification.py).
--
-- Its own table, not columns of registrations: a probe every few hours must not bump a registration's
-- row_version (its ETag: an editor's If-Match would fail), its updated_at (the MCP Registry's updatedAt and
-- `updated_since`), nor the registration_changes generation that keeps list totals cached.

CREATE TABLE registration_verifications (
    registration_id            uuid PRIMARY KEY REFERENCES registrations (registration_id) ON DELETE CASCADE,
    status                     text NOT NULL DEFAULT 'unverified',
    checked_at                 timestamptz,
    detail                     text,
    protocol_version           text,
    server_info                jsonb,
    capabilities               jsonb,
    -- [{name, title?, description?, inputSchema?, annotations?, fingerprint}] as the last probe listed them.
    tools                      jsonb,
    tools_fingerprint          text,
    resource_metadata          text,
    -- {added, removed, changed} tool names against the approved set, while drifted.
    drift                      jsonb,
    -- {name: fingerprint} of the approved tool set, and that set's fingerprint.
    approved_tools             jsonb,
    approved_tools_fingerprint text,
    tools_approved_at          timestamptz,
    tools_approved_by          uuid REFERENCES users (user_id),
    -- The registration was approved before any probe had verified it.
    approved_unverified        boolean NOT NULL DEFAULT false,
    -- Drifted with PROBE_DRIFT_ACTION=suspend: not served by the MCP Registry until an admin approves the tools.
    suspended                  boolean NOT NULL DEFAULT false,
    -- The scheduled run claims rows due by here (and moves it one interval on), so no server is probed twice
    -- in one interval, whatever number of instances run.
    next_probe_at              timestamptz NOT NULL DEFAULT now(),
    -- Bumped by every recorded probe and tool approval (not by a claim): part of the MCP Registry's ETags.
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT registration_verifications_status_check CHECK (status IN (
        'unverified', 'verified', 'auth_required', 'not_mcp', 'unreachable', 'timeout', 'refused', 'drifted'
    )),
    CONSTRAINT registration_verifications_tools_array CHECK (tools IS NULL OR jsonb_typeof(tools) = 'array'),
    CONSTRAINT registration_verifications_approved_tools_object
        CHECK (approved_tools IS NULL OR jsonb_typeof(approved_tools) = 'object')
);

CREATE INDEX registration_verifications_next_probe_at_idx ON registration_verifications (next_probe_at);
CREATE INDEX registration_verifications_status_idx ON registration_verifications (status);
CREATE INDEX registration_verifications_updated_at_idx ON registration_verifications (updated_at);
CREATE INDEX registration_verifications_suspended_idx ON registration_verifications (registration_id) WHERE suspended;

-- Drift and tool approvals are audited as `Updated` entries whose metadata.event is `ToolsDrifted` or
-- `ToolsApproved` (audit_log_action_check is redefined by a later migration, 0015, so new action values added
-- here would not survive it). The scheduled probe writes its entries as this user (audit_log.user_id must name a
-- user). Tenant zero is no Entra tenant, so no sign-in can ever become it.
INSERT INTO users (user_id, tenant_id, entra_id, email, display_name, is_admin)
VALUES ('00000000-0000-0000-0000-00000000b07e', '00000000-0000-0000-0000-000000000000', 'mcp-registry-probe',
        '', 'MCP Registry probe', false)
ON CONFLICT DO NOTHING;
