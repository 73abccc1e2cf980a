-- Alerts carry their group key, reminder round and why they were muted (silence, inhibition).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS group_key text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS reminder integer NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS muted text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS route text;

-- Every version of every rule file (who, when, what changed), from the compacted rules topic.
CREATE TABLE IF NOT EXISTS rule_versions (
    name         text        NOT NULL,
    version      integer     NOT NULL,
    sha256       text        NOT NULL,
    content      text,                    -- NULL: the file was deleted
    author       text        NOT NULL,
    published_at timestamptz NOT NULL,
    comment      text        NOT NULL DEFAULT '',
    diff         text        NOT NULL DEFAULT '',
    accepted     boolean     NOT NULL DEFAULT true, -- false: invalid, refused by the workers
    errors       text        NOT NULL DEFAULT '',
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS rule_versions_time ON rule_versions (published_at DESC);

-- Silences as operators set and lift them.
CREATE TABLE IF NOT EXISTS silences (
    id          text        PRIMARY KEY,
    rule_id     text        NOT NULL,
    group_key   text,
    until       timestamptz NOT NULL,
    reason      text        NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    lifted_at   timestamptz
);
