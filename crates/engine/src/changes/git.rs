//! `GitPoller`: a bare repository under the master directory, fetched each `pollInterval`;
//! new commits on watched branches become changes, oldest first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use config::ChangeSourceConfig;

use crate::master::Shared;

async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    super::run_vcs("git", args, Some(dir)).await
}

fn poller_name(repourl: &str) -> String {
    format!("GitPoller:{repourl}")
}

pub(super) async fn poll(shared: &Arc<Shared>, source: &ChangeSourceConfig) -> Result<(), String> {
    let ChangeSourceConfig::Git {
        repourl,
        branches,
        all_branches,
        workdir,
        project,
        category,
        ..
    } = source
    else {
        return Ok(());
    };
    let dir: PathBuf = shared
        .basedir
        .join(workdir.as_deref().unwrap_or("gitpoller-workdir"));
    if !dir.join("HEAD").exists() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        git(&dir, &["init", "--bare", "-q"]).await?;
    }
    let heads = git(&dir, &["ls-remote", "--heads", repourl]).await?;
    let mut watched: Vec<(String, String)> = Vec::new();
    for line in heads.lines() {
        let Some((rev, refname)) = line.split_once('\t') else {
            continue;
        };
        let Some(branch) = refname.strip_prefix("refs/heads/") else {
            continue;
        };
        let wanted = *all_branches
            || (branches.is_empty() && branch == "master")
            || branches.iter().any(|b| b == branch);
        if wanted {
            watched.push((branch.to_string(), rev.to_string()));
        }
    }
    let name = poller_name(repourl);
    for (branch, head) in watched {
        let key = format!("lastRev:{branch}");
        let last = shared
            .store
            .object_state_get(&name, "GitPoller", &key)
            .await
            .map_err(|e| e.to_string())?;
        let last = last.and_then(|v| v.as_str().map(str::to_string));
        if last.as_deref() == Some(head.as_str()) {
            continue;
        }
        let local_ref = format!("refs/signalbox/{branch}");
        git(
            &dir,
            &[
                "fetch",
                "-q",
                "-f",
                repourl,
                &format!("+refs/heads/{branch}:{local_ref}"),
            ],
        )
        .await?;
        let revs = match &last {
            // Buildbot makes no changes for the history that existed before the first poll.
            None => Vec::new(),
            Some(last) => {
                let range = format!("{last}..{head}");
                match git(&dir, &["rev-list", "--reverse", &range]).await {
                    Ok(out) => out.lines().map(str::to_string).collect(),
                    // The old revision is gone (force push): report only the new head.
                    Err(_) => vec![head.clone()],
                }
            }
        };
        for rev in revs {
            let change =
                describe(&dir, &rev, &branch, repourl, project, category.as_deref()).await?;
            super::add_change(shared, change)
                .await
                .map_err(|e| e.to_string())?;
        }
        shared
            .store
            .object_state_set(&name, "GitPoller", &key, &serde_json::Value::String(head))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn describe(
    dir: &Path,
    rev: &str,
    branch: &str,
    repourl: &str,
    project: &str,
    category: Option<&str>,
) -> Result<store::NewChange, String> {
    let meta = git(
        dir,
        &["log", "-1", "--format=%an <%ae>%n%cn <%ce>%n%ct%n%B", rev],
    )
    .await?;
    let mut lines = meta.lines();
    let author = lines.next().unwrap_or_default().to_string();
    let committer = lines.next().map(str::to_string);
    let when: i64 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(model::now);
    let comments = lines.collect::<Vec<_>>().join("\n").trim_end().to_string();
    let files = git(
        dir,
        &[
            "diff-tree",
            "--root",
            "--name-only",
            "-r",
            "--no-commit-id",
            rev,
        ],
    )
    .await?;
    Ok(store::NewChange {
        author,
        committer,
        comments,
        branch: Some(branch.to_string()),
        revision: Some(rev.to_string()),
        revlink: None,
        when_timestamp: when,
        category: category.map(str::to_string),
        repository: repourl.to_string(),
        codebase: String::new(),
        project: project.to_string(),
        files: files
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        properties: model::Properties::new(),
        created_at: model::now(),
    })
}
