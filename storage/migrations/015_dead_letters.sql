-- Dead letters: every message a consumer or a source refused, with its reason and its bytes,
-- so an operator can see why and replay it once the cause is fixed. The id is deterministic
-- (origin, position, consumer), so a redelivered dead letter is stored once.
CREATE TABLE IF NOT EXISTS dead_letters (
    id               uuid        PRIMARY KEY,
    rejected_at      timestamptz NOT NULL,
    origin_topic     text        NOT NULL,
    origin_partition integer,
    origin_offset    bigint,
    consumer         text        NOT NULL,
    source_id        text,
    reason           text        NOT NULL,
    payload          bytea       NOT NULL,
    payload_size     integer     NOT NULL,
    requeued_at      timestamptz,
    requeued_by      text
);
CREATE INDEX IF NOT EXISTS dead_letters_time ON dead_letters (rejected_at DESC);
CREATE INDEX IF NOT EXISTS dead_letters_origin ON dead_letters (origin_topic, rejected_at DESC);
