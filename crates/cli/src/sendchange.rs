//! `signalbox sendchange`: posts one change to a master's `base` change hook.
//!
//! It is also the documented way to call the hook from a post-commit or post-receive script;
//! the master must enable it with `change_hook_dialects={'base': True}`.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

/// Options of `sendchange`.
#[derive(Args)]
pub struct SendChange {
    /// The master's web URL (for example http://127.0.0.1:8010/).
    #[arg(long)]
    master: String,
    /// Who made the change (author).
    #[arg(long)]
    who: String,
    /// Branch of the change.
    #[arg(long)]
    branch: Option<String>,
    /// Revision of the change.
    #[arg(long)]
    revision: Option<String>,
    /// Commit message.
    #[arg(long, short = 'm', default_value = "")]
    comments: String,
    /// Repository URL.
    #[arg(long, default_value = "")]
    repository: String,
    /// Project name.
    #[arg(long, default_value = "")]
    project: String,
    /// Codebase name.
    #[arg(long, default_value = "")]
    codebase: String,
    /// Category.
    #[arg(long)]
    category: Option<String>,
    /// Link to the revision in a web viewer.
    #[arg(long)]
    revlink: Option<String>,
    /// When the change was made, in seconds since the epoch.
    #[arg(long)]
    when: Option<i64>,
    /// A property, as NAME:VALUE (repeatable).
    #[arg(long = "property", value_name = "NAME:VALUE")]
    properties: Vec<String>,
    /// Credentials for change_hook_auth, as USER:PASSWORD.
    #[arg(long)]
    auth: Option<String>,
    /// Files changed.
    files: Vec<String>,
}

/// Posts the change and reports the master's answer.
pub fn run(args: SendChange) -> Result<ExitCode> {
    let url = format!("{}/change_hook/base", args.master.trim_end_matches('/'));
    let mut props = serde_json::Map::new();
    for p in &args.properties {
        let Some((name, value)) = p.split_once(':') else {
            bail!("--property takes NAME:VALUE, got {p:?}");
        };
        props.insert(
            name.to_string(),
            serde_json::Value::String(value.to_string()),
        );
    }
    let mut body = serde_json::json!({
        "author": args.who,
        "comments": args.comments,
        "repository": args.repository,
        "project": args.project,
        "codebase": args.codebase,
        "files": args.files,
        "properties": props,
    });
    let fields = [
        ("branch", &args.branch),
        ("revision", &args.revision),
        ("category", &args.category),
        ("revlink", &args.revlink),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            body[name] = serde_json::Value::String(v.clone());
        }
    }
    if let Some(when) = args.when {
        body["when_timestamp"] = serde_json::Value::from(when);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, text) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let mut request = client.post(&url).json(&body);
        if let Some(auth) = &args.auth {
            let (user, password) = auth.split_once(':').unwrap_or((auth.as_str(), ""));
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        anyhow::Ok((status, response.text().await.unwrap_or_default()))
    })?;
    if !status.is_success() {
        bail!("the master refused the change ({status}): {}", text.trim());
    }
    println!("change sent: {}", text.trim());
    Ok(ExitCode::SUCCESS)
}
