"""Deploy insights derived from the store: badges, deployment metrics, the DORA keys."""
