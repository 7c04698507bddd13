//! What a mail says: recipients, subject, the default plain and HTML bodies, a formatter's
//! body, and attachments. Pure functions over [`BuildSnapshot`]s.

use std::sync::Arc;

use config::FunctionHost;
use model::Results;
use serde_json::Value as Json;

use crate::build_status::BuildSnapshot;
use crate::targets::mail::config::{AddLogs, Lookup, MailConfig};

/// A mail body: plain text, HTML, or both (sent as `multipart/alternative`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MailBody {
    /// The plain-text part.
    pub text: Option<String>,
    /// The HTML part.
    pub html: Option<String>,
}

/// An attachment: file name and text.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// File name (`compile.stdio`, `source patch`).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// The address in `name`: the part between `<` and `>`, or the whole string when it is a
/// bare address.
pub fn address_of(name: &str) -> Option<String> {
    let name = name.trim();
    if let (Some(start), Some(end)) = (name.find('<'), name.rfind('>')) {
        let inner = name.get(start + 1..end)?.trim();
        return inner.contains('@').then(|| inner.to_string());
    }
    (name.contains('@') && !name.contains(char::is_whitespace)).then(|| name.to_string())
}

/// Who gets the mail: interested users (change authors through `lookup`) and owners when
/// `sendToInterestedUsers`, then `extraRecipients`; each address once, in that order.
pub fn recipients(
    config: &MailConfig,
    builds: &[Arc<BuildSnapshot>],
    functions: &FunctionHost,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |address: Option<String>| {
        if let Some(a) = address {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                out.push(a);
            }
        }
    };
    if config.send_to_interested_users {
        for build in builds {
            for author in &build.status.responsible_users {
                add(look_up(config, build, functions, author));
            }
            for owner in &build.owners {
                let address = match address_of(owner) {
                    Some(a) => Some(a),
                    None => look_up(config, build, functions, owner),
                };
                add(address);
            }
        }
    }
    for extra in &config.extra_recipients {
        add(address_of(extra));
    }
    out
}

/// The address of one user name.
fn look_up(
    config: &MailConfig,
    build: &BuildSnapshot,
    functions: &FunctionHost,
    name: &str,
) -> Option<String> {
    match &config.lookup {
        Lookup::UsersTable => build.user_emails.get(name).cloned(),
        Lookup::Domain(domain) => match address_of(name) {
            Some(a) => Some(a),
            None => {
                let user = name.trim();
                (!user.is_empty() && !user.contains(char::is_whitespace))
                    .then(|| format!("{user}@{domain}"))
            }
        },
        Lookup::Function(f) => match functions.call(*f, &[Json::String(name.to_string())]) {
            Ok(Json::String(address)) => address_of(&address),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, user = %name, "lookup function failed");
                None
            }
        },
    }
}

/// The subject: `%(builder)s`, `%(result)s`, `%(title)s` and `%(projectName)s` replaced.
pub fn subject(template: &str, builder: &str, results: Results, title: &str) -> String {
    template
        .replace("%(builder)s", builder)
        .replace("%(result)s", results.name())
        .replace("%(title)s", title)
        .replace("%(projectName)s", title)
}

/// How the default message names a result.
fn result_phrase(results: Results) -> &'static str {
    match results {
        Results::Success => "passing build",
        Results::Warnings => "build with warnings",
        Results::Failure => "failed build",
        Results::Exception => "build exception",
        Results::Skipped => "skipped build",
        Results::Retry => "build that will be retried",
        Results::Cancelled => "cancelled build",
    }
}

/// One source stamp as a line: `[branch main] 1a2b3c (plus patch)`.
fn source_line(ss: &config::status_objects::SourceStampStatus) -> String {
    let mut out = String::new();
    if !ss.codebase.is_empty() {
        out.push_str(&format!("{}: ", ss.codebase));
    }
    if let Some(branch) = &ss.branch {
        out.push_str(&format!("[branch {branch}] "));
    }
    out.push_str(ss.revision.as_deref().unwrap_or("HEAD"));
    if ss.patch.is_some() {
        out.push_str(" (plus patch)");
    }
    out
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The default message: result, builder, build URL, reason, source stamps, blamelist,
/// changes, and the last lines of the failing step's log; plain and HTML.
pub fn default_body(build: &BuildSnapshot) -> MailBody {
    let status = &build.status;
    let sources: Vec<String> = status.source_stamps.iter().map(source_line).collect();
    let blamelist = status.responsible_users.join(", ");
    let mut text = format!(
        "The Buildbot has detected a {} on builder {} while building {}.\n\
         Full details are available at:\n    {}\n\n\
         Buildbot URL: {}\n\n\
         Buildslave for this Build: {}\n\n\
         Build Reason: {}\n\
         Build Source Stamp: {}\n\
         Blamelist: {}\n\n\
         {}: {}\n",
        result_phrase(build.results),
        status.builder_name,
        build.title,
        status.url,
        build.buildbot_url,
        status.worker_name,
        status.reason,
        sources.join(", "),
        blamelist,
        build.results.name().to_uppercase(),
        status.text,
    );
    let mut html = format!(
        "<html><body>\n<h3>{} on builder <b>{}</b>: {}</h3>\n\
         <p>Full details: <a href=\"{url}\">{url}</a></p>\n<table cellspacing=\"6\">\n\
         <tr><td>Worker:</td><td>{}</td></tr>\n<tr><td>Reason:</td><td>{}</td></tr>\n\
         <tr><td>Source stamp:</td><td>{}</td></tr>\n<tr><td>Blamelist:</td><td>{}</td></tr>\n\
         </table>\n",
        html_escape(result_phrase(build.results)),
        html_escape(&status.builder_name),
        html_escape(build.results.name()),
        html_escape(&status.worker_name),
        html_escape(&status.reason),
        html_escape(&sources.join(", ")),
        html_escape(&blamelist),
        url = html_escape(&status.url),
    );
    let changes: Vec<&config::status_objects::ChangeStatus> = status
        .source_stamps
        .iter()
        .flat_map(|ss| ss.changes.iter())
        .collect();
    if !changes.is_empty() {
        text.push_str("\nChanges:\n");
        html.push_str("<h4>Changes</h4>\n<ul>\n");
        for c in changes {
            let revision = c.revision.as_deref().unwrap_or("");
            let summary = c.comments.lines().next().unwrap_or("");
            text.push_str(&format!("  {revision} by {}: {summary}\n", c.who));
            for f in &c.files {
                text.push_str(&format!("      {f}\n"));
            }
            html.push_str(&format!(
                "<li><code>{}</code> by {}: {}</li>\n",
                html_escape(revision),
                html_escape(&c.who),
                html_escape(summary)
            ));
        }
        html.push_str("</ul>\n");
    }
    if let Some(failing) = &build.failing_log {
        text.push_str(&format!(
            "\nLast lines of \"{}.{}\":\n{}\n",
            failing.step, failing.log, failing.tail
        ));
        html.push_str(&format!(
            "<h4>Last lines of &quot;{}.{}&quot;</h4>\n<pre>{}</pre>\n",
            html_escape(&failing.step),
            html_escape(&failing.log),
            html_escape(&failing.tail)
        ));
    }
    text.push_str("\nsincerely,\n -The Buildbot\n");
    html.push_str("<p>-The Buildbot</p>\n</body></html>\n");
    MailBody {
        text: Some(text),
        html: Some(html),
    }
}

/// Reads what a `messageFormatter` returned: `body`, `type` (`plain` or `html`) and an
/// optional `subject`.
pub fn formatter_body(value: &Json) -> Result<(MailBody, Option<String>), String> {
    let Some(map) = value.as_object() else {
        return Err(format!("messageFormatter returned {value}, not a dict"));
    };
    let body = match map.get("body") {
        Some(Json::String(s)) => s.clone(),
        _ => return Err("messageFormatter's dict has no string 'body'".into()),
    };
    let subject = map
        .get("subject")
        .and_then(Json::as_str)
        .map(str::to_string);
    let body = match map.get("type").and_then(Json::as_str).unwrap_or("plain") {
        "html" => MailBody {
            text: None,
            html: Some(body),
        },
        "plain" => MailBody {
            text: Some(body),
            html: None,
        },
        other => {
            return Err(format!(
                "messageFormatter type '{other}' is not plain or html"
            ))
        }
    };
    Ok((body, subject))
}

/// Joins several bodies (a buildset summary): texts with a rule between them.
pub fn concatenate(bodies: Vec<MailBody>) -> MailBody {
    let join = |parts: Vec<String>, sep: &str| (!parts.is_empty()).then(|| parts.join(sep));
    let texts: Vec<String> = bodies.iter().filter_map(|b| b.text.clone()).collect();
    let htmls: Vec<String> = bodies.iter().filter_map(|b| b.html.clone()).collect();
    MailBody {
        text: join(texts, "\n----------------------------------------\n\n"),
        html: join(htmls, "\n<hr>\n"),
    }
}

/// Lines of a log attached by `addLogs` (the tail of longer logs).
pub const ATTACHED_LOG_LINES: i64 = 10_000;

/// `addLogs` and `addPatch` attachments.
pub fn attachments(config: &MailConfig, build: &BuildSnapshot) -> Vec<Attachment> {
    let mut out = Vec::new();
    for step in &build.status.steps {
        for log in &step.logs {
            let full_name = format!("{}.{}", step.name, log.name);
            let wanted = match &config.add_logs {
                AddLogs::None => false,
                AddLogs::All => true,
                AddLogs::Named(names) => names.iter().any(|n| *n == log.name || *n == full_name),
            };
            if wanted {
                out.push(Attachment {
                    name: full_name,
                    text: log.text.clone(),
                });
            }
        }
    }
    if config.add_patch {
        for ss in &build.status.source_stamps {
            if let Some(patch) = &ss.patch {
                out.push(Attachment {
                    name: "source patch".to_string(),
                    text: patch.body.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            address_of("Alice <alice@example.org>").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(
            address_of(" bob@example.org ").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(address_of("carol"), None);
        assert_eq!(address_of("Dan <dan>"), None);
    }

    /// Recipients for a build by `alice` and `bob <bob@corp.example>` owned by `carol`,
    /// with the given `MailNotifier` arguments.
    fn check_recipients(args: &[(&str, config::ConfigValue)]) -> String {
        use std::collections::BTreeMap;

        use config::status_objects::{BuildStatus, ChangeStatus, SourceStampStatus};
        use config::{ConfigValue, StatusTargetConfig};

        let mut all: BTreeMap<String, ConfigValue> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        all.insert(
            "fromaddr".into(),
            ConfigValue::Value(Json::from("bb@example.org")),
        );
        let target = StatusTargetConfig {
            kind: "MailNotifier".into(),
            args: all,
            location: Default::default(),
        };
        let config = match MailConfig::from_target(&target) {
            Ok(c) => c,
            Err(e) => return format!("error: {e}"),
        };
        let change = |who: &str| ChangeStatus {
            who: who.into(),
            ..ChangeStatus::default()
        };
        let status = BuildStatus {
            responsible_users: vec!["alice".into(), "bob <bob@corp.example>".into()],
            source_stamps: vec![SourceStampStatus {
                changes: vec![change("alice"), change("bob <bob@corp.example>")],
                ..SourceStampStatus::default()
            }],
            ..BuildStatus::default()
        };
        let build = BuildSnapshot {
            buildid: model::BuildId(1),
            builderid: model::BuilderId(1),
            buildsetid: model::BuildsetId(1),
            builder: crate::BuilderInfo {
                name: "b".into(),
                categories: vec![],
            },
            results: Results::Failure,
            status: Arc::new(status),
            previous: None,
            properties: model::Properties::new(),
            sourcestamps: vec![],
            user_emails: [("alice".to_string(), "alice@users.example".to_string())]
                .into_iter()
                .collect(),
            owners: vec!["carol".into()],
            failing_log: None,
            title: "T".into(),
            buildbot_url: "http://m/".into(),
        };
        recipients(&config, &[Arc::new(build)], &FunctionHost::empty()).join(" ")
    }

    #[test]
    fn recipients_by_lookup() {
        use config::ConfigValue;
        let value = |v: Json| ConfigValue::Value(v);
        let extra = (
            "extraRecipients",
            value(Json::from(vec!["list@example.org"])),
        );
        // Without lookup: the users table; owners without an address are not guessed.
        assert_eq!(
            check_recipients(std::slice::from_ref(&extra)),
            "alice@users.example list@example.org"
        );
        // A domain string, and Domain(...): names get the domain, addresses are kept.
        assert_eq!(
            check_recipients(&[extra.clone(), ("lookup", value(Json::from("dev.example")))]),
            "alice@dev.example bob@corp.example carol@dev.example list@example.org"
        );
        let domain = ConfigValue::Object {
            kind: "Domain".into(),
            args: [("0".to_string(), value(Json::from("dom.example")))]
                .into_iter()
                .collect(),
        };
        assert_eq!(
            check_recipients(&[("lookup", domain)]),
            "alice@dom.example bob@corp.example carol@dom.example"
        );
        // sendToInterestedUsers=False: only the extra recipients.
        assert_eq!(
            check_recipients(&[
                extra,
                ("sendToInterestedUsers", value(Json::from(false))),
                ("lookup", value(Json::from("dev.example"))),
            ]),
            "list@example.org"
        );
    }

    #[test]
    fn subject_words() {
        assert_eq!(
            subject(
                crate::targets::mail::config::DEFAULT_SUBJECT,
                "build-a",
                Results::Failure,
                "Proj"
            ),
            "buildbot failure in Proj on build-a"
        );
    }
}
