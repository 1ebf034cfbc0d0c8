-- Dashboard sign-in sessions (relay/store/sqlite/dashboard.py): the hash of the cookie
-- value, the hash of the token it was opened with, and when it expires.
CREATE TABLE sessions (
    session_hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
