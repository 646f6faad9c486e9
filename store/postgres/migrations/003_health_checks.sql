-- Health checks: how checkers probe a pool's endpoints (zones.HealthCheck
-- as JSON), and an endpoint's own check when it differs (another port or
-- Host header, say). NULL: the pool is not probed / the endpoint uses the
-- pool's check. Changes reach DNS servers and checkers through the
-- existing triggers of both tables.
ALTER TABLE pools ADD COLUMN health_check jsonb
    CHECK (health_check IS NULL OR (jsonb_typeof(health_check) = 'object' AND health_check->>'type' IN ('http', 'https', 'tcp', 'dns', 'agent')));
ALTER TABLE endpoints ADD COLUMN health_check jsonb
    CHECK (health_check IS NULL OR jsonb_typeof(health_check) = 'object');

---- create above / drop below ----

ALTER TABLE endpoints DROP COLUMN health_check;
ALTER TABLE pools DROP COLUMN health_check;
