-- Data versions from the clock: each version is at least the commit's
-- time in microseconds since 1970, and more than the one before. A
-- database restored from a backup then never hands out again a version it
-- handed out before the restore, so that a DNS server holding newer data
-- can tell the two histories apart (see store/postgres/store.go) instead
-- of taking a reused version for one it has.
CREATE OR REPLACE FUNCTION meridian_change(z bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    IF z IS NULL THEN
        RETURN;
    END IF;
    SELECT version INTO v FROM meridian_version WHERE txid = pg_current_xact_id();
    IF NOT FOUND THEN
        UPDATE meridian_version
            SET version = GREATEST(version + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint),
                txid = pg_current_xact_id()
            RETURNING version INTO v;
        PERFORM pg_notify('meridian_changes', v::text);
    END IF;
    INSERT INTO changes (version, zone_id) VALUES (v, z) ON CONFLICT DO NOTHING;
END
$$;

---- create above / drop below ----

CREATE OR REPLACE FUNCTION meridian_change(z bigint) RETURNS void LANGUAGE plpgsql AS $$
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
