//! `MessageFormatter(...)` as `MailNotifier(messageFormatter=...)`: the names a config can
//! reach it by, template files read and compiled at load, and errors with file:line.

use std::path::Path;

use config::{load_str, ConfigValue};
use serde_json::Value as Json;

const HEADER: &str = "from buildbot.plugins import reporters, util
c = BuildmasterConfig = {}
c['workers'] = [Worker('w1', 'pw')]
c['builders'] = []
";

/// Loads `HEADER + body` from a master directory holding `files`; returns the first status
/// target's `messageFormatter` argument as `key=value` lines, or the error.
fn check(files: &[(&str, &str)], body: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).expect("mkdir");
        std::fs::write(path, text).expect("write template");
    }
    let source = format!("{HEADER}{body}");
    let loaded = match load_str("master.cfg", &source, dir.path()) {
        Ok(it) => it,
        Err(e) => return format!("error: {e}"),
    };
    let Some(target) = loaded.config.status.first() else {
        return "no status target".into();
    };
    match target.args.get("messageFormatter") {
        Some(ConfigValue::Object { kind, args }) => {
            let mut lines = vec![format!("kind={kind}")];
            for (k, v) in args {
                match v {
                    ConfigValue::Value(Json::String(s)) => lines.push(format!("{k}={s:?}")),
                    ConfigValue::Value(other) => lines.push(format!("{k}={other}")),
                    other => lines.push(format!("{k}={other:?}")),
                }
            }
            lines.join("\n")
        }
        other => format!("messageFormatter is {other:?}"),
    }
}

#[test]
fn template_file_under_template_dir() {
    let got = check(
        &[(
            "templates/mail.txt",
            "Build {{ build.number }} of {{ buildername }}\n",
        )],
        "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter=reporters.MessageFormatter(
    template_dir='templates', template_filename='mail.txt', subject='{{ buildername }} done',
    template_type='html', want_steps=True, ctx={'team': 'core'}))]
",
    );
    assert_eq!(
        got,
        r#"kind=MessageFormatter
ctx={"team":"core"}
subject="{{ buildername }} done"
subject_name="subject (master.cfg:5)"
template="Build {{ build.number }} of {{ buildername }}\n"
template_name="mail.txt"
template_type="html"
want_logs=false
want_logs_content=false
want_properties=true
want_steps=true"#
    );
}

#[test]
fn reachable_as_util_and_flat_name_with_defaults() {
    for name in ["util.MessageFormatter", "MessageFormatter"] {
        let got = check(
            &[],
            &format!("c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter={name}(template='hi'))]\n"),
        );
        assert_eq!(
            got,
            r#"kind=MessageFormatter
template="hi"
template_name="template (master.cfg:5)"
template_type="plain"
want_logs=false
want_logs_content=false
want_properties=true
want_steps=false"#,
            "{name}"
        );
    }
    // No template: the reporter's default, named for messages.
    let got = check(
        &[],
        "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter=reporters.MessageFormatter())]\n",
    );
    assert!(
        got.contains("template_name=\"default plain template\""),
        "{got}"
    );
    assert!(!got.contains("\ntemplate="), "{got}");
}

/// Files written into the master directory: name and text.
type Files = &'static [(&'static str, &'static str)];

#[test]
fn errors_name_the_config_line_and_the_template_line() {
    let cases: &[(Files, &str, &str)] = &[
        (
            &[("mail.txt", "line one\nline two\n{{ build.number + }}\n")],
            "c['status'] = [MailNotifier(fromaddr='a@b.c',\n    messageFormatter=reporters.MessageFormatter(template_filename='mail.txt'))]\n",
            "error: master.cfg:6: MessageFormatter: syntax error: unexpected end of variable block (in mail.txt:3)",
        ),
        (
            &[],
            "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter=reporters.MessageFormatter(template='{{ 1 +'))]\n",
            "error: master.cfg:5: MessageFormatter: syntax error: unexpected end of input, expected expression (in template (master.cfg:5):1)",
        ),
        (
            &[],
            "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter=reporters.MessageFormatter(subject='{% for %}'))]\n",
            "error: master.cfg:5: MessageFormatter: syntax error: unexpected end of block, expected in (in subject (master.cfg:5):1)",
        ),
        (
            &[],
            "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter=reporters.MessageFormatter(template_type='rich'))]\n",
            "error: master.cfg:5: MessageFormatter: template_type must be 'plain' or 'html', got 'rich'",
        ),
        (
            &[("mail.txt", "x")],
            "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter=reporters.MessageFormatter(template='x', template_filename='mail.txt'))]\n",
            "error: master.cfg:5: MessageFormatter: give 'template' or 'template_filename', not both",
        ),
        (
            &[],
            "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter=reporters.MessageFormatter(extra_info_cb=None))]\n",
            "error: master.cfg:5: unknown keyword argument 'extra_info_cb' for MessageFormatter",
        ),
        (
            &[],
            "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter='body')]\n",
            "error: master.cfg:5: MailNotifier: 'messageFormatter' must be a function or a MessageFormatter, got string",
        ),
    ];
    for (files, body, expected) in cases {
        assert_eq!(check(files, body), *expected);
    }
    let missing = check(
        &[],
        "c['status'] = [MailNotifier(fromaddr='a@b.c', messageFormatter=reporters.MessageFormatter(template_dir='t', template_filename='nope.txt'))]\n",
    );
    assert!(
        missing.starts_with("error: master.cfg:5: MessageFormatter: template_filename '")
            && missing.contains("/t/nope.txt' cannot be read (")
            && missing
                .ends_with("the path is relative to template_dir, or to the master directory"),
        "{missing}"
    );
}
