-- Retention (relay/store/sqlite_retention.py): the pruner finds old rows by time, and what
-- goes with them by owner, through indexes rather than by scanning whole tables.
CREATE INDEX attempts_by_time ON attempts (started_at);
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE status <> 'pending';
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX events_by_deployment ON events (deployment_id);
CREATE INDEX deployments_by_update ON deployments (updated_at);
CREATE INDEX release_links_by_deployment ON release_deployments (deployment_id);
CREATE INDEX idempotency_by_time ON idempotency_keys (created_at);
