-- Delivery engine: state shared by one deployment's deliveries to one forwarder,
-- durable forwarder switches, and an index for claiming due deliveries per forwarder.
CREATE TABLE delivery_shared (
    deployment_id TEXT NOT NULL,
    forwarder TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (deployment_id, forwarder)
);

CREATE TABLE forwarder_states (
    name TEXT PRIMARY KEY,
    disabled_reason TEXT,
    updated_at TEXT NOT NULL
);

CREATE INDEX deliveries_claim ON deliveries (forwarder, status, next_attempt_at);
CREATE INDEX events_by_time ON events (created_at);
