//! `MailNotifier(...)` arguments, validated into plain settings (no I/O).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use config::{ConfigValue, FunctionRef, StatusTargetConfig};
use model::{Renderable, Results};
use serde_json::Value as Json;

use crate::filter::Filter;
use crate::targets::mail::template::TemplateFormatter;

/// One word of `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeWord {
    /// Builds whose result differs from the previous build's.
    Change,
    /// Failed builds.
    Failing,
    /// Successful builds.
    Passing,
    /// Failed builds after a build that did not fail.
    Problem,
    /// Builds with warnings.
    Warnings,
    /// Builds with an exception.
    Exception,
}

impl ModeWord {
    fn parse(word: &str) -> Option<ModeWord> {
        Some(match word {
            "change" => ModeWord::Change,
            "failing" => ModeWord::Failing,
            "passing" => ModeWord::Passing,
            "problem" => ModeWord::Problem,
            "warnings" => ModeWord::Warnings,
            "exception" => ModeWord::Exception,
            _ => return None,
        })
    }
}

/// The `mode` argument: the words, expanded from the shortcuts, and as the user wrote them
/// (a `messageFormatter` receives those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode {
    /// The words in force.
    pub words: Vec<ModeWord>,
    /// The mode as written, shortcuts expanded into words.
    pub names: Vec<String>,
}

impl Mode {
    /// Seed 002: `all` is (change, failing, passing, problem, warnings, exception) and the
    /// string `warnings` alone is (warnings, failing); a list names words.
    pub fn parse(value: Option<&Json>) -> Result<Mode, String> {
        let names: Vec<String> = match value {
            None => vec!["failing".into(), "passing".into(), "warnings".into()],
            Some(Json::String(s)) if s == "all" => [
                "change",
                "failing",
                "passing",
                "problem",
                "warnings",
                "exception",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            Some(Json::String(s)) if s == "warnings" => vec!["warnings".into(), "failing".into()],
            Some(Json::String(s)) => vec![s.clone()],
            Some(Json::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or("mode entries are strings")
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("mode must be a string or a list, got {other}")),
        };
        let mut words = Vec::new();
        for name in &names {
            // `all` inside a list is accepted too.
            if name == "all" {
                return Mode::parse(Some(&Json::String("all".into())));
            }
            match ModeWord::parse(name) {
                Some(w) => words.push(w),
                None => {
                    return Err(format!(
                        "unknown mode '{name}' (expected all, warnings, or change, failing, passing, problem, warnings, exception)"
                    ))
                }
            }
        }
        Ok(Mode { words, names })
    }

    /// Buildbot's `isMailNeeded`: does a build with `results`, after a build with
    /// `previous` (None when there is none, or the getter chose none), call for mail?
    pub fn wants(&self, results: Results, previous: Option<Option<Results>>) -> bool {
        let previous_results = previous.flatten();
        self.words.iter().any(|w| match w {
            ModeWord::Change => previous.is_some() && previous_results != Some(results),
            ModeWord::Failing => results == Results::Failure,
            ModeWord::Passing => results == Results::Success,
            ModeWord::Problem => {
                results == Results::Failure
                    && previous.is_some()
                    && previous_results != Some(Results::Failure)
            }
            ModeWord::Warnings => results == Results::Warnings,
            ModeWord::Exception => results == Results::Exception,
        })
    }

    /// True when the previous build matters.
    pub fn needs_previous(&self) -> bool {
        self.words
            .iter()
            .any(|w| matches!(w, ModeWord::Change | ModeWord::Problem))
    }
}

/// `addLogs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddLogs {
    /// No logs attached.
    None,
    /// Every log.
    All,
    /// Logs with these names (`stdio` or `step.stdio`).
    Named(Vec<String>),
}

/// How names become addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The users table's `email` attributes (no `lookup` argument).
    UsersTable,
    /// `name@domain`, for `lookup='example.org'` or `Domain('example.org')`.
    Domain(String),
    /// A user function from name to address.
    Function(FunctionRef),
}

/// `messageFormatter`: the seed's function, or Buildbot 4's template formatter.
#[derive(Debug, Clone)]
pub enum Formatter {
    /// `messageFormatter(mode, name, build, results, master_status)`, a user function.
    Function(FunctionRef),
    /// `reporters.MessageFormatter(...)`, compiled.
    Template(Arc<TemplateFormatter>),
}

/// A password that never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A validated `MailNotifier`.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `fromaddr`.
    pub fromaddr: String,
    /// `sendToInterestedUsers` (default true).
    pub send_to_interested_users: bool,
    /// `extraRecipients`.
    pub extra_recipients: Vec<String>,
    /// `subject`, with `%(builder)s`, `%(result)s`, `%(title)s`, `%(projectName)s`.
    pub subject: String,
    /// `mode`.
    pub mode: Mode,
    /// `builders` / `categories`.
    pub filter: Filter,
    /// `addLogs`.
    pub add_logs: AddLogs,
    /// `addPatch` (default true).
    pub add_patch: bool,
    /// `buildSetSummary`.
    pub build_set_summary: bool,
    /// `relayhost` (default localhost).
    pub relayhost: String,
    /// `smtpPort` (default 25).
    pub smtp_port: u16,
    /// `useTls`: STARTTLS required.
    pub use_tls: bool,
    /// `useSmtps`, or `smtpPort=465`: TLS from the first byte (implicit TLS, SMTPS).
    pub use_smtps: bool,
    /// `smtpUser`.
    pub smtp_user: Option<String>,
    /// `smtpPassword`.
    pub smtp_password: Option<Secret>,
    /// `lookup`.
    pub lookup: Lookup,
    /// `messageFormatter`.
    pub message_formatter: Option<Formatter>,
    /// `extraHeaders`: names and renderable values.
    pub extra_headers: Vec<(String, Renderable)>,
    /// `previousBuildGetter`.
    pub previous_build_getter: Option<FunctionRef>,
}

/// The default subject, as Buildbot 0.8 has it.
pub const DEFAULT_SUBJECT: &str = "buildbot %(result)s in %(title)s on %(builder)s";

impl MailConfig {
    /// Validates a `MailNotifier` entry (already type-checked by the config crate).
    pub fn from_target(target: &StatusTargetConfig) -> Result<MailConfig, String> {
        let args = &target.args;
        let value = |name: &str| match args.get(name) {
            Some(ConfigValue::Value(v)) => Some(v),
            _ => None,
        };
        let string = |name: &str| value(name).and_then(|v| v.as_str()).map(str::to_string);
        let flag = |name: &str, default: bool| match value(name) {
            Some(Json::Bool(b)) => *b,
            Some(Json::Number(n)) => n.as_i64() != Some(0),
            _ => default,
        };
        let list = |name: &str| -> Option<Vec<String>> {
            match value(name)? {
                Json::String(s) => Some(vec![s.clone()]),
                Json::Array(items) => Some(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect(),
                ),
                _ => None,
            }
        };
        let function = |name: &str| match args.get(name) {
            Some(ConfigValue::Function(f)) => Some(*f),
            _ => None,
        };
        let Some(fromaddr) = string("fromaddr") else {
            return Err("fromaddr is required".into());
        };
        if args.contains_key("customMesg") {
            return Err("customMesg is not supported; use messageFormatter".into());
        }
        let filter = Filter::new(list("builders"), list("categories"))?;
        let mode = Mode::parse(value("mode"))?;
        let add_logs = match value("addLogs") {
            None | Some(Json::Bool(false)) => AddLogs::None,
            Some(Json::Bool(true)) => AddLogs::All,
            Some(_) => AddLogs::Named(list("addLogs").unwrap_or_default()),
        };
        let smtp_port = match value("smtpPort").and_then(Json::as_i64) {
            None => 25,
            Some(p) => u16::try_from(p).map_err(|_| format!("smtpPort {p} is not a port"))?,
        };
        let lookup = match args.get("lookup") {
            None => Lookup::UsersTable,
            Some(ConfigValue::Value(Json::String(domain))) => Lookup::Domain(domain.clone()),
            Some(ConfigValue::Object { kind, args }) if kind == "Domain" => {
                match args.get("0").or_else(|| args.get("domain")) {
                    Some(ConfigValue::Value(Json::String(d))) => Lookup::Domain(d.clone()),
                    _ => return Err("Domain(...) needs a domain string".into()),
                }
            }
            Some(ConfigValue::Function(f)) => Lookup::Function(*f),
            Some(_) => return Err("lookup must be a domain, a Domain(...) or a function".into()),
        };
        let extra_headers = extra_headers(args.get("extraHeaders"))?;
        let use_tls = flag("useTls", false);
        // Port 465 is SMTPS by its assignment (RFC 8314), so it keeps meaning implicit TLS
        // without `useSmtps`, as it did before the argument existed.
        let use_smtps = flag("useSmtps", false) || smtp_port == 465;
        let message_formatter = match args.get("messageFormatter") {
            None => None,
            Some(ConfigValue::Function(f)) => Some(Formatter::Function(*f)),
            Some(ConfigValue::Object { kind, args }) if kind == "MessageFormatter" => Some(
                Formatter::Template(Arc::new(TemplateFormatter::from_config(args)?)),
            ),
            Some(_) => {
                return Err("messageFormatter must be a function or a MessageFormatter(...)".into())
            }
        };
        Ok(MailConfig {
            fromaddr,
            send_to_interested_users: flag("sendToInterestedUsers", true),
            extra_recipients: list("extraRecipients").unwrap_or_default(),
            subject: string("subject").unwrap_or_else(|| DEFAULT_SUBJECT.to_string()),
            mode,
            filter,
            add_logs,
            add_patch: flag("addPatch", true),
            build_set_summary: flag("buildSetSummary", false),
            relayhost: string("relayhost").unwrap_or_else(|| "localhost".to_string()),
            smtp_port,
            use_tls,
            use_smtps,
            smtp_user: string("smtpUser"),
            smtp_password: string("smtpPassword").map(Secret),
            lookup,
            message_formatter,
            extra_headers,
            previous_build_getter: function("previousBuildGetter"),
        })
    }
}

/// `extraHeaders={'X-Builder': Interpolate('%(prop:buildername)s')}`: a plain dict or a
/// dict with renderable values.
fn extra_headers(value: Option<&ConfigValue>) -> Result<Vec<(String, Renderable)>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(ConfigValue::Value(Json::Object(map))) => Ok(map
            .iter()
            .map(|(k, v)| (k.clone(), Renderable::Value(v.clone())))
            .collect()),
        Some(ConfigValue::Renderable(Renderable::Dict(items))) => Ok(items.clone()),
        Some(ConfigValue::Object { args, .. }) => {
            let map: BTreeMap<&String, &ConfigValue> = args.iter().collect();
            map.into_iter()
                .map(|(k, v)| match v {
                    ConfigValue::Value(v) => Ok((k.clone(), Renderable::Value(v.clone()))),
                    ConfigValue::Renderable(r) => Ok((k.clone(), r.clone())),
                    _ => Err(format!("extraHeaders value for {k} cannot be rendered")),
                })
                .collect()
        }
        Some(_) => Err("extraHeaders must be a dict".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mode: Json, results: Results, previous: Option<Option<Results>>) -> bool {
        Mode::parse(Some(&mode))
            .expect("mode parses")
            .wants(results, previous)
    }

    #[test]
    fn modes_follow_buildbot() {
        use Results::*;
        let list = |words: &[&str]| Json::from(words.to_vec());
        assert!(check(list(&["failing"]), Failure, None));
        assert!(!check(list(&["failing"]), Success, None));
        assert!(check(list(&["passing"]), Success, None));
        assert!(check(list(&["change"]), Success, Some(Some(Failure))));
        assert!(!check(list(&["change"]), Success, Some(Some(Success))));
        assert!(
            !check(list(&["change"]), Success, None),
            "no previous build"
        );
        assert!(check(list(&["problem"]), Failure, Some(Some(Success))));
        assert!(!check(list(&["problem"]), Failure, Some(Some(Failure))));
        assert!(check(list(&["exception"]), Exception, None));
        assert!(
            check(Json::from("warnings"), Failure, None),
            "the warnings shortcut"
        );
        assert!(
            !check(list(&["warnings"]), Failure, None),
            "the warnings word"
        );
        assert!(check(Json::from("all"), Exception, None));
        assert!(Mode::parse(Some(&list(&["sometimes"]))).is_err());
    }
}
