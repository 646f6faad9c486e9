-- Meridian's schema: zones, static records, datacenters, pools, endpoints
-- with admin state, endpoint health, and the change log that versions every
-- change so that DNS servers can follow them (LISTEN/NOTIFY plus polling).
--
-- Names are stored fully qualified and lower case; record data in RFC 1035
-- presentation format. Constraints refuse what the loaders would refuse, so
-- that a bad write fails in the database instead of half applying.

-- The current data version. Every writing transaction takes this one row
-- lock and bumps the version once (meridian_change), so versions are handed
-- out in commit order: a reader that has seen version N has seen every
-- change up to N.
CREATE TABLE meridian_version (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint  NOT NULL,
    txid    xid8
);
INSERT INTO meridian_version (version) VALUES (0);

CREATE TABLE zones (
    id     bigserial PRIMARY KEY,
    origin text NOT NULL UNIQUE CHECK (origin = lower(origin) AND origin LIKE '%.')
);

CREATE TABLE records (
    id      bigserial PRIMARY KEY,
    zone_id bigint  NOT NULL REFERENCES zones ON DELETE CASCADE,
    name    text    NOT NULL CHECK (name = lower(name) AND name LIKE '%.'),
    type    text    NOT NULL CHECK (type = upper(type) AND type <> ''),
    ttl     integer NOT NULL CHECK (ttl >= 0),
    rdata   text    NOT NULL CHECK (rdata <> ''),
    UNIQUE (zone_id, name, type, rdata)
);
CREATE INDEX records_zone ON records (zone_id);

CREATE TABLE datacenters (
    id        bigserial PRIMARY KEY,
    zone_id   bigint NOT NULL REFERENCES zones ON DELETE CASCADE,
    name      text   NOT NULL CHECK (name <> ''),
    lat       double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon       double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    country   text   NOT NULL DEFAULT '' CHECK (country = '' OR country ~ '^[A-Z]{2}$'),
    continent text   NOT NULL DEFAULT '' CHECK (continent = '' OR continent ~ '^[A-Z]{2}$'),
    UNIQUE (zone_id, name)
);

CREATE TABLE pools (
    id            bigserial PRIMARY KEY,
    zone_id       bigint  NOT NULL REFERENCES zones ON DELETE CASCADE,
    name          text    NOT NULL CHECK (name = lower(name) AND name LIKE '%.'),
    ttl           integer NOT NULL DEFAULT 30 CHECK (ttl >= 0),
    max_answers   integer NOT NULL DEFAULT 4 CHECK (max_answers >= 1),
    geo           text    NOT NULL DEFAULT 'nearest' CHECK (geo IN ('nearest', 'rules', 'none')),
    sticky        boolean NOT NULL DEFAULT false,
    spill         integer NOT NULL DEFAULT 2 CHECK (spill >= 1),
    unknown_is_up boolean NOT NULL DEFAULT true,
    -- fail_open, empty, or fallback:<fully qualified pool name>
    when_all_down text    NOT NULL DEFAULT 'fail_open'
                  CHECK (when_all_down IN ('fail_open', 'empty') OR when_all_down ~ '^fallback:.+\.$'),
    -- {"datacenter": km, ...}
    bias          jsonb   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(bias) = 'object'),
    -- [{"cidr": [...], "country": [...], "continent": [...], "datacenters": [...]}, ...]
    rules         jsonb   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(rules) = 'array'),
    UNIQUE (zone_id, name)
);

CREATE TABLE endpoints (
    id           bigserial PRIMARY KEY,
    pool_id      bigint  NOT NULL REFERENCES pools ON DELETE CASCADE,
    address      inet    NOT NULL CHECK (masklen(address) = CASE family(address) WHEN 4 THEN 32 ELSE 128 END),
    datacenter   text    NOT NULL,
    weight       integer NOT NULL DEFAULT 100 CHECK (weight >= 1),
    admin_state  text    NOT NULL DEFAULT 'active' CHECK (admin_state IN ('active', 'drain', 'disabled')),
    admin_reason text    NOT NULL DEFAULT '',
    UNIQUE (pool_id, address)
);
CREATE INDEX endpoints_pool ON endpoints (pool_id);

-- Health as checkers and agents report it, apart from the configuration so
-- that applying configuration does not reset it.
CREATE TABLE endpoint_health (
    endpoint_id bigint PRIMARY KEY REFERENCES endpoints ON DELETE CASCADE,
    state       text   NOT NULL DEFAULT 'unknown' CHECK (state IN ('up', 'down', 'unknown')),
    reason      text   NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Who changed an endpoint's admin state, when and why.
CREATE TABLE admin_audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    zone       text NOT NULL,
    pool       text NOT NULL,
    address    inet NOT NULL,
    old_state  text NOT NULL,
    new_state  text NOT NULL,
    reason     text NOT NULL
);

-- The change log: which zones changed in which version. Zone ids are kept
-- without a foreign key so that the deletion of a zone is logged too.
CREATE TABLE changes (
    version bigint NOT NULL,
    zone_id bigint NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (version, zone_id)
);

-- meridian_change records that zone z changed in the current transaction:
-- the first call of a transaction bumps the version (taking the version
-- row's lock until commit) and queues a notification, delivered at commit,
-- whose payload is the new version.
CREATE FUNCTION meridian_change(z bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    IF z IS NULL THEN
        RETURN;
    END IF;
    SELECT version INTO v FROM meridian_version WHERE txid = pg_current_xact_id();
    IF NOT FOUND THEN
        UPDATE meridian_version SET version = version + 1, txid = pg_current_xact_id() RETURNING version INTO v;
        PERFORM pg_notify('meridian_changes', v::text);
    END IF;
    INSERT INTO changes (version, zone_id) VALUES (v, z) ON CONFLICT DO NOTHING;
END
$$;

-- meridian_zone_of returns the zone a row of table tbl belongs to, or
-- NULL when that is gone (a cascade from a deleted pool or zone, which
-- logs the change itself).
CREATE FUNCTION meridian_zone_of(tbl name, r jsonb) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CASE tbl
        WHEN 'zones' THEN (r->>'id')::bigint
        WHEN 'endpoints' THEN (SELECT zone_id FROM pools WHERE id = (r->>'pool_id')::bigint)
        WHEN 'endpoint_health' THEN (SELECT p.zone_id FROM endpoints e JOIN pools p ON p.id = e.pool_id
                                     WHERE e.id = (r->>'endpoint_id')::bigint)
        ELSE (r->>'zone_id')::bigint
    END
$$;

-- meridian_changed is the trigger of every table: the zones of the old
-- and the new row changed.
CREATE FUNCTION meridian_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM meridian_change(meridian_zone_of(TG_TABLE_NAME, to_jsonb(OLD)));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM meridian_change(meridian_zone_of(TG_TABLE_NAME, to_jsonb(NEW)));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER zones_changed AFTER INSERT OR UPDATE OR DELETE ON zones
    FOR EACH ROW EXECUTE FUNCTION meridian_changed();
CREATE TRIGGER records_changed AFTER INSERT OR UPDATE OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION meridian_changed();
CREATE TRIGGER datacenters_changed AFTER INSERT OR UPDATE OR DELETE ON datacenters
    FOR EACH ROW EXECUTE FUNCTION meridian_changed();
CREATE TRIGGER pools_changed AFTER INSERT OR UPDATE OR DELETE ON pools
    FOR EACH ROW EXECUTE FUNCTION meridian_changed();
CREATE TRIGGER endpoints_changed AFTER INSERT OR UPDATE OR DELETE ON endpoints
    FOR EACH ROW EXECUTE FUNCTION meridian_changed();
CREATE TRIGGER endpoint_health_changed AFTER INSERT OR UPDATE OR DELETE ON endpoint_health
    FOR EACH ROW EXECUTE FUNCTION meridian_changed();

---- create above / drop below ----

DROP TABLE changes, admin_audit, endpoint_health, endpoints, pools, datacenters, records, zones, meridian_version;
DROP FUNCTION meridian_change(bigint), meridian_zone_of(name, jsonb), meridian_changed();
