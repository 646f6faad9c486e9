-- Health from several checkers (one per region, say) sharing the database.
-- Each checker decides up or down per endpoint locally, with hysteresis,
-- and writes only its transitions (probe_verdicts) and heartbeats
-- (checkers.last_seen). The quorum of the verdicts of the live checkers,
-- by the pool's policy, is materialised into endpoint_health, whose
-- trigger alone tells the DNS servers: these tables have no trigger, so a
-- verdict or a heartbeat that does not change an endpoint's effective
-- state does not bump the data version.

-- The checkers. One is live while last_seen + ttl >= now(); a dead one's
-- verdicts are kept, so that it loses nothing when it comes back under
-- the same id, but not counted.
CREATE TABLE checkers (
    id         text        PRIMARY KEY CHECK (id <> '' AND id <> 'quorum'),
    region     text        NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    ttl        interval    NOT NULL CHECK (ttl > interval '0'),
    -- When a sweep found the checker dead and recomputed the endpoints it
    -- had verdicts for; NULL while it is live or not yet swept.
    dead_since timestamptz
);

-- The current verdict of every checker on every endpoint it probes.
CREATE TABLE probe_verdicts (
    checker_id  text        NOT NULL REFERENCES checkers ON DELETE CASCADE,
    endpoint_id bigint      NOT NULL REFERENCES endpoints ON DELETE CASCADE,
    state       text        NOT NULL CHECK (state IN ('up', 'down')),
    reason      text        NOT NULL DEFAULT '',
    changed_at  timestamptz NOT NULL DEFAULT now(), -- when state last changed
    PRIMARY KEY (checker_id, endpoint_id)
);
CREATE INDEX probe_verdicts_endpoint ON probe_verdicts (endpoint_id);

-- Append-only history: a checker's verdict changed (checker_id is the
-- checker), or the effective state in endpoint_health did (checker_id is
-- 'quorum', which no checker may be called).
CREATE TABLE health_transitions (
    id          bigserial   PRIMARY KEY,
    endpoint_id bigint      NOT NULL REFERENCES endpoints ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT now(),
    old_state   text        NOT NULL CHECK (old_state IN ('up', 'down', 'unknown')),
    new_state   text        NOT NULL CHECK (new_state IN ('up', 'down', 'unknown')),
    reason      text        NOT NULL DEFAULT '',
    checker_id  text        NOT NULL CHECK (checker_id <> '')
);
CREATE INDEX health_transitions_endpoint ON health_transitions (endpoint_id, at);

-- How the verdicts of the live checkers combine: up when any says up, when
-- more than half of those with a verdict say up, or when all of them do.
ALTER TABLE pools ADD COLUMN quorum text NOT NULL DEFAULT 'majority'
    CHECK (quorum IN ('any', 'majority', 'all'));

---- create above / drop below ----

ALTER TABLE pools DROP COLUMN quorum;
DROP TABLE health_transitions, probe_verdicts, checkers;
