-- Signalbox schema version 4 (SQLite): the non-build events of the waterfall's show_events.

-- Workers attaching, detaching and going missing, and the master starting and reloading its
-- configuration, with when. A worker event names its worker; a master event has none.
CREATE TABLE master_events (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    workerid INTEGER,
    event TEXT NOT NULL
);
CREATE INDEX master_events_at ON master_events (at);
