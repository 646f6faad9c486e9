-- Load shedding: above this load (0..1, from agent reports) an endpoint's
-- weight falls toward zero, reaching it at load 1; 0 turns it off.
ALTER TABLE pools ADD COLUMN shed_load real NOT NULL DEFAULT 0 CHECK (shed_load >= 0 AND shed_load < 1);

---- create above / drop below ----

ALTER TABLE pools DROP COLUMN shed_load;
