-- Slow start: when an endpoint's health turns up, remember since when, so
-- that DNS servers can ramp its weight up over the pool's slow_start
-- period instead of sending it every returning client at once.
ALTER TABLE endpoint_health ADD COLUMN up_since timestamptz;

CREATE FUNCTION meridian_up_since() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state <> 'up' THEN
        NEW.up_since := NULL;
    ELSIF TG_OP = 'INSERT' OR OLD.state <> 'up' THEN
        NEW.up_since := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER endpoint_health_up_since BEFORE INSERT OR UPDATE ON endpoint_health
    FOR EACH ROW EXECUTE FUNCTION meridian_up_since();

---- create above / drop below ----

DROP TRIGGER endpoint_health_up_since ON endpoint_health;
DROP FUNCTION meridian_up_since();
ALTER TABLE endpoint_health DROP COLUMN up_since;
