//! Starlark values that stand for Buildbot's classes and modules while `master.cfg` runs.
//!
//! Calling a Buildbot class (`ShellCommand(...)`, `WebStatus(...)`) does not check anything:
//! it records a [`ConfigObject`] with its arguments and the line of the call. The typed
//! conversion in `convert.rs` checks every argument afterwards, so one code path produces
//! all the "unknown keyword" and "wrong type" messages.

use std::fmt;
use std::sync::OnceLock;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension, Methods, MethodsBuilder};
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_complex_value;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::AllocList;
use starlark::values::none::NoneType;
use starlark::values::tuple::{AllocTuple, UnpackTuple};
use starlark::values::{
    starlark_value, Coerce, Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize,
    StarlarkPagablePanic, StarlarkValue, Trace, Value, ValueLifetimeless, ValueLike,
};

/// Buildbot classes and factory functions: calling one records a [`ConfigObject`].
pub(crate) const CLASSES: &[&str] = &[
    // Workers and builders.
    "Worker",
    "BuildSlave",
    "BuilderConfig",
    "BuildFactory",
    // Steps.
    "ShellCommand",
    "Compile",
    "Test",
    "Git",
    "SetProperty",
    "SetPropertyFromCommand",
    "FileUpload",
    "DirectoryUpload",
    "FileDownload",
    "StringDownload",
    "Trigger",
    // Renderables.
    "Property",
    "Interpolate",
    "WithProperties",
    "renderer",
    // Schedulers.
    "SingleBranchScheduler",
    "AnyBranchScheduler",
    "ForceScheduler",
    "Periodic",
    "Nightly",
    "Triggerable",
    "ChangeFilter",
    "StringParameter",
    "IntParameter",
    "BooleanParameter",
    "ChoiceStringParameter",
    "FixedParameter",
    "TextParameter",
    "UserNameParameter",
    "CodebaseParameter",
    // Change sources.
    "GitPoller",
    "SVNPoller",
    // Status targets and their helpers.
    "WebStatus",
    "Waterfall",
    "MailNotifier",
    "IRC",
    "PBListener",
    "StatusPush",
    "HttpStatusPush",
    "GerritStatusPush",
    "GitHubStatus",
    "MessageFormatter",
    "Domain",
    "Authz",
    "BasicAuth",
    "HTPasswdAuth",
    "HTPasswdAprAuth",
    "UsersAuth",
    "UserPasswordAuth",
    "RemoteUserAuth",
    "AnyEndpointMatcher",
    "ForceBuildEndpointMatcher",
    "StopBuildEndpointMatcher",
    "RebuildBuildEndpointMatcher",
    "AnyControlEndpointMatcher",
    "RolesFromUsername",
    "RolesFromGroups",
    "RolesFromEmails",
    "RolesFromOwner",
    "FileSystemLoader",
];

/// Predeclared values that are not classes: result codes, SVN split functions, markers.
pub(crate) const CONSTANTS: &[&str] = &[
    "SUCCESS",
    "WARNINGS",
    "FAILURE",
    "SKIPPED",
    "EXCEPTION",
    "RETRY",
    "CANCELLED",
    "Results",
    "split_file_alwaystrunk",
    "split_file_branches",
    "split_file_projects_branches",
    "BuildmasterConfig",
    "Ellipsis",
];

/// Module names that `from buildbot.x import y` may import as a namespace, and the
/// segments of `import buildbot.a.b` paths.
pub(crate) const MODULES: &[&str] = &[
    "buildbot",
    "status",
    "html",
    "web",
    "mail",
    "words",
    "client",
    "status_push",
    "status_gerrit",
    "github",
    "authz",
    "auth",
    "baseweb",
    "builder",
    "plugins",
    "util",
    "steps",
    "schedulers",
    "worker",
    "buildslave",
    "reporters",
    "changes",
    "config",
    "process",
    "factory",
    "properties",
    "results",
    "shell",
    "source",
    "git",
    "svn",
    "svnpoller",
    "gitpoller",
    "filter",
    "forcesched",
    "basic",
    "timed",
    "triggerable",
    "trigger",
    "transfer",
    "master",
    "buildstep",
    "changes",
    "www",
    "hooks",
];

/// Modules of the Python standard library (and jinja2) that configs import; each has a
/// small shim.
pub(crate) const SHIM_MODULES: &[&str] = &["os", "cgi", "datetime", "jinja2", "time", "re", "json"];

/// True if `from buildbot… import name` may name this.
pub(crate) fn is_known_name(name: &str) -> bool {
    CLASSES.contains(&name) || CONSTANTS.contains(&name) || MODULES.contains(&name)
}

/// The globals every `master.cfg` sees, built once.
pub(crate) fn globals() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(|| {
        let mut builder = GlobalsBuilder::extended_by(&[
            LibraryExtension::StructType,
            LibraryExtension::Map,
            LibraryExtension::Filter,
            LibraryExtension::Partial,
            LibraryExtension::Print,
            LibraryExtension::Json,
        ]);
        for class in CLASSES {
            builder.set(class, Builtin { class });
        }
        for name in [
            "split_file_alwaystrunk",
            "split_file_branches",
            "split_file_projects_branches",
            "BuildmasterConfig",
            "Ellipsis",
        ] {
            builder.set(name, Builtin { class: name });
        }
        for result in model::Results::ALL {
            builder.set(&result.name().to_uppercase(), result.code() as i32);
        }
        let names: Vec<String> = model::Results::ALL
            .iter()
            .map(|r| r.name().to_string())
            .collect();
        builder.set("Results", builder.alloc(AllocList(names)));
        for module in MODULES.iter().chain(SHIM_MODULES) {
            builder.set(module, Namespace { name: module });
        }
        builder.set("__os_path", Namespace { name: "os.path" });
        builder.set(
            "__datetime_datetime",
            Namespace {
                name: "datetime.datetime",
            },
        );
        shims(&mut builder);
        builder.build()
    })
}

/// The global called `name`, if any.
fn global(name: &str) -> Option<FrozenValue> {
    globals().iter().find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// Functions that stand in for the bits of Python's standard library configs use.
#[starlark_module]
fn shims(builder: &mut GlobalsBuilder) {
    /// `cgi.escape(s, quote=False)`: escapes `&`, `<`, `>` (and `"` when asked).
    fn html_escape(
        #[starlark(require = pos)] s: &str,
        #[starlark(default = false)] quote: bool,
    ) -> anyhow::Result<String> {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' if quote => out.push_str("&quot;"),
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// Python 2 `unicode(x, encoding)`: the text of `x`.
    fn unicode<'v>(
        #[starlark(require = pos)] x: Value<'v>,
        #[starlark(require = pos)] encoding: Option<Value<'v>>,
    ) -> anyhow::Result<String> {
        let _ = encoding;
        Ok(match x.unpack_str() {
            Some(s) => s.to_string(),
            None => x.to_str(),
        })
    }

    /// `os.path.join(a, b, …)`.
    fn path_join<'v>(#[starlark(args)] parts: UnpackTuple<Value<'v>>) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in parts.items {
            let part = match part.unpack_str() {
                Some(s) => s.to_string(),
                None => part.to_str(),
            };
            if part.starts_with('/') || out.is_empty() {
                out = part;
            } else if out.ends_with('/') {
                out.push_str(&part);
            } else {
                out.push('/');
                out.push_str(&part);
            }
        }
        Ok(out)
    }

    /// `os.path.dirname(p)`.
    fn path_dirname(#[starlark(require = pos)] p: &str) -> anyhow::Result<String> {
        Ok(match p.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => p[..i].to_string(),
            None => String::new(),
        })
    }

    /// `os.path.basename(p)`.
    fn path_basename(#[starlark(require = pos)] p: &str) -> anyhow::Result<String> {
        Ok(match p.rfind('/') {
            Some(i) => p[i + 1..].to_string(),
            None => p.to_string(),
        })
    }

    /// `datetime.datetime.fromtimestamp(t)`: a date with a `ctime()` method.
    fn datetime_fromtimestamp<'v>(
        #[starlark(require = pos)] t: Value<'v>,
    ) -> anyhow::Result<DateTime> {
        let secs = match t.unpack_i32() {
            Some(i) => i64::from(i),
            None => t
                .to_json_value()
                .ok()
                .and_then(|j| j.as_f64())
                .map(|f| f as i64)
                .unwrap_or(0),
        };
        Ok(DateTime { secs })
    }

    /// Wraps a string literal that is the left operand of `%` and uses `%(name)s`, so the
    /// preprocessor can give it Python's formatting with a dict.
    fn __pyformat(#[starlark(require = pos)] s: &str) -> anyhow::Result<PyFormat> {
        Ok(PyFormat {
            format: s.to_string(),
        })
    }

    /// `time.time()`: seconds since the epoch.
    fn time_time() -> anyhow::Result<i32> {
        Ok(i32::try_from(model::now()).unwrap_or(i32::MAX))
    }
}

/// A Buildbot class or marker; calling it records a [`ConfigObject`].
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct Builtin {
    #[allocative(skip)]
    pub(crate) class: &'static str,
}
starlark_simple_value!(Builtin);

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<class '{}'>", self.class)
    }
}

#[starlark_value(type = "builtin_class")]
impl<'v> StarlarkValue<'v> for Builtin {
    fn invoke(
        &self,
        _me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let heap = eval.heap();
        if self.class == "BuildmasterConfig" {
            return Ok(heap.alloc(AllocDict::EMPTY));
        }
        let positional: Vec<Value<'v>> = args.positions(heap)?.collect();
        let names = args.names_map()?;
        let kwargs: Vec<(String, Value<'v>)> = names
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect();
        let line = eval
            .call_stack_top_location()
            .map(|span| span.resolve_span().begin.line as u32 + 1)
            .unwrap_or(0);
        Ok(heap.alloc(ConfigObjectGen {
            class: self.class.to_string(),
            line,
            args: heap.alloc(AllocTuple(positional)),
            kwargs: heap.alloc(AllocDict(kwargs)),
            steps: heap.alloc(AllocList::EMPTY),
        }))
    }
}

/// A recorded call of a Buildbot class: its arguments and the line of the call.
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
#[repr(C)]
pub(crate) struct ConfigObjectGen<V: ValueLifetimeless> {
    pub(crate) class: String,
    pub(crate) line: u32,
    /// A tuple of the positional arguments.
    pub(crate) args: V,
    /// A dict of the keyword arguments.
    pub(crate) kwargs: V,
    /// A list of the steps added with `addStep` (only used by `BuildFactory`).
    pub(crate) steps: V,
}
starlark_complex_value!(pub(crate) ConfigObject);

unsafe impl<'v> Coerce<ConfigObjectGen<Value<'v>>> for ConfigObjectGen<FrozenValue> {}

impl<'v> Freeze for ConfigObject<'v> {
    type Frozen = FrozenConfigObject;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<Self::Frozen> {
        Ok(ConfigObjectGen {
            class: self.class,
            line: self.line,
            args: self.args.freeze(freezer)?,
            kwargs: self.kwargs.freeze(freezer)?,
            steps: self.steps.freeze(freezer)?,
        })
    }
}

impl<V: ValueLifetimeless> fmt::Display for ConfigObjectGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(…)", self.class)
    }
}

#[starlark_value(type = "buildbot_object")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ConfigObjectGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_methods() -> Option<&'static Methods> {
        Some(CONFIG_OBJECT_METHODS.methods())
    }
}

starlark::methods_static!(CONFIG_OBJECT_METHODS = config_object_methods);

#[starlark_module]
fn config_object_methods(builder: &mut MethodsBuilder) {
    /// `factory.addStep(step)`.
    fn addStep<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] step: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        add_steps(this, &[step], eval)?;
        Ok(NoneType)
    }

    /// `factory.addSteps([step, …])`.
    fn addSteps<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] steps: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let heap = eval.heap();
        let items: Vec<Value<'v>> = steps
            .iterate(heap)
            .map_err(|e| anyhow::anyhow!("{}", e.without_diagnostic()))?
            .collect();
        add_steps(this, &items, eval)?;
        Ok(NoneType)
    }
}

/// Appends steps to a `BuildFactory`'s step list.
fn add_steps<'v>(
    this: Value<'v>,
    steps: &[Value<'v>],
    eval: &mut Evaluator<'v, '_, '_>,
) -> anyhow::Result<()> {
    let Some(object) = ConfigObject::from_value(this) else {
        return Err(anyhow::anyhow!("addStep needs a BuildFactory"));
    };
    if object.class != "BuildFactory" {
        return Err(anyhow::anyhow!("{} has no method addStep", object.class));
    }
    let heap = eval.heap();
    let append = object
        .steps
        .get_attr("append", heap)
        .map_err(|e| anyhow::anyhow!("{}", e.without_diagnostic()))?
        .ok_or_else(|| anyhow::anyhow!("the step list cannot grow"))?;
    for step in steps {
        eval.eval_function(append, &[*step], &[])
            .map_err(|e| anyhow::anyhow!("{}", e.without_diagnostic()))?;
    }
    Ok(())
}

/// A module such as `util`, `html`, `buildbot.status.client` or `os.path`.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct Namespace {
    #[allocative(skip)]
    name: &'static str,
}
starlark_simple_value!(Namespace);

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<module '{}'>", self.name)
    }
}

impl Namespace {
    /// What `self.attr` names: a global, or a nested module.
    fn lookup(&self, attr: &str) -> Option<FrozenValue> {
        let shim = match (self.name, attr) {
            ("cgi", "escape") | ("html", "escape") => Some("html_escape"),
            ("os", "path") => return global("__os_path"),
            ("os.path", "join") => Some("path_join"),
            ("os.path", "dirname") => Some("path_dirname"),
            ("os.path", "basename") => Some("path_basename"),
            ("datetime", "datetime") => return global("__datetime_datetime"),
            ("datetime.datetime", "fromtimestamp") => Some("datetime_fromtimestamp"),
            ("time", "time") => Some("time_time"),
            ("jinja2", "FileSystemLoader") => Some("FileSystemLoader"),
            (
                "os" | "os.path" | "datetime" | "datetime.datetime" | "time" | "re" | "cgi"
                | "jinja2" | "json",
                _,
            ) => return None,
            _ => None,
        };
        if let Some(name) = shim {
            return global(name);
        }
        if CLASSES.contains(&attr) || CONSTANTS.contains(&attr) || MODULES.contains(&attr) {
            return global(attr);
        }
        None
    }
}

#[starlark_value(type = "module")]
impl<'v> StarlarkValue<'v> for Namespace {
    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        self.lookup(attribute).map(|v| v.to_value())
    }

    fn has_attr(&self, attribute: &str, _heap: Heap<'v>) -> bool {
        self.lookup(attribute).is_some()
    }
}

/// What `datetime.datetime.fromtimestamp` returns.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct DateTime {
    secs: i64,
}
starlark_simple_value!(DateTime);

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&ctime(self.secs))
    }
}

#[starlark_value(type = "datetime")]
impl<'v> StarlarkValue<'v> for DateTime {
    fn get_methods() -> Option<&'static Methods> {
        Some(DATETIME_METHODS.methods())
    }
}

starlark::methods_static!(DATETIME_METHODS = datetime_methods);

#[starlark_module]
fn datetime_methods(builder: &mut MethodsBuilder) {
    /// `d.ctime()`: `Sun Nov 22 00:58:55 2026` (UTC).
    fn ctime<'v>(this: Value<'v>) -> anyhow::Result<String> {
        Ok(this.to_str())
    }
}

/// `time.ctime`-style text of epoch seconds, in UTC.
fn ctime(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7);
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday_name = DAYS.get(weekday as usize).copied().unwrap_or("???");
    let month_name = MONTHS.get((month - 1) as usize).copied().unwrap_or("???");
    format!(
        "{weekday_name} {month_name} {day:>2} {:02}:{:02}:{:02} {year}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The build's properties as a `@renderer` function sees them: `props.getProperty(name,
/// default=None)`, `props.hasProperty(name)` and `props['name']`.
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct Props {
    #[allocative(skip)]
    pub(crate) values: serde_json::Map<String, serde_json::Value>,
}
starlark_simple_value!(Props);

impl fmt::Display for Props {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Properties({})",
            serde_json::Value::Object(self.values.clone())
        )
    }
}

#[starlark_value(type = "Properties")]
impl<'v> StarlarkValue<'v> for Props {
    fn at(&self, index: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let Some(name) = index.unpack_str() else {
            return Err(starlark::Error::new_other(anyhow::anyhow!(
                "property names are strings"
            )));
        };
        match self.values.get(name) {
            Some(v) => Ok(json_to_value(v, heap)),
            None => Err(starlark::Error::new_other(anyhow::anyhow!(
                "property '{name}' is not set"
            ))),
        }
    }

    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .unpack_str()
            .is_some_and(|name| self.values.contains_key(name)))
    }

    fn get_methods() -> Option<&'static Methods> {
        Some(PROPS_METHODS.methods())
    }
}

starlark::methods_static!(PROPS_METHODS = props_methods);

#[starlark_module]
fn props_methods(builder: &mut MethodsBuilder) {
    /// `props.getProperty(name, default=None)`.
    fn getProperty<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] name: &str,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let found = this
            .downcast_ref::<Props>()
            .and_then(|p| p.values.get(name));
        Ok(match found {
            Some(v) => json_to_value(v, heap),
            None => default.unwrap_or_else(Value::new_none),
        })
    }

    /// `props.hasProperty(name)`.
    fn hasProperty<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] name: &str,
    ) -> anyhow::Result<bool> {
        Ok(this
            .downcast_ref::<Props>()
            .is_some_and(|p| p.values.contains_key(name)))
    }

    /// `props.has_key(name)`.
    fn has_key<'v>(this: Value<'v>, #[starlark(require = pos)] name: &str) -> anyhow::Result<bool> {
        Ok(this
            .downcast_ref::<Props>()
            .is_some_and(|p| p.values.contains_key(name)))
    }

    /// `props.keys()`.
    fn keys<'v>(this: Value<'v>) -> anyhow::Result<Vec<String>> {
        Ok(this
            .downcast_ref::<Props>()
            .map(|p| p.values.keys().cloned().collect())
            .unwrap_or_default())
    }
}

/// A JSON value as a Starlark value (objects become dicts).
pub(crate) fn json_to_value<'v>(json: &serde_json::Value, heap: Heap<'v>) -> Value<'v> {
    match json {
        serde_json::Value::Null => Value::new_none(),
        serde_json::Value::Bool(b) => Value::new_bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => match i32::try_from(i) {
                Ok(small) => heap.alloc(small),
                Err(_) => heap.alloc(i),
            },
            (None, Some(f)) => heap.alloc(f),
            (None, None) => Value::new_none(),
        },
        serde_json::Value::String(s) => heap.alloc(s.as_str()),
        serde_json::Value::Array(items) => {
            let values: Vec<Value<'v>> = items.iter().map(|i| json_to_value(i, heap)).collect();
            heap.alloc(AllocList(values))
        }
        serde_json::Value::Object(map) => {
            let entries: Vec<(Value<'v>, Value<'v>)> = map
                .iter()
                .map(|(k, v)| (heap.alloc(k.as_str()), json_to_value(v, heap)))
                .collect();
            heap.alloc(AllocDict(entries))
        }
    }
}

/// True if the value is a dict (used to find `BuildmasterConfig`).
pub(crate) fn is_dict(value: Value<'_>) -> bool {
    DictRef::from_value(value).is_some()
}

/// A format string with Python's `%` semantics (`%(name)s` with a dict, `%s`/`%d` with a
/// tuple or one value).
#[derive(Debug, ProvidesStaticType, NoSerialize, StarlarkPagablePanic, Allocative)]
pub(crate) struct PyFormat {
    format: String,
}
starlark_simple_value!(PyFormat);

impl fmt::Display for PyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format)
    }
}

#[starlark_value(type = "string")]
impl<'v> StarlarkValue<'v> for PyFormat {
    fn percent(&self, other: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        py_format(&self.format, other, heap)
            .map(|s| heap.alloc(s))
            .map_err(|e| starlark::Error::new_other(anyhow::anyhow!(e)))
    }
}

/// Python's `format % value`.
fn py_format<'v>(format: &str, value: Value<'v>, heap: Heap<'v>) -> Result<String, String> {
    let positional: Vec<Value<'v>> = match starlark::values::tuple::TupleRef::from_value(value) {
        Some(t) => t.content().to_vec(),
        None => vec![value],
    };
    let mut next = 0;
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let item = match chars.peek() {
            Some('%') => {
                chars.next();
                out.push('%');
                continue;
            }
            Some('(') => {
                chars.next();
                let mut key = String::new();
                for k in chars.by_ref() {
                    if k == ')' {
                        break;
                    }
                    key.push(k);
                }
                value
                    .at(heap.alloc(key.as_str()), heap)
                    .map_err(|_| format!("KeyError: '{key}'"))?
            }
            _ => {
                let Some(v) = positional.get(next).copied() else {
                    return Err("not enough arguments for format string".to_string());
                };
                next += 1;
                v
            }
        };
        // Flags, width and precision.
        let mut spec = String::new();
        let mut conversion = None;
        for k in chars.by_ref() {
            if k.is_ascii_alphabetic() {
                conversion = Some(k);
                break;
            }
            spec.push(k);
        }
        let precision: Option<usize> = spec.split_once('.').and_then(|(_, p)| p.parse().ok());
        let width: usize = spec
            .split('.')
            .next()
            .unwrap_or_default()
            .trim_start_matches(['-', '0', '+', ' '])
            .parse()
            .unwrap_or(0);
        let text = match conversion {
            Some('s') => match item.unpack_str() {
                Some(s) => s.to_string(),
                None => item.to_str(),
            },
            Some('r') => item.to_repr(),
            Some('d' | 'i' | 'u') => match item.to_json_value().ok().and_then(|j| j.as_f64()) {
                Some(f) => format!("{}", f.trunc() as i64),
                None => {
                    return Err(format!(
                        "%d format: a number is required, not {}",
                        item.get_type()
                    ))
                }
            },
            Some('f' | 'F' | 'e' | 'g') => match item.to_json_value().ok().and_then(|j| j.as_f64())
            {
                Some(f) => format!("{:.*}", precision.unwrap_or(6), f),
                None => {
                    return Err(format!(
                        "%f format: a number is required, not {}",
                        item.get_type()
                    ))
                }
            },
            Some('x') => match item.unpack_i32() {
                Some(i) => format!("{i:x}"),
                None => return Err("%x format: an integer is required".to_string()),
            },
            other => return Err(format!("unsupported format character {other:?}")),
        };
        if text.chars().count() < width {
            let numeric = matches!(
                conversion,
                Some('d' | 'i' | 'u' | 'f' | 'F' | 'e' | 'g' | 'x')
            );
            let zero = numeric
                && spec.trim_start_matches(['+', ' ']).starts_with('0')
                && !spec.contains('-');
            if zero {
                let (sign, digits) = match text.strip_prefix('-') {
                    Some(d) => ("-", d),
                    None => ("", text.as_str()),
                };
                out.push_str(sign);
                out.push_str(&"0".repeat(width - text.chars().count()));
                out.push_str(digits);
                continue;
            }
            let pad = " ".repeat(width - text.chars().count());
            if spec.starts_with('-') {
                out.push_str(&text);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&text);
            }
        } else {
            out.push_str(&text);
        }
    }
    Ok(out)
}
