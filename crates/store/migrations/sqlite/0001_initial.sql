-- Signalbox schema version 1 (SQLite), modelled on Buildbot's db/model.py.
-- Integers for booleans and epoch-second timestamps; JSON as TEXT.

CREATE TABLE masters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 0,
    last_active INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    slug TEXT NOT NULL,
    description TEXT,
    description_format TEXT,
    description_html TEXT
);

CREATE TABLE builders (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    description_format TEXT,
    description_html TEXT,
    projectid INTEGER REFERENCES projects(id) ON DELETE SET NULL
);
CREATE INDEX builders_projectid ON builders(projectid);

CREATE TABLE builder_masters (
    id INTEGER PRIMARY KEY,
    builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
    masterid INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
    UNIQUE (builderid, masterid)
);
CREATE INDEX builder_masters_masterid ON builder_masters(masterid);

CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE builders_tags (
    id INTEGER PRIMARY KEY,
    builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
    tagid INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
    UNIQUE (builderid, tagid)
);
CREATE INDEX builders_tags_tagid ON builders_tags(tagid);

CREATE TABLE workers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    info TEXT NOT NULL DEFAULT '{}',
    paused INTEGER NOT NULL DEFAULT 0,
    pause_reason TEXT,
    graceful INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE configured_workers (
    id INTEGER PRIMARY KEY,
    buildermasterid INTEGER NOT NULL REFERENCES builder_masters(id) ON DELETE CASCADE,
    workerid INTEGER NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    UNIQUE (buildermasterid, workerid)
);
CREATE INDEX configured_workers_workerid ON configured_workers(workerid);

CREATE TABLE connected_workers (
    id INTEGER PRIMARY KEY,
    masterid INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
    workerid INTEGER NOT NULL REFERENCES workers(id) ON DELETE CASCADE,
    UNIQUE (masterid, workerid)
);
CREATE INDEX connected_workers_workerid ON connected_workers(workerid);

CREATE TABLE schedulers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE scheduler_masters (
    schedulerid INTEGER PRIMARY KEY REFERENCES schedulers(id) ON DELETE CASCADE,
    masterid INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE
);
CREATE INDEX scheduler_masters_masterid ON scheduler_masters(masterid);

CREATE TABLE changesources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE changesource_masters (
    changesourceid INTEGER PRIMARY KEY REFERENCES changesources(id) ON DELETE CASCADE,
    masterid INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE
);
CREATE INDEX changesource_masters_masterid ON changesource_masters(masterid);

CREATE TABLE patches (
    id INTEGER PRIMARY KEY,
    patchlevel INTEGER NOT NULL,
    patch_body BLOB NOT NULL,
    patch_author TEXT,
    patch_comment TEXT,
    subdir TEXT
);

CREATE TABLE sourcestamps (
    id INTEGER PRIMARY KEY,
    ss_hash TEXT NOT NULL UNIQUE,
    branch TEXT,
    revision TEXT,
    patchid INTEGER REFERENCES patches(id) ON DELETE CASCADE,
    repository TEXT NOT NULL DEFAULT '',
    codebase TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX sourcestamps_patchid ON sourcestamps(patchid);

CREATE TABLE changes (
    changeid INTEGER PRIMARY KEY,
    author TEXT NOT NULL,
    committer TEXT,
    comments TEXT NOT NULL,
    branch TEXT,
    revision TEXT,
    revlink TEXT,
    when_timestamp INTEGER NOT NULL,
    category TEXT,
    repository TEXT NOT NULL DEFAULT '',
    codebase TEXT NOT NULL DEFAULT '',
    project TEXT NOT NULL DEFAULT '',
    sourcestampid INTEGER NOT NULL REFERENCES sourcestamps(id) ON DELETE CASCADE,
    parent_changeids INTEGER REFERENCES changes(changeid) ON DELETE SET NULL
);
CREATE INDEX changes_branch ON changes(branch);
CREATE INDEX changes_revision ON changes(revision);
CREATE INDEX changes_author ON changes(author);
CREATE INDEX changes_category ON changes(category);
CREATE INDEX changes_when_timestamp ON changes(when_timestamp);
CREATE INDEX changes_sourcestampid ON changes(sourcestampid);
CREATE INDEX changes_parent_changeids ON changes(parent_changeids);
CREATE INDEX changes_lineage ON changes(repository, branch, project, codebase, changeid);

CREATE TABLE change_files (
    changeid INTEGER NOT NULL REFERENCES changes(changeid) ON DELETE CASCADE,
    filename TEXT NOT NULL
);
CREATE INDEX change_files_changeid ON change_files(changeid);

CREATE TABLE change_properties (
    changeid INTEGER NOT NULL REFERENCES changes(changeid) ON DELETE CASCADE,
    property_name TEXT NOT NULL,
    property_value TEXT NOT NULL,
    UNIQUE (changeid, property_name)
);

CREATE TABLE users (
    uid INTEGER PRIMARY KEY,
    identifier TEXT NOT NULL UNIQUE,
    bb_username TEXT UNIQUE,
    bb_password TEXT
);

CREATE TABLE users_info (
    uid INTEGER NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    attr_type TEXT NOT NULL,
    attr_data TEXT NOT NULL,
    UNIQUE (uid, attr_type)
);
CREATE INDEX users_info_attr ON users_info(attr_type, attr_data);

CREATE TABLE change_users (
    changeid INTEGER NOT NULL REFERENCES changes(changeid) ON DELETE CASCADE,
    uid INTEGER NOT NULL REFERENCES users(uid) ON DELETE CASCADE
);
CREATE INDEX change_users_changeid ON change_users(changeid);
CREATE INDEX change_users_uid ON change_users(uid);

CREATE TABLE scheduler_changes (
    schedulerid INTEGER NOT NULL REFERENCES schedulers(id) ON DELETE CASCADE,
    changeid INTEGER NOT NULL REFERENCES changes(changeid) ON DELETE CASCADE,
    important INTEGER NOT NULL,
    UNIQUE (schedulerid, changeid)
);
CREATE INDEX scheduler_changes_changeid ON scheduler_changes(changeid);

CREATE TABLE buildsets (
    id INTEGER PRIMARY KEY,
    external_idstring TEXT,
    reason TEXT NOT NULL,
    submitted_at INTEGER NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    complete_at INTEGER,
    results INTEGER NOT NULL DEFAULT -1,
    parent_buildid INTEGER REFERENCES builds(id) ON DELETE SET NULL,
    parent_relationship TEXT,
    rebuilt_buildid INTEGER REFERENCES builds(id) ON DELETE SET NULL
);
CREATE INDEX buildsets_complete ON buildsets(complete);
CREATE INDEX buildsets_submitted_at ON buildsets(submitted_at);
CREATE INDEX buildsets_parent_buildid ON buildsets(parent_buildid);
CREATE INDEX buildsets_rebuilt_buildid ON buildsets(rebuilt_buildid);

CREATE TABLE buildset_properties (
    buildsetid INTEGER NOT NULL REFERENCES buildsets(id) ON DELETE CASCADE,
    property_name TEXT NOT NULL,
    property_value TEXT NOT NULL,
    UNIQUE (buildsetid, property_name)
);

CREATE TABLE buildset_sourcestamps (
    id INTEGER PRIMARY KEY,
    buildsetid INTEGER NOT NULL REFERENCES buildsets(id) ON DELETE CASCADE,
    sourcestampid INTEGER NOT NULL REFERENCES sourcestamps(id) ON DELETE CASCADE,
    UNIQUE (buildsetid, sourcestampid)
);
CREATE INDEX buildset_sourcestamps_sourcestampid ON buildset_sourcestamps(sourcestampid);

CREATE TABLE buildrequests (
    id INTEGER PRIMARY KEY,
    buildsetid INTEGER NOT NULL REFERENCES buildsets(id) ON DELETE CASCADE,
    builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
    priority INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0,
    results INTEGER NOT NULL DEFAULT -1,
    submitted_at INTEGER NOT NULL,
    complete_at INTEGER,
    waited_for INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX buildrequests_buildsetid ON buildrequests(buildsetid);
CREATE INDEX buildrequests_builderid_complete ON buildrequests(builderid, complete);
CREATE INDEX buildrequests_complete ON buildrequests(complete, priority, submitted_at);

CREATE TABLE buildrequest_claims (
    brid INTEGER PRIMARY KEY REFERENCES buildrequests(id) ON DELETE CASCADE,
    masterid INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
    claimed_at INTEGER NOT NULL
);
CREATE INDEX buildrequest_claims_masterid ON buildrequest_claims(masterid);

CREATE TABLE builds (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL,
    builderid INTEGER NOT NULL REFERENCES builders(id) ON DELETE CASCADE,
    buildrequestid INTEGER NOT NULL REFERENCES buildrequests(id) ON DELETE CASCADE,
    workerid INTEGER REFERENCES workers(id) ON DELETE SET NULL,
    masterid INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL,
    complete_at INTEGER,
    locks_duration_s INTEGER NOT NULL DEFAULT 0,
    state_string TEXT NOT NULL DEFAULT '',
    results INTEGER,
    UNIQUE (builderid, number)
);
CREATE INDEX builds_buildrequestid ON builds(buildrequestid);
CREATE INDEX builds_workerid ON builds(workerid);
CREATE INDEX builds_masterid_complete_at ON builds(masterid, complete_at);
CREATE INDEX builds_complete_at ON builds(complete_at);
CREATE INDEX builds_started_at ON builds(started_at);

CREATE TABLE build_properties (
    buildid INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (buildid, name)
);

CREATE TABLE build_data (
    id INTEGER PRIMARY KEY,
    buildid INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    length INTEGER NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (buildid, name)
);

CREATE TABLE steps (
    id INTEGER PRIMARY KEY,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    buildid INTEGER NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
    started_at INTEGER,
    locks_acquired_at INTEGER,
    complete_at INTEGER,
    state_string TEXT NOT NULL DEFAULT '',
    results INTEGER,
    urls_json TEXT NOT NULL DEFAULT '[]',
    hidden INTEGER NOT NULL DEFAULT 0,
    UNIQUE (buildid, number),
    UNIQUE (buildid, name)
);

CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    stepid INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
    complete INTEGER NOT NULL DEFAULT 0,
    num_lines INTEGER NOT NULL DEFAULT 0,
    type TEXT NOT NULL,
    UNIQUE (stepid, slug)
);

CREATE TABLE logchunks (
    logid INTEGER NOT NULL REFERENCES logs(id) ON DELETE CASCADE,
    first_line INTEGER NOT NULL,
    last_line INTEGER NOT NULL,
    content BLOB NOT NULL,
    compressed INTEGER NOT NULL,
    PRIMARY KEY (logid, first_line)
);
CREATE INDEX logchunks_logid_last_line ON logchunks(logid, last_line);

CREATE TABLE objects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    class_name TEXT NOT NULL,
    UNIQUE (name, class_name)
);

CREATE TABLE object_state (
    objectid INTEGER NOT NULL REFERENCES objects(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value_json TEXT NOT NULL,
    UNIQUE (objectid, name)
);
