-- A checker that comes back after a sweep found it dead starts judging
-- every endpoint anew. Until it has a new verdict on an endpoint, its old
-- one is stale: the world may have changed while it was away. Stale
-- verdicts count only where no live checker has a current one, so that a
-- lone checker's restart keeps the last known state instead of making
-- every endpoint unknown.
ALTER TABLE probe_verdicts ADD COLUMN stale boolean NOT NULL DEFAULT false;

---- create above / drop below ----

ALTER TABLE probe_verdicts DROP COLUMN stale;
