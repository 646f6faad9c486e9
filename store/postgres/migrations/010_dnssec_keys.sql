-- DNSSEC keys of the zones the servers sign, shared by the whole fleet
-- (docs/postgres.md, "DNSSEC keys"). The private key is sealed
-- (signing/keyseal: AES-256-GCM with a secret that only the servers' and
-- meridianctl's environment hold, the zone and key tag as additional
-- data), so a dump or a replica of this table signs nothing.
--
-- Every active key is published and signs (signing.Keyset); a rollover
-- adds a successor of the same role, and its end retires the
-- predecessor, which is kept (retired) for the record. Changes go
-- through the change log like any other, so every server reloads the
-- zone at once.
CREATE TABLE dnssec_keys (
    id             bigserial   PRIMARY KEY,
    zone_id        bigint      NOT NULL REFERENCES zones ON DELETE CASCADE,
    tag            integer     NOT NULL CHECK (tag BETWEEN 0 AND 65535),
    -- csk: a combined signing key; ksk and zsk: a split pair.
    role           text        NOT NULL CHECK (role IN ('csk', 'ksk', 'zsk')),
    algorithm      smallint    NOT NULL CHECK (algorithm IN (13, 15)),
    flags          integer     NOT NULL CHECK (flags = CASE role WHEN 'zsk' THEN 256 ELSE 257 END),
    -- The DNSKEY record in presentation format.
    dnskey         text        NOT NULL CHECK (dnskey <> ''),
    -- The private key in the .private file format, sealed.
    private_sealed bytea       NOT NULL CHECK (length(private_sealed) > 33),
    state          text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    retired_at     timestamptz CHECK ((state = 'retired') = (retired_at IS NOT NULL)),
    -- Retired keys keep their tag: a new key never reuses one.
    UNIQUE (zone_id, tag)
);
CREATE INDEX dnssec_keys_zone ON dnssec_keys (zone_id) WHERE state = 'active';

CREATE TRIGGER dnssec_keys_changed AFTER INSERT OR UPDATE OR DELETE ON dnssec_keys
    FOR EACH ROW EXECUTE FUNCTION meridian_changed();

-- Who made, rolled or resealed which key, when.
CREATE TABLE dnssec_key_audit (
    id     bigserial   PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text        NOT NULL,
    zone   text        NOT NULL,
    action text        NOT NULL,
    detail text        NOT NULL DEFAULT ''
);

---- create above / drop below ----

DROP TABLE dnssec_key_audit, dnssec_keys;
