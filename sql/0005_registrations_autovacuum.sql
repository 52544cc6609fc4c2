-- Vacuum registrations often enough that list pages stay index-only scans.
--
-- Lists are read newest first, and a page's ids come from an index-only scan of registrations_created_at_idx
-- (a deep offset skips index entries, not table rows). An index-only scan still reads the table for every
-- entry whose page the visibility map does not mark all-visible, and only VACUUM sets that mark. With
-- PostgreSQL's defaults a table is vacuumed after inserts of 20 % of its rows, or updates and deletes of 20 %:
-- at 1M registrations, the newest 200 000 (the ones lists read first) can stay unmarked. Measured on the
-- benchmark database at 1M after one benchmark run had written ~190 000 registrations: offset 10 000 made
-- 3 208 table reads and took 2.8 ms; after a vacuum, none and 0.9 ms.
--
-- Here vacuum comes after inserts of 1 % (plus 1 000) and updates or deletes of 2 % (plus 50). A vacuum after
-- inserts skips pages already all-visible and, with few dead rows, the indexes too, so it costs about the
-- pages written since the last one.
ALTER TABLE registrations SET (
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_vacuum_scale_factor = 0.02
);
