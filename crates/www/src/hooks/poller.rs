//! The `poller` dialect: a GET or POST that makes polling change sources poll now, so a
//! commit hook gives fast notice while `pollAtLaunch` finds what happened during downtime.
//!
//! `poller=NAME` (repeatable, query or form) names the change sources to poll, by their
//! repository URL as Buildbot names pollers; without it every polling source polls. The
//! `allowed` option lists the only sources the hook may trigger.

use serde_json::Value;

use super::{HookError, HookRequest};

/// The change sources to poll, out of `configured`, for this request.
pub fn select(
    request: &HookRequest,
    options: &Value,
    configured: &[String],
) -> Result<Vec<String>, HookError> {
    let allowed: Option<Vec<&str>> = match options.get("allowed") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    item.as_str().ok_or_else(|| {
                        HookError::Options("poller: 'allowed' must list strings".into())
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(HookError::Options(
                "poller: 'allowed' must be a list".into(),
            ))
        }
    };
    let permitted = |name: &str| allowed.as_ref().is_none_or(|list| list.contains(&name));
    let asked: Vec<&str> = request.args_named("poller").collect();
    if asked.is_empty() {
        return Ok(configured
            .iter()
            .filter(|name| permitted(name))
            .cloned()
            .collect());
    }
    let missing: Vec<&str> = asked
        .iter()
        .copied()
        .filter(|name| !configured.iter().any(|c| c == name) || !permitted(name))
        .collect();
    if !missing.is_empty() {
        // Names come from the request: keep the reason on one line whatever they hold.
        let names: String = missing
            .join(",")
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        return Err(HookError::BadPayload(format!(
            "could not find pollers: {names}"
        )));
    }
    let mut selected: Vec<String> = Vec::new();
    for name in asked {
        if !selected.iter().any(|s| s == name) {
            selected.push(name.to_string());
        }
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::hooks::testing::request;

    const SVN: &str = "https://amanda.svn.sourceforge.net/svnroot/amanda/amanda";
    const GIT: &str = "https://example.org/repo.git";

    /// The one caller of `select`: a query string against two configured pollers.
    fn check(query: &str, options: Value) -> String {
        let configured = [SVN.to_string(), GIT.to_string()];
        match select(&request(&[], query, b""), &options, &configured) {
            Ok(names) => names.join(" "),
            Err(err) => format!("error: {err}"),
        }
    }

    #[test]
    fn selection() {
        let poller = |url: &str| {
            format!(
                "poller={}",
                form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
            )
        };
        assert_eq!(check("", json!({})), format!("{SVN} {GIT}"));
        assert_eq!(check(&poller(SVN), json!({})), SVN);
        assert_eq!(
            check(&format!("{}&{}", poller(GIT), poller(GIT)), json!({})),
            GIT
        );
        assert_eq!(check("", json!({"allowed": [GIT]})), GIT);
        assert_eq!(
            check(&poller(SVN), json!({"allowed": [GIT]})),
            format!("error: could not find pollers: {SVN}")
        );
        assert_eq!(
            check("poller=nope", json!({})),
            "error: could not find pollers: nope"
        );
        assert_eq!(
            check("", json!({"allowed": "x"})),
            "error: change hook options: poller: 'allowed' must be a list"
        );
    }
}
