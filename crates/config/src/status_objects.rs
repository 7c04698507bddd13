//! The status objects a `messageFormatter` or `previousBuildGetter` sees: a snapshot of a
//! finished build as plain data ([`BuildStatus`]), and the Starlark values that give it seed
//! 002's object API (`build.getSlavename()`, `ss.changes`, `log.getText()`…).
//!
//! Starlark functions cannot wait on the database, so everything the API can reach is loaded
//! before the call: the reporter fills the snapshot, with each log's text capped to its tail.

use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::AllocDict;
use starlark::values::list::AllocList;
use starlark::values::tuple::AllocTuple;
use starlark::values::{
    starlark_value, Heap, NoSerialize, StarlarkPagablePanic, StarlarkValue, Value, ValueLike,
};

use crate::values::{json_to_value, Props};

/// A finished (or running) build as status objects show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildStatus {
    /// The builder's name.
    pub builder_name: String,
    /// The build number.
    pub number: i64,
    /// The result code (`None` while running).
    pub results: Option<i64>,
    /// The build's state string (`build failed`), as `getText()` words.
    pub text: String,
    /// Why the build ran.
    pub reason: String,
    /// Properties as (name, value, source).
    pub properties: Vec<(String, serde_json::Value, String)>,
    /// The worker that ran it.
    pub worker_name: String,
    /// Who is responsible: change authors, then owners.
    pub responsible_users: Vec<String>,
    /// The build's source stamps.
    pub source_stamps: Vec<SourceStampStatus>,
    /// The build's steps, in order.
    pub steps: Vec<StepStatus>,
    /// The build's web page.
    pub url: String,
    /// The previous build of the same builder, if loaded (one level: its own is `None`).
    pub previous: Option<Box<BuildStatus>>,
}

/// A source stamp with its changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStampStatus {
    /// Codebase (empty for the default one).
    pub codebase: String,
    /// Branch, if any.
    pub branch: Option<String>,
    /// Revision, if any.
    pub revision: Option<String>,
    /// Repository URL.
    pub repository: String,
    /// Project.
    pub project: String,
    /// The patch, if any.
    pub patch: Option<PatchStatus>,
    /// Changes that make up the source stamp.
    pub changes: Vec<ChangeStatus>,
}

/// A try patch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatchStatus {
    /// Patch level (`-p`).
    pub level: i64,
    /// The patch text (lossy UTF-8).
    pub body: String,
    /// Subdirectory it applies in.
    pub subdir: Option<String>,
    /// Author, for `patch_info`.
    pub author: String,
    /// Comment, for `patch_info`.
    pub comment: String,
}

/// A change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeStatus {
    /// Change id.
    pub number: i64,
    /// Author.
    pub who: String,
    /// Revision, if any.
    pub revision: Option<String>,
    /// Branch, if any.
    pub branch: Option<String>,
    /// Epoch seconds.
    pub when: i64,
    /// Files touched.
    pub files: Vec<String>,
    /// Commit message.
    pub comments: String,
    /// Repository URL.
    pub repository: String,
    /// Project.
    pub project: String,
    /// Category, if any.
    pub category: Option<String>,
    /// Link to the revision, if any.
    pub revlink: Option<String>,
}

/// A step and its logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepStatus {
    /// Step name.
    pub name: String,
    /// The result code (`None` while running or never run).
    pub results: Option<i64>,
    /// The step's state string.
    pub text: String,
    /// True once the step finished.
    pub finished: bool,
    /// The step's logs, in order.
    pub logs: Vec<LogStatus>,
}

/// A log and its (possibly capped) text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogStatus {
    /// Log name (`stdio`).
    pub name: String,
    /// Its text: the whole log, or its last lines when the reporter capped it.
    pub text: String,
}

/// What `master_status` knows: the master's title and URL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MasterStatus {
    /// `c['title']`.
    pub title: String,
    /// `c['buildbotURL']`.
    pub buildbot_url: String,
}

/// `Build.getText()` style: the state string split into words.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// A build as a Starlark value.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct BuildValue {
    #[allocative(skip)]
    pub(crate) build: Arc<BuildStatus>,
}
starlark_simple_value!(BuildValue);

impl fmt::Display for BuildValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<Build {} #{}>",
            self.build.builder_name, self.build.number
        )
    }
}

#[starlark_value(type = "BuildStatus")]
impl<'v> StarlarkValue<'v> for BuildValue {
    fn get_methods() -> Option<&'static Methods> {
        Some(BUILD_METHODS.methods())
    }
}

starlark::methods_static!(BUILD_METHODS = build_methods);

fn this_build<'v>(this: Value<'v>) -> anyhow::Result<&'v Arc<BuildStatus>> {
    this.downcast_ref::<BuildValue>()
        .map(|b| &b.build)
        .ok_or_else(|| anyhow::anyhow!("not a build"))
}

fn opt_str<'v>(s: Option<&str>, heap: Heap<'v>) -> Value<'v> {
    match s {
        Some(s) => heap.alloc(s),
        None => Value::new_none(),
    }
}

fn opt_int<'v>(i: Option<i64>, heap: Heap<'v>) -> Value<'v> {
    match i {
        Some(i) => json_to_value(&serde_json::Value::from(i), heap),
        None => Value::new_none(),
    }
}

fn int<'v>(i: i64, heap: Heap<'v>) -> Value<'v> {
    json_to_value(&serde_json::Value::from(i), heap)
}

fn logs_of<'v>(build: &Arc<BuildStatus>, step: usize, heap: Heap<'v>) -> Vec<Value<'v>> {
    let count = build.steps.get(step).map_or(0, |s| s.logs.len());
    (0..count)
        .map(|log| {
            heap.alloc(LogValue {
                build: build.clone(),
                step,
                log,
            })
        })
        .collect()
}

#[starlark_module]
fn build_methods(builder: &mut MethodsBuilder) {
    /// `build.getBuilder().getName()` is not offered; `getBuilderName()` is.
    fn getBuilderName<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_build(this)?.builder_name.clone())
    }

    /// `build.getNumber()`.
    fn getNumber<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(int(this_build(this)?.number, heap))
    }

    /// `build.getResults()`: the result code, or None while running.
    fn getResults<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(opt_int(this_build(this)?.results, heap))
    }

    /// `build.getText()`: the state string as a list of words.
    fn getText<'v>(this: Value<'v>) -> anyhow::Result<Vec<String>> {
        Ok(words(&this_build(this)?.text))
    }

    /// `build.getProperties()`: a Properties object.
    fn getProperties<'v>(this: Value<'v>) -> anyhow::Result<Props> {
        let values = this_build(this)?
            .properties
            .iter()
            .map(|(k, v, _)| (k.clone(), v.clone()))
            .collect();
        Ok(Props { values })
    }

    /// `build.getProperty(name, default=None)`.
    fn getProperty<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] name: &str,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let found = this_build(this)?
            .properties
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, v, _)| json_to_value(v, heap));
        Ok(found.or(default).unwrap_or_else(Value::new_none))
    }

    /// `build.getSlavename()`.
    fn getSlavename<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_build(this)?.worker_name.clone())
    }

    /// `build.getWorkername()`.
    fn getWorkername<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_build(this)?.worker_name.clone())
    }

    /// `build.getReason()`.
    fn getReason<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_build(this)?.reason.clone())
    }

    /// `build.getResponsibleUsers()`.
    fn getResponsibleUsers<'v>(this: Value<'v>) -> anyhow::Result<Vec<String>> {
        Ok(this_build(this)?.responsible_users.clone())
    }

    /// `build.getInterestedUsers()`: the same list here.
    fn getInterestedUsers<'v>(this: Value<'v>) -> anyhow::Result<Vec<String>> {
        Ok(this_build(this)?.responsible_users.clone())
    }

    /// `build.getSourceStamps()`.
    fn getSourceStamps<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let build = this_build(this)?;
        let items: Vec<Value<'v>> = (0..build.source_stamps.len())
            .map(|index| {
                heap.alloc(SourceStampValue {
                    build: build.clone(),
                    index,
                })
            })
            .collect();
        Ok(heap.alloc(AllocList(items)))
    }

    /// `build.getSourceStamp()`: the first source stamp, or None.
    fn getSourceStamp<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let build = this_build(this)?;
        Ok(match build.source_stamps.is_empty() {
            true => Value::new_none(),
            false => heap.alloc(SourceStampValue {
                build: build.clone(),
                index: 0,
            }),
        })
    }

    /// `build.getChanges()`: the changes of every source stamp.
    fn getChanges<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let build = this_build(this)?;
        let mut items = Vec::new();
        for (ss, stamp) in build.source_stamps.iter().enumerate() {
            for change in 0..stamp.changes.len() {
                items.push(heap.alloc(ChangeValue {
                    build: build.clone(),
                    ss,
                    change,
                }));
            }
        }
        Ok(heap.alloc(AllocList(items)))
    }

    /// `build.getSteps()`.
    fn getSteps<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let build = this_build(this)?;
        let items: Vec<Value<'v>> = (0..build.steps.len())
            .map(|step| {
                heap.alloc(StepValue {
                    build: build.clone(),
                    step,
                })
            })
            .collect();
        Ok(heap.alloc(AllocList(items)))
    }

    /// `build.getLogs()`: every log of every step, in order.
    fn getLogs<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let build = this_build(this)?;
        let items: Vec<Value<'v>> = (0..build.steps.len())
            .flat_map(|step| logs_of(build, step, heap))
            .collect();
        Ok(heap.alloc(AllocList(items)))
    }

    /// `build.getPreviousBuild()`: the previous build of the builder, or None.
    fn getPreviousBuild<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(match &this_build(this)?.previous {
            Some(previous) => heap.alloc(BuildValue {
                build: Arc::new((**previous).clone()),
            }),
            None => Value::new_none(),
        })
    }

    /// `build.isFinished()`.
    fn isFinished<'v>(this: Value<'v>) -> anyhow::Result<bool> {
        Ok(this_build(this)?.results.is_some())
    }
}

/// A source stamp as a Starlark value: attributes `branch`, `revision`, `patch`,
/// `patch_info`, `codebase`, `repository`, `project` and `changes`.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct SourceStampValue {
    #[allocative(skip)]
    build: Arc<BuildStatus>,
    index: usize,
}
starlark_simple_value!(SourceStampValue);

impl fmt::Display for SourceStampValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<SourceStamp {}>", self.index)
    }
}

const SOURCESTAMP_ATTRS: &[&str] = &[
    "branch",
    "revision",
    "patch",
    "patch_info",
    "codebase",
    "repository",
    "project",
    "changes",
];

#[starlark_value(type = "SourceStamp")]
impl<'v> StarlarkValue<'v> for SourceStampValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let ss = self.build.source_stamps.get(self.index)?;
        Some(match attribute {
            "branch" => opt_str(ss.branch.as_deref(), heap),
            "revision" => opt_str(ss.revision.as_deref(), heap),
            "codebase" => heap.alloc(ss.codebase.as_str()),
            "repository" => heap.alloc(ss.repository.as_str()),
            "project" => heap.alloc(ss.project.as_str()),
            // Buildbot's `patch` is (level, body[, subdir]).
            "patch" => match &ss.patch {
                Some(p) => heap.alloc(AllocTuple([
                    int(p.level, heap),
                    heap.alloc(p.body.as_str()),
                    opt_str(p.subdir.as_deref(), heap),
                ])),
                None => Value::new_none(),
            },
            // And `patch_info` is (author, comment).
            "patch_info" => match &ss.patch {
                Some(p) => heap.alloc(AllocTuple([
                    heap.alloc(p.author.as_str()),
                    heap.alloc(p.comment.as_str()),
                ])),
                None => Value::new_none(),
            },
            "changes" => {
                let items: Vec<Value<'v>> = (0..ss.changes.len())
                    .map(|change| {
                        heap.alloc(ChangeValue {
                            build: self.build.clone(),
                            ss: self.index,
                            change,
                        })
                    })
                    .collect();
                heap.alloc(AllocList(items))
            }
            _ => return None,
        })
    }

    fn has_attr(&self, attribute: &str, _heap: Heap<'v>) -> bool {
        SOURCESTAMP_ATTRS.contains(&attribute)
    }

    fn dir_attr(&self) -> Vec<String> {
        SOURCESTAMP_ATTRS.iter().map(|s| s.to_string()).collect()
    }
}

/// A change as a Starlark value: attributes and `asText()`/`asDict()`.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct ChangeValue {
    #[allocative(skip)]
    build: Arc<BuildStatus>,
    ss: usize,
    change: usize,
}
starlark_simple_value!(ChangeValue);

impl ChangeValue {
    fn get(&self) -> Option<&ChangeStatus> {
        self.build
            .source_stamps
            .get(self.ss)?
            .changes
            .get(self.change)
    }
}

impl fmt::Display for ChangeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(c) => write!(f, "<Change {} by {}>", c.number, c.who),
            None => f.write_str("<Change>"),
        }
    }
}

const CHANGE_ATTRS: &[&str] = &[
    "who",
    "revision",
    "branch",
    "when",
    "files",
    "comments",
    "repository",
    "project",
    "category",
    "revlink",
    "number",
];

#[starlark_value(type = "Change")]
impl<'v> StarlarkValue<'v> for ChangeValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let c = self.get()?;
        Some(match attribute {
            "who" => heap.alloc(c.who.as_str()),
            "revision" => opt_str(c.revision.as_deref(), heap),
            "branch" => opt_str(c.branch.as_deref(), heap),
            "when" => int(c.when, heap),
            "files" => heap.alloc(AllocList(c.files.iter().map(|f| heap.alloc(f.as_str())))),
            "comments" => heap.alloc(c.comments.as_str()),
            "repository" => heap.alloc(c.repository.as_str()),
            "project" => heap.alloc(c.project.as_str()),
            "category" => opt_str(c.category.as_deref(), heap),
            "revlink" => opt_str(c.revlink.as_deref(), heap),
            "number" => int(c.number, heap),
            _ => return None,
        })
    }

    fn has_attr(&self, attribute: &str, _heap: Heap<'v>) -> bool {
        CHANGE_ATTRS.contains(&attribute)
    }

    fn dir_attr(&self) -> Vec<String> {
        CHANGE_ATTRS.iter().map(|s| s.to_string()).collect()
    }

    fn get_methods() -> Option<&'static Methods> {
        Some(CHANGE_METHODS.methods())
    }
}

starlark::methods_static!(CHANGE_METHODS = change_methods);

fn this_change<'v>(this: Value<'v>) -> anyhow::Result<&'v ChangeStatus> {
    this.downcast_ref::<ChangeValue>()
        .and_then(ChangeValue::get)
        .ok_or_else(|| anyhow::anyhow!("not a change"))
}

/// Buildbot's `Change.asText()` lines.
pub fn change_text(c: &ChangeStatus) -> Vec<String> {
    let mut lines = vec![format!("Files:\n")];
    for f in &c.files {
        lines.push(format!(" {f}\n"));
    }
    lines.push(format!("On: {}\n", c.repository));
    lines.push(format!("For: {}\n", c.project));
    lines.push(format!("At: {}\n", c.when));
    lines.push(format!("Changed By: {}\n", c.who));
    lines.push(format!("Comments: {}", c.comments));
    lines.push("Properties: \n".to_string());
    lines
}

#[starlark_module]
fn change_methods(builder: &mut MethodsBuilder) {
    /// `change.asText()`: a list of lines, as Buildbot gives.
    fn asText<'v>(this: Value<'v>) -> anyhow::Result<Vec<String>> {
        Ok(change_text(this_change(this)?))
    }

    /// `change.asDict()`: who, files (as `{'name': f}`), comments, revision, when, branch,
    /// category, revlink, repository, project, number.
    fn asDict<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let c = this_change(this)?;
        let files: Vec<Value<'v>> = c
            .files
            .iter()
            .map(|f| heap.alloc(AllocDict([("name", heap.alloc(f.as_str()))])))
            .collect();
        Ok(heap.alloc(AllocDict([
            ("number", int(c.number, heap)),
            ("who", heap.alloc(c.who.as_str())),
            ("files", heap.alloc(AllocList(files))),
            ("comments", heap.alloc(c.comments.as_str())),
            ("revision", opt_str(c.revision.as_deref(), heap)),
            ("when", int(c.when, heap)),
            ("branch", opt_str(c.branch.as_deref(), heap)),
            ("category", opt_str(c.category.as_deref(), heap)),
            ("revlink", opt_str(c.revlink.as_deref(), heap)),
            ("repository", heap.alloc(c.repository.as_str())),
            ("project", heap.alloc(c.project.as_str())),
        ])))
    }
}

/// A step as a Starlark value.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct StepValue {
    #[allocative(skip)]
    build: Arc<BuildStatus>,
    step: usize,
}
starlark_simple_value!(StepValue);

impl fmt::Display for StepValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .build
            .steps
            .get(self.step)
            .map_or("", |s| s.name.as_str());
        write!(f, "<Step {name}>")
    }
}

#[starlark_value(type = "BuildStepStatus")]
impl<'v> StarlarkValue<'v> for StepValue {
    fn get_methods() -> Option<&'static Methods> {
        Some(STEP_METHODS.methods())
    }
}

starlark::methods_static!(STEP_METHODS = step_methods);

fn this_step<'v>(this: Value<'v>) -> anyhow::Result<(&'v Arc<BuildStatus>, usize, &'v StepStatus)> {
    let value = this
        .downcast_ref::<StepValue>()
        .ok_or_else(|| anyhow::anyhow!("not a step"))?;
    let step = value
        .build
        .steps
        .get(value.step)
        .ok_or_else(|| anyhow::anyhow!("no such step"))?;
    Ok((&value.build, value.step, step))
}

/// `(results, text words)` as `getResults()` returns it.
fn results_tuple<'v>(step: &StepStatus, heap: Heap<'v>) -> Value<'v> {
    let text: Vec<Value<'v>> = words(&step.text)
        .into_iter()
        .map(|w| heap.alloc(w))
        .collect();
    heap.alloc(AllocTuple([
        opt_int(step.results, heap),
        heap.alloc(AllocList(text)),
    ]))
}

#[starlark_module]
fn step_methods(builder: &mut MethodsBuilder) {
    /// `step.getName()`.
    fn getName<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_step(this)?.2.name.clone())
    }

    /// `step.isFinished()`.
    fn isFinished<'v>(this: Value<'v>) -> anyhow::Result<bool> {
        Ok(this_step(this)?.2.finished)
    }

    /// `step.getResults()`: `(results, text words)`.
    fn getResults<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(results_tuple(this_step(this)?.2, heap))
    }

    /// `step.getText()`: the state string as words.
    fn getText<'v>(this: Value<'v>) -> anyhow::Result<Vec<String>> {
        Ok(words(&this_step(this)?.2.text))
    }

    /// `step.getLogs()`.
    fn getLogs<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let (build, step, _) = this_step(this)?;
        Ok(heap.alloc(AllocList(logs_of(build, step, heap))))
    }
}

/// A log as a Starlark value.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct LogValue {
    #[allocative(skip)]
    build: Arc<BuildStatus>,
    step: usize,
    log: usize,
}
starlark_simple_value!(LogValue);

impl LogValue {
    fn get(&self) -> Option<&LogStatus> {
        self.build.steps.get(self.step)?.logs.get(self.log)
    }
}

impl fmt::Display for LogValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Log {}>", self.get().map_or("", |l| l.name.as_str()))
    }
}

#[starlark_value(type = "LogFile")]
impl<'v> StarlarkValue<'v> for LogValue {
    fn get_methods() -> Option<&'static Methods> {
        Some(LOG_METHODS.methods())
    }
}

starlark::methods_static!(LOG_METHODS = log_methods);

fn this_log<'v>(this: Value<'v>) -> anyhow::Result<(&'v LogValue, &'v LogStatus)> {
    let value = this
        .downcast_ref::<LogValue>()
        .ok_or_else(|| anyhow::anyhow!("not a log"))?;
    let log = value.get().ok_or_else(|| anyhow::anyhow!("no such log"))?;
    Ok((value, log))
}

#[starlark_module]
fn log_methods(builder: &mut MethodsBuilder) {
    /// `log.getName()`.
    fn getName<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_log(this)?.1.name.clone())
    }

    /// `log.getText()`: the text (its last lines when the log is long).
    fn getText<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_log(this)?.1.text.clone())
    }

    /// `log.getStep()`.
    fn getStep<'v>(this: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let (value, _) = this_log(this)?;
        Ok(heap.alloc(StepValue {
            build: value.build.clone(),
            step: value.step,
        }))
    }

    /// `log.isFinished()`.
    fn isFinished<'v>(this: Value<'v>) -> anyhow::Result<bool> {
        let (value, _) = this_log(this)?;
        Ok(value
            .build
            .steps
            .get(value.step)
            .is_some_and(|s| s.finished))
    }
}

/// `master_status`: the master's title and URLs.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct MasterStatusValue {
    #[allocative(skip)]
    pub(crate) master: MasterStatus,
}
starlark_simple_value!(MasterStatusValue);

impl fmt::Display for MasterStatusValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Status {}>", self.master.title)
    }
}

#[starlark_value(type = "Status")]
impl<'v> StarlarkValue<'v> for MasterStatusValue {
    fn get_methods() -> Option<&'static Methods> {
        Some(MASTER_STATUS_METHODS.methods())
    }
}

starlark::methods_static!(MASTER_STATUS_METHODS = master_status_methods);

fn this_master<'v>(this: Value<'v>) -> anyhow::Result<&'v MasterStatus> {
    this.downcast_ref::<MasterStatusValue>()
        .map(|m| &m.master)
        .ok_or_else(|| anyhow::anyhow!("not the master status"))
}

#[starlark_module]
fn master_status_methods(builder: &mut MethodsBuilder) {
    /// `master_status.getTitle()`.
    fn getTitle<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_master(this)?.title.clone())
    }

    /// `master_status.getBuildbotURL()`.
    fn getBuildbotURL<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this_master(this)?.buildbot_url.clone())
    }

    /// `master_status.getURLForThing(thing)`: the page of a build (or of a step's build);
    /// None for anything else.
    fn getURLForThing<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] thing: Value<'v>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = this_master(this)?;
        if let Some(build) = thing.downcast_ref::<BuildValue>() {
            return Ok(heap.alloc(build.build.url.as_str()));
        }
        if let Some(step) = thing.downcast_ref::<StepValue>() {
            return Ok(heap.alloc(format!("{}/steps/{}", step.build.url, step.step)));
        }
        Ok(Value::new_none())
    }
}

/// The build that a `previousBuildGetter` returned: its number and result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChosenBuild {
    /// Build number.
    pub number: i64,
    /// Result code, if finished.
    pub results: Option<i64>,
}

/// Reads a `previousBuildGetter` result: a build, or None.
pub(crate) fn chosen_build(value: Value<'_>) -> Result<Option<ChosenBuild>, String> {
    if value.is_none() {
        return Ok(None);
    }
    match value.downcast_ref::<BuildValue>() {
        Some(b) => Ok(Some(ChosenBuild {
            number: b.build.number,
            results: b.build.results,
        })),
        None => Err(format!(
            "previousBuildGetter returned a {}, not a build or None",
            value.get_type()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConfigValue, FunctionRef};

    /// Seed 002's two formatter examples (with `cgi.escape` written `html_escape`).
    const FORMATTERS: &str = concat!(
        include_str!("../tests/seed_formatters.cfg"),
        r#"
c = BuildmasterConfig = {}
c['status'] = [MailNotifier(fromaddr="a@b.c", messageFormatter=messageFormatter),
               MailNotifier(fromaddr="a@b.c", messageFormatter=html_message_formatter)]
"#
    );

    fn build() -> Arc<BuildStatus> {
        let change = ChangeStatus {
            number: 3,
            who: "alice".into(),
            revision: Some("1a2b".into()),
            branch: Some("main".into()),
            when: 0,
            files: vec!["src/a.c".into()],
            comments: "fix <it>".into(),
            repository: "git://repo".into(),
            project: "proj".into(),
            ..ChangeStatus::default()
        };
        let step = |name: &str, finished: bool, text: &str| StepStatus {
            name: name.into(),
            results: finished.then_some(2),
            text: "failed".into(),
            finished,
            logs: vec![LogStatus {
                name: "stdio".into(),
                text: text.into(),
            }],
        };
        Arc::new(BuildStatus {
            builder_name: "b".into(),
            number: 7,
            results: Some(2),
            text: "failed compile".into(),
            reason: "forced".into(),
            worker_name: "w1".into(),
            responsible_users: vec!["alice".into(), "bob".into()],
            source_stamps: vec![SourceStampStatus {
                branch: Some("main".into()),
                revision: Some("1a2b".into()),
                changes: vec![change],
                ..SourceStampStatus::default()
            }],
            steps: vec![
                step("compile", true, "cc a.c\nerror: <bad> & worse\n"),
                step("test", false, ""),
            ],
            url: "http://m/builders/b/builds/7".into(),
            ..BuildStatus::default()
        })
    }

    fn check(index: usize) -> String {
        let loaded = crate::load_str("master.cfg", FORMATTERS, std::path::Path::new("."))
            .expect("the seed's formatters load");
        let Some(ConfigValue::Function(f)) =
            loaded.config.status[index].args.get("messageFormatter")
        else {
            return "no formatter".into();
        };
        let f: FunctionRef = *f;
        let master = MasterStatus {
            title: "Proj".into(),
            buildbot_url: "http://m/".into(),
        };
        match loaded.functions.call_message_formatter(
            f,
            &["failing".into()],
            "b",
            &build(),
            &master,
        ) {
            Ok(value) => format!(
                "{}\n{}",
                value["type"],
                value["body"].as_str().unwrap_or("")
            ),
            Err(e) => format!("error: {e}"),
        }
    }

    const HTML_MAIL: &str = r#""html"
<h4>Build status: FAILURE</h4>
<table cellspacing="10"><tr>
<td>Buildslave for this Build:</td><td><b>w1</b></td></tr>
<tr><td>Complete logs for all build steps:</td><td><a href="http://m/builders/b/builds/7">http://m/builders/b/builds/7</a></td></tr>
<tr><td>Build Reason:</td><td>forced</td></tr>
<tr><td>Build Source Stamp:</td><td><b>[branch main] 1a2b</b></td></tr>
<tr><td>Blamelist:</td><td>alice,bob</td></tr>
</table>
<h4>Recent Changes:</h4>
<table cellspacing="10">
<tr><td>Repository:</td><td>git://repo</td></tr>
<tr><td>Project:</td><td>proj</td></tr>
<tr><td>Time:</td><td>Thu Jan  1 00:00:00 1970</td></tr>
<tr><td>Changed by:</td><td>alice</td></tr>
<tr><td>Comments:</td><td>fix <it></td></tr>
</table>
<table cellspacing="10"><tr><th align="left">Files</th></tr>
<tr><td>src/a.c:</td></tr>
</table>
<br>
<i>Detailed log of last build step:</i> <a href="http://m/builders/b/builds/7/steps/compile/logs/stdio">http://m/builders/b/builds/7/steps/compile/logs/stdio</a>
<br>
<h4>Last 80 lines of "compile.stdio"</h4>
<pre>
cc a.c
error: &lt;bad&gt; &amp; worse
</pre>
<br><br>
<b>-The Buildbot</b>"#;

    #[test]
    fn previous_build_getter() {
        let cfg = r#"
def previous(build):
    return build.getPreviousBuild()
def never(build):
    return None
c = BuildmasterConfig = {}
c['status'] = [MailNotifier(fromaddr="a@b.c", previousBuildGetter=previous),
               MailNotifier(fromaddr="a@b.c", previousBuildGetter=never)]
"#;
        let loaded = crate::load_str("master.cfg", cfg, std::path::Path::new("."))
            .expect("the getters load");
        let getter = |i: usize| match loaded.config.status[i].args.get("previousBuildGetter") {
            Some(ConfigValue::Function(f)) => *f,
            _ => FunctionRef(u32::MAX),
        };
        let mut with_previous = (*build()).clone();
        with_previous.previous = Some(Box::new(BuildStatus {
            number: 6,
            results: Some(0),
            ..BuildStatus::default()
        }));
        let with_previous = Arc::new(with_previous);
        let host = &loaded.functions;
        assert_eq!(
            host.call_previous_build_getter(getter(0), &with_previous)
                .ok(),
            Some(Some(ChosenBuild {
                number: 6,
                results: Some(0)
            }))
        );
        assert_eq!(
            host.call_previous_build_getter(getter(0), &build()).ok(),
            Some(None)
        );
        assert_eq!(
            host.call_previous_build_getter(getter(1), &with_previous)
                .ok(),
            Some(None)
        );
    }

    #[test]
    fn short_formatter() {
        assert_eq!(check(0), "\"plain\"\nSTATUS: Failure");
    }

    #[test]
    fn html_formatter() {
        // The seed's email, as the formatter writes it (unescaped comments are the seed's).
        assert_eq!(check(1), HTML_MAIL);
    }
}
