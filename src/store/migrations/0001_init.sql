-- cobrowse schema v1: users, tokens, sites, rule sets, audit log, session history.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    password_hash  TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER,            -- unix seconds
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,  -- hex SHA-256 of the bearer token
    revoked     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE sites (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key           TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    origins_json  TEXT NOT NULL,        -- JSON array of normalised origins
    api_key_hash  TEXT NOT NULL,        -- hex SHA-256 of the integration API key
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- The draft rule set of a site (one row per site).
CREATE TABLE rule_drafts (
    site_id        INTEGER PRIMARY KEY REFERENCES sites(id) ON DELETE CASCADE,
    rules_json     TEXT NOT NULL,       -- JSON Vec<Rule>
    settings_json  TEXT NOT NULL,       -- JSON SiteSettings
    updated_by     TEXT NOT NULL,
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- Published, immutable versions of a site's rule set.
CREATE TABLE rule_versions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id        INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    rules_json     TEXT NOT NULL,
    settings_json  TEXT NOT NULL,
    comment        TEXT NOT NULL DEFAULT '',
    author         TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (site_id, version)
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    before_json  TEXT,
    after_json   TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);

CREATE TABLE session_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      TEXT NOT NULL,
    site_id         INTEGER REFERENCES sites(id) ON DELETE SET NULL,
    site_key        TEXT NOT NULL,
    start_url       TEXT NOT NULL DEFAULT '',
    interaction     TEXT,
    agent           TEXT,
    started_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    joined_at       TEXT,
    ended_at        TEXT,
    end_reason      TEXT,
    masked_count    INTEGER NOT NULL DEFAULT 0,
    blocked_count   INTEGER NOT NULL DEFAULT 0,
    denied_count    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX session_history_session ON session_history(session_id);

CREATE TABLE session_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    history_id  INTEGER NOT NULL REFERENCES session_history(id) ON DELETE CASCADE,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    kind        TEXT NOT NULL,          -- join, mode, end, ...
    detail      TEXT NOT NULL DEFAULT ''
);
