//! `SVNPoller`: asks `svn log` for revisions after the last one seen; each revision becomes
//! one change per branch that `split_file` finds in it.

use std::collections::BTreeMap;
use std::sync::Arc;

use config::{ChangeSourceConfig, SplitFile};

use crate::master::Shared;

/// A revision as `svn log --xml -v` reports it.
#[derive(Debug, PartialEq)]
struct LogEntry {
    revision: u64,
    author: String,
    date: i64,
    message: String,
    paths: Vec<String>,
}

pub(super) async fn poll(shared: &Arc<Shared>, source: &ChangeSourceConfig) -> Result<(), String> {
    let ChangeSourceConfig::Svn {
        svnurl,
        split_file,
        project,
        ..
    } = source
    else {
        return Ok(());
    };
    let info = super::run_vcs("svn", &["info", "--xml", "--non-interactive", svnurl], None).await?;
    let (head, prefix) = parse_info(&info)?;
    let name = format!("SVNPoller:{svnurl}");
    let last = shared
        .store
        .object_state_get(&name, "SVNPoller", "last_rev")
        .await
        .map_err(|e| e.to_string())?;
    let last = last.and_then(|v| v.as_u64());
    let Some(last) = last else {
        // Like Buildbot: the history before the first poll makes no changes.
        return remember(shared, &name, head).await;
    };
    if head <= last {
        return Ok(());
    }
    let range = format!("{}:{head}", last + 1);
    let log = super::run_vcs(
        "svn",
        &[
            "log",
            "--xml",
            "-v",
            "--non-interactive",
            "-r",
            &range,
            svnurl,
        ],
        None,
    )
    .await?;
    let runtime = shared.runtime();
    for entry in parse_log(&log)? {
        let mut by_branch: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
        for path in &entry.paths {
            let Some(rel) = relative(path, &prefix) else {
                continue;
            };
            match split(split_file.as_ref(), &rel, &runtime.functions) {
                Some((branch, file)) => by_branch.entry(branch).or_default().push(file),
                None => continue,
            }
        }
        for (branch, files) in by_branch {
            let change = store::NewChange {
                author: entry.author.clone(),
                comments: entry.message.clone(),
                branch,
                revision: Some(entry.revision.to_string()),
                when_timestamp: entry.date,
                repository: svnurl.clone(),
                project: project.clone(),
                files,
                created_at: model::now(),
                ..Default::default()
            };
            super::add_change(shared, change)
                .await
                .map_err(|e| e.to_string())?;
        }
        remember(shared, &name, entry.revision).await?;
    }
    remember(shared, &name, head).await
}

async fn remember(shared: &Arc<Shared>, name: &str, rev: u64) -> Result<(), String> {
    shared
        .store
        .object_state_set(name, "SVNPoller", "last_rev", &serde_json::Value::from(rev))
        .await
        .map_err(|e| e.to_string())
}

/// The path of `svnurl` inside its repository, and the HEAD revision.
fn parse_info(xml: &str) -> Result<(u64, String), String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("cannot read svn info: {e}"))?;
    let entry = doc
        .descendants()
        .find(|n| n.has_tag_name("entry"))
        .ok_or("svn info has no entry")?;
    let head = entry
        .attribute("revision")
        .and_then(|r| r.parse().ok())
        .ok_or("svn info has no revision")?;
    let text = |tag: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.text())
            .unwrap_or_default()
            .to_string()
    };
    let url = text("url");
    let root = text("root");
    let prefix = url
        .strip_prefix(&root)
        .unwrap_or_default()
        .trim_matches('/')
        .to_string();
    Ok((head, percent_decode(&prefix)))
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_log(xml: &str) -> Result<Vec<LogEntry>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("cannot read svn log: {e}"))?;
    let mut entries = Vec::new();
    for node in doc.descendants().filter(|n| n.has_tag_name("logentry")) {
        let Some(revision) = node.attribute("revision").and_then(|r| r.parse().ok()) else {
            continue;
        };
        let child = |tag: &str| {
            node.children()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .unwrap_or_default()
                .to_string()
        };
        let date = chrono::DateTime::parse_from_rfc3339(&child("date"))
            .map(|d| d.timestamp())
            .unwrap_or_else(|_| model::now());
        let paths = node
            .descendants()
            .filter(|n| n.has_tag_name("path"))
            .filter_map(|n| n.text())
            .map(str::to_string)
            .collect();
        entries.push(LogEntry {
            revision,
            author: child("author"),
            date,
            message: child("msg"),
            paths,
        });
    }
    entries.sort_by_key(|e| e.revision);
    Ok(entries)
}

/// `path` (repository-absolute) relative to the polled URL, or `None` if outside it.
fn relative(path: &str, prefix: &str) -> Option<String> {
    let path = path.trim_start_matches('/');
    if prefix.is_empty() {
        return Some(path.to_string());
    }
    let rest = path.strip_prefix(prefix)?;
    match rest.strip_prefix('/') {
        Some(r) => Some(r.to_string()),
        None if rest.is_empty() => None,
        None => None,
    }
}

/// Splits a path into (branch, file) the way Buildbot's predeclared splitters do.
fn split(
    split_file: Option<&SplitFile>,
    path: &str,
    functions: &config::FunctionHost,
) -> Option<(Option<String>, String)> {
    match split_file {
        None | Some(SplitFile::AlwaysTrunk) => Some((None, path.to_string())),
        Some(SplitFile::Branches) => split_branches(path),
        Some(SplitFile::ProjectsBranches) => {
            let (_project, rest) = path.split_once('/')?;
            split_branches(rest)
        }
        Some(SplitFile::Function(f)) => {
            let value = functions
                .call(*f, &[serde_json::Value::String(path.to_string())])
                .ok()?;
            match value {
                serde_json::Value::Array(parts) if parts.len() >= 2 => {
                    let branch = parts[0].as_str().map(str::to_string);
                    Some((branch, parts[1].as_str()?.to_string()))
                }
                serde_json::Value::Object(map) => {
                    let branch = map
                        .get("branch")
                        .and_then(|b| b.as_str())
                        .map(str::to_string);
                    Some((branch, map.get("path")?.as_str()?.to_string()))
                }
                _ => None,
            }
        }
    }
}

fn split_branches(path: &str) -> Option<(Option<String>, String)> {
    let mut parts = path.splitn(3, '/');
    match (parts.next()?, parts.next(), parts.next()) {
        ("trunk", Some(file), rest) => Some((None, join(file, rest))),
        ("branches", Some(name), Some(file)) => {
            Some((Some(format!("branches/{name}")), file.to_string()))
        }
        _ => None,
    }
}

fn join(a: &str, b: Option<&str>) -> String {
    match b {
        Some(b) => format!("{a}/{b}"),
        None => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_branches_like_buildbot() {
        assert_eq!(
            split_branches("trunk/src/a.c"),
            Some((None, "src/a.c".into()))
        );
        assert_eq!(
            split_branches("branches/1.0/a.c"),
            Some((Some("branches/1.0".into()), "a.c".into()))
        );
        assert_eq!(split_branches("tags/1.0/a.c"), None);
        assert_eq!(relative("/proj/trunk/a", "proj"), Some("trunk/a".into()));
        assert_eq!(relative("/other/a", "proj"), None);
    }

    #[test]
    fn reads_svn_log_xml() {
        let xml = r#"<?xml version="1.0"?><log><logentry revision="3"><author>bob</author><date>2026-11-22T01:00:00.000000Z</date><paths><path action="M" kind="file">/trunk/a.txt</path></paths><msg>fix &lt;it&gt;</msg></logentry></log>"#;
        let entries = parse_log(xml).unwrap();
        assert_eq!(entries[0].revision, 3);
        assert_eq!(entries[0].message, "fix <it>");
        assert_eq!(entries[0].paths, vec!["/trunk/a.txt".to_string()]);
    }
}
