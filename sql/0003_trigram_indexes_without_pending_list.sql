-- Trigram (GIN) indexes without a pending list, so that search latency does not drift between vacuums.
--
-- With GIN's default fastupdate, new entries wait in an unsorted pending list that every search reads in
-- full until VACUUM merges it (autovacuum comes only after ~20 % of the table changed) or until it outgrows
-- gin_pending_list_limit (4 MB; then one unlucky insert pays for merging all of it). Measured on the
-- benchmark database with 100k registrations after ~50k inserts: a search matching one row took 54 ms
-- with the pending lists, 4 ms after they were merged; a common term 24 ms → 12 ms. Registrations are
-- written rarely and searched often, so inserts now update these indexes directly.

ALTER INDEX registrations_endpoint_name_trgm_idx SET (fastupdate = off);
ALTER INDEX registrations_description_trgm_idx SET (fastupdate = off);
ALTER INDEX registrations_owner_contact_trgm_idx SET (fastupdate = off);
ALTER INDEX registrations_endpoint_url_trgm_idx SET (fastupdate = off);
ALTER INDEX registrations_server_name_trgm_idx SET (fastupdate = off);

-- Merge what is pending now (turning fastupdate off does not).
SELECT gin_clean_pending_list('registrations_endpoint_name_trgm_idx'::regclass);
SELECT gin_clean_pending_list('registrations_description_trgm_idx'::regclass);
SELECT gin_clean_pending_list('registrations_owner_contact_trgm_idx'::regclass);
SELECT gin_clean_pending_list('registrations_endpoint_url_trgm_idx'::regclass);
SELECT gin_clean_pending_list('registrations_server_name_trgm_idx'::regclass);
