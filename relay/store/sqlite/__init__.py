"""The embedded SQLite backend: one writer thread, group commits, WAL with its own fsync."""
