//! Turns the collected `BuildmasterConfig` dict into a typed [`MasterConfig`] and validates it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use model::Renderable;
use serde_json::Value as Json;

use crate::args::{to_config_value, to_json, to_renderable, Args};
use crate::collect::{Obj, Py};
use crate::error::ConfigError;
use crate::types::*;

/// Keys of the config dict that are accepted and ignored.
const IGNORED_KEYS: &[&str] = &[
    "buildbotNetUsageData",
    "mergeRequests",
    "changeHorizon",
    "eventHorizon",
    "buildCacheSize",
    "changeCacheSize",
    "caches",
    "prioritizeBuilders",
    "multiMaster",
    "debugPassword",
    "manhole",
    "user_managers",
    "validation",
    "codebaseGenerator",
    "revlink",
    "secretsProviders",
];

/// Where a config key is assigned: the first line that mentions it in quotes.
struct KeyLines<'a> {
    source: &'a str,
}

impl KeyLines<'_> {
    fn line(&self, key: &str) -> u32 {
        let single = format!("'{key}'");
        let double = format!("\"{key}\"");
        self.source
            .lines()
            .position(|l| l.contains(&single) || l.contains(&double))
            .map(|i| i as u32 + 1)
            .unwrap_or(1)
    }
}

/// The conversion context: file name, master directory, source text for key lines.
pub(crate) struct Converter<'a> {
    pub(crate) file: &'a str,
    pub(crate) basedir: &'a Path,
    pub(crate) source: &'a str,
}

impl<'a> Converter<'a> {
    fn at(&self, line: u32, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line,
            message,
        }
    }

    fn key_error(&self, key: &str, message: String) -> ConfigError {
        self.at(
            KeyLines {
                source: self.source,
            }
            .line(key),
            message,
        )
    }

    /// Converts and validates the whole config.
    pub(crate) fn master_config(&self, config: &Py) -> Result<MasterConfig, ConfigError> {
        let Py::Dict(entries) = config else {
            return Err(self.at(
                1,
                format!(
                    "BuildmasterConfig must be a dict, got {}",
                    config.type_name()
                ),
            ));
        };
        let mut cfg = MasterConfig::default();
        for (key, value) in entries {
            let Py::Str(key) = key else {
                return Err(self.at(
                    1,
                    format!("config keys must be strings, got {}", key.type_name()),
                ));
            };
            self.apply_key(&mut cfg, key, value)?;
        }
        self.validate(&cfg)?;
        Ok(cfg)
    }

    fn expect_str(&self, key: &str, value: &Py) -> Result<String, ConfigError> {
        match value {
            Py::Str(s) => Ok(s.clone()),
            other => Err(self.key_error(
                key,
                format!("c['{key}'] must be a string, got {}", other.type_name()),
            )),
        }
    }

    fn expect_u64(&self, key: &str, value: &Py) -> Result<Option<u64>, ConfigError> {
        match value {
            Py::None => Ok(None),
            Py::Int(i) if *i >= 0 => Ok(Some(*i as u64)),
            other => Err(self.key_error(
                key,
                format!(
                    "c['{key}'] must be a non-negative int, got {}",
                    other.type_name()
                ),
            )),
        }
    }

    fn expect_list<'p>(&self, key: &str, value: &'p Py) -> Result<&'p [Py], ConfigError> {
        match value {
            Py::List(items) | Py::Tuple(items) => Ok(items),
            other => Err(self.key_error(
                key,
                format!("c['{key}'] must be a list, got {}", other.type_name()),
            )),
        }
    }

    fn expect_obj<'p>(
        &self,
        key: &str,
        value: &'p Py,
        classes: &[&str],
        what: &str,
    ) -> Result<&'p Obj, ConfigError> {
        match value {
            Py::Obj(obj) if classes.contains(&obj.class.as_str()) => Ok(obj),
            Py::Obj(obj) => Err(self.at(
                obj.line,
                format!("c['{key}'] entries must be {what}, got {}", obj.class),
            )),
            other => Err(self.key_error(
                key,
                format!(
                    "c['{key}'] entries must be {what}, got {}",
                    other.type_name()
                ),
            )),
        }
    }

    fn apply_key(&self, cfg: &mut MasterConfig, key: &str, value: &Py) -> Result<(), ConfigError> {
        match key {
            "title" => cfg.title = self.expect_str(key, value)?,
            "titleURL" => cfg.title_url = self.expect_str(key, value)?,
            "buildbotURL" => {
                let mut url = self.expect_str(key, value)?;
                if !url.ends_with('/') {
                    url.push('/');
                }
                cfg.buildbot_url = url;
            }
            "workers" | "slaves" => {
                for item in self.expect_list(key, value)? {
                    let obj =
                        self.expect_obj(key, item, &["Worker", "BuildSlave"], "Worker objects")?;
                    cfg.workers.push(self.worker(obj)?);
                }
            }
            "protocols" => {
                let protocols = self.protocols(key, value)?;
                cfg.worker_port = protocols.listen;
                cfg.worker_max_connections = protocols.max_connections;
            }
            "slavePortnum" => cfg.worker_port = Some(self.listen_value(key, value)?),
            "builders" => {
                for item in self.expect_list(key, value)? {
                    let obj =
                        self.expect_obj(key, item, &["BuilderConfig"], "BuilderConfig objects")?;
                    cfg.builders.push(self.builder(obj)?);
                }
            }
            "schedulers" => {
                for item in self.expect_list(key, value)? {
                    let obj = self.expect_obj(key, item, SCHEDULERS, "schedulers")?;
                    cfg.schedulers.push(self.scheduler(obj)?);
                }
            }
            "change_source" => {
                let items = match value {
                    Py::List(items) | Py::Tuple(items) => items.as_slice(),
                    single => std::slice::from_ref(single),
                };
                for item in items {
                    let obj =
                        self.expect_obj(key, item, &["GitPoller", "SVNPoller"], "change sources")?;
                    cfg.change_sources.push(self.change_source(obj)?);
                }
            }
            "status" | "services" => {
                for item in self.expect_list(key, value)? {
                    let obj = self.expect_obj(key, item, STATUS_TARGETS, "status targets")?;
                    match obj.class.as_str() {
                        "WebStatus" | "Waterfall" => self.web_status(obj, &mut cfg.www)?,
                        _ => cfg.status.push(self.status_target(obj)?),
                    }
                }
            }
            "db" => {
                let Py::Dict(entries) = value else {
                    return Err(self.key_error(
                        key,
                        format!("c['db'] must be a dict, got {}", value.type_name()),
                    ));
                };
                for (k, v) in entries {
                    match (k, v) {
                        (Py::Str(k), v) if k == "db_url" => {
                            cfg.db_url = Some(self.expect_str("db_url", v)?)
                        }
                        (Py::Str(k), _) if k == "db_poll_interval" => {}
                        (k, _) => {
                            let name = to_json(k);
                            return Err(
                                self.key_error(key, format!("unknown key {name} in c['db']"))
                            );
                        }
                    }
                }
            }
            "db_url" => cfg.db_url = Some(self.expect_str(key, value)?),
            "www" => self.www_dict(value, &mut cfg.www)?,
            "properties" => {
                let Py::Dict(entries) = value else {
                    return Err(self.key_error(
                        key,
                        format!("c['properties'] must be a dict, got {}", value.type_name()),
                    ));
                };
                for (k, v) in entries {
                    let Py::Str(k) = k else {
                        return Err(
                            self.key_error(key, "property names must be strings".to_string())
                        );
                    };
                    cfg.properties
                        .set(k.clone(), to_json(v), "Global Configuration");
                }
            }
            "logMaxSize" => cfg.log_max_size = self.expect_u64(key, value)?,
            "logMaxTailSize" => cfg.log_max_tail_size = self.expect_u64(key, value)?,
            "buildHorizon" => cfg.build_horizon = self.expect_u64(key, value)?,
            "logHorizon" => cfg.log_horizon = self.expect_u64(key, value)?,
            "collapseRequests" => {
                cfg.collapse_requests = match value {
                    Py::Bool(b) => Collapse::Bool(*b),
                    Py::None => Collapse::Inherit,
                    Py::Func(id) => Collapse::Function(FunctionRef(*id)),
                    other => {
                        return Err(self.key_error(
                            key,
                            format!(
                                "c['collapseRequests'] must be a bool or a function, got {}",
                                other.type_name()
                            ),
                        ))
                    }
                }
            }
            k if IGNORED_KEYS.contains(&k) => {}
            other => {
                return Err(self.key_error(other, format!("unknown configuration key '{other}'")))
            }
        }
        Ok(())
    }

    /// `c['protocols'] = {'pb': {'port': N, 'max_connections': N}}`.
    fn protocols(&self, key: &str, value: &Py) -> Result<Protocols, ConfigError> {
        let Py::Dict(entries) = value else {
            return Err(self.key_error(
                key,
                format!("c['protocols'] must be a dict, got {}", value.type_name()),
            ));
        };
        let mut protocols = Protocols::default();
        for (proto, options) in entries {
            let Py::Str(proto) = proto else {
                return Err(self.key_error(key, "protocol names must be strings".to_string()));
            };
            if proto != "pb" && proto != "msgpack_experimental_v7" {
                return Err(self.key_error(key, format!("unknown worker protocol '{proto}'")));
            }
            let Py::Dict(options) = options else {
                return Err(
                    self.key_error(key, format!("c['protocols']['{proto}'] must be a dict"))
                );
            };
            for (k, v) in options {
                match k {
                    Py::Str(k) if k == "port" => {
                        protocols.listen = Some(self.listen_value(key, v)?)
                    }
                    Py::Str(k) if k == "max_connections" => {
                        let limit = match v {
                            Py::Int(n) => u32::try_from(*n).ok().filter(|n| *n > 0),
                            _ => None,
                        };
                        let Some(limit) = limit else {
                            return Err(self.key_error(
                                key,
                                format!(
                                    "c['protocols']['{proto}']['max_connections'] must be a positive int"
                                ),
                            ));
                        };
                        protocols.max_connections = Some(limit);
                    }
                    other => {
                        return Err(self.key_error(
                            key,
                            format!(
                                "unknown option {} in c['protocols']['{proto}']",
                                to_json(other)
                            ),
                        ))
                    }
                }
            }
        }
        Ok(protocols)
    }

    /// A port number or a strports string, for a config key.
    fn listen_value(&self, key: &str, value: &Py) -> Result<Listen, ConfigError> {
        parse_listen(value).map_err(|m| self.key_error(key, format!("c['{key}']: {m}")))
    }

    fn worker(&self, obj: &Obj) -> Result<WorkerConfig, ConfigError> {
        let args = Args::new(
            self.file,
            obj,
            &["name", "password"],
            &[
                "max_builds",
                "properties",
                "missing_timeout",
                "notify_on_missing",
                "keepalive_interval",
                "build_wait_timeout",
                "locks",
                "machine_name",
                "defaultProperties",
            ],
        )?;
        let max_builds = match args.opt_u64("max_builds")? {
            Some(n) => Some(
                u32::try_from(n).map_err(|_| args.error("max_builds is too large".to_string()))?,
            ),
            None => None,
        };
        Ok(WorkerConfig {
            name: args.req_str("name")?,
            password: args.req_str("password")?,
            max_builds,
            properties: args.properties("properties", "Worker")?,
            missing_timeout: args.opt_u64("missing_timeout")?,
            keepalive_interval: args.opt_u64("keepalive_interval")?,
            notify_on_missing: args.str_list("notify_on_missing")?,
            location: self.location(obj),
        })
    }

    fn location(&self, obj: &Obj) -> Location {
        Location {
            file: self.file.to_string(),
            line: obj.line,
        }
    }

    fn builder(&self, obj: &Obj) -> Result<BuilderConfig, ConfigError> {
        let args = Args::new(
            self.file,
            obj,
            &[
                "name",
                "workername",
                "workernames",
                "builddir",
                "workerbuilddir",
                "factory",
            ],
            &[
                "slavename",
                "slavenames",
                "slavebuilddir",
                "tags",
                "category",
                "properties",
                "env",
                "collapseRequests",
                "mergeRequests",
                "description",
                "project",
                "nextWorker",
                "nextSlave",
                "nextBuild",
                "locks",
                "canStartBuild",
                "defaultProperties",
            ],
        )?;
        let name = args.req_str("name")?;
        let mut workernames = Vec::new();
        for key in ["workername", "slavename", "workernames", "slavenames"] {
            workernames.extend(args.str_list(key)?);
        }
        let factory = match args.get("factory") {
            Some(Py::Obj(f)) if f.class == "BuildFactory" => self.factory(f)?,
            Some(other) => return Err(args.type_error("factory", "a BuildFactory", other)),
            None => {
                return Err(args.error(format!("BuilderConfig: builder '{name}' has no factory")))
            }
        };
        let category = args.opt_str("category")?;
        let mut tags = args.str_list("tags")?;
        if let Some(category) = &category {
            if tags.is_empty() {
                tags.push(category.clone());
            }
        }
        let collapse_requests = match args.first(&["collapseRequests", "mergeRequests"]) {
            None => Collapse::Inherit,
            Some((_, Py::Bool(b))) => Collapse::Bool(*b),
            Some((_, Py::Func(id))) => Collapse::Function(FunctionRef(*id)),
            Some((name, other)) => {
                return Err(args.type_error(name, "a bool or a function", other))
            }
        };
        let next_worker = match args.first(&["nextWorker", "nextSlave"]) {
            None => None,
            Some((_, Py::Func(id))) => Some(FunctionRef(*id)),
            Some((name, other)) => return Err(args.type_error(name, "a function", other)),
        };
        let workerbuilddir = match args.first(&["workerbuilddir", "slavebuilddir", "builddir"]) {
            None => None,
            Some((name, p)) => Some(args.as_str(name, p)?),
        };
        Ok(BuilderConfig {
            name,
            workernames,
            factory,
            tags,
            category,
            properties: args.properties("properties", "Builder")?,
            env: args.renderable_map("env")?,
            collapse_requests,
            description: args.opt_str("description")?,
            project: args.opt_str("project")?,
            next_worker,
            workerbuilddir,
            location: self.location(obj),
        })
    }

    fn factory(&self, obj: &Obj) -> Result<BuildFactory, ConfigError> {
        let args = Args::new(self.file, obj, &["steps"], &[])?;
        let mut steps = Vec::new();
        if let Some(p) = args.get("steps") {
            let (Py::List(items) | Py::Tuple(items)) = p else {
                return Err(args.type_error("steps", "a list of steps", p));
            };
            for item in items {
                steps.push(self.step(&args, item)?);
            }
        }
        for item in &obj.steps {
            steps.push(self.step(&args, item)?);
        }
        Ok(BuildFactory { steps })
    }

    fn step(&self, factory: &Args<'_>, p: &Py) -> Result<StepConfig, ConfigError> {
        let Py::Obj(obj) = p else {
            return Err(factory.error(format!("addStep needs a step, got {}", p.type_name())));
        };
        let (positional, extra): (&[&str], &[&str]) = match obj.class.as_str() {
            "ShellCommand" | "Compile" | "Test" => (&["command"], &[]),
            "Git" => (&["repourl", "branch", "mode", "method"], GIT_OPTIONS),
            "SetProperty" => (&["property", "value"], &[]),
            "SetPropertyFromCommand" => (&[], &["property", "extract_fn", "strip", "command"]),
            "FileUpload" => (
                &["workersrc", "masterdest"],
                &[
                    "slavesrc",
                    "workdir",
                    "maxsize",
                    "blocksize",
                    "mode",
                    "keepstamp",
                    "url",
                    "urlText",
                ],
            ),
            "DirectoryUpload" => (
                &["workersrc", "masterdest"],
                &[
                    "slavesrc",
                    "workdir",
                    "maxsize",
                    "blocksize",
                    "compress",
                    "url",
                    "urlText",
                ],
            ),
            "FileDownload" => (
                &["mastersrc", "workerdest"],
                &["slavedest", "workdir", "maxsize", "blocksize", "mode"],
            ),
            "StringDownload" => (
                &["s", "workerdest"],
                &["slavedest", "workdir", "maxsize", "blocksize", "mode"],
            ),
            "Trigger" => (
                &["schedulerNames"],
                &[
                    "waitForFinish",
                    "set_properties",
                    "copy_properties",
                    "updateSourceStamp",
                    "alwaysUseLatest",
                    "sourceStamp",
                    "sourceStamps",
                    "parent_relationship",
                ],
            ),
            other => return Err(self.at(obj.line, format!("{other} is not a build step"))),
        };
        let mut keywords: Vec<&str> = COMMON_STEP_OPTIONS.to_vec();
        keywords.extend_from_slice(extra);
        if matches!(
            obj.class.as_str(),
            "ShellCommand" | "Compile" | "Test" | "SetPropertyFromCommand"
        ) {
            keywords.extend_from_slice(SHELL_OPTIONS);
        }
        if obj.class == "Compile" {
            keywords.extend_from_slice(&["warningPattern", "suppressionFile", "warningExtractor"]);
        }
        let args = Args::new(self.file, obj, positional, &keywords)?;
        let (default_name, halt) = match obj.class.as_str() {
            "ShellCommand" => ("shell", false),
            "Compile" => ("compile", true),
            "Test" => ("test", false),
            "Git" => ("git", true),
            "SetProperty" => ("SetProperty", false),
            "SetPropertyFromCommand" => ("SetPropertyFromCommand", false),
            "FileUpload" | "DirectoryUpload" => ("upload", false),
            "FileDownload" => ("download", false),
            "StringDownload" => ("string_download", false),
            _ => ("trigger", false),
        };
        let common = StepCommon {
            name: args
                .opt_str("name")?
                .unwrap_or_else(|| default_name.to_string()),
            description: self.text_list(&args, "description")?,
            description_done: self.text_list(&args, "descriptionDone")?,
            halt_on_failure: args.bool_or("haltOnFailure", halt)?,
            flunk_on_failure: args.bool_or("flunkOnFailure", true)?,
            warn_on_failure: args.bool_or("warnOnFailure", false)?,
            flunk_on_warnings: args.bool_or("flunkOnWarnings", false)?,
            warn_on_warnings: args.bool_or("warnOnWarnings", true)?,
            always_run: args.bool_or("alwaysRun", false)?,
            do_step_if: self.condition(&args, "doStepIf", true)?,
            hide_step_if: self.condition(&args, "hideStepIf", false)?,
            location: self.location(obj),
        };
        let kind = match obj.class.as_str() {
            "ShellCommand" => StepKind::Shell(self.shell(&args, true)?),
            "Compile" => StepKind::Compile {
                shell: self.shell(&args, true)?,
                warning_pattern: args.opt_str("warningPattern")?,
            },
            "Test" => StepKind::Test {
                shell: self.shell(&args, true)?,
            },
            "Git" => StepKind::Git {
                repourl: args.req_renderable("repourl")?,
                branch: args.opt_renderable("branch")?,
                mode: args
                    .opt_str("mode")?
                    .unwrap_or_else(|| "incremental".to_string()),
                method: args.opt_str("method")?,
                workdir: args.opt_renderable("workdir")?,
                codebase: args.opt_str("codebase")?.unwrap_or_default(),
            },
            "SetProperty" => StepKind::SetProperty {
                property: args.req_str("property")?,
                value: args.req_renderable("value")?,
            },
            "SetPropertyFromCommand" => {
                let property = args.opt_str("property")?;
                let extract_fn = args.opt_func("extract_fn")?;
                if property.is_none() && extract_fn.is_none() {
                    return Err(args.error(
                        "SetPropertyFromCommand needs property= or extract_fn=".to_string(),
                    ));
                }
                StepKind::SetPropertyFromCommand {
                    shell: self.shell(&args, true)?,
                    property,
                    extract_fn,
                    strip: args.bool_or("strip", true)?,
                }
            }
            "FileUpload" => StepKind::FileUpload {
                workersrc: self.aliased_renderable(&args, &["workersrc", "slavesrc"])?,
                masterdest: args.req_renderable("masterdest")?,
                workdir: args.opt_renderable("workdir")?,
                maxsize: args.opt_u64("maxsize")?,
                mode: self.mode(&args)?,
                keepstamp: args.bool_or("keepstamp", false)?,
                url: args.opt_str("url")?,
            },
            "DirectoryUpload" => StepKind::DirectoryUpload {
                workersrc: self.aliased_renderable(&args, &["workersrc", "slavesrc"])?,
                masterdest: args.req_renderable("masterdest")?,
                workdir: args.opt_renderable("workdir")?,
                maxsize: args.opt_u64("maxsize")?,
                compress: match args.opt_str("compress")? {
                    None => None,
                    Some(c) if c == "gz" || c == "bz2" => Some(c),
                    Some(other) => {
                        return Err(args.error(format!(
                            "compress must be None, 'gz' or 'bz2', not '{other}'"
                        )))
                    }
                },
                url: args.opt_str("url")?,
            },
            "FileDownload" => StepKind::FileDownload {
                mastersrc: args.req_renderable("mastersrc")?,
                workerdest: self.aliased_renderable(&args, &["workerdest", "slavedest"])?,
                workdir: args.opt_renderable("workdir")?,
                maxsize: args.opt_u64("maxsize")?,
                mode: self.mode(&args)?,
            },
            "StringDownload" => StepKind::StringDownload {
                contents: args.req_renderable("s")?,
                workerdest: self.aliased_renderable(&args, &["workerdest", "slavedest"])?,
                workdir: args.opt_renderable("workdir")?,
                mode: self.mode(&args)?,
            },
            _ => StepKind::Trigger {
                scheduler_names: args.str_list("schedulerNames")?,
                wait_for_finish: args.bool_or("waitForFinish", false)?,
                set_properties: args.renderable_map("set_properties")?,
                update_sourcestamp: args.bool_or("updateSourceStamp", true)?,
            },
        };
        Ok(StepConfig { common, kind })
    }

    fn aliased_renderable(
        &self,
        args: &Args<'_>,
        names: &[&str],
    ) -> Result<Renderable, ConfigError> {
        for name in names {
            if let Some(r) = args.opt_renderable(name)? {
                return Ok(r);
            }
        }
        Err(args.error(format!(
            "{}: missing required argument '{}'",
            args.obj.class,
            names.first().copied().unwrap_or("")
        )))
    }

    fn mode(&self, args: &Args<'_>) -> Result<Option<u32>, ConfigError> {
        match args.opt_u64("mode")? {
            None => Ok(None),
            Some(m) => u32::try_from(m)
                .map(Some)
                .map_err(|_| args.error("mode is too large".to_string())),
        }
    }

    fn text_list(&self, args: &Args<'_>, name: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match args.get(name) {
            None => Ok(None),
            Some(p) => args.as_str_list(name, p).map(Some),
        }
    }

    fn condition(
        &self,
        args: &Args<'_>,
        name: &str,
        default: bool,
    ) -> Result<Condition, ConfigError> {
        match args.get(name) {
            None => Ok(Condition::Always(default)),
            Some(Py::Bool(b)) => Ok(Condition::Always(*b)),
            Some(Py::Func(id)) => Ok(Condition::Function(FunctionRef(*id))),
            Some(other) => Err(args.type_error(name, "a bool or a function", other)),
        }
    }

    fn shell(&self, args: &Args<'_>, required: bool) -> Result<ShellOptions, ConfigError> {
        let command = match args.opt_renderable("command")? {
            Some(c) => c,
            None if required => {
                return Err(args.error(format!(
                    "{}: missing required argument 'command'",
                    args.obj.class
                )))
            }
            None => Renderable::Value(Json::Null),
        };
        let mut logfiles = BTreeMap::new();
        if let Some(p) = args.get("logfiles") {
            let Py::Dict(entries) = p else {
                return Err(args.type_error("logfiles", "a dict", p));
            };
            for (k, v) in entries {
                let (Py::Str(k), Py::Str(v)) = (k, v) else {
                    return Err(args.type_error("logfiles", "a dict of strings", v));
                };
                logfiles.insert(k.clone(), v.clone());
            }
        }
        let mut decode_rc = BTreeMap::new();
        match args.get("decodeRC") {
            None => {
                decode_rc.insert(0, model::Results::Success);
            }
            Some(Py::Dict(entries)) => {
                for (k, v) in entries {
                    let (Py::Int(code), Py::Int(result)) = (k, v) else {
                        return Err(args.type_error(
                            "decodeRC",
                            "a dict of ints to result codes",
                            v,
                        ));
                    };
                    let Some(result) = model::Results::from_code(*result) else {
                        return Err(args.error(format!(
                            "{}: decodeRC maps {code} to unknown result {result}",
                            args.obj.class
                        )));
                    };
                    decode_rc.insert(*code, result);
                }
            }
            Some(other) => return Err(args.type_error("decodeRC", "a dict", other)),
        }
        let interrupt_signal = match args.get("interruptSignal") {
            None => None,
            Some(Py::Str(s)) => Some(s.clone()),
            Some(Py::Int(i)) => Some(i.to_string()),
            Some(other) => return Err(args.type_error("interruptSignal", "a signal name", other)),
        };
        Ok(ShellOptions {
            command,
            workdir: args.opt_renderable("workdir")?,
            env: args.renderable_map("env")?,
            timeout: args.opt_f64("timeout")?,
            max_time: args.opt_f64("maxTime")?,
            logfiles,
            decode_rc,
            use_pty: match args.get("usePTY") {
                None => None,
                Some(Py::Str(s)) if s == "slave-config" => None,
                Some(_) => Some(args.bool_or("usePTY", false)?),
            },
            interrupt_signal,
            sigterm_time: args.opt_f64("sigtermTime")?,
        })
    }

    fn scheduler(&self, obj: &Obj) -> Result<SchedulerConfig, ConfigError> {
        let class = obj.class.as_str();
        let (positional, extra): (&[&str], &[&str]) = match class {
            "SingleBranchScheduler" => (
                &["name"],
                &[
                    "change_filter",
                    "branch",
                    "treeStableTimer",
                    "fileIsImportant",
                    "onlyImportant",
                    "categories",
                ],
            ),
            "AnyBranchScheduler" => (
                &["name"],
                &[
                    "change_filter",
                    "branches",
                    "treeStableTimer",
                    "fileIsImportant",
                    "onlyImportant",
                    "categories",
                ],
            ),
            "ForceScheduler" => (
                &["name"],
                &[
                    "reason",
                    "username",
                    "buttonName",
                    "label",
                    "branch",
                    "revision",
                    "repository",
                    "project",
                ],
            ),
            "Periodic" => (
                &["name", "builderNames", "periodicBuildTimer"],
                &["branch", "onlyImportant"],
            ),
            "Nightly" => (
                &[
                    "name",
                    "builderNames",
                    "minute",
                    "hour",
                    "dayOfMonth",
                    "month",
                    "dayOfWeek",
                ],
                &[
                    "branch",
                    "onlyIfChanged",
                    "change_filter",
                    "fileIsImportant",
                    "onlyImportant",
                ],
            ),
            _ => (&["name", "builderNames"], &[]),
        };
        let mut keywords: Vec<&str> = vec![
            "name",
            "builderNames",
            "properties",
            "codebases",
            "reason",
            "createAbsoluteSourceStamps",
            "priority",
        ];
        keywords.extend_from_slice(extra);
        let args = Args::new(self.file, obj, positional, &keywords)?;
        let name = args.req_str("name")?;
        let builder_names = args.str_list("builderNames")?;
        let mut codebases = BTreeMap::new();
        if class != "ForceScheduler" {
            match args.get("codebases") {
                None => {}
                Some(Py::Dict(entries)) => {
                    for (k, v) in entries {
                        let Py::Str(k) = k else {
                            return Err(args.type_error("codebases", "a dict with string keys", k));
                        };
                        let repository = match v {
                            Py::Dict(fields) => fields
                                .iter()
                                .find_map(|(fk, fv)| match (fk, fv) {
                                    (Py::Str(fk), Py::Str(fv)) if fk == "repository" => {
                                        Some(fv.clone())
                                    }
                                    _ => None,
                                })
                                .unwrap_or_default(),
                            Py::Str(s) => s.clone(),
                            _ => String::new(),
                        };
                        codebases.insert(k.clone(), repository);
                    }
                }
                Some(p @ (Py::List(_) | Py::Tuple(_))) => {
                    for name in args.as_str_list("codebases", p)? {
                        codebases.insert(name, String::new());
                    }
                }
                Some(other) => return Err(args.type_error("codebases", "a dict or a list", other)),
            }
        }
        let kind = match class {
            "SingleBranchScheduler" => SchedulerKind::SingleBranch {
                change_filter: self.scheduler_filter(&args)?,
                tree_stable_timer: args.opt_u64("treeStableTimer")?,
                file_is_important: args.opt_func("fileIsImportant")?,
                only_important: args.bool_or("onlyImportant", false)?,
            },
            "AnyBranchScheduler" => {
                let mut change_filter = self.scheduler_filter(&args)?;
                if let Some(p) = args.get("branches") {
                    change_filter.branch = Some(
                        args.as_str_list("branches", p)?
                            .into_iter()
                            .map(Some)
                            .collect(),
                    );
                }
                SchedulerKind::AnyBranch {
                    change_filter,
                    tree_stable_timer: args.opt_u64("treeStableTimer")?,
                    file_is_important: args.opt_func("fileIsImportant")?,
                }
            }
            "ForceScheduler" => self.force_scheduler(&args)?,
            "Periodic" => {
                let Some(period) = args.opt_u64("periodicBuildTimer")? else {
                    return Err(args.error(
                        "Periodic: missing required argument 'periodicBuildTimer'".to_string(),
                    ));
                };
                SchedulerKind::Periodic {
                    period,
                    branch: args.opt_str("branch")?,
                }
            }
            "Nightly" => SchedulerKind::Nightly {
                minute: self.cron_field(&args, "minute", Some(vec![0]), 0..=59)?,
                hour: self.cron_field(&args, "hour", None, 0..=23)?,
                day_of_month: self.cron_field(&args, "dayOfMonth", None, 1..=31)?,
                month: self.cron_field(&args, "month", None, 1..=12)?,
                day_of_week: self.cron_field(&args, "dayOfWeek", None, 0..=6)?,
                only_if_changed: args.bool_or("onlyIfChanged", false)?,
                branch: args.opt_str("branch")?,
                change_filter: self.scheduler_filter(&args)?,
            },
            _ => SchedulerKind::Triggerable,
        };
        Ok(SchedulerConfig {
            name,
            builder_names,
            properties: match class {
                "ForceScheduler" => model::Properties::new(),
                _ => args.properties("properties", "Scheduler")?,
            },
            codebases,
            kind,
            location: self.location(obj),
        })
    }

    /// A scheduler's `change_filter=` or `branch=`.
    fn scheduler_filter(&self, args: &Args<'_>) -> Result<ChangeFilterConfig, ConfigError> {
        let mut filter = match args.get("change_filter") {
            None => ChangeFilterConfig::default(),
            Some(Py::Obj(obj)) if obj.class == "ChangeFilter" => self.change_filter(obj)?,
            Some(Py::Func(id)) => ChangeFilterConfig {
                filter_fn: Some(FunctionRef(*id)),
                ..Default::default()
            },
            Some(other) => return Err(args.type_error("change_filter", "a ChangeFilter", other)),
        };
        if let Some(p) = args.raw("branch") {
            filter.branch = Some(match p {
                Py::None => vec![None],
                other => args
                    .as_str_list("branch", other)?
                    .into_iter()
                    .map(Some)
                    .collect(),
            });
        }
        if let Some(p) = args.get("categories") {
            filter.category = Some(args.as_str_list("categories", p)?);
        }
        Ok(filter)
    }

    fn change_filter(&self, obj: &Obj) -> Result<ChangeFilterConfig, ConfigError> {
        let args = Args::new(
            self.file,
            obj,
            &["filter_fn"],
            &[
                "branch",
                "branch_re",
                "project",
                "repository",
                "category",
                "codebase",
            ],
        )?;
        let branch = match args.raw("branch") {
            None => None,
            Some(Py::None) => Some(vec![None]),
            Some(p) => Some(
                args.as_str_list("branch", p)?
                    .into_iter()
                    .map(Some)
                    .collect(),
            ),
        };
        let list = |name: &str| -> Result<Option<Vec<String>>, ConfigError> {
            match args.get(name) {
                None => Ok(None),
                Some(p) => args.as_str_list(name, p).map(Some),
            }
        };
        Ok(ChangeFilterConfig {
            branch,
            branch_re: args.opt_str("branch_re")?,
            project: list("project")?,
            repository: list("repository")?,
            category: list("category")?,
            codebase: list("codebase")?,
            filter_fn: args.opt_func("filter_fn")?,
        })
    }

    /// A Nightly field: an int, a list of ints, or `'*'`.
    fn cron_field(
        &self,
        args: &Args<'_>,
        name: &str,
        default: Option<Vec<u32>>,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<Option<Vec<u32>>, ConfigError> {
        let check = |i: i64| -> Result<u32, ConfigError> {
            match u32::try_from(i) {
                Ok(v) if range.contains(&v) => Ok(v),
                _ => Err(args.error(format!(
                    "Nightly: '{name}' value {i} is outside {}..{}",
                    range.start(),
                    range.end()
                ))),
            }
        };
        match args.raw(name) {
            None => Ok(default),
            Some(Py::Str(s)) if s == "*" => Ok(None),
            Some(Py::Int(i)) => Ok(Some(vec![check(*i)?])),
            Some(Py::List(items) | Py::Tuple(items)) => items
                .iter()
                .map(|item| match item {
                    Py::Int(i) => check(*i),
                    other => Err(args.type_error(name, "an int, a list of ints or '*'", other)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(args.type_error(name, "an int, a list of ints or '*'", other)),
        }
    }

    fn force_scheduler(&self, args: &Args<'_>) -> Result<SchedulerKind, ConfigError> {
        let reason = match args.get("reason") {
            None => ForceParameter {
                name: "reason".to_string(),
                label: "reason".to_string(),
                kind: "text".to_string(),
                default: Json::String("force build".to_string()),
                required: false,
                choices: Vec::new(),
                regex: None,
            },
            Some(p) => self.force_parameter(args, "reason", p, Some("reason"))?,
        };
        let username = match args.get("username") {
            None => ForceParameter {
                name: "username".to_string(),
                label: "Your name:".to_string(),
                kind: "username".to_string(),
                default: Json::String(String::new()),
                required: false,
                choices: Vec::new(),
                regex: None,
            },
            Some(p) => self.force_parameter(args, "username", p, Some("username"))?,
        };
        let mut codebase_fields = Vec::new();
        match args.get("codebases") {
            None => {
                for field in ["branch", "revision", "repository", "project"] {
                    codebase_fields.push(match args.get(field) {
                        Some(p) => self.force_parameter(args, field, p, Some(field))?,
                        None => default_text_parameter(field),
                    });
                }
            }
            Some(Py::List(items) | Py::Tuple(items)) => {
                for item in items {
                    match item {
                        Py::Str(codebase) => {
                            for field in ["branch", "revision", "repository", "project"] {
                                let mut param = default_text_parameter(field);
                                if !codebase.is_empty() {
                                    param.name = format!("{codebase}_{field}");
                                }
                                codebase_fields.push(param);
                            }
                        }
                        Py::Obj(obj) if obj.class == "CodebaseParameter" => {
                            codebase_fields.extend(self.codebase_parameter(obj)?);
                        }
                        other => {
                            return Err(args.type_error(
                                "codebases",
                                "a list of CodebaseParameter",
                                other,
                            ))
                        }
                    }
                }
            }
            Some(other) => {
                return Err(args.type_error("codebases", "a list of CodebaseParameter", other))
            }
        }
        let mut properties = Vec::new();
        if let Some(p) = args.get("properties") {
            let (Py::List(items) | Py::Tuple(items)) = p else {
                return Err(args.type_error("properties", "a list of parameters", p));
            };
            for item in items {
                properties.push(self.force_parameter(args, "properties", item, None)?);
            }
        }
        Ok(SchedulerKind::Force {
            button_name: args.opt_str("buttonName")?,
            label: args.opt_str("label")?,
            reason,
            username,
            codebase_fields,
            properties,
        })
    }

    fn codebase_parameter(&self, obj: &Obj) -> Result<Vec<ForceParameter>, ConfigError> {
        let args = Args::new(
            self.file,
            obj,
            &["codebase"],
            &[
                "name",
                "label",
                "branch",
                "revision",
                "repository",
                "project",
                "patch",
            ],
        )?;
        let codebase = args.opt_str("codebase")?.unwrap_or_default();
        let mut fields = Vec::new();
        for field in ["branch", "revision", "repository", "project"] {
            let mut param = match args.get(field) {
                Some(p) => self.force_parameter(&args, field, p, Some(field))?,
                None => default_text_parameter(field),
            };
            if !codebase.is_empty() && !param.name.starts_with(&format!("{codebase}_")) {
                param.name = format!("{codebase}_{}", param.name);
            }
            fields.push(param);
        }
        Ok(fields)
    }

    /// A `StringParameter(...)`-style object (or a plain value for a fixed field).
    fn force_parameter(
        &self,
        parent: &Args<'_>,
        arg: &str,
        p: &Py,
        default_name: Option<&str>,
    ) -> Result<ForceParameter, ConfigError> {
        let obj = match p {
            Py::Obj(obj) if PARAMETERS.contains(&obj.class.as_str()) => obj,
            Py::Str(_) | Py::Int(_) | Py::Bool(_) => {
                let name = default_name.unwrap_or(arg).to_string();
                return Ok(ForceParameter {
                    label: name.clone(),
                    name,
                    kind: "fixed".to_string(),
                    default: to_json(p),
                    required: false,
                    choices: Vec::new(),
                    regex: None,
                });
            }
            other => {
                return Err(parent.type_error(arg, "a parameter such as StringParameter", other))
            }
        };
        let args = Args::new(
            self.file,
            obj,
            &["name"],
            &[
                "label",
                "default",
                "required",
                "size",
                "regex",
                "strict",
                "choices",
                "multiple",
                "cols",
                "rows",
                "maxsize",
                "need_email",
                "tablabel",
                "hide",
                "autopopulate",
            ],
        )?;
        let name = match (args.opt_str("name")?, default_name) {
            (Some(n), _) => n,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(args.error(format!("{}: missing required argument 'name'", obj.class)))
            }
        };
        let kind = match obj.class.as_str() {
            "IntParameter" => "int",
            "BooleanParameter" => "bool",
            "ChoiceStringParameter" => "list",
            "FixedParameter" => "fixed",
            "TextParameter" => "textarea",
            "UserNameParameter" => "username",
            _ => "text",
        };
        let default = match args.get("default") {
            Some(d) => to_json(d),
            None => match kind {
                "int" => Json::from(0),
                "bool" => Json::Bool(false),
                _ => Json::String(String::new()),
            },
        };
        let choices = match args.get("choices") {
            None => Vec::new(),
            Some(p) => args.as_str_list("choices", p)?,
        };
        let regex = match args.get("regex") {
            None => None,
            Some(Py::Str(s)) => Some(s.clone()),
            Some(other) => return Err(args.type_error("regex", "a string", other)),
        };
        Ok(ForceParameter {
            label: args.opt_str("label")?.unwrap_or_else(|| name.clone()),
            name,
            kind: kind.to_string(),
            default,
            required: args.bool_or("required", false)?,
            choices,
            regex,
        })
    }

    fn change_source(&self, obj: &Obj) -> Result<ChangeSourceConfig, ConfigError> {
        if obj.class == "GitPoller" {
            let args = Args::new(
                self.file,
                obj,
                &["repourl"],
                &[
                    "branches",
                    "branch",
                    "pollInterval",
                    "pollinterval",
                    "pollAtLaunch",
                    "workdir",
                    "project",
                    "category",
                    "gitbin",
                    "usetimestamps",
                    "encoding",
                    "only_tags",
                    "buildPushesWithNoCommits",
                    "fetch_refspec",
                    "sshPrivateKey",
                    "sshHostKey",
                    "pollRandomDelayMin",
                    "pollRandomDelayMax",
                ],
            )?;
            let (branches, all_branches) = match args.get("branches") {
                None => (args.str_list("branch")?, false),
                Some(Py::Bool(b)) => (Vec::new(), *b),
                Some(p) => (args.as_str_list("branches", p)?, false),
            };
            return Ok(ChangeSourceConfig::Git {
                repourl: args.req_str("repourl")?,
                branches,
                all_branches,
                poll_interval: self.poll_interval(&args)?,
                poll_at_launch: args.bool_or("pollAtLaunch", false)?,
                workdir: args.opt_str("workdir")?,
                project: args.opt_str("project")?.unwrap_or_default(),
                category: args.opt_str("category")?,
                location: self.location(obj),
            });
        }
        let args = Args::new(
            self.file,
            obj,
            &["svnurl", "split_file"],
            &[
                "repourl",
                "svnuser",
                "svnpasswd",
                "pollInterval",
                "pollinterval",
                "histmax",
                "svnbin",
                "revlinktmpl",
                "cachepath",
                "project",
                "pollAtLaunch",
                "extra_args",
                "category",
            ],
        )?;
        let svnurl = match args.first(&["svnurl", "repourl"]) {
            Some((name, p)) => args.as_str(name, p)?,
            None => {
                return Err(args.error("SVNPoller: missing required argument 'svnurl'".to_string()))
            }
        };
        let split_file = match args.get("split_file") {
            None => None,
            Some(Py::Builtin(name)) if name == "split_file_alwaystrunk" => {
                Some(SplitFile::AlwaysTrunk)
            }
            Some(Py::Builtin(name)) if name == "split_file_branches" => Some(SplitFile::Branches),
            Some(Py::Builtin(name)) if name == "split_file_projects_branches" => {
                Some(SplitFile::ProjectsBranches)
            }
            Some(Py::Func(id)) => Some(SplitFile::Function(FunctionRef(*id))),
            Some(other) => return Err(args.type_error("split_file", "a function", other)),
        };
        Ok(ChangeSourceConfig::Svn {
            svnurl,
            split_file,
            poll_interval: self.poll_interval(&args)?,
            poll_at_launch: args.bool_or("pollAtLaunch", false)?,
            project: args.opt_str("project")?.unwrap_or_default(),
            location: self.location(obj),
        })
    }

    fn poll_interval(&self, args: &Args<'_>) -> Result<u64, ConfigError> {
        Ok(match args.opt_u64("pollInterval")? {
            Some(n) => n,
            None => args.opt_u64("pollinterval")?.unwrap_or(600),
        })
    }

    /// A non-web status target, its arguments checked against the seed's documentation.
    fn status_target(&self, obj: &Obj) -> Result<StatusTargetConfig, ConfigError> {
        let Some(spec) = STATUS_SPECS.iter().find(|s| s.class == obj.class) else {
            return Err(self.at(obj.line, format!("{} is not a status target", obj.class)));
        };
        let names: Vec<&str> = spec.args.iter().map(|(n, _)| *n).collect();
        let args = Args::new(self.file, obj, spec.positional, &names)?;
        for required in spec.required {
            if args.get(required).is_none() {
                return Err(args.error(format!(
                    "{}: missing required argument '{required}'",
                    obj.class
                )));
            }
        }
        let mut out = BTreeMap::new();
        for name in &args.order {
            let Some(p) = args.get(name) else {
                continue;
            };
            let ty = spec
                .args
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| *t)
                .unwrap_or(Ty::Any);
            check_type(&args, name, p, ty)?;
            let value = match p {
                Py::Obj(f) if f.class == crate::message_formatter::CLASS => {
                    crate::message_formatter::convert(self.file, self.basedir, f)?
                }
                _ => to_config_value(p),
            };
            out.insert(name.to_string(), value);
        }
        Ok(StatusTargetConfig {
            kind: obj.class.clone(),
            args: out,
            location: self.location(obj),
        })
    }

    /// `WebStatus(...)` / `Waterfall(...)`: merged into the web settings.
    fn web_status(&self, obj: &Obj, www: &mut WwwConfig) -> Result<(), ConfigError> {
        let names: Vec<&str> = WEBSTATUS_ARGS.iter().map(|(n, _)| *n).collect();
        let args = Args::new(self.file, obj, WEBSTATUS_POSITIONAL, &names)?;
        for name in &args.order {
            let Some(p) = args.get(name) else {
                continue;
            };
            let ty = WEBSTATUS_ARGS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| *t)
                .unwrap_or(Ty::Any);
            check_type(&args, name, p, ty)?;
            match *name {
                "http_port" => {
                    www.listen = Some(
                        parse_listen(p)
                            .map_err(|m| args.error(format!("{}: 'http_port': {m}", obj.class)))?,
                    )
                }
                "authz" => match p {
                    Py::Obj(a) if a.class == "Authz" => www.authz = self.authz(a)?,
                    other => return Err(args.type_error("authz", "an Authz", other)),
                },
                "change_hook_dialects" => www.change_hook_dialects = self.dialects(&args, p)?,
                "change_hook_auth" => {
                    let entries = args.as_str_list("change_hook_auth", p)?;
                    self.check_change_hook_auth(obj.line, &entries)?;
                    www.change_hook_auth = entries;
                }
                "logRotateLength" | "rotateLength" => {
                    www.options.insert("rotateLength".to_string(), to_json(p));
                }
                other => match p {
                    Py::Func(id) => {
                        www.functions.insert(other.to_string(), FunctionRef(*id));
                    }
                    _ => {
                        www.options.insert(other.to_string(), to_json(p));
                    }
                },
            }
        }
        Ok(())
    }

    fn dialects(&self, args: &Args<'_>, p: &Py) -> Result<BTreeMap<String, Json>, ConfigError> {
        let Py::Dict(entries) = p else {
            return Err(args.type_error("change_hook_dialects", "a dict", p));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let Py::Str(k) = k else {
                return Err(args.type_error("change_hook_dialects", "a dict with string keys", k));
            };
            let value = match v {
                Py::Bool(true) => Json::Object(serde_json::Map::new()),
                Py::Bool(false) => continue,
                Py::Dict(_) => to_json(v),
                other => {
                    return Err(args.type_error(
                        "change_hook_dialects",
                        "a dict of True or dicts",
                        other,
                    ))
                }
            };
            out.insert(k.clone(), value);
        }
        Ok(out)
    }

    fn check_change_hook_auth(&self, line: u32, entries: &[String]) -> Result<(), ConfigError> {
        for entry in entries {
            if let Some(path) = entry.strip_prefix("file:") {
                self.check_file(line, path, "change_hook_auth")?;
            }
        }
        Ok(())
    }

    fn check_file(&self, line: u32, path: &str, what: &str) -> Result<(), ConfigError> {
        let full = self.basedir.join(path);
        if !full.is_file() {
            return Err(self.at(
                line,
                format!("{what}: file '{}' does not exist", full.display()),
            ));
        }
        Ok(())
    }

    fn authz(&self, obj: &Obj) -> Result<AuthzConfig, ConfigError> {
        let mut keywords: Vec<&str> = AUTHZ_ACTIONS.to_vec();
        keywords.extend_from_slice(&["auth", "useHttpHeader", "httpLoginUrl", "default_action"]);
        let args = Args::new(self.file, obj, &[], &keywords)?;
        let mut authz = AuthzConfig::default();
        for action in AUTHZ_ACTIONS {
            let Some(p) = args.get(action) else {
                continue;
            };
            let rule = match p {
                Py::Bool(true) => AuthzRule::Allow,
                Py::Bool(false) => AuthzRule::Deny,
                Py::Str(s) if s == "auth" => AuthzRule::Authenticated,
                Py::Func(id) => AuthzRule::Function(FunctionRef(*id)),
                other => {
                    return Err(args.type_error(action, "False, True, 'auth' or a function", other))
                }
            };
            authz.actions.insert(action.to_string(), rule);
        }
        if let Some(p) = args.get("default_action") {
            let rule = match p {
                Py::Bool(true) => AuthzRule::Allow,
                Py::Bool(false) => AuthzRule::Deny,
                Py::Str(s) if s == "auth" => AuthzRule::Authenticated,
                other => {
                    return Err(args.type_error("default_action", "False, True or 'auth'", other))
                }
            };
            for action in AUTHZ_ACTIONS {
                authz
                    .actions
                    .entry(action.to_string())
                    .or_insert_with(|| rule.clone());
            }
        }
        authz.auth = match args.get("auth") {
            None => None,
            Some(p) => Some(self.auth("Authz", obj.line, p)?),
        };
        authz.use_http_header = args.bool_or("useHttpHeader", false)?;
        authz.http_login_url = args.opt_str("httpLoginUrl")?;
        Ok(authz)
    }

    fn auth(&self, owner: &str, line: u32, p: &Py) -> Result<AuthConfig, ConfigError> {
        let wrong = |got: String| {
            self.at(
                line,
                format!(
                    "{owner}: 'auth' must be an authentication object such as BasicAuth, got {got}"
                ),
            )
        };
        let Py::Obj(obj) = p else {
            return Err(wrong(p.type_name()));
        };
        match obj.class.as_str() {
            "BasicAuth" | "UserPasswordAuth" => {
                let args = Args::new(self.file, obj, &["users"], &[])?;
                let mut users = Vec::new();
                match args.get("users") {
                    Some(Py::List(items) | Py::Tuple(items)) => {
                        for item in items {
                            match item {
                                Py::Tuple(pair) | Py::List(pair) if pair.len() == 2 => {
                                    match (&pair[0], &pair[1]) {
                                        (Py::Str(u), Py::Str(pw)) => {
                                            users.push((u.clone(), pw.clone()))
                                        }
                                        _ => {
                                            return Err(args.type_error(
                                                "users",
                                                "a list of (user, password) string pairs",
                                                item,
                                            ))
                                        }
                                    }
                                }
                                other => {
                                    return Err(args.type_error(
                                        "users",
                                        "a list of (user, password) pairs",
                                        other,
                                    ))
                                }
                            }
                        }
                    }
                    Some(Py::Dict(entries)) => {
                        for (u, pw) in entries {
                            match (u, pw) {
                                (Py::Str(u), Py::Str(pw)) => users.push((u.clone(), pw.clone())),
                                _ => {
                                    return Err(args.type_error(
                                        "users",
                                        "a dict of user names to passwords",
                                        pw,
                                    ))
                                }
                            }
                        }
                    }
                    Some(other) => {
                        return Err(args.type_error(
                            "users",
                            "a list of (user, password) pairs",
                            other,
                        ))
                    }
                    None => {
                        return Err(
                            args.error(format!("{}: missing required argument 'users'", obj.class))
                        )
                    }
                }
                Ok(AuthConfig::Users(users))
            }
            "HTPasswdAuth" | "HTPasswdAprAuth" => {
                let args = Args::new(self.file, obj, &["file"], &[])?;
                let file = args.req_str("file")?;
                self.check_file(obj.line, &file, &obj.class)?;
                Ok(AuthConfig::HtPasswd(file))
            }
            "UsersAuth" => {
                Args::new(self.file, obj, &[], &[])?;
                Ok(AuthConfig::UsersTable)
            }
            "RemoteUserAuth" => {
                let args = Args::new(self.file, obj, &[], &["header", "headerRegex"])?;
                Ok(AuthConfig::RemoteUser {
                    header: args
                        .opt_str("header")?
                        .unwrap_or_else(|| "REMOTE_USER".to_string()),
                })
            }
            other => Err(wrong(other.to_string())),
        }
    }

    /// `c['www'] = {...}`.
    fn www_dict(&self, value: &Py, www: &mut WwwConfig) -> Result<(), ConfigError> {
        let Py::Dict(entries) = value else {
            return Err(self.key_error(
                "www",
                format!("c['www'] must be a dict, got {}", value.type_name()),
            ));
        };
        let err = |m: String| self.key_error("www", m);
        for (k, v) in entries {
            let Py::Str(k) = k else {
                return Err(err("c['www'] keys must be strings".to_string()));
            };
            match (k.as_str(), v) {
                ("port", v) => {
                    www.listen =
                        Some(parse_listen(v).map_err(|m| err(format!("c['www']['port']: {m}")))?)
                }
                ("auth", v) => {
                    www.authz.auth = Some(
                        self.auth(
                            "c['www']",
                            KeyLines {
                                source: self.source,
                            }
                            .line("auth"),
                            v,
                        )?,
                    );
                }
                ("authz", Py::Obj(obj)) if obj.class == "Authz" => {
                    let args = Args::new(
                        self.file,
                        obj,
                        &[],
                        &["allowRules", "roleMatchers", "stringsMatcher"],
                    )?;
                    if let Some(rules) = args.get("allowRules") {
                        www.options
                            .insert("authz_rules".to_string(), to_json(rules));
                    }
                    if let Some(matchers) = args.get("roleMatchers") {
                        www.options
                            .insert("role_matchers".to_string(), to_json(matchers));
                    }
                }
                ("change_hook_dialects", Py::Dict(entries)) => {
                    let mut out = BTreeMap::new();
                    for (dk, dv) in entries {
                        let Py::Str(dk) = dk else {
                            return Err(err(
                                "change_hook_dialects keys must be strings".to_string()
                            ));
                        };
                        match dv {
                            Py::Bool(false) => {}
                            Py::Bool(true) => {
                                out.insert(dk.clone(), Json::Object(serde_json::Map::new()));
                            }
                            other => {
                                out.insert(dk.clone(), to_json(other));
                            }
                        }
                    }
                    www.change_hook_dialects = out;
                }
                ("change_hook_auth", v) => {
                    let entries = match v {
                        Py::Str(s) => vec![s.clone()],
                        Py::List(items) | Py::Tuple(items) => items
                            .iter()
                            .map(|i| match i {
                                Py::Str(s) => Ok(s.clone()),
                                other => Err(err(format!(
                                    "change_hook_auth entries must be strings, got {}",
                                    other.type_name()
                                ))),
                            })
                            .collect::<Result<_, _>>()?,
                        other => {
                            return Err(err(format!(
                                "change_hook_auth must be a list, got {}",
                                other.type_name()
                            )))
                        }
                    };
                    self.check_change_hook_auth(
                        KeyLines {
                            source: self.source,
                        }
                        .line("www"),
                        &entries,
                    )?;
                    www.change_hook_auth = entries;
                }
                ("buildbot_ui", v) => {
                    www.buildbot_ui = crate::buildbot_ui::parse(v).map_err(err)?
                }
                ("plugins", Py::Dict(_)) => {
                    www.options.insert("plugins".to_string(), to_json(v));
                }
                ("plugins", other) => {
                    return Err(err(format!(
                        "c['www']['plugins'] must be a dict, got {}",
                        other.type_name()
                    )))
                }
                (name, Py::Func(id)) => {
                    www.functions.insert(name.to_string(), FunctionRef(*id));
                }
                (name, other) => {
                    www.options.insert(name.to_string(), to_json(other));
                }
            }
        }
        Ok(())
    }

    /// Cross-object checks: workers, builders and schedulers that refer to each other.
    fn validate(&self, cfg: &MasterConfig) -> Result<(), ConfigError> {
        let mut workers = BTreeSet::new();
        for worker in &cfg.workers {
            if !workers.insert(worker.name.as_str()) {
                return Err(self.at(
                    worker.location.line,
                    format!("duplicate worker name '{}'", worker.name),
                ));
            }
        }
        let mut builders = BTreeSet::new();
        for builder in &cfg.builders {
            if !builders.insert(builder.name.as_str()) {
                return Err(self.at(
                    builder.location.line,
                    format!("duplicate builder name '{}'", builder.name),
                ));
            }
            if builder.workernames.is_empty() {
                return Err(self.at(
                    builder.location.line,
                    format!("builder '{}' has no workers", builder.name),
                ));
            }
            for name in &builder.workernames {
                if !workers.contains(name.as_str()) {
                    return Err(self.at(
                        builder.location.line,
                        format!("builder '{}' names unknown worker '{name}'", builder.name),
                    ));
                }
            }
        }
        let mut schedulers = BTreeSet::new();
        for scheduler in &cfg.schedulers {
            if !schedulers.insert(scheduler.name.as_str()) {
                return Err(self.at(
                    scheduler.location.line,
                    format!("duplicate scheduler name '{}'", scheduler.name),
                ));
            }
            for name in &scheduler.builder_names {
                if !builders.contains(name.as_str()) {
                    return Err(self.at(
                        scheduler.location.line,
                        format!(
                            "scheduler '{}' names unknown builder '{name}'",
                            scheduler.name
                        ),
                    ));
                }
            }
        }
        for builder in &cfg.builders {
            for step in &builder.factory.steps {
                if let StepKind::Trigger {
                    scheduler_names, ..
                } = &step.kind
                {
                    for name in scheduler_names {
                        let known = cfg.schedulers.iter().any(|s| {
                            &s.name == name && matches!(s.kind, SchedulerKind::Triggerable)
                        });
                        if !known {
                            return Err(self.at(
                                step.common.location.line,
                                format!("Trigger names unknown Triggerable scheduler '{name}'"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn default_text_parameter(name: &str) -> ForceParameter {
    ForceParameter {
        name: name.to_string(),
        label: format!("{name}:"),
        kind: "text".to_string(),
        default: Json::String(String::new()),
        required: false,
        choices: Vec::new(),
        regex: None,
    }
}

/// A port number, or a strports string (`tcp:8080:interface=127.0.0.1`, `unix:/path`).
fn parse_listen(value: &Py) -> Result<Listen, String> {
    match value {
        Py::Int(port) => u16::try_from(*port)
            .map(|port| Listen::Tcp {
                port,
                interface: None,
            })
            .map_err(|_| format!("port {port} is out of range")),
        Py::Str(spec) => {
            if let Ok(port) = spec.parse::<u16>() {
                return Ok(Listen::Tcp {
                    port,
                    interface: None,
                });
            }
            if let Some(path) = spec.strip_prefix("unix:") {
                let path = path.split(':').next().unwrap_or_default();
                let path = path.strip_prefix("address=").unwrap_or(path);
                return Ok(Listen::Unix(path.to_string()));
            }
            if let Some(rest) = spec.strip_prefix("ssl:") {
                return parse_tls_listen(spec, rest);
            }
            let Some(rest) = spec.strip_prefix("tcp:") else {
                return Err(format!("'{spec}' is not a port or a strports string"));
            };
            let mut parts = rest.split(':');
            let port = parts.next().unwrap_or_default();
            let port = port.strip_prefix("port=").unwrap_or(port);
            let port: u16 = port
                .parse()
                .map_err(|_| format!("'{spec}' has a bad port"))?;
            let mut interface = None;
            for part in parts {
                if let Some(i) = part.strip_prefix("interface=") {
                    interface = Some(i.to_string());
                }
            }
            Ok(Listen::Tcp { port, interface })
        }
        other => Err(format!(
            "must be an int or a strports string, got {}",
            other.type_name()
        )),
    }
}

/// What `c['protocols']` sets.
#[derive(Default)]
struct Protocols {
    listen: Option<Listen>,
    max_connections: Option<u32>,
}

/// `ssl:PORT:privateKey=FILE[:certKey=FILE][:interface=ADDR]` (Twisted's strports syntax).
fn parse_tls_listen(spec: &str, rest: &str) -> Result<Listen, String> {
    let mut parts = rest.split(':');
    let port = parts.next().unwrap_or_default();
    let port = port.strip_prefix("port=").unwrap_or(port);
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{spec}' has a bad port"))?;
    let (mut interface, mut private_key, mut cert_key) = (None, None, None);
    for part in parts {
        match part.split_once('=') {
            Some(("interface", v)) => interface = Some(v.to_string()),
            Some(("privateKey", v)) => private_key = Some(v.to_string()),
            Some(("certKey", v)) => cert_key = Some(v.to_string()),
            _ => {
                return Err(format!(
                "'{spec}': unknown option '{part}' (expected privateKey=, certKey= or interface=)"
            ))
            }
        }
    }
    let Some(private_key) = private_key else {
        return Err(format!(
            "'{spec}' needs privateKey=FILE (a PEM private key)"
        ));
    };
    Ok(Listen::Tls {
        port,
        interface,
        cert_key: cert_key.unwrap_or_else(|| private_key.clone()),
        private_key,
    })
}

/// The types a status target argument may have.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Num,
    StrList,
    List,
    Dict,
    Func,
    Rend,
    IntOrStr,
    BoolOrStrList,
    StrOrObjOrFunc,
    DictOrFunc,
    FuncOrFormatter,
    Any,
}

fn check_type(args: &Args<'_>, name: &str, p: &Py, ty: Ty) -> Result<(), ConfigError> {
    let is_str_list = |p: &Py| match p {
        Py::Str(_) => true,
        Py::List(items) | Py::Tuple(items) => items.iter().all(|i| matches!(i, Py::Str(_))),
        _ => false,
    };
    // The seed documents some arguments by type (`PBListener(port=int, user=str)`).
    let placeholder = match p {
        Py::Builtin(name) => Some(name.as_str()),
        _ => None,
    };
    if matches!(
        (placeholder, ty),
        (Some("int"), Ty::Int | Ty::IntOrStr | Ty::Num) | (Some("str"), Ty::Str | Ty::IntOrStr)
    ) {
        return Ok(());
    }
    let (ok, expected) = match ty {
        Ty::Str => (matches!(p, Py::Str(_)), "a string"),
        Ty::Int => (matches!(p, Py::Int(_)), "an int"),
        Ty::Bool => (matches!(p, Py::Bool(_) | Py::Int(_)), "a bool"),
        Ty::Num => (matches!(p, Py::Int(_) | Py::Float(_)), "a number"),
        Ty::StrList => (is_str_list(p), "a string or a list of strings"),
        Ty::List => (matches!(p, Py::List(_) | Py::Tuple(_)), "a list"),
        Ty::Dict => (matches!(p, Py::Dict(_)), "a dict"),
        Ty::Func => (matches!(p, Py::Func(_)), "a function"),
        Ty::Rend => (
            matches!(p, Py::Str(_)) || to_renderable(p).is_some(),
            "a string or a renderable",
        ),
        Ty::IntOrStr => (
            matches!(p, Py::Int(_) | Py::Str(_)),
            "an int or a strports string",
        ),
        Ty::BoolOrStrList => (
            matches!(p, Py::Bool(_)) || is_str_list(p),
            "a bool or a list of strings",
        ),
        Ty::StrOrObjOrFunc => (
            matches!(p, Py::Str(_) | Py::Obj(_) | Py::Func(_)),
            "a string, a Domain or a function",
        ),
        Ty::DictOrFunc => (
            matches!(p, Py::Dict(_) | Py::Func(_)),
            "a dict or a function",
        ),
        Ty::FuncOrFormatter => (
            match p {
                Py::Func(_) => true,
                Py::Obj(f) => f.class == crate::message_formatter::CLASS,
                _ => false,
            },
            "a function or a MessageFormatter",
        ),
        Ty::Any => (true, "anything"),
    };
    match ok {
        true => Ok(()),
        false => Err(args.type_error(name, expected, p)),
    }
}

/// Schedulers accepted in `c['schedulers']`.
const SCHEDULERS: &[&str] = &[
    "SingleBranchScheduler",
    "AnyBranchScheduler",
    "ForceScheduler",
    "Periodic",
    "Nightly",
    "Triggerable",
];

/// Status targets accepted in `c['status']` / `c['services']`.
const STATUS_TARGETS: &[&str] = &[
    "WebStatus",
    "Waterfall",
    "MailNotifier",
    "IRC",
    "PBListener",
    "StatusPush",
    "HttpStatusPush",
    "GerritStatusPush",
    "GitHubStatus",
];

/// Force scheduler parameter classes.
const PARAMETERS: &[&str] = &[
    "StringParameter",
    "IntParameter",
    "BooleanParameter",
    "ChoiceStringParameter",
    "FixedParameter",
    "TextParameter",
    "UserNameParameter",
];

/// The actions of seed 002's Authz.
const AUTHZ_ACTIONS: &[&str] = &[
    "view",
    "forceBuild",
    "forceAllBuilds",
    "pingBuilder",
    "gracefulShutdown",
    "pauseSlave",
    "stopBuild",
    "stopAllBuilds",
    "cancelPendingBuild",
    "cancelAllPendingBuilds",
    "stopChange",
    "cleanShutdown",
    "showUsersPage",
];

const COMMON_STEP_OPTIONS: &[&str] = &[
    "name",
    "description",
    "descriptionDone",
    "descriptionSuffix",
    "haltOnFailure",
    "flunkOnFailure",
    "warnOnFailure",
    "flunkOnWarnings",
    "warnOnWarnings",
    "alwaysRun",
    "doStepIf",
    "hideStepIf",
    "locks",
    "logEncoding",
    "workdir",
];

const SHELL_OPTIONS: &[&str] = &[
    "command",
    "env",
    "timeout",
    "maxTime",
    "logfiles",
    "lazylogfiles",
    "decodeRC",
    "usePTY",
    "interruptSignal",
    "sigtermTime",
    "want_stdout",
    "want_stderr",
    "initialStdin",
    "logEnviron",
];

const GIT_OPTIONS: &[&str] = &[
    "codebase",
    "submodules",
    "shallow",
    "progress",
    "retryFetch",
    "clobberOnFailure",
    "getDescription",
    "config",
    "origin",
    "sshPrivateKey",
    "alwaysUseLatest",
    "retry",
    "reference",
    "timeout",
    "logEnviron",
    "env",
];

const WEBSTATUS_POSITIONAL: &[&str] = &[
    "http_port",
    "distrib_port",
    "allowForce",
    "public_html",
    "site",
    "numbuilds",
    "num_events",
    "num_events_max",
    "auth",
    "order_console_by_time",
    "changecommentlink",
    "revlink",
    "projects",
    "repositories",
    "authz",
    "logRotateLength",
    "maxRotatedFiles",
    "change_hook_dialects",
    "provide_feeds",
    "jinja_loaders",
    "change_hook_auth",
];

const WEBSTATUS_ARGS: &[(&str, Ty)] = &[
    ("http_port", Ty::IntOrStr),
    ("distrib_port", Ty::IntOrStr),
    ("allowForce", Ty::Bool),
    ("public_html", Ty::Str),
    ("site", Ty::Any),
    ("numbuilds", Ty::Int),
    ("num_events", Ty::Int),
    ("num_events_max", Ty::Int),
    ("auth", Ty::Any),
    ("order_console_by_time", Ty::Bool),
    ("changecommentlink", Ty::Any),
    ("revlink", Ty::Any),
    ("projects", Ty::DictOrFunc),
    ("repositories", Ty::DictOrFunc),
    ("authz", Ty::Any),
    ("logRotateLength", Ty::Int),
    ("rotateLength", Ty::Int),
    ("maxRotatedFiles", Ty::Int),
    ("change_hook_dialects", Ty::Dict),
    ("provide_feeds", Ty::StrList),
    ("jinja_loaders", Ty::List),
    ("change_hook_auth", Ty::StrList),
];

/// One status target's documented arguments.
struct Spec {
    class: &'static str,
    positional: &'static [&'static str],
    required: &'static [&'static str],
    args: &'static [(&'static str, Ty)],
}

const MAIL_ARGS: &[(&str, Ty)] = &[
    ("fromaddr", Ty::Str),
    ("mode", Ty::StrList),
    ("categories", Ty::StrList),
    ("builders", Ty::StrList),
    ("addLogs", Ty::BoolOrStrList),
    ("relayhost", Ty::Str),
    ("buildSetSummary", Ty::Bool),
    ("subject", Ty::Str),
    ("lookup", Ty::StrOrObjOrFunc),
    ("extraRecipients", Ty::StrList),
    ("sendToInterestedUsers", Ty::Bool),
    ("customMesg", Ty::Func),
    ("messageFormatter", Ty::FuncOrFormatter),
    ("extraHeaders", Ty::Dict),
    ("addPatch", Ty::Bool),
    ("useTls", Ty::Bool),
    ("useSmtps", Ty::Bool),
    ("smtpUser", Ty::Str),
    ("smtpPassword", Ty::Str),
    ("smtpPort", Ty::Int),
    ("previousBuildGetter", Ty::Func),
];

const IRC_ARGS: &[(&str, Ty)] = &[
    ("host", Ty::Str),
    ("nick", Ty::Str),
    ("channels", Ty::List),
    ("pm_to_nicks", Ty::StrList),
    ("port", Ty::Int),
    ("allowForce", Ty::Bool),
    ("categories", Ty::StrList),
    ("password", Ty::Str),
    ("notify_events", Ty::Dict),
    ("noticeOnChannel", Ty::Bool),
    ("showBlameList", Ty::Bool),
    ("useRevisions", Ty::Bool),
    ("useSSL", Ty::Bool),
    ("lostDelay", Ty::Num),
    ("failedDelay", Ty::Num),
    ("useColors", Ty::Bool),
    ("allowShutdown", Ty::Bool),
];

const STATUS_PUSH_ARGS: &[(&str, Ty)] = &[
    ("serverPushCb", Ty::Func),
    ("queue", Ty::Any),
    ("path", Ty::Str),
    ("filter", Ty::Bool),
    ("bufferDelay", Ty::Num),
    ("retryDelay", Ty::Num),
    ("blackList", Ty::StrList),
    ("whiteList", Ty::StrList),
];

const HTTP_PUSH_ARGS: &[(&str, Ty)] = &[
    ("serverUrl", Ty::Str),
    ("debug", Ty::Bool),
    ("user", Ty::Str),
    ("password", Ty::Str),
    ("path", Ty::Str),
    ("filter", Ty::Bool),
    ("bufferDelay", Ty::Num),
    ("retryDelay", Ty::Num),
    ("blackList", Ty::StrList),
    ("whiteList", Ty::StrList),
    ("maxMemoryItems", Ty::Int),
    ("maxDiskItems", Ty::Int),
    ("chunkSize", Ty::Int),
    ("maxHttpRequestSize", Ty::Int),
];

const GERRIT_ARGS: &[(&str, Ty)] = &[
    ("server", Ty::Str),
    ("username", Ty::Str),
    ("reviewCB", Ty::Func),
    ("startCB", Ty::Func),
    ("port", Ty::Int),
    ("reviewArg", Ty::Any),
    ("startArg", Ty::Any),
    ("summaryCB", Ty::Func),
    ("summaryArg", Ty::Any),
    ("identity_file", Ty::Str),
];

const GITHUB_ARGS: &[(&str, Ty)] = &[
    ("token", Ty::Str),
    ("repoOwner", Ty::Rend),
    ("repoName", Ty::Rend),
    ("sha", Ty::Rend),
    ("startDescription", Ty::Rend),
    ("endDescription", Ty::Rend),
    ("baseURL", Ty::Str),
];

const STATUS_SPECS: &[Spec] = &[
    Spec {
        class: "MailNotifier",
        positional: &[
            "fromaddr",
            "mode",
            "categories",
            "builders",
            "addLogs",
            "relayhost",
            "buildSetSummary",
            "subject",
            "lookup",
            "extraRecipients",
            "sendToInterestedUsers",
            "customMesg",
            "messageFormatter",
            "extraHeaders",
            "addPatch",
            "useTls",
            "smtpUser",
            "smtpPassword",
            "smtpPort",
        ],
        required: &["fromaddr"],
        args: MAIL_ARGS,
    },
    Spec {
        class: "IRC",
        positional: &[
            "host",
            "nick",
            "channels",
            "pm_to_nicks",
            "port",
            "allowForce",
            "categories",
            "password",
            "notify_events",
            "noticeOnChannel",
            "showBlameList",
            "useRevisions",
            "useSSL",
            "lostDelay",
            "failedDelay",
            "useColors",
            "allowShutdown",
        ],
        required: &["host", "nick"],
        args: IRC_ARGS,
    },
    Spec {
        class: "PBListener",
        positional: &["port", "user", "passwd"],
        required: &["port"],
        args: &[
            ("port", Ty::IntOrStr),
            ("user", Ty::Str),
            ("passwd", Ty::Str),
        ],
    },
    Spec {
        class: "StatusPush",
        positional: &[
            "serverPushCb",
            "queue",
            "path",
            "filter",
            "bufferDelay",
            "retryDelay",
            "blackList",
            "whiteList",
        ],
        required: &["serverPushCb"],
        args: STATUS_PUSH_ARGS,
    },
    Spec {
        class: "HttpStatusPush",
        positional: &["serverUrl"],
        required: &["serverUrl"],
        args: HTTP_PUSH_ARGS,
    },
    Spec {
        class: "GerritStatusPush",
        positional: &[
            "server",
            "username",
            "reviewCB",
            "startCB",
            "port",
            "reviewArg",
            "startArg",
            "summaryCB",
            "summaryArg",
            "identity_file",
        ],
        required: &["server", "username"],
        args: GERRIT_ARGS,
    },
    Spec {
        class: "GitHubStatus",
        positional: &["token", "repoOwner", "repoName"],
        required: &["token", "repoOwner", "repoName"],
        args: GITHUB_ARGS,
    },
];
