//! Plain records returned by the store, and the inputs of its multi-row inserts.

use model::{
    BuildId, BuildRequestId, BuilderId, BuildsetId, ChangeId, ChangeSourceId, LogId, MasterId,
    ProjectId, Properties, Results, SchedulerId, SourceStampId, StepId, Timestamp, UserId,
    WorkerId,
};

/// Which database engine a [`crate::Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (WAL).
    Sqlite,
    /// PostgreSQL 15 or later.
    Postgres,
}

/// How the schema on disk compares with this build's migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaState {
    /// No schema at all: a fresh database.
    Empty,
    /// At the newest version this build knows.
    Current,
    /// Older; `upgrade` will bring it up to date.
    Old {
        /// Version found.
        version: i64,
    },
    /// Newer than this build: a newer Signalbox wrote it.
    Newer {
        /// Version found.
        version: i64,
    },
}

/// A master process, as the `masters` table records it.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterRecord {
    /// Row id.
    pub id: MasterId,
    /// `host:basedir`.
    pub name: String,
    /// True while the master runs.
    pub active: bool,
    /// Last time the master said it was alive.
    pub last_active: Timestamp,
}

/// A project: a group of builders.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRecord {
    /// Row id.
    pub id: ProjectId,
    /// Project name.
    pub name: String,
    /// Identifier for URLs.
    pub slug: String,
    /// Free-text description.
    pub description: Option<String>,
    /// Format of the description (`markdown`…).
    pub description_format: Option<String>,
    /// Pre-rendered HTML of the description.
    pub description_html: Option<String>,
}

/// A builder with its tags and the masters running it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuilderRecord {
    /// Row id.
    pub id: BuilderId,
    /// Builder name.
    pub name: String,
    /// Free-text description.
    pub description: Option<String>,
    /// Project the builder belongs to.
    pub projectid: Option<ProjectId>,
    /// Tags, sorted by name.
    pub tags: Vec<String>,
    /// Masters currently running this builder, ascending.
    pub masterids: Vec<MasterId>,
}

/// A worker with where it is connected and configured.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRecord {
    /// Row id.
    pub id: WorkerId,
    /// Worker name.
    pub name: String,
    /// Free-form info the worker sent (`admin`, `host`, `version`…).
    pub info: serde_json::Value,
    /// Paused by someone.
    pub paused: bool,
    /// Why it was paused.
    pub pause_reason: Option<String>,
    /// Graceful shutdown requested.
    pub graceful: bool,
    /// Masters it is connected to; empty when offline.
    pub connected_to: Vec<MasterId>,
    /// (master, builder) pairs it is configured for.
    pub configured_on: Vec<(MasterId, BuilderId)>,
}

/// A scheduler and the master running it.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerRecord {
    /// Row id.
    pub id: SchedulerId,
    /// Scheduler name.
    pub name: String,
    /// False when disabled through the `enable` control.
    pub enabled: bool,
    /// The master running it, if any.
    pub masterid: Option<MasterId>,
}

/// A change source and the master running it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeSourceRecord {
    /// Row id.
    pub id: ChangeSourceId,
    /// Change source name.
    pub name: String,
    /// The master running it, if any.
    pub masterid: Option<MasterId>,
}

/// A patch attached to a source stamp (try builds).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRecord {
    /// Row id.
    pub id: i64,
    /// `-p` level.
    pub level: i64,
    /// Directory the patch applies in.
    pub subdir: Option<String>,
    /// Who wrote it.
    pub author: Option<String>,
    /// Its description.
    pub comment: Option<String>,
    /// The patch itself.
    pub body: Vec<u8>,
}

/// A patch to store with a new source stamp.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPatch {
    /// `-p` level.
    pub level: i64,
    /// Directory the patch applies in.
    pub subdir: Option<String>,
    /// Who wrote it.
    pub author: Option<String>,
    /// Its description.
    pub comment: Option<String>,
    /// The patch itself.
    pub body: Vec<u8>,
}

/// A source stamp: what to build, from which repository.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStampRecord {
    /// Row id.
    pub id: SourceStampId,
    /// Branch, if any.
    pub branch: Option<String>,
    /// Revision, if any (None = latest).
    pub revision: Option<String>,
    /// Repository URL.
    pub repository: String,
    /// Codebase name.
    pub codebase: String,
    /// Project name.
    pub project: String,
    /// When the row was created.
    pub created_at: Timestamp,
    /// Patch for try builds.
    pub patch: Option<PatchRecord>,
}

/// A source stamp to find or create; identical stamps without patch are shared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewSourceStamp {
    /// Branch, if any.
    pub branch: Option<String>,
    /// Revision, if any.
    pub revision: Option<String>,
    /// Repository URL.
    pub repository: String,
    /// Codebase name.
    pub codebase: String,
    /// Project name.
    pub project: String,
    /// Patch for try builds; a patched stamp is never shared.
    pub patch: Option<NewPatch>,
}

/// A change as a change source or hook reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewChange {
    /// Author, often `Name <email>`.
    pub author: String,
    /// Committer, when different.
    pub committer: Option<String>,
    /// Commit message.
    pub comments: String,
    /// Branch.
    pub branch: Option<String>,
    /// Revision.
    pub revision: Option<String>,
    /// Link to the revision in a web viewer.
    pub revlink: Option<String>,
    /// When the change was made.
    pub when_timestamp: Timestamp,
    /// Category.
    pub category: Option<String>,
    /// Repository URL.
    pub repository: String,
    /// Codebase name.
    pub codebase: String,
    /// Project name.
    pub project: String,
    /// Files touched.
    pub files: Vec<String>,
    /// Change properties (source `"Change"`).
    pub properties: Properties,
    /// When the master received it; the source stamp's `created_at`.
    pub created_at: Timestamp,
}

/// A stored change with its files, properties and parent.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Row id.
    pub id: ChangeId,
    /// Author.
    pub author: String,
    /// Committer.
    pub committer: Option<String>,
    /// Commit message.
    pub comments: String,
    /// Branch.
    pub branch: Option<String>,
    /// Revision.
    pub revision: Option<String>,
    /// Web link.
    pub revlink: Option<String>,
    /// When the change was made.
    pub when_timestamp: Timestamp,
    /// Category.
    pub category: Option<String>,
    /// Repository URL.
    pub repository: String,
    /// Codebase name.
    pub codebase: String,
    /// Project name.
    pub project: String,
    /// The source stamp this change makes.
    pub sourcestampid: SourceStampId,
    /// Files touched, in insertion order.
    pub files: Vec<String>,
    /// Change properties.
    pub properties: Properties,
    /// The previous change on the same branch/repository/project/codebase (0 or 1 entries).
    pub parent_changeids: Vec<ChangeId>,
}

/// A buildset to submit: properties, source stamps and one request per builder.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBuildset {
    /// Why it was submitted.
    pub reason: String,
    /// Identifier chosen by whoever submitted it.
    pub external_idstring: Option<String>,
    /// Buildset properties.
    pub properties: Properties,
    /// Source stamps, found or created.
    pub sourcestamps: Vec<NewSourceStamp>,
    /// One request is made for each builder.
    pub builders: Vec<BuilderId>,
    /// Request priority; higher first.
    pub priority: i64,
    /// Triggering build.
    pub parent_buildid: Option<BuildId>,
    /// How it relates to the triggering build.
    pub parent_relationship: Option<String>,
    /// Original build when this is a rebuild.
    pub rebuilt_buildid: Option<BuildId>,
    /// A triggering step waits for these requests.
    pub waited_for: bool,
    /// Submission time.
    pub submitted_at: Timestamp,
}

/// A stored buildset with its source stamps.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildsetRecord {
    /// Row id.
    pub id: BuildsetId,
    /// Identifier chosen by the submitter.
    pub external_idstring: Option<String>,
    /// Why it was submitted.
    pub reason: String,
    /// Submission time.
    pub submitted_at: Timestamp,
    /// True once every request completed.
    pub complete: bool,
    /// When it completed.
    pub complete_at: Option<Timestamp>,
    /// Worst result of its requests; None while incomplete.
    pub results: Option<Results>,
    /// Triggering build.
    pub parent_buildid: Option<BuildId>,
    /// Relationship to the triggering build.
    pub parent_relationship: Option<String>,
    /// Original build of a rebuild.
    pub rebuilt_buildid: Option<BuildId>,
    /// Source stamps, in insertion order.
    pub sourcestamps: Vec<SourceStampRecord>,
}

/// A build request with its claim.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRequestRecord {
    /// Row id.
    pub id: BuildRequestId,
    /// Its buildset.
    pub buildsetid: BuildsetId,
    /// Builder that should run it.
    pub builderid: BuilderId,
    /// Higher first.
    pub priority: i64,
    /// True once done.
    pub complete: bool,
    /// Result; None while incomplete (stored as -1).
    pub results: Option<Results>,
    /// Submission time.
    pub submitted_at: Timestamp,
    /// When it completed.
    pub complete_at: Option<Timestamp>,
    /// A triggering step waits on it.
    pub waited_for: bool,
    /// The master holding the claim and when it claimed.
    pub claimed_by: Option<(MasterId, Timestamp)>,
}

/// A build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRecord {
    /// Global id.
    pub id: BuildId,
    /// Per-builder number, from 1.
    pub number: i64,
    /// Its builder.
    pub builderid: BuilderId,
    /// The request it serves.
    pub buildrequestid: BuildRequestId,
    /// Worker running it (None once the worker row is gone).
    pub workerid: Option<WorkerId>,
    /// Master running it.
    pub masterid: MasterId,
    /// Start time.
    pub started_at: Timestamp,
    /// End time; None while running.
    pub complete_at: Option<Timestamp>,
    /// Seconds spent waiting for locks.
    pub locks_duration_s: i64,
    /// Short status text.
    pub state_string: String,
    /// Result; None while running.
    pub results: Option<Results>,
}

/// A step of a build.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// Global id.
    pub id: StepId,
    /// 0-based within the build.
    pub number: i64,
    /// Unique within the build.
    pub name: String,
    /// Its build.
    pub buildid: BuildId,
    /// Start time.
    pub started_at: Option<Timestamp>,
    /// When locks were acquired.
    pub locks_acquired_at: Option<Timestamp>,
    /// End time.
    pub complete_at: Option<Timestamp>,
    /// Short status text.
    pub state_string: String,
    /// Result; None while running.
    pub results: Option<Results>,
    /// Links shown under the step, as (name, url).
    pub urls: Vec<(String, String)>,
    /// Hidden in the UI.
    pub hidden: bool,
}

/// The kind of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// `s`: lines carry a stream marker (`o`, `e`, `h`).
    Stdio,
    /// `t`: plain text.
    Text,
    /// `h`: HTML.
    Html,
}

impl LogKind {
    /// The one-letter code stored in `logs.type`.
    pub fn code(self) -> &'static str {
        match self {
            LogKind::Stdio => "s",
            LogKind::Text => "t",
            LogKind::Html => "h",
        }
    }

    /// The kind for a stored code.
    pub fn from_code(code: &str) -> Option<LogKind> {
        match code {
            "s" => Some(LogKind::Stdio),
            "t" => Some(LogKind::Text),
            "h" => Some(LogKind::Html),
            _ => None,
        }
    }
}

/// A log of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Global id.
    pub id: LogId,
    /// Display name, e.g. `stdio`.
    pub name: String,
    /// Identifier unique within the step.
    pub slug: String,
    /// Its step.
    pub stepid: StepId,
    /// True once finished.
    pub complete: bool,
    /// Lines stored so far.
    pub num_lines: i64,
    /// Its kind.
    pub kind: LogKind,
}

/// Where appended lines landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAppend {
    /// 0-based number of the first appended line.
    pub first_line: i64,
    /// How many lines were appended.
    pub num_lines: i64,
}

/// A user of the web UI or a change author.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// User id.
    pub uid: UserId,
    /// Unique identifier (usually the author string).
    pub identifier: String,
    /// Web login name.
    pub bb_username: Option<String>,
    /// Web password hash.
    pub bb_password: Option<String>,
    /// Attributes as (type, data), e.g. ("email", "a@b"), sorted by type.
    pub attributes: Vec<(String, String)>,
}
