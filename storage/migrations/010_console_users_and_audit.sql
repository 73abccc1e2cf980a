-- Console users (argon2 password hashes, never passwords) and the audit log of what people
-- did: logins, acknowledgements, silences, rule changes, user changes.
CREATE TABLE IF NOT EXISTS console_users (
    username      text        PRIMARY KEY,
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('viewer', 'operator', 'rule_editor', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled      boolean     NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS audit_log (
    time    timestamptz NOT NULL DEFAULT now(),
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text        NOT NULL DEFAULT '',
    detail  jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (time DESC);
