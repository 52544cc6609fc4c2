-- Counters kept per statement (transition tables) and striped over slots, and exact audit log totals.
--
-- 1. Per statement: the counters were updated by a row trigger, so one statement writing N registrations updated
--    the same counter row N times (a bulk load of 20k rows: 20k updates of one row, each leaving a dead version).
--    Statement triggers with transition tables (REFERENCING NEW TABLE / OLD TABLE) update each counter once per
--    statement with the statement's net change.
-- 2. Striped: every registration write updated one row per status and the one generation row, and held their
--    row locks until it committed, so concurrent creates queued on them. Each counter is now a set of slots
--    (slot = the backend's pid modulo 64; rows are created on first use) and its value is the sum of its slots.
--    Two backends share a slot only when their pids are congruent modulo 64, and one backend (one pooled
--    connection) runs one transaction at a time. A slot may go negative (a registration counted in one slot is
--    deleted through another); only the sum means anything.
--    The generation of registration_changes becomes the sum of its slots: every slot only grows, so the sum
--    still grows with every committed change, and "the sum is still N" still means "nothing changed since".
-- 3. The audit log's `total` (the contract requires it exact) was a count over every matching entry: every
--    unfiltered page counted the whole table (1.75M entries at 1M registrations). Entries are now counted per
--    action, per user and per UTC day in the same transaction as each write. A time range's total is the sum of
--    the whole days inside it plus an index count of the two partial days at its edges (see shared/audit.py).
--    A registration's entries are few and counted through their index.

-- ---------------------------------------------------------------- registration_counts, striped

ALTER TABLE registration_counts
    DROP CONSTRAINT registration_counts_pkey,
    DROP CONSTRAINT registration_counts_row_count_check,
    ADD COLUMN slot smallint NOT NULL DEFAULT 0,
    ADD PRIMARY KEY (status, slot);
ALTER TABLE registration_counts ALTER COLUMN slot DROP DEFAULT;

-- ---------------------------------------------------------------- registration_changes, striped

ALTER TABLE registration_changes
    DROP CONSTRAINT registration_changes_pkey,
    DROP COLUMN singleton,
    ADD COLUMN slot smallint NOT NULL DEFAULT 0,
    ADD PRIMARY KEY (slot);
ALTER TABLE registration_changes ALTER COLUMN slot DROP DEFAULT;
-- Like registration_counts (sql/0006): a handful of live rows, never worth parallel workers.
ALTER TABLE registration_changes SET (parallel_workers = 0);

-- The slot this backend writes counters to.
CREATE FUNCTION counter_slot() RETURNS smallint
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT (pg_backend_pid() % 64)::smallint $$;

-- ---------------------------------------------------------------- registrations: one trigger per statement

DROP TRIGGER registrations_count_insert_delete ON registrations;
DROP TRIGGER registrations_count_status_change ON registrations;
DROP TRIGGER registrations_bump_generation ON registrations;
DROP FUNCTION registrations_maintain_counts();
DROP FUNCTION registrations_bump_generation();

-- Adds the net change of one statement per status (rows in `changed` with +1 or -1) and bumps the generation.
-- Statuses are written in one order, so two transactions sharing a slot cannot deadlock on them.
CREATE FUNCTION registrations_count_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    my_slot smallint := counter_slot();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO registration_counts AS c (status, slot, row_count)
        SELECT status, my_slot, count(*) FROM new_rows GROUP BY status ORDER BY status
            ON CONFLICT (status, slot) DO UPDATE SET row_count = c.row_count + EXCLUDED.row_count;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO registration_counts AS c (status, slot, row_count)
        SELECT status, my_slot, -count(*) FROM old_rows GROUP BY status ORDER BY status
            ON CONFLICT (status, slot) DO UPDATE SET row_count = c.row_count + EXCLUDED.row_count;
    ELSIF TG_OP = 'UPDATE' THEN
        -- An edit that keeps the status nets to zero and writes no counter row.
        INSERT INTO registration_counts AS c (status, slot, row_count)
        SELECT status, my_slot, sum(delta)
          FROM (SELECT status, 1 AS delta FROM new_rows UNION ALL SELECT status, -1 FROM old_rows) d
         GROUP BY status HAVING sum(delta) <> 0 ORDER BY status
            ON CONFLICT (status, slot) DO UPDATE SET row_count = c.row_count + EXCLUDED.row_count;
    ELSE -- TRUNCATE
        DELETE FROM registration_counts;
    END IF;
    INSERT INTO registration_changes AS g (slot, generation) VALUES (my_slot, 1)
        ON CONFLICT (slot) DO UPDATE SET generation = g.generation + 1;
    RETURN NULL;
END;
$$;

-- A trigger with transition tables has one event, hence one trigger per event. Every statement bumps the
-- generation, even one that changed no row (that only costs the next filtered list one count).
CREATE TRIGGER registrations_count_insert
    AFTER INSERT ON registrations REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registrations_count_statement();
CREATE TRIGGER registrations_count_update
    AFTER UPDATE ON registrations REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registrations_count_statement();
CREATE TRIGGER registrations_count_delete
    AFTER DELETE ON registrations REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION registrations_count_statement();
CREATE TRIGGER registrations_count_truncate
    AFTER TRUNCATE ON registrations
    FOR EACH STATEMENT EXECUTE FUNCTION registrations_count_statement();

-- ---------------------------------------------------------------- the audit log's counters

CREATE TABLE audit_log_counts_by_action (
    action    text NOT NULL,
    slot      smallint NOT NULL,
    row_count bigint NOT NULL,
    PRIMARY KEY (action, slot)
);
CREATE TABLE audit_log_counts_by_user (
    user_id   uuid NOT NULL,
    slot      smallint NOT NULL,
    row_count bigint NOT NULL,
    PRIMARY KEY (user_id, slot)
);
-- `day` is the UTC date of the entry's timestamp.
CREATE TABLE audit_log_counts_by_day (
    day       date NOT NULL,
    slot      smallint NOT NULL,
    row_count bigint NOT NULL,
    PRIMARY KEY (day, slot)
);
ALTER TABLE audit_log_counts_by_action SET (parallel_workers = 0);
ALTER TABLE audit_log_counts_by_user SET (parallel_workers = 0);
ALTER TABLE audit_log_counts_by_day SET (parallel_workers = 0);

INSERT INTO audit_log_counts_by_action (action, slot, row_count)
SELECT action, 0, count(*) FROM audit_log GROUP BY action;
INSERT INTO audit_log_counts_by_user (user_id, slot, row_count)
SELECT user_id, 0, count(*) FROM audit_log GROUP BY user_id;
INSERT INTO audit_log_counts_by_day (day, slot, row_count)
SELECT ("timestamp" AT TIME ZONE 'UTC')::date, 0, count(*) FROM audit_log GROUP BY 1;

-- `sign` is +1 for inserted rows, -1 for deleted ones; `changed` is the statement's transition table.
CREATE FUNCTION audit_log_count_statement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    my_slot smallint := counter_slot();
    sign    bigint := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM audit_log_counts_by_action;
        DELETE FROM audit_log_counts_by_user;
        DELETE FROM audit_log_counts_by_day;
        RETURN NULL;
    END IF;
    INSERT INTO audit_log_counts_by_action AS c (action, slot, row_count)
    SELECT action, my_slot, sign * count(*) FROM changed GROUP BY action ORDER BY action
        ON CONFLICT (action, slot) DO UPDATE SET row_count = c.row_count + EXCLUDED.row_count;
    INSERT INTO audit_log_counts_by_user AS c (user_id, slot, row_count)
    SELECT user_id, my_slot, sign * count(*) FROM changed GROUP BY user_id ORDER BY user_id
        ON CONFLICT (user_id, slot) DO UPDATE SET row_count = c.row_count + EXCLUDED.row_count;
    INSERT INTO audit_log_counts_by_day AS c (day, slot, row_count)
    SELECT ("timestamp" AT TIME ZONE 'UTC')::date, my_slot, sign * count(*) FROM changed GROUP BY 1 ORDER BY 1
        ON CONFLICT (day, slot) DO UPDATE SET row_count = c.row_count + EXCLUDED.row_count;
    RETURN NULL;
END;
$$;

CREATE TRIGGER audit_log_count_insert
    AFTER INSERT ON audit_log REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_count_statement();
-- Nothing in the service deletes audit entries; a maintenance delete (the benchmark removes its own writes)
-- keeps the counters exact all the same.
CREATE TRIGGER audit_log_count_delete
    AFTER DELETE ON audit_log REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_count_statement();
CREATE TRIGGER audit_log_count_truncate
    AFTER TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_count_statement();

-- The audit log is append-only: an entry is never rewritten.
CREATE FUNCTION audit_log_refuse_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: entries are never updated' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_update();

-- Audit pages are read like registration pages (ids from an index-only scan, then the rows), so the newest
-- entries must be marked all-visible soon after they are written (see sql/0005). The table only grows.
ALTER TABLE audit_log SET (autovacuum_vacuum_insert_scale_factor = 0.01);
