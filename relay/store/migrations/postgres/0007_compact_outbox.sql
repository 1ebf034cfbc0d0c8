-- Compact outbox: claims and the next-due time read deliveries_pending (the waiting
-- deliveries only, in claim order); the two indexes over every delivery ever made that
-- served them before are dropped, so a delivery's outcome updates one small index.
DROP INDEX IF EXISTS deliveries_due;
DROP INDEX IF EXISTS deliveries_claim;
