-- Console sessions held by the server: the cookie carries only a random id, so signing out
-- (or disabling the user) ends the session everywhere, even for a copied cookie.
CREATE TABLE IF NOT EXISTS console_sessions (
    id           text        PRIMARY KEY,
    username     text        NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (username);
