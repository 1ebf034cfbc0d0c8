-- Circuit breaker state per forwarder, kept with its disabled switch so that it outlives a
-- restart (and, on PostgreSQL, is shared by every instance).
ALTER TABLE forwarder_states ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE forwarder_states ADD COLUMN opened_until TEXT;
ALTER TABLE forwarder_states ADD COLUMN cooldown_ms INTEGER;
