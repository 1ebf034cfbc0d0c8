-- Compact outbox: the claim path reads one partial index that holds only the waiting
-- deliveries, in the order they are claimed, so a resume that makes thousands due at the
-- same instant needs no sort; the next-due time is read from the same index, one seek per
-- forwarder. It replaces two indexes over every delivery ever made.
DROP INDEX deliveries_due;
DROP INDEX deliveries_claim;
CREATE INDEX deliveries_pending ON deliveries (forwarder, next_attempt_at, event_seq)
    WHERE status = 'pending';
