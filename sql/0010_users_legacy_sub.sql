-- Users imported from the FastAPI version of this service (`python -m devtools.import_fastapi`) keep their
-- user_id, registrations and audit entries, but that version keyed users by the token's `sub` claim, and this
-- one keys them by (tenant, `oid`). An imported user has no `oid` yet: `entra_id` stays NULL and `legacy_sub`
-- holds the old key. The first sign-in whose token carries that tenant and `sub` claims the row (sets
-- `entra_id` to the token's `oid`, once: only while it is NULL); from then on the user is matched by
-- (tenant, oid) like any other. Never by e-mail: an address can be reassigned to another person.
ALTER TABLE users
    ALTER COLUMN entra_id DROP NOT NULL,
    ADD COLUMN legacy_sub text,
    ADD CONSTRAINT users_tenant_legacy_sub_key UNIQUE (tenant_id, legacy_sub),
    ADD CONSTRAINT users_identity_present CHECK (entra_id IS NOT NULL OR legacy_sub IS NOT NULL);
