//! `messageFormatter=reporters.MessageFormatter(...)`: mail bodies and subjects from Jinja
//! templates (minijinja), with the context Buildbot 4 gives its templates.
//!
//! The config crate has read the template files and checked their syntax; here they are
//! compiled once per notifier and rendered per build. The context has Buildbot 4's names
//! (`build`, `buildername`, `build_url`, `results`, `result_names`, `status_detected`,
//! `summary`, `projects`, `workername`, `blamelist`, `sourcestamps`, `buildbot_title`,
//! `buildbot_url`, `mode`, `is_buildset`, `previous_results`, `buildset`), the older
//! `buildurl` and `title`, a flat `changes` list, and the formatter's `ctx`. Python's
//! `dict.get`, `dict.items`, `str.join` and the other common methods work (minijinja's
//! pycompat), so Buildbot templates move over unchanged in the common cases.
//!
//! HTML templates autoescape; plain templates and subjects do not (a subject is a header,
//! not HTML). A render error is returned, never a panic: the caller records it in the
//! outbox as a failed message.

use std::fmt;

use config::ConfigValue;
use minijinja::{AutoEscape, Environment};
use model::Results;
use serde_json::{json, Map, Value as Json};

use crate::build_status::BuildSnapshot;
use crate::targets::mail::message::MailBody;

/// Buildbot 4's default mail template, adapted to the context this module gives.
const DEFAULT_PLAIN: &str = include_str!("templates/default_mail.txt");

/// The HTML counterpart, for `template_type='html'` without a template.
const DEFAULT_HTML: &str = include_str!("templates/default_mail.html");

/// Template instructions one render may run: far more than a mail needs, and a runaway
/// template (nested loops over `range`) stops within a second.
const TEMPLATE_FUEL: u64 = 5_000_000;

/// Plain text or HTML, as `template_type` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateType {
    /// `text/plain`, not escaped.
    Plain,
    /// `text/html`, autoescaped.
    Html,
}

/// What the template's `build` carries besides the basics (Buildbot's `want_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wants {
    /// `build.properties` (default true).
    pub properties: bool,
    /// `build.steps`.
    pub steps: bool,
    /// Each step's `logs` (names and URLs).
    pub logs: bool,
    /// Each log's `content.content`: its text (the last lines, see
    /// [`crate::targets::mail::message::ATTACHED_LOG_LINES`]).
    pub logs_content: bool,
}

/// A compiled `MessageFormatter`.
pub struct TemplateFormatter {
    env: Environment<'static>,
    body_name: String,
    /// The subject template's name, when the formatter has one.
    subject_name: Option<String>,
    template_type: TemplateType,
    wants: Wants,
    ctx: Map<String, Json>,
}

impl fmt::Debug for TemplateFormatter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateFormatter")
            .field("template", &self.body_name)
            .field("template_type", &self.template_type)
            .field("wants", &self.wants)
            .finish()
    }
}

/// What rendering needs besides the build: the notifier's mode words, the previous
/// build's result as the mode sees it, and whether this is a buildset summary.
pub struct RenderInput<'a> {
    /// The build.
    pub build: &'a BuildSnapshot,
    /// `mode`, as the user wrote it with shortcuts expanded.
    pub mode: &'a [String],
    /// The previous build's result (`None`: no previous build, or it has no result).
    pub previous_results: Option<Results>,
    /// True for `buildSetSummary` mail.
    pub is_buildset: bool,
}

impl TemplateFormatter {
    /// Compiles the `MessageFormatter` object the config crate made.
    pub fn from_config(
        args: &std::collections::BTreeMap<String, ConfigValue>,
    ) -> Result<TemplateFormatter, String> {
        let text = |name: &str| match args.get(name) {
            Some(ConfigValue::Value(Json::String(s))) => Some(s.clone()),
            _ => None,
        };
        let flag = |name: &str, default: bool| match args.get(name) {
            Some(ConfigValue::Value(Json::Bool(b))) => *b,
            _ => default,
        };
        let template_type = match text("template_type").as_deref() {
            None | Some("plain") => TemplateType::Plain,
            Some("html") => TemplateType::Html,
            Some(other) => return Err(format!("template_type '{other}' is not plain or html")),
        };
        let body = text("template").unwrap_or_else(|| {
            match template_type {
                TemplateType::Plain => DEFAULT_PLAIN,
                TemplateType::Html => DEFAULT_HTML,
            }
            .to_string()
        });
        let body_name = text("template_name").unwrap_or_else(|| "template".to_string());
        let subject_name = text("subject_name").unwrap_or_else(|| "subject".to_string());
        let subject = text("subject");
        let ctx = match args.get("ctx") {
            Some(ConfigValue::Value(Json::Object(map))) => map.clone(),
            _ => Map::new(),
        };
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // Escaping follows template_type, not the file name: `mail.txt` may hold HTML.
        let escaped = body_name.clone();
        env.set_auto_escape_callback(move |name| match (name == escaped, template_type) {
            (true, TemplateType::Html) => AutoEscape::Html,
            _ => AutoEscape::None,
        });
        if subject_name == body_name {
            return Err(format!(
                "the template and the subject are both named {body_name}"
            ));
        }
        // Buildbot renders mail templates with `StrictUndefined`: a misspelt name is an
        // error that the outbox shows, not an empty string in a mail.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // A template is user code run for every mail: one that loops without end (nested
        // `range` loops) must fail its mail, not hold the notifier's task.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.add_template_owned(body_name.clone(), body)
            .map_err(|e| format!("cannot compile the template: {e}"))?;
        let subject_name = match subject {
            Some(subject) => {
                env.add_template_owned(subject_name.clone(), subject)
                    .map_err(|e| format!("cannot compile the subject: {e}"))?;
                Some(subject_name)
            }
            None => None,
        };
        Ok(TemplateFormatter {
            env,
            body_name,
            subject_name,
            template_type,
            wants: Wants {
                properties: flag("want_properties", true),
                steps: flag("want_steps", false),
                logs: flag("want_logs", false),
                logs_content: flag("want_logs_content", false),
            },
            ctx,
        })
    }

    /// What the template asks of the build snapshot.
    pub fn wants(&self) -> Wants {
        self.wants
    }

    /// The body (plain or HTML) and, if the formatter has one, the subject (one line).
    pub fn render(&self, input: &RenderInput<'_>) -> Result<(MailBody, Option<String>), String> {
        let context = config::template_value(&self.context(input));
        let body = self
            .env
            .get_template(&self.body_name)
            .and_then(|t| t.render(&context))
            .map_err(|e| describe(&e))?;
        let subject = match &self.subject_name {
            Some(name) => Some(
                self.env
                    .get_template(name)
                    .and_then(|t| t.render(&context))
                    .map_err(|e| describe(&e))?,
            ),
            None => None,
        };
        // A subject is one header line: a template's line breaks must not add headers.
        let subject = subject.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
        let body = match self.template_type {
            TemplateType::Plain => MailBody {
                text: Some(body),
                html: None,
            },
            TemplateType::Html => MailBody {
                text: None,
                html: Some(body),
            },
        };
        Ok((body, subject))
    }

    /// Buildbot 4's template context for one build.
    fn context(&self, input: &RenderInput<'_>) -> Json {
        let build = input.build;
        let status = &build.status;
        let results = build.results;
        let projects = projects(build);
        let mut context = json!({
            "results": results.code(),
            "result_names": Results::ALL.iter().map(|r| r.name()).collect::<Vec<_>>(),
            "mode": input.mode,
            "buildername": status.builder_name,
            "workername": status.worker_name,
            "buildset": buildset(build),
            "build": self.build(build),
            "is_buildset": input.is_buildset,
            "projects": projects,
            "previous_results": input.previous_results.map(Results::code),
            "status_detected": status_detected(input.mode, results, input.previous_results),
            "build_url": status.url,
            "buildurl": status.url,
            "buildbot_title": build.title,
            "title": build.title,
            "buildbot_url": build.buildbot_url,
            "blamelist": status.responsible_users,
            "summary": summary(results, &status.text),
            "sourcestamps": source_stamp_text(build),
            "changes": status.source_stamps.iter().flat_map(|ss| ss.changes.iter()).map(change).collect::<Vec<_>>(),
        });
        if let Json::Object(map) = &mut context {
            for (k, v) in &self.ctx {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        context
    }

    /// The `build` dict: Buildbot's fields, properties as `[value, source]`, and steps and
    /// logs as the formatter wants them.
    fn build(&self, build: &BuildSnapshot) -> Json {
        let status = &build.status;
        let properties: Map<String, Json> = match self.wants.properties {
            true => status
                .properties
                .iter()
                .map(|(k, v, source)| (k.clone(), json!([v, source])))
                .collect(),
            false => Map::new(),
        };
        let mut out = json!({
            "buildid": build.buildid.0,
            "builderid": build.builderid.0,
            "number": status.number,
            "results": build.results.code(),
            "state_string": status.text,
            "complete": true,
            "reason": status.reason,
            "url": status.url,
            "properties": properties,
            "builder": {"name": status.builder_name, "builderid": build.builderid.0, "tags": build.builder.categories},
            "buildset": buildset(build),
            "prev_build": status.previous.as_ref().map(|p| json!({"number": p.number, "results": p.results, "url": p.url})),
        });
        if self.wants.steps {
            if let Json::Object(map) = &mut out {
                map.insert("steps".into(), self.steps(build));
            }
        }
        out
    }

    fn steps(&self, build: &BuildSnapshot) -> Json {
        let status = &build.status;
        let steps: Vec<Json> = status
            .steps
            .iter()
            .enumerate()
            .map(|(number, step)| {
                let mut out = json!({
                    "number": number,
                    "name": step.name,
                    "results": step.results,
                    "state_string": step.text,
                    "complete": step.finished,
                });
                if self.wants.logs {
                    let logs: Vec<Json> = step
                        .logs
                        .iter()
                        .map(|log| {
                            let mut entry = json!({
                                "name": log.name,
                                "url": format!("{}/steps/{}/logs/{}", status.url, step.name, log.name),
                            });
                            if self.wants.logs_content {
                                entry["content"] = json!({"content": log.text});
                            }
                            entry
                        })
                        .collect();
                    out["logs"] = Json::Array(logs);
                }
                out
            })
            .collect();
        Json::Array(steps)
    }
}

/// A render error as the outbox shows it: minijinja's message ends with `(in NAME:LINE)`.
fn describe(e: &minijinja::Error) -> String {
    let mut text = format!("template error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// `buildset`: reason and source stamps (each with its changes).
fn buildset(build: &BuildSnapshot) -> Json {
    let status = &build.status;
    let stamps: Vec<Json> = status
        .source_stamps
        .iter()
        .map(|ss| {
            json!({
                "codebase": ss.codebase,
                "branch": ss.branch,
                "revision": ss.revision,
                "repository": ss.repository,
                "project": ss.project,
                "patch": ss.patch.as_ref().map(|p| json!({"level": p.level, "body": p.body, "subdir": p.subdir, "author": p.author, "comment": p.comment})),
                "changes": ss.changes.iter().map(change).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"bsid": build.buildsetid.0, "reason": status.reason, "sourcestamps": stamps})
}

fn change(c: &config::status_objects::ChangeStatus) -> Json {
    json!({
        "changeid": c.number,
        "author": c.who,
        "revision": c.revision,
        "branch": c.branch,
        "when_timestamp": c.when,
        "files": c.files,
        "comments": c.comments,
        "repository": c.repository,
        "project": c.project,
        "category": c.category,
        "revlink": c.revlink,
    })
}

/// Buildbot's `get_projects_text`: the source stamps' projects, or the master's title.
fn projects(build: &BuildSnapshot) -> String {
    let mut projects: Vec<&str> = Vec::new();
    for ss in &build.status.source_stamps {
        if !ss.project.is_empty() && !projects.contains(&ss.project.as_str()) {
            projects.push(&ss.project);
        }
    }
    match projects.is_empty() {
        true => build.title.clone(),
        false => projects.join(", "),
    }
}

/// Buildbot's `get_detected_status_text`.
fn status_detected(mode: &[String], results: Results, previous: Option<Results>) -> String {
    let has = |word: &str| mode.iter().any(|m| m == word);
    match results {
        Results::Failure => {
            let new = (has("change") || has("problem"))
                && previous.is_some_and(|p| p != Results::Failure);
            match new {
                true => "new failure".into(),
                false => "failed build".into(),
            }
        }
        Results::Warnings => "problem in the build".into(),
        Results::Success => {
            let restored = has("change") && previous.is_some_and(|p| p != results);
            match restored {
                true => "restored build".into(),
                false => "passing build".into(),
            }
        }
        Results::Exception => "build exception".into(),
        other => format!("{} build", other.name()),
    }
}

/// Buildbot's `get_message_summary_text`.
fn summary(results: Results, state_string: &str) -> String {
    let tail = match state_string.is_empty() {
        true => String::new(),
        false => format!(": {state_string}"),
    };
    match results {
        Results::Success => "Build succeeded!".into(),
        Results::Warnings => format!("Build Had Warnings{tail}"),
        Results::Cancelled => "Build was cancelled".into(),
        _ => format!("BUILD FAILED{tail}"),
    }
}

/// Buildbot's `get_message_source_stamp_text`: one `Build Source Stamp` line per stamp.
fn source_stamp_text(build: &BuildSnapshot) -> String {
    let mut text = String::new();
    for ss in &build.status.source_stamps {
        let mut source = String::new();
        if let Some(branch) = ss.branch.as_deref().filter(|b| !b.is_empty()) {
            source.push_str(&format!("[branch {branch}] "));
        }
        source.push_str(
            ss.revision
                .as_deref()
                .filter(|r| !r.is_empty())
                .unwrap_or("HEAD"),
        );
        if ss.patch.is_some() {
            source.push_str(" (plus patch)");
        }
        let discriminator = match ss.codebase.is_empty() {
            true => String::new(),
            false => format!(" '{}'", ss.codebase),
        };
        text.push_str(&format!("Build Source Stamp{discriminator}: {source}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use config::status_objects::{
        BuildStatus, ChangeStatus, LogStatus, SourceStampStatus, StepStatus,
    };

    use super::*;

    /// A failed build 7 of `linux` after a passing one: a change by alice on `main`, one
    /// step with a log, and a property whose value needs escaping in HTML.
    fn build() -> BuildSnapshot {
        let status = BuildStatus {
            builder_name: "linux".into(),
            number: 7,
            results: Some(Results::Failure.code()),
            text: "failed compile".into(),
            reason: "forced by bob".into(),
            properties: vec![
                ("branch".into(), Json::from("main"), "Build".into()),
                ("note".into(), Json::from("<x> & y"), "Force".into()),
            ],
            worker_name: "w1".into(),
            responsible_users: vec!["alice".into(), "carol".into()],
            source_stamps: vec![SourceStampStatus {
                codebase: String::new(),
                branch: Some("main".into()),
                revision: Some("abc123".into()),
                project: "proj".into(),
                changes: vec![ChangeStatus {
                    who: "alice".into(),
                    comments: "fix the build".into(),
                    files: vec!["src/a.rs".into()],
                    ..ChangeStatus::default()
                }],
                ..SourceStampStatus::default()
            }],
            steps: vec![StepStatus {
                name: "compile".into(),
                results: Some(Results::Failure.code()),
                text: "compile failed".into(),
                finished: true,
                logs: vec![LogStatus {
                    name: "stdio".into(),
                    text: "error: <boom>\n".into(),
                }],
            }],
            url: "http://m/builders/linux/builds/7".into(),
            previous: None,
        };
        BuildSnapshot {
            buildid: model::BuildId(70),
            builderid: model::BuilderId(3),
            buildsetid: model::BuildsetId(9),
            builder: crate::BuilderInfo {
                name: "linux".into(),
                categories: vec![],
            },
            results: Results::Failure,
            status: Arc::new(status),
            previous: None,
            properties: model::Properties::new(),
            sourcestamps: vec![],
            user_emails: BTreeMap::new(),
            owners: vec![],
            failing_log: None,
            title: "Proj CI".into(),
            buildbot_url: "http://m/".into(),
        }
    }

    /// Renders `build()` with a `MessageFormatter` of these arguments, after a passing
    /// build, in mode `change`: the subject (or `-`) and the body, or the error.
    fn check(args: &[(&str, Json)]) -> String {
        let args: BTreeMap<String, ConfigValue> = args
            .iter()
            .map(|(k, v)| (k.to_string(), ConfigValue::Value(v.clone())))
            .collect();
        let formatter = match TemplateFormatter::from_config(&args) {
            Ok(it) => it,
            Err(e) => return format!("config error: {e}"),
        };
        let build = build();
        let input = RenderInput {
            build: &build,
            mode: &["change".to_string()],
            previous_results: Some(Results::Success),
            is_buildset: false,
        };
        match formatter.render(&input) {
            Ok((body, subject)) => {
                let (kind, text) = match (body.text, body.html) {
                    (Some(t), None) => ("plain", t),
                    (None, Some(h)) => ("html", h),
                    other => return format!("unexpected body {other:?}"),
                };
                format!("{kind} / {}\n{text}", subject.as_deref().unwrap_or("-"))
            }
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn plain_template_sees_buildbot_context_unescaped() {
        let template = "{{ buildername }} #{{ build.number }}: {{ result_names[results] }} ({{ status_detected }}, {{ summary }})
{{ build_url }} == {{ buildurl }} on {{ workername }} for {{ projects }} in {{ title }} at {{ buildbot_url }}
reason: {{ build.reason }}; branch {{ build.properties.get('branch', ['?'])[0] }}; note {{ build.properties['note'][0] }}
blame: {{ ', '.join(blamelist) }}; team {{ team }}
{% for ss in build.buildset.sourcestamps %}{{ ss.revision }}{% for c in ss.changes %} by {{ c.author }}: {{ c.comments }}{% endfor %}{% endfor %}
{{ sourcestamps }}{% for c in changes %}{{ c.files|join(',') }}{% endfor %}
steps: {{ build.steps is defined }}";
        assert_eq!(
            check(&[
                ("template", Json::from(template)),
                ("template_name", Json::from("mail.txt")),
                ("subject", Json::from("{{ buildername }}\nfailed #{{ build.number }}")),
                ("ctx", json!({"team": "core"})),
            ]),
            "plain / linux failed #7
linux #7: failure (new failure, BUILD FAILED: failed compile)
http://m/builders/linux/builds/7 == http://m/builders/linux/builds/7 on w1 for proj in Proj CI at http://m/
reason: forced by bob; branch main; note <x> & y
blame: alice, carol; team core
abc123 by alice: fix the build
Build Source Stamp: [branch main] abc123
src/a.rs
steps: False"
        );
    }

    #[test]
    fn html_template_autoescapes_values_not_markup() {
        assert_eq!(
            check(&[
                (
                    "template",
                    Json::from("<p>{{ build.properties.note[0] }}</p>{{ '<i>' }}")
                ),
                ("template_name", Json::from("mail.txt")),
                ("template_type", Json::from("html")),
                ("subject", Json::from("{{ build.properties.note[0] }}")),
            ]),
            "html / <x> & y\n<p>&lt;x&gt; &amp; y</p>&lt;i&gt;"
        );
    }

    #[test]
    fn steps_and_logs_when_wanted() {
        let template = "{% for step in build.steps %}{{ step.number }} {{ step.name }} {{ result_names[step.results] }}{% if step.logs is defined %}{% for log in step.logs %} [{{ log.name }} {{ log.url }}{% if log.content is defined %}: {{ log.content.content|trim }}{% endif %}]{% endfor %}{% endif %}{% endfor %}";
        let with = |wants: &[&str]| {
            let mut args = vec![("template", Json::from(template))];
            for w in wants {
                args.push((*w, Json::from(true)));
            }
            check(&args)
        };
        assert_eq!(with(&["want_steps"]), "plain / -\n0 compile failure");
        assert_eq!(
            with(&["want_steps", "want_logs"]),
            "plain / -\n0 compile failure [stdio http://m/builders/linux/builds/7/steps/compile/logs/stdio]"
        );
        assert_eq!(
            with(&["want_steps", "want_logs", "want_logs_content"]),
            "plain / -\n0 compile failure [stdio http://m/builders/linux/builds/7/steps/compile/logs/stdio: error: <boom>]"
        );
        assert_eq!(
            check(&[
                ("template", Json::from("{{ build.properties|length }}")),
                ("want_properties", Json::from(false)),
            ]),
            "plain / -\n0"
        );
    }

    #[test]
    fn render_errors_name_the_template_and_line() {
        assert_eq!(
            check(&[
                ("template", Json::from("ok\n{{ build.nosuch.field }}")),
                ("template_name", Json::from("mail.txt")),
            ]),
            "error: template error: undefined value: `build.nosuch` is undefined (in mail.txt:2)"
        );
        let got = check(&[
            ("template", Json::from("fine")),
            ("subject", Json::from("{{ buildername.nosuch() }}")),
            ("subject_name", Json::from("subject (master.cfg:9)")),
        ]);
        assert!(
            got.starts_with("error: template error: ")
                && got.contains("(in subject (master.cfg:9):1)"),
            "{got}"
        );
    }

    #[test]
    fn a_runaway_template_fails_its_mail() {
        let got = check(&[(
            "template",
            Json::from(
                "{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}{% endfor %}",
            ),
        )]);
        assert!(got.starts_with("error: ") && got.contains("fuel"), "{got}");
    }

    #[test]
    fn default_templates_render() {
        assert_eq!(
            check(&[]),
            "plain / -
The Buildbot has detected a new failure on builder linux while building proj.
Full details are available at:
    http://m/builders/linux/builds/7

Buildbot URL: http://m/

Worker for this Build: w1

Build Reason: forced by bob
Build Source Stamp: [branch main] abc123
Blamelist: alice, carol

BUILD FAILED: failed compile

Sincerely,
 -The Buildbot"
        );
        let html = check(&[("template_type", Json::from("html"))]);
        for needle in [
            "html / -\n<html><body>",
            "<b>new failure</b> on builder <b>linux</b>",
            // minijinja's HTML escaping writes `/` as `&#x2f;`, which mail readers decode.
            "<a href=\"http:&#x2f;&#x2f;m&#x2f;builders&#x2f;linux&#x2f;builds&#x2f;7\">",
            "<tr><td>Source stamp:</td><td>[branch main] abc123</td></tr>",
            "<tr><td>Blamelist:</td><td>alice, carol</td></tr>",
        ] {
            assert!(html.contains(needle), "{needle:?} in\n{html}");
        }
    }
}
