-- Signalbox schema version 2 (SQLite): webhook delivery ids and the notification outbox.

-- A forge delivery id (GitHub's X-GitHub-Delivery…) accepted once per dialect.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    dialect TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    UNIQUE (dialect, delivery_id)
);

-- Every outgoing notification, recorded before any network I/O (DESIGN.md decision 8).
-- dedup_key is "target/build-or-buildset/event": the same message is never recorded twice.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    buildid BIGINT,
    buildsetid BIGINT,
    event TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    content TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
