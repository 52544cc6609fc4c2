-- No parallel scans of registration_counts (three rows), however large its file grows.
--
-- Every registration insert and delete updates a row of it. Between vacuums, and whenever one transaction
-- writes many registrations, the old row versions pile up in new pages, and VACUUM can cut the file back only
-- when it gets an exclusive lock, which a steady stream of writes may never leave it. The planner sizes a table
-- by its pages: with the table at 19 MB (seen on the benchmark database) it expected 168 000 rows and started
-- parallel workers for the sum each unfiltered or status-only list returns as its total: 4.9 ms per list
-- instead of 0.6 ms. A scan of three live rows never gains from workers.
ALTER TABLE registration_counts SET (parallel_workers = 0);
