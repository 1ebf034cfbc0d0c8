-- Names as dialect clients send them (Retrace's AppName and EnvironmentName may hold
-- spaces, dots and capitals): matched case-insensitively by `folded`, shown as first sent
-- (`name`), known to relay's own API as `slug`. Two names may not share one slug.
-- Deployments' integer number (Cloud66 ids) is their seq: no schema change needed.
CREATE TABLE dialect_names (
    scope TEXT NOT NULL,
    folded TEXT NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, folded)
);
CREATE UNIQUE INDEX dialect_names_by_slug ON dialect_names (scope, slug);
