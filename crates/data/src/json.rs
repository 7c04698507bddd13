//! Store records as REST v2 JSON objects (spec §7): the one place that decides their shape.
//!
//! Events on the bus carry the same objects, so a page or the Buildbot UI can merge an event
//! into what it fetched.

use model::Properties;
use serde_json::{json, Map, Value};
use store::{
    BuildRecord, BuildRequestRecord, BuilderRecord, BuildsetRecord, ChangeRecord,
    ChangeSourceRecord, LogRecord, MasterRecord, ProjectRecord, SchedulerRecord, SourceStampRecord,
    StepRecord, WorkerRecord,
};

fn results(r: Option<model::Results>) -> Value {
    r.map(|r| Value::from(r.code())).unwrap_or(Value::Null)
}

/// `{name: [value, source]}` for the given properties.
pub fn properties(props: &Properties) -> Value {
    let mut map = Map::new();
    for (name, value, source) in props.iter() {
        map.insert(name.to_string(), json!([value, source]));
    }
    Value::Object(map)
}

/// A builder.
pub fn builder(b: &BuilderRecord) -> Value {
    json!({
        "builderid": b.id.0,
        "name": b.name,
        "description": b.description,
        "description_format": null,
        "description_html": null,
        "masterids": b.masterids.iter().map(|m| m.0).collect::<Vec<_>>(),
        "projectid": b.projectid.map(|p| p.0),
        "tags": b.tags,
    })
}

/// A build; `props` fills `properties` when the request asked for them.
pub fn build(b: &BuildRecord, props: Option<&Properties>) -> Value {
    json!({
        "buildid": b.id.0,
        "number": b.number,
        "builderid": b.builderid.0,
        "buildrequestid": b.buildrequestid.0,
        "workerid": b.workerid.map(|w| w.0),
        "masterid": b.masterid.0,
        "started_at": b.started_at,
        "complete": b.complete_at.is_some(),
        "complete_at": b.complete_at,
        "locks_duration_s": b.locks_duration_s,
        "results": results(b.results),
        "state_string": b.state_string,
        "properties": props.map(properties).unwrap_or_else(|| json!({})),
    })
}

/// A step.
pub fn step(s: &StepRecord) -> Value {
    json!({
        "stepid": s.id.0,
        "number": s.number,
        "name": s.name,
        "buildid": s.buildid.0,
        "started_at": s.started_at,
        "locks_acquired_at": s.locks_acquired_at,
        "complete": s.complete_at.is_some(),
        "complete_at": s.complete_at,
        "results": results(s.results),
        "state_string": s.state_string,
        "urls": s.urls.iter().map(|(name, url)| json!({"name": name, "url": url})).collect::<Vec<_>>(),
        "hidden": s.hidden,
    })
}

/// A log.
pub fn log(l: &LogRecord) -> Value {
    json!({
        "logid": l.id.0,
        "name": l.name,
        "slug": l.slug,
        "stepid": l.stepid.0,
        "complete": l.complete,
        "num_lines": l.num_lines,
        "type": l.kind.code(),
    })
}

/// A build request; `props` fills `properties` when asked (else null, as upstream).
pub fn buildrequest(r: &BuildRequestRecord, props: Option<&Properties>) -> Value {
    json!({
        "buildrequestid": r.id.0,
        "buildsetid": r.buildsetid.0,
        "builderid": r.builderid.0,
        "priority": r.priority,
        "claimed": r.claimed_by.is_some(),
        "claimed_at": r.claimed_by.map(|(_, at)| at),
        "claimed_by_masterid": r.claimed_by.map(|(m, _)| m.0),
        "complete": r.complete,
        "complete_at": r.complete_at,
        "results": r.results.map(|r| r.code()).unwrap_or(-1),
        "submitted_at": r.submitted_at,
        "waited_for": r.waited_for,
        "properties": props.map(properties).unwrap_or(Value::Null),
    })
}

/// A source stamp.
pub fn sourcestamp(s: &SourceStampRecord) -> Value {
    json!({
        "ssid": s.id.0,
        "branch": s.branch,
        "revision": s.revision,
        "repository": s.repository,
        "project": s.project,
        "codebase": s.codebase,
        "created_at": s.created_at,
        "patch": s.patch.as_ref().map(|p| json!({
            "patchid": p.id, "level": p.level, "subdir": p.subdir,
            "author": p.author, "comment": p.comment, "body": null,
        })),
    })
}

/// A buildset with its source stamps embedded.
pub fn buildset(b: &BuildsetRecord) -> Value {
    json!({
        "bsid": b.id.0,
        "external_idstring": b.external_idstring,
        "reason": b.reason,
        "submitted_at": b.submitted_at,
        "complete": b.complete,
        "complete_at": b.complete_at,
        "results": b.results.map(|r| r.code()).unwrap_or(-1),
        "sourcestamps": b.sourcestamps.iter().map(sourcestamp).collect::<Vec<_>>(),
        "parent_buildid": b.parent_buildid.map(|x| x.0),
        "parent_relationship": b.parent_relationship,
        "rebuilt_buildid": b.rebuilt_buildid.map(|x| x.0),
    })
}

/// A change; `ss` is its source stamp when known.
pub fn change(c: &ChangeRecord, ss: Option<&SourceStampRecord>) -> Value {
    let mut props = Map::new();
    for (name, value, source) in c.properties.iter() {
        props.insert(name.to_string(), json!([value, source]));
    }
    json!({
        "changeid": c.id.0,
        "author": c.author,
        "committer": c.committer,
        "comments": c.comments,
        "branch": c.branch,
        "revision": c.revision,
        "revlink": c.revlink,
        "when_timestamp": c.when_timestamp,
        "category": c.category,
        "repository": c.repository,
        "project": c.project,
        "codebase": c.codebase,
        "files": c.files,
        "parent_changeids": c.parent_changeids.iter().map(|p| p.0).collect::<Vec<_>>(),
        "properties": props,
        "sourcestamp": ss.map(sourcestamp).unwrap_or(Value::Null),
    })
}

/// A worker.
pub fn worker(w: &WorkerRecord) -> Value {
    json!({
        "workerid": w.id.0,
        "name": w.name,
        "workerinfo": w.info,
        "paused": w.paused,
        "pause_reason": w.pause_reason,
        "graceful": w.graceful,
        "connected_to": w.connected_to.iter().map(|m| json!({"masterid": m.0})).collect::<Vec<_>>(),
        "configured_on": w.configured_on.iter().map(|(m, b)| json!({"masterid": m.0, "builderid": b.0})).collect::<Vec<_>>(),
    })
}

/// A master.
pub fn master(m: &MasterRecord) -> Value {
    json!({
        "masterid": m.id.0,
        "name": m.name,
        "active": m.active,
        "last_active": m.last_active,
    })
}

/// A scheduler; `master` is the master running it, embedded as upstream does.
pub fn scheduler(s: &SchedulerRecord, master: Option<&MasterRecord>) -> Value {
    json!({
        "schedulerid": s.id.0,
        "name": s.name,
        "enabled": s.enabled,
        "master": master.map(self::master),
    })
}

/// A change source with its master embedded.
pub fn changesource(c: &ChangeSourceRecord, master: Option<&MasterRecord>) -> Value {
    json!({
        "changesourceid": c.id.0,
        "name": c.name,
        "master": master.map(self::master),
    })
}

/// A project; `active` is only known when the request filtered on it (upstream quirk).
pub fn project(p: &ProjectRecord, active: Option<bool>) -> Value {
    json!({
        "projectid": p.id.0,
        "name": p.name,
        "slug": p.slug,
        "description": p.description,
        "description_format": p.description_format,
        "description_html": p.description_html,
        "active": active,
    })
}
