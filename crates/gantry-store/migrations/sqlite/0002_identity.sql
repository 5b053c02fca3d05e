-- Users, teams, memberships and API keys (DESIGN.md §2, §6).
--
-- API keys are stored as HMAC-SHA256 under a server secret that is never in this database:
-- a copy of the database alone cannot be used to find or check a key. Times are Unix
-- milliseconds (UTC). Kept to SQL that PostgreSQL accepts with the same meaning, apart from
-- the INTEGER PRIMARY KEY ids (BIGINT GENERATED ALWAYS AS IDENTITY there) and BLOB (BYTEA).

CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    display_name TEXT,
    created_at   BIGINT  NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

CREATE TABLE teams (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL
);

CREATE TABLE team_members (
    team_id  INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at BIGINT  NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_by_user ON team_members (user_id);

CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,   -- the public part of gantry_<id>_<secret>
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash         BLOB    NOT NULL,               -- HMAC-SHA256(server secret, id and secret)
    planes       TEXT    NOT NULL CHECK (planes IN ('data', 'control', 'both')),
    label        TEXT,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT,                         -- none: never expires
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);
