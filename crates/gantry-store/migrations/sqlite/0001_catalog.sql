-- The catalog cache and its change log (DESIGN.md §2, §6).
--
-- Only what servers advertise is stored: definitions as the server listed them, never a
-- server's config (commands, env, headers, URLs). Times are Unix milliseconds (UTC).
-- Kept to SQL that PostgreSQL accepts with the same meaning, apart from the id column of
-- catalog_changes (BIGINT GENERATED ALWAYS AS IDENTITY there).

-- One row per server that has been synced at least once.
CREATE TABLE catalog_servers (
    server      TEXT    NOT NULL PRIMARY KEY,
    synced_at   BIGINT  NOT NULL,   -- last sync
    trigger     TEXT    NOT NULL    -- connect | reconnect | list_changed
);

-- The last known definition of every tool, prompt, resource and resource template.
CREATE TABLE catalog_items (
    server      TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('tool', 'prompt', 'resource', 'resource_template')),
    name        TEXT    NOT NULL,   -- name (tools, prompts), uri, uriTemplate
    position    INTEGER NOT NULL,   -- order in the server's list
    fingerprint TEXT    NOT NULL,   -- sha256 of the canonical JSON of the definition
    definition  TEXT    NOT NULL,   -- the definition as the server listed it (JSON)
    first_seen  BIGINT  NOT NULL,
    changed_at  BIGINT  NOT NULL,   -- when the fingerprint last changed (or first_seen)
    PRIMARY KEY (server, kind, name)
);

-- Every definition added, changed (new fingerprint) or removed, and what caused the sync.
CREATE TABLE catalog_changes (
    id              INTEGER PRIMARY KEY,
    server          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    change          TEXT    NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
    at              BIGINT  NOT NULL,
    old_fingerprint TEXT,
    new_fingerprint TEXT,
    trigger         TEXT    NOT NULL
);
CREATE INDEX catalog_changes_by_server ON catalog_changes (server, id);
