-- Names as dialect clients send them (see sqlite/0006_dialect_names.sql).
CREATE TABLE dialect_names (
    scope TEXT NOT NULL,
    folded TEXT NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, folded)
);
CREATE UNIQUE INDEX dialect_names_by_slug ON dialect_names (scope, slug);
