-- The management API (mgmtapi, docs/api.md): tokens with scopes, and an
-- audit row for every change of a zone's configuration.
--
-- An api token carries scopes: "read" (every zone, the checkers and the
-- audit log), "zone:<origin>" (read and write that zone: its records,
-- datacenters, pools, endpoints and admin states) and "admin"
-- (everything, zones created and deleted too). Agent and operator tokens
-- keep no scopes: their rights are their kind's.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_kind_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_kind_check CHECK (kind IN ('agent', 'operator', 'api'));
ALTER TABLE api_tokens ADD COLUMN scopes text[] NOT NULL DEFAULT '{}';
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scopes_check CHECK ((kind = 'api') = (cardinality(scopes) > 0));

-- change_audit holds one row per zone that a write changed (Apply, the
-- API, a dynamic update), written in the transaction of the change: who,
-- when, the data version it made and the diff, one change per line.
-- Admin state changes keep their own rows in admin_audit.
CREATE TABLE change_audit (
    id      bigserial   PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,
    zone    text        NOT NULL,
    version bigint      NOT NULL,
    diff    text        NOT NULL
);
CREATE INDEX change_audit_zone ON change_audit (zone, at);
CREATE INDEX admin_audit_at ON admin_audit (at);

---- create above / drop below ----

DROP INDEX admin_audit_at;
DROP TABLE change_audit;
DELETE FROM api_tokens WHERE kind = 'api';
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scopes_check;
ALTER TABLE api_tokens DROP COLUMN scopes;
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_kind_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_kind_check CHECK (kind IN ('agent', 'operator'));
