//! Every `master.cfg` example of seed 002 (status targets) loads; the files are in
//! `tests/seed002/`, each wrapped with the few lines that make it a complete config.

use std::path::PathBuf;

use config::{load_str, ConfigValue, LoadedConfig};

/// The one caller of `load_str` here: loads a seed example in a master dir holding the files
/// the examples name (`changehook.passwd`, `htpasswd`).
fn load(name: &str) -> LoadedConfig {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    };
    for file in ["changehook.passwd", "htpasswd"] {
        if let Err(e) = std::fs::write(dir.path().join(file), "user:password\n") {
            panic!("write {file}: {e}");
        }
    }
    let path = seed_dir().join(name);
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    match load_str(name, &source, dir.path()) {
        Ok(loaded) => loaded,
        Err(e) => panic!("{e}"),
    }
}

fn seed_dir() -> PathBuf {
    // At run time, not `env!`: a test binary that cargo reuses from another clone of the
    // repository (one shared target directory) must still read this clone's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/seed002")
}

#[test]
fn every_seed_example_loads() {
    let mut names: Vec<String> = match std::fs::read_dir(seed_dir()) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => panic!("read_dir: {e}"),
    };
    names.sort();
    assert!(names.len() >= 30, "{names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let path = seed_dir().join(name);
        let Ok(source) = std::fs::read_to_string(&path) else {
            failures.push(format!("{name}: unreadable"));
            continue;
        };
        let Ok(dir) = tempfile::tempdir() else {
            failures.push("tempdir".to_string());
            continue;
        };
        for file in ["changehook.passwd", "htpasswd"] {
            let _ = std::fs::write(dir.path().join(file), "user:password\n");
        }
        if let Err(e) = load_str(name, &source, dir.path()) {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn status_targets_keep_their_arguments() {
    let loaded = load("01_status_targets.cfg");
    let cfg = &loaded.config;
    assert_eq!(
        cfg.www.listen,
        Some(config::Listen::Tcp {
            port: 8010,
            interface: None
        })
    );
    let kinds: Vec<&str> = cfg.status.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["MailNotifier", "IRC"]);
    let mail = &cfg.status[0];
    assert_eq!(mail.location.line, 10);
    assert!(matches!(
        mail.args.get("sendToInterestedUsers"),
        Some(ConfigValue::Value(serde_json::Value::Bool(false)))
    ));
}

#[test]
fn mail_formatters_are_functions_called_later() {
    let loaded = load("23_mail_message_formatter.cfg");
    let Some(ConfigValue::Function(f)) = loaded.config.status[0].args.get("messageFormatter")
    else {
        panic!("messageFormatter is not a function");
    };
    let got = loaded.functions.call(
        *f,
        &[
            serde_json::json!(["problem"]),
            serde_json::json!("builder"),
            serde_json::json!({}),
            serde_json::json!(2),
            serde_json::json!({}),
        ],
    );
    assert_eq!(
        got,
        Ok(serde_json::json!({"body": "STATUS: Failure", "type": "plain"}))
    );
    let loaded = load("24_mail_html_formatter.cfg");
    assert!(matches!(
        loaded.config.status[0].args.get("messageFormatter"),
        Some(ConfigValue::Function(_))
    ));
}

#[test]
fn gerrit_callbacks_run() {
    let loaded = load("29_gerrit.cfg");
    let target = &loaded.config.status[0];
    assert_eq!(target.kind, "GerritStatusPush");
    let Some(ConfigValue::Function(summary)) = target.args.get("summaryCB") else {
        panic!("summaryCB is not a function");
    };
    let info = serde_json::json!([{"name": "b", "resultText": "success", "text": "ok", "result": 0, "url": "http://x/1"}]);
    let got = loaded.functions.call(
        *summary,
        &[
            info,
            serde_json::json!(0),
            serde_json::json!(null),
            serde_json::json!("u"),
        ],
    );
    assert_eq!(
        got,
        Ok(serde_json::json!([
            "Builder b success (ok) - http://x/1",
            1,
            0
        ]))
    );
    let Some(ConfigValue::Function(review)) = target.args.get("reviewCB") else {
        panic!("reviewCB is not a function");
    };
    let got = loaded.functions.call(
        *review,
        &[
            serde_json::json!("b"),
            serde_json::json!({}),
            serde_json::json!(5),
            serde_json::json!({}),
            serde_json::json!(null),
        ],
    );
    assert_eq!(got, Ok(serde_json::json!([null, 0, 0])));
}

#[test]
fn web_status_settings_merge_into_www() {
    let cfg = load("11_authz_function.cfg").config;
    assert!(matches!(
        cfg.www.authz.actions.get("forceBuild"),
        Some(config::AuthzRule::Function(_))
    ));
    assert!(matches!(cfg.www.authz.auth, Some(config::AuthConfig::Users(ref u)) if u.len() == 2));
    let cfg = load("07_http_port_strports.cfg").config;
    assert_eq!(
        cfg.www.listen,
        Some(config::Listen::Tcp {
            port: 8080,
            interface: Some("127.0.0.1".into())
        })
    );
    let cfg = load("16_change_hook_auth.cfg").config;
    assert_eq!(cfg.www.change_hook_auth, ["file:changehook.passwd"]);
    let cfg = load("19_poller_hook.cfg").config;
    assert!(matches!(
        cfg.change_sources[0],
        config::ChangeSourceConfig::Svn {
            poll_interval: 86400,
            split_file: Some(config::SplitFile::Branches),
            ..
        }
    ));
    assert!(cfg.www.change_hook_dialects.contains_key("poller"));
    let cfg = load("13_webstatus_options.cfg").config;
    assert!(cfg.www.functions.contains_key("repositories"));
    assert_eq!(
        cfg.www.options.get("numbuilds"),
        Some(&serde_json::json!(13))
    );
    let cfg = load("30_github.cfg").config;
    assert!(matches!(
        cfg.status[0].args.get("repoOwner"),
        Some(ConfigValue::Renderable(
            model::Renderable::Interpolate { .. }
        ))
    ));
}
