-- Hardening (issue 8): credential generations, single-use picker links.

-- Bumped whenever a user's credentials change (password set, account
-- disabled): login sessions and open agent sockets made under an older
-- generation are no longer honoured.
ALTER TABLE users ADD COLUMN credential_gen INTEGER NOT NULL DEFAULT 0;

-- Picker links already used (the MAC of the token), kept until they expire.
CREATE TABLE picker_used (
    mac      TEXT PRIMARY KEY NOT NULL,
    expires  INTEGER NOT NULL          -- unix seconds
);

CREATE INDEX session_history_started ON session_history(started_at);
