-- Signalbox schema version 3 (SQLite): the audit log of control actions from the web.

-- One row per decided control action: who asked, what, on which object, from where, and
-- whether the access policy allowed it.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    username TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    remote TEXT,
    allowed INTEGER NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
