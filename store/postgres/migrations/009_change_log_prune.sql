-- Pruning of the change log. postgres.PruneChanges deletes the rows of
-- `changes` older than a retention window and, in the same transaction,
-- raises pruned_through: every change with a version at or below it is
-- gone. A DNS server whose version is at or below pruned_through can no
-- longer learn from the log which zones changed since, and loads every
-- zone; a server above it whose own last change is missing from the log
-- has met another history (a database restored from a backup), as before
-- (see store/postgres/store.go).
--
-- A table of its own rather than a column of meridian_version: every
-- writer locks that row, and pruning must not hold up writers.
CREATE TABLE change_log (
    id             boolean PRIMARY KEY DEFAULT true CHECK (id),
    pruned_through bigint  NOT NULL DEFAULT 0 CHECK (pruned_through >= 0),
    pruned_at      timestamptz
);
INSERT INTO change_log DEFAULT VALUES;

-- No index is needed: versions are at least the time of their change in
-- microseconds (007_clock_versions.sql), so the window is a range of the
-- primary key (version, zone_id).

---- create above / drop below ----

DROP TABLE change_log;
