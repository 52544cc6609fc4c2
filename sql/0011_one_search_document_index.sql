-- One trigram index over one search document instead of five trigram indexes, one per searchable column.
--
-- Every registration insert updated five GIN indexes without a pending list (sql/0003), trigram by trigram:
-- the largest part of a create's database CPU, and of a bulk load's time (with triggers off, 20k registrations
-- still took 50 s). The document joins every column either search reads (the API's search: name, description,
-- owner contact, URL; the MCP registry's: server name, name, description) with a newline between them, so one
-- index serves both. A trigram shared by several columns of a row ("github" in the name, the URL and the
-- description) is one index entry instead of several. The searches keep their exact meaning: the document
-- condition finds the candidates through this index and the per-column conditions then decide (see
-- SEARCH_DOCUMENT in shared/registrations.py, which must stay this exact expression for the planner to use
-- the index). Not lower-cased: pg_trgm lower-cases trigrams itself, and ILIKE ignores case, so lower() would
-- only cost every recheck a copy of the document.
CREATE INDEX registrations_search_document_trgm_idx ON registrations USING gin (
    (endpoint_name || E'\n' || coalesce(description, '') || E'\n' || owner_contact || E'\n' || endpoint_url
     || E'\n' || server_name) gin_trgm_ops
) WITH (fastupdate = off);

DROP INDEX registrations_endpoint_name_trgm_idx;
DROP INDEX registrations_description_trgm_idx;
DROP INDEX registrations_owner_contact_trgm_idx;
DROP INDEX registrations_endpoint_url_trgm_idx;
DROP INDEX registrations_server_name_trgm_idx;

-- No parallel workers for scans of registrations. A search page's statement is prepared once and, after a few
-- runs, PostgreSQL may plan it generically, without knowing its LIMIT: it then expects to read a tenth of the
-- matching rows and starts two workers for a 20-row page. Measured at 1M registrations: 70 ms of worker start-up
-- in a 91 ms page that takes 4-12 ms without workers. Under concurrent requests workers only compete with
-- other requests for the same cores; the one query that gained from them, the first count of a common search
-- term, runs once per change of the table (the remembered totals).
ALTER TABLE registrations SET (parallel_workers = 0);
