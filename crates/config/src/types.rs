//! The typed master configuration: plain structs that mirror the words of `master.cfg`.
//!
//! Nothing here does I/O. `engine::reconfig` turns these into running builders, schedulers,
//! change sources and status targets.

use std::collections::BTreeMap;

use model::{Properties, Renderable};
use serde_json::Value;

/// Where a config value came from, for error messages: `master.cfg:12`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// File path as given to the loader.
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A handle to a user function defined in `master.cfg`, called later through
/// [`crate::FunctionHost`] with a tick limit and a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FunctionRef(pub u32);

/// The whole configuration.
#[derive(Debug, Clone, Default)]
pub struct MasterConfig {
    /// `c['title']`.
    pub title: String,
    /// `c['titleURL']`.
    pub title_url: String,
    /// `c['buildbotURL']`, always ending in `/`.
    pub buildbot_url: String,
    /// `c['workers']` / `c['slaves']`.
    pub workers: Vec<WorkerConfig>,
    /// The worker protocol port (`c['protocols']['pb']['port']`, `msgpack_experimental_v7`,
    /// or the old `c['slavePortnum']`). Default 9989.
    pub worker_port: Option<Listen>,
    /// Most worker connections at once (`c['protocols'][…]['max_connections']`); `None` means
    /// the master's default. Past it, upgrades are answered 503.
    pub worker_max_connections: Option<u32>,
    /// `c['builders']`.
    pub builders: Vec<BuilderConfig>,
    /// `c['schedulers']`.
    pub schedulers: Vec<SchedulerConfig>,
    /// `c['change_source']` (one or a list).
    pub change_sources: Vec<ChangeSourceConfig>,
    /// Every entry of `c['status']` and `c['services']`.
    pub status: Vec<StatusTargetConfig>,
    /// Web server settings, merged from `c['www']` and any `WebStatus` in `c['status']`.
    pub www: WwwConfig,
    /// `c['db']['db_url']` or `c['db_url']`; `None` means the default SQLite file.
    pub db_url: Option<String>,
    /// `c['properties']`: global properties for every build.
    pub properties: Properties,
    /// `c['logMaxSize']` in bytes.
    pub log_max_size: Option<u64>,
    /// `c['logMaxTailSize']` in bytes.
    pub log_max_tail_size: Option<u64>,
    /// `c['buildHorizon']`: builds kept per builder.
    pub build_horizon: Option<u64>,
    /// `c['logHorizon']`: builds per builder whose logs are kept.
    pub log_horizon: Option<u64>,
    /// `c['collapseRequests']` (a bool or a function).
    pub collapse_requests: Collapse,
}

/// A listening address: a port, a strports string, or a unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `tcp:PORT[:interface=ADDR]` or a bare port number.
    Tcp {
        /// Port number.
        port: u16,
        /// Interface to bind; `None` means 127.0.0.1 unless configured otherwise.
        interface: Option<String>,
    },
    /// `ssl:PORT:privateKey=FILE:certKey=FILE[:interface=ADDR]`, as Twisted's strports: TCP
    /// with TLS, the key and certificate chain in PEM files (relative to the master directory).
    Tls {
        /// Port number.
        port: u16,
        /// Interface to bind; `None` means 127.0.0.1 unless configured otherwise.
        interface: Option<String>,
        /// PEM file with the private key.
        private_key: String,
        /// PEM file with the certificate chain; Twisted's default is the key file itself.
        cert_key: String,
    },
    /// `unix:/path/to/socket`.
    Unix(String),
}

/// `Worker(name, password, …)` / `BuildSlave(…)`.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Worker name.
    pub name: String,
    /// Password the worker presents; never logged.
    pub password: String,
    /// Builds this worker may run at once; `None` means unlimited.
    pub max_builds: Option<u32>,
    /// Properties added to builds on this worker.
    pub properties: Properties,
    /// Seconds after disconnect before a "worker missing" event.
    pub missing_timeout: Option<u64>,
    /// Seconds between the master's keepalive checks (`keepalive_interval`); 0 turns them off.
    pub keepalive_interval: Option<u64>,
    /// Addresses told when the worker goes missing.
    pub notify_on_missing: Vec<String>,
    /// Where it was defined.
    pub location: Location,
}

/// `collapseRequests`: whether compatible pending requests merge into one build.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Collapse {
    /// Not set here; inherit (global default is true, as in Buildbot).
    #[default]
    Inherit,
    /// `True` or `False`.
    Bool(bool),
    /// A user function `(master, builder, req1, req2) -> bool`.
    Function(FunctionRef),
}

/// `BuilderConfig(…)`.
#[derive(Debug, Clone)]
pub struct BuilderConfig {
    /// Builder name (unique).
    pub name: String,
    /// Workers that may run it (`workernames`/`slavenames`/`workername`).
    pub workernames: Vec<String>,
    /// The steps of `factory`.
    pub factory: BuildFactory,
    /// `tags`, or the old `category` as a one-element list.
    pub tags: Vec<String>,
    /// The old `category` as given, for `categories=` filters.
    pub category: Option<String>,
    /// Builder properties.
    pub properties: Properties,
    /// Environment for every step.
    pub env: BTreeMap<String, Renderable>,
    /// Per-builder `collapseRequests`.
    pub collapse_requests: Collapse,
    /// Free text shown on pages.
    pub description: Option<String>,
    /// Project name.
    pub project: Option<String>,
    /// `nextWorker` function, if any.
    pub next_worker: Option<FunctionRef>,
    /// `builddir`/`workerbuilddir` override; default is the builder name.
    pub workerbuilddir: Option<String>,
    /// Where it was defined.
    pub location: Location,
}

/// `BuildFactory()` with its `addStep` calls.
#[derive(Debug, Clone, Default)]
pub struct BuildFactory {
    /// Steps in order.
    pub steps: Vec<StepConfig>,
}

/// Options every step takes.
#[derive(Debug, Clone)]
pub struct StepCommon {
    /// Step name; defaults to the step type's name (`shell`, `git`, …), made unique per build.
    pub name: String,
    /// Text while running.
    pub description: Option<Vec<String>>,
    /// Text when done.
    pub description_done: Option<Vec<String>>,
    /// Stop the build after this step fails.
    pub halt_on_failure: bool,
    /// A failure of this step fails the build (default true for most steps).
    pub flunk_on_failure: bool,
    /// A failure of this step makes the build WARNINGS.
    pub warn_on_failure: bool,
    /// Warnings of this step make the build FAILURE.
    pub flunk_on_warnings: bool,
    /// Warnings of this step make the build WARNINGS (default true).
    pub warn_on_warnings: bool,
    /// Run even after a halting failure.
    pub always_run: bool,
    /// Run the step only if this holds.
    pub do_step_if: Condition,
    /// Hide the step on pages if this holds (evaluated with the step's result).
    pub hide_step_if: Condition,
    /// Where it was defined.
    pub location: Location,
}

/// A boolean or a user function deciding at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Fixed answer.
    Always(bool),
    /// A user function called with the step (and, for hideStepIf, its results).
    Function(FunctionRef),
}

/// What a shell-like step runs.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// `command`: a string (run through the shell) or a list (argv); may be renderable.
    pub command: Renderable,
    /// `workdir`, relative to the builder dir; default `build`.
    pub workdir: Option<Renderable>,
    /// Extra environment.
    pub env: BTreeMap<String, Renderable>,
    /// Seconds without output before the command is killed (default 1200).
    pub timeout: Option<f64>,
    /// Seconds in total before the command is killed.
    pub max_time: Option<f64>,
    /// Extra log files to tail: name -> filename relative to workdir.
    pub logfiles: BTreeMap<String, String>,
    /// `decodeRC`: exit code -> result; default `{0: SUCCESS}`, anything else FAILURE.
    pub decode_rc: BTreeMap<i64, model::Results>,
    /// Run in a pseudo-terminal.
    pub use_pty: Option<bool>,
    /// Signal sent on interrupt (`KILL` by default).
    pub interrupt_signal: Option<String>,
    /// Seconds between SIGTERM and the interrupt signal.
    pub sigterm_time: Option<f64>,
}

/// One step of a factory.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// Options shared by every step.
    pub common: StepCommon,
    /// What kind of step it is.
    pub kind: StepKind,
}

/// The step types.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// `ShellCommand`.
    Shell(ShellOptions),
    /// `Compile`: a shell command whose warnings (lines matching `warningPattern`) are counted.
    Compile {
        /// The command.
        shell: ShellOptions,
        /// Regex for warning lines; default `^.*warning[: ].*`.
        warning_pattern: Option<String>,
    },
    /// `Test`: a shell command whose passed/failed counts are read from its output.
    Test {
        /// The command.
        shell: ShellOptions,
    },
    /// `Git(repourl, branch, mode, method)`: checks out the build's revision; sets `got_revision`.
    Git {
        /// Repository URL (renderable).
        repourl: Renderable,
        /// Default branch when the build has none.
        branch: Option<Renderable>,
        /// `incremental` or `full`.
        mode: String,
        /// For `full`: `clean`, `fresh`, `clobber` or `copy`.
        method: Option<String>,
        /// Checkout directory, relative to the builder dir (default `build`).
        workdir: Option<Renderable>,
        /// Codebase this step checks out.
        codebase: String,
    },
    /// `SetProperty(property, value)`.
    SetProperty {
        /// Property name.
        property: String,
        /// Value (renderable).
        value: Renderable,
    },
    /// `SetPropertyFromCommand(command, property= | extract_fn=)`.
    SetPropertyFromCommand {
        /// The command.
        shell: ShellOptions,
        /// Property set to the stripped stdout.
        property: Option<String>,
        /// `extract_fn(rc, stdout, stderr) -> dict`.
        extract_fn: Option<FunctionRef>,
        /// Strip whitespace from stdout (default true).
        strip: bool,
    },
    /// `FileUpload(workersrc, masterdest)`.
    FileUpload {
        /// Path on the worker, relative to workdir.
        workersrc: Renderable,
        /// Path on the master, relative to the master dir.
        masterdest: Renderable,
        /// Worker-side workdir.
        workdir: Option<Renderable>,
        /// Largest accepted file.
        maxsize: Option<u64>,
        /// File mode on the master.
        mode: Option<u32>,
        /// Keep the worker's timestamps.
        keepstamp: bool,
        /// Link shown under the step.
        url: Option<String>,
    },
    /// `DirectoryUpload(workersrc, masterdest, compress=None|'gz'|'bz2')`.
    DirectoryUpload {
        /// Directory on the worker, relative to workdir.
        workersrc: Renderable,
        /// Directory on the master, relative to the master dir; extracted into.
        masterdest: Renderable,
        /// Worker-side workdir.
        workdir: Option<Renderable>,
        /// Largest accepted tar stream, and largest total of the files it holds.
        maxsize: Option<u64>,
        /// `None`, `gz` or `bz2`.
        compress: Option<String>,
        /// Link shown under the step.
        url: Option<String>,
    },
    /// `FileDownload(mastersrc, workerdest)`.
    FileDownload {
        /// Path on the master, relative to the master dir.
        mastersrc: Renderable,
        /// Path on the worker, relative to workdir.
        workerdest: Renderable,
        /// Worker-side workdir.
        workdir: Option<Renderable>,
        /// Largest file sent.
        maxsize: Option<u64>,
        /// File mode on the worker.
        mode: Option<u32>,
    },
    /// `StringDownload(s, workerdest)`.
    StringDownload {
        /// The contents (renderable).
        contents: Renderable,
        /// Path on the worker, relative to workdir.
        workerdest: Renderable,
        /// Worker-side workdir.
        workdir: Option<Renderable>,
        /// File mode on the worker.
        mode: Option<u32>,
    },
    /// `Trigger(schedulerNames, waitForFinish, set_properties)`.
    Trigger {
        /// Triggerable schedulers to fire.
        scheduler_names: Vec<String>,
        /// Wait for the triggered builds and take their worst result.
        wait_for_finish: bool,
        /// Properties given to the triggered builds.
        set_properties: BTreeMap<String, Renderable>,
        /// Pass the build's source stamps on.
        update_sourcestamp: bool,
    },
}

/// `ChangeFilter(…)` or a scheduler's `branch=`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeFilterConfig {
    /// Branches accepted (`branch=` one or a list); `None` accepts any. `Some(vec![None])`
    /// stands for `branch=None`, the default branch.
    pub branch: Option<Vec<Option<String>>>,
    /// Regex the branch must match.
    pub branch_re: Option<String>,
    /// Projects accepted.
    pub project: Option<Vec<String>>,
    /// Repositories accepted.
    pub repository: Option<Vec<String>>,
    /// Categories accepted.
    pub category: Option<Vec<String>>,
    /// Codebases accepted.
    pub codebase: Option<Vec<String>>,
    /// A user function `(change) -> bool`.
    pub filter_fn: Option<FunctionRef>,
}

/// A force scheduler parameter (`StringParameter`, `ChoiceStringParameter`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct ForceParameter {
    /// Field name (`reason`, `branch`, or a property name).
    pub name: String,
    /// Label shown on the form.
    pub label: String,
    /// Kind: `text`, `int`, `bool`, `list`, `username`, `textarea`, `fixed`.
    pub kind: String,
    /// Default value.
    pub default: Value,
    /// Must be given.
    pub required: bool,
    /// Allowed values for `list`.
    pub choices: Vec<String>,
    /// A value must match this regex.
    pub regex: Option<String>,
}

/// The scheduler kinds.
#[derive(Debug, Clone)]
pub enum SchedulerKind {
    /// `SingleBranchScheduler`.
    SingleBranch {
        /// Which changes it listens to.
        change_filter: ChangeFilterConfig,
        /// Seconds without new changes before the buildset is made.
        tree_stable_timer: Option<u64>,
        /// `fileIsImportant(change) -> bool`.
        file_is_important: Option<FunctionRef>,
        /// Only build when an important change arrived.
        only_important: bool,
    },
    /// `AnyBranchScheduler`: one stable-timer per branch.
    AnyBranch {
        /// Which changes it listens to.
        change_filter: ChangeFilterConfig,
        /// Seconds without new changes (per branch).
        tree_stable_timer: Option<u64>,
        /// `fileIsImportant(change) -> bool`.
        file_is_important: Option<FunctionRef>,
    },
    /// `ForceScheduler`.
    Force {
        /// Button text.
        button_name: Option<String>,
        /// Label.
        label: Option<String>,
        /// Reason field.
        reason: ForceParameter,
        /// Username field.
        username: ForceParameter,
        /// Branch, revision, repository, project (for the default codebase).
        codebase_fields: Vec<ForceParameter>,
        /// Extra property fields.
        properties: Vec<ForceParameter>,
    },
    /// `Periodic(periodicBuildTimer=…)`.
    Periodic {
        /// Seconds between builds.
        period: u64,
        /// Branch to build.
        branch: Option<String>,
    },
    /// `Nightly(minute=, hour=, dayOfMonth=, month=, dayOfWeek=, onlyIfChanged=)`.
    Nightly {
        /// Each field is a list of allowed values; `None` means every value (`*`).
        minute: Option<Vec<u32>>,
        /// Hours.
        hour: Option<Vec<u32>>,
        /// Days of month (1-31).
        day_of_month: Option<Vec<u32>>,
        /// Months (1-12).
        month: Option<Vec<u32>>,
        /// Days of week (0 = Monday, as Buildbot).
        day_of_week: Option<Vec<u32>>,
        /// Only build when changes arrived since the last build.
        only_if_changed: bool,
        /// Branch to build.
        branch: Option<String>,
        /// Which changes count for `onlyIfChanged`.
        change_filter: ChangeFilterConfig,
    },
    /// `Triggerable`: fired by `Trigger` steps.
    Triggerable,
}

/// One scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Scheduler name (unique).
    pub name: String,
    /// Builders it makes requests for.
    pub builder_names: Vec<String>,
    /// Properties of the buildsets it makes.
    pub properties: Properties,
    /// Codebases (name -> repository) for multi-codebase builds; empty = the default codebase.
    pub codebases: BTreeMap<String, String>,
    /// Its kind.
    pub kind: SchedulerKind,
    /// Where it was defined.
    pub location: Location,
}

/// The change sources.
#[derive(Debug, Clone)]
pub enum ChangeSourceConfig {
    /// `GitPoller`.
    Git {
        /// Repository URL or path.
        repourl: String,
        /// Branches to watch (`branches=` list, or `branch=`); empty = `master`.
        branches: Vec<String>,
        /// Watch every branch (`branches=True`).
        all_branches: bool,
        /// Seconds between polls (default 600).
        poll_interval: u64,
        /// Poll once right after start.
        poll_at_launch: bool,
        /// Where the poller keeps its clone, relative to the master dir.
        workdir: Option<String>,
        /// Project of the changes.
        project: String,
        /// Category of the changes.
        category: Option<String>,
        /// Where it was defined.
        location: Location,
    },
    /// `SVNPoller`.
    Svn {
        /// Repository URL.
        svnurl: String,
        /// `split_file(path) -> (branch, file)` or `None`.
        split_file: Option<SplitFile>,
        /// Seconds between polls (default 600).
        poll_interval: u64,
        /// Poll once right after start.
        poll_at_launch: bool,
        /// Project of the changes.
        project: String,
        /// Where it was defined.
        location: Location,
    },
}

/// How an SVN path is split into branch and file.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitFile {
    /// The predeclared `split_file_alwaystrunk`.
    AlwaysTrunk,
    /// The predeclared `split_file_branches`.
    Branches,
    /// The predeclared `split_file_projects_branches`.
    ProjectsBranches,
    /// A user function.
    Function(FunctionRef),
}

/// An action's authorization setting: `False`, `True`, `'auth'` or a function.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AuthzRule {
    /// Nobody.
    #[default]
    Deny,
    /// Everybody.
    Allow,
    /// Any authenticated user.
    Authenticated,
    /// A user function `(username, object) -> bool`.
    Function(FunctionRef),
}

/// `Authz(…)`.
#[derive(Debug, Clone, Default)]
pub struct AuthzConfig {
    /// Every action of seed 002 with its rule; absent actions are denied, except `view`,
    /// which is allowed unless configured.
    pub actions: BTreeMap<String, AuthzRule>,
    /// `auth=`.
    pub auth: Option<AuthConfig>,
    /// `useHttpHeader=True`.
    pub use_http_header: bool,
    /// `httpLoginUrl=`.
    pub http_login_url: Option<String>,
}

/// Authentication backends.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// `BasicAuth(users)` / `UserPasswordAuth(users)`.
    Users(Vec<(String, String)>),
    /// `HTPasswdAuth(file)` / `HTPasswdAprAuth(file)`.
    HtPasswd(String),
    /// `UsersAuth()`: the users table.
    UsersTable,
    /// `RemoteUserAuth(header=…)`.
    RemoteUser {
        /// Header name.
        header: String,
    },
}

/// Web server settings.
#[derive(Debug, Clone, Default)]
pub struct WwwConfig {
    /// Where the web server listens; `None` means no web server.
    pub listen: Option<Listen>,
    /// The authorization policy.
    pub authz: AuthzConfig,
    /// `change_hook_dialects`: dialect -> options (`True` becomes an empty object).
    pub change_hook_dialects: BTreeMap<String, Value>,
    /// `change_hook_auth` entries (`file:changehook.passwd`).
    pub change_hook_auth: Vec<String>,
    /// Every other WebStatus / `c['www']` keyword, kept by name for the www crate
    /// (`public_html`, `numbuilds`, `revlink`, `order_console_by_time`, `plugins`, …).
    pub options: BTreeMap<String, Value>,
    /// Function-valued options (`revlink`, `projects`, `repositories` as callables).
    pub functions: BTreeMap<String, FunctionRef>,
    /// `buildbot_ui`: Buildbot's own React UI, served from an installed `buildbot-www`.
    pub buildbot_ui: Option<BuildbotUiConfig>,
}

/// `c['www']['buildbot_ui']`: where Buildbot's own web UI (the `buildbot-www` package) is
/// served and where its files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildbotUiConfig {
    /// The base path it is served at: starts and ends with `/`, never `/` itself (`/ui/`).
    pub path: String,
    /// The UI's static tree (`…/buildbot_www/static`, or the `buildbot_www` package directory
    /// holding it), relative to the master directory; `None` asks `python` where the installed
    /// package is.
    pub static_dir: Option<String>,
    /// The Python interpreter whose `buildbot-www` is used when `static_dir` is not given.
    pub python: String,
}

/// A status target entry of `c['status']` or `c['services']`.
#[derive(Debug, Clone)]
pub struct StatusTargetConfig {
    /// The class name as written (`MailNotifier`, `IRC`, `HttpStatusPush`, …).
    pub kind: String,
    /// Keyword arguments, checked by name and type, with renderables kept as such.
    pub args: BTreeMap<String, ConfigValue>,
    /// Where it was defined.
    pub location: Location,
}

/// A checked keyword value of a status target.
#[derive(Debug, Clone)]
pub enum ConfigValue {
    /// A plain value.
    Value(Value),
    /// A renderable (`Interpolate`, `Property`).
    Renderable(Renderable),
    /// A user function.
    Function(FunctionRef),
    /// A nested helper object such as `Domain('example.org')`: class name and arguments.
    Object {
        /// Class name.
        kind: String,
        /// Arguments.
        args: BTreeMap<String, ConfigValue>,
    },
}
