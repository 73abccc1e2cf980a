-- API tokens for scripts and notebooks (the analysts' API without a browser session): the
-- token is shown once; only the SHA-256 of its secret part is kept. A token acts as its
-- user with at most its own role (viewer unless asked), until it expires or is revoked.
CREATE TABLE IF NOT EXISTS api_tokens (
    id           text        PRIMARY KEY,
    username     text        NOT NULL REFERENCES console_users (username) ON DELETE CASCADE,
    secret_hash  text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('viewer', 'operator', 'rule_editor', 'admin')),
    label        text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (username);
