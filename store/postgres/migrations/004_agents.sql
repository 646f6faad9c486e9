-- The health-agent API: bearer tokens and the reports agents push.
--
-- api_tokens holds only the SHA-256 of each token (32 random bytes,
-- base64url, prefixed "mrd_"), which is shown once when it is created. An
-- agent token may report on the endpoints of its one pool; an operator
-- token may act on any pool, admin states included.
--
-- agent_reports holds the latest report of an agent on an endpoint. These
-- tables have no version trigger: a report changes what the DNS servers
-- see only through endpoint_health, which is written (and so versioned)
-- only when the effective state or the kind of its reason changes.
CREATE TABLE api_tokens (
    id         bigserial   PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('agent', 'operator')),
    pool_id    bigint      REFERENCES pools ON DELETE CASCADE,
    label      text        NOT NULL DEFAULT '',
    hash       bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK ((kind = 'agent') = (pool_id IS NOT NULL))
);

CREATE TABLE agent_reports (
    endpoint_id    bigint      PRIMARY KEY REFERENCES endpoints ON DELETE CASCADE,
    status         text        NOT NULL CHECK (status IN ('up', 'down', 'drain')),
    load           real        CHECK (load BETWEEN 0 AND 1),
    connections    integer     CHECK (connections >= 0),
    capacity       integer     CHECK (capacity >= 0),
    weight_percent integer     CHECK (weight_percent >= 0),
    message        text        NOT NULL DEFAULT '',
    reported_at    timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    CHECK (expires_at > reported_at)
);
CREATE INDEX agent_reports_expires ON agent_reports (expires_at);

---- create above / drop below ----

DROP TABLE agent_reports, api_tokens;
