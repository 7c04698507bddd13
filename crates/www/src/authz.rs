//! The one authorization check: every page, REST call, JSON-RPC control, `/ws` and SSE
//! stream, feed and badge asks here, for the user [`crate::auth`] found on the request.
//!
//! Two policies, never mixed:
//!
//! - seed 002's `Authz(view=…, forceBuild=…, …)`: each action is `False` (the default; `view`
//!   alone defaults to allowed), `True`, `'auth'` (any logged-in user) or a function. A
//!   function is called only for a logged-in user (as Buildbot 0.8 does), with the user name
//!   and, for `forceBuild` and `pingBuilder`, the builder status
//!   `{name, builderid, description, tags, workernames}`; for `stopBuild` the build status
//!   `{buildid, number, builder, builderid, results, complete, state_string}`; for
//!   `cancelPendingBuild` the build request
//!   `{buildrequestid, builderid, builder, buildsetid, priority, submitted_at}`. Every other
//!   action passes the user name only. A true result allows.
//! - the modern `c['www']['authz'] = util.Authz(allowRules=…, roleMatchers=…)` (spec §12.4):
//!   the first rule whose endpoint matcher matches decides, by the user's roles; no match
//!   allows, as upstream.

use config::{AuthzRule, FunctionRef};
use serde_json::{json, Value as Json};

use crate::auth::{self, Identity};
use crate::{AppState, WebError};

/// A seed-002 action name (`forceBuild`, `stopBuild`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action(pub &'static str);

/// Reading pages, the REST API and events.
pub const VIEW: Action = Action("view");

/// Every seed-002 action, in the seed's order.
pub const ACTIONS: [&str; 13] = [
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

/// The action a JSON-RPC method on a resource type needs (spec §8 to seed 002). Rebuilding
/// is forcing; worker kill is a hard graceful shutdown; enabling a scheduler has no seed-002
/// name and needs `forceAllBuilds`, since it decides builds on every builder it feeds. The
/// methods on `builders`, `changes` and `masters` are Signalbox's JSON-RPC for the seed's
/// actions that upstream's REST API lacks (`masters` `users` is the users table that
/// `/users/table` shows, under `showUsersPage`).
pub fn action_for(plural: &str, method: &str) -> Option<Action> {
    Some(Action(match (plural, method) {
        ("forceschedulers", "force") => "forceBuild",
        ("builds", "stop") => "stopBuild",
        ("builds", "rebuild") => "forceBuild",
        ("buildrequests", "cancel" | "set_priority") => "cancelPendingBuild",
        ("workers", "pause" | "unpause") => "pauseSlave",
        ("workers", "stop" | "kill") => "gracefulShutdown",
        ("schedulers", "enable") => "forceAllBuilds",
        ("builders", "ping") => "pingBuilder",
        ("builders", "stopall") => "stopAllBuilds",
        ("builders", "cancelall") => "cancelAllPendingBuilds",
        ("changes", "stop") => "stopChange",
        ("masters", "forceall") => "forceAllBuilds",
        ("masters", "stopall") => "stopAllBuilds",
        ("masters", "cancelall") => "cancelAllPendingBuilds",
        ("masters", "shutdown") => "cleanShutdown",
        ("masters", "users") => "showUsersPage",
        _ => return None,
    }))
}

/// One question for the policy: may the current user do `action` (JSON-RPC `method`) on
/// `object`?
#[derive(Debug, Clone)]
pub struct Check {
    /// The seed-002 action.
    pub action: Action,
    /// The upstream endpoint method the modern matchers look at (`get`, `force`, `stop`…).
    pub method: String,
    /// The builders the object belongs to, for the matchers' `builder=` globs.
    pub builders: Vec<String>,
    /// The status object a seed-002 function receives, if this action passes one.
    pub object: Option<Json>,
}

impl Check {
    /// A check with no object: reading, or an action on the whole master.
    pub fn plain(action: Action) -> Check {
        let method = if action == VIEW { "get" } else { action.0 };
        Check {
            action,
            method: method.to_string(),
            builders: Vec::new(),
            object: None,
        }
    }
}

/// True if the current user may do `action`, with no object to show a function.
pub fn allows(state: &AppState, action: Action) -> bool {
    decide(state, &auth::current(), &Check::plain(action))
}

/// True if the current user may do what `check` asks.
pub fn allows_check(state: &AppState, check: &Check) -> bool {
    decide(state, &auth::current(), check)
}

/// True if a page should offer the button for `action`: it may be allowed to somebody who
/// logs in (`'auth'`, a function, a modern rule).
pub fn advertised(state: &AppState, action: Action) -> bool {
    let runtime = state.shared.runtime();
    let www = &runtime.config.www;
    if modern_rules(www).is_some() {
        return true;
    }
    match www.authz.actions.get(action.0) {
        None => action == VIEW,
        Some(AuthzRule::Deny) => false,
        Some(_) => true,
    }
}

/// Decides `check` for the current user and writes it to the audit log (who, what, when,
/// from where, allowed or not). `target` names the object for the log (`builds/12`).
pub async fn authorize(state: &AppState, check: &Check, target: &str) -> Result<(), WebError> {
    let identity = auth::current();
    let allowed = decide(state, &identity, check);
    crate::audit::record(state, &identity, check.action, target, allowed).await;
    match (allowed, &identity.user) {
        (true, _) => Ok(()),
        (false, None) => Err(WebError::Forbidden(format!(
            "you need to log in to {} (you need to have role '{}')",
            describe(check.action),
            check.action.0
        ))),
        (false, Some(_)) => Err(WebError::Forbidden(format!(
            "you are not allowed to {} (you need to have role '{}')",
            describe(check.action),
            check.action.0
        ))),
    }
}

fn describe(action: Action) -> &'static str {
    match action.0 {
        "view" => "view this page",
        "forceBuild" => "force builds",
        "forceAllBuilds" => "force all builders",
        "pingBuilder" => "ping builders",
        "gracefulShutdown" => "shut workers down",
        "pauseSlave" => "pause workers",
        "stopBuild" => "stop builds",
        "stopAllBuilds" => "stop all builds",
        "cancelPendingBuild" => "cancel build requests",
        "cancelAllPendingBuilds" => "cancel all build requests",
        "stopChange" => "stop the builds of a change",
        "cleanShutdown" => "shut the master down",
        "showUsersPage" => "see the users",
        _ => "do this",
    }
}

/// The policy itself, for one identity.
pub(crate) fn decide(state: &AppState, identity: &Identity, check: &Check) -> bool {
    let runtime = state.shared.runtime();
    let www = &runtime.config.www;
    if let Some((rules, matchers)) = modern_rules(www) {
        return modern_allows(rules, matchers, identity, check);
    }
    let rule = www.authz.actions.get(check.action.0);
    match rule {
        None => check.action == VIEW,
        Some(AuthzRule::Deny) => false,
        Some(AuthzRule::Allow) => true,
        Some(AuthzRule::Authenticated) => identity.user.is_some(),
        Some(AuthzRule::Function(f)) => match &identity.user {
            None => false,
            Some(user) => call(&runtime.functions, *f, &user.name, check),
        },
    }
}

/// Seed-002 functions: the user name, then the status object for the actions that pass one.
fn call(functions: &config::FunctionHost, f: FunctionRef, username: &str, check: &Check) -> bool {
    let passes_object = matches!(
        check.action.0,
        "forceBuild" | "pingBuilder" | "stopBuild" | "cancelPendingBuild"
    );
    let mut args = vec![json!(username)];
    if passes_object {
        args.push(check.object.clone().unwrap_or(Json::Null));
    }
    match functions.call(f, &args) {
        Ok(result) => truthy(&result),
        Err(e) => {
            tracing::warn!(action = check.action.0, error = %e, "authz function failed; denying");
            false
        }
    }
}

/// Python truthiness of a function's result.
fn truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

/// The modern allow rules and role matchers, if the config has `c['www']['authz']`.
fn modern_rules(www: &config::WwwConfig) -> Option<(&[Json], &[Json])> {
    let rules = www.options.get("authz_rules");
    let matchers = www.options.get("role_matchers");
    if rules.is_none() && matchers.is_none() {
        return None;
    }
    Some((json_list(rules), json_list(matchers)))
}

fn json_list(value: Option<&Json>) -> &[Json] {
    match value {
        Some(Json::Array(items)) => items.as_slice(),
        _ => &[],
    }
}

/// Spec §12.4: the first rule that matches the endpoint and method decides.
fn modern_allows(rules: &[Json], matchers: &[Json], identity: &Identity, check: &Check) -> bool {
    let roles = roles(matchers, identity, check);
    for rule in rules {
        if !endpoint_matches(rule, check) {
            continue;
        }
        let role = kwarg(rule, "role", 0).and_then(Json::as_str).unwrap_or("");
        if roles.iter().any(|r| glob_match(role, r)) {
            return true;
        }
        let default_deny = kwarg(rule, "defaultDeny", 1)
            .and_then(Json::as_bool)
            .unwrap_or(true);
        if default_deny {
            return false;
        }
    }
    true
}

/// A keyword argument of a config object (`{"class", "args", "kwargs"}`), else its
/// `position`th positional argument.
fn kwarg<'a>(object: &'a Json, name: &str, position: usize) -> Option<&'a Json> {
    object
        .get("kwargs")
        .and_then(|k| k.get(name))
        .or_else(|| object.get("args").and_then(|a| a.get(position)))
}

fn class(object: &Json) -> &str {
    object.get("class").and_then(Json::as_str).unwrap_or("")
}

fn endpoint_matches(rule: &Json, check: &Check) -> bool {
    let builder_ok = || match rule
        .get("kwargs")
        .and_then(|k| k.get("builder"))
        .and_then(Json::as_str)
    {
        None => true,
        Some(glob) => check.builders.iter().any(|b| glob_match(glob, b)),
    };
    match class(rule) {
        "AnyEndpointMatcher" => true,
        "AnyControlEndpointMatcher" => check.method != "get",
        "ForceBuildEndpointMatcher" => check.method == "force" && builder_ok(),
        "StopBuildEndpointMatcher" => check.method == "stop" && builder_ok(),
        "RebuildBuildEndpointMatcher" => check.method == "rebuild" && builder_ok(),
        "EnableSchedulerEndpointMatcher" => check.method == "enable",
        _ => false,
    }
}

/// The roles the role matchers give the current user.
fn roles(matchers: &[Json], identity: &Identity, check: &Check) -> Vec<String> {
    let Some(user) = &identity.user else {
        return Vec::new();
    };
    let strings = |v: Option<&Json>| -> Vec<String> {
        match v {
            Some(Json::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Some(Json::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let email = user.email.as_deref().unwrap_or(&user.name);
    let mut out = Vec::new();
    for matcher in matchers {
        let kwargs = matcher.get("kwargs").and_then(Json::as_object);
        match class(matcher) {
            "RolesFromUsername" => {
                let usernames = strings(kwarg(matcher, "usernames", 1));
                if usernames.iter().any(|u| u == &user.name) {
                    out.extend(strings(kwarg(matcher, "roles", 0)));
                }
            }
            "RolesFromGroups" => {
                let prefix = kwarg(matcher, "groupPrefix", 0)
                    .and_then(Json::as_str)
                    .unwrap_or("");
                out.extend(
                    user.groups
                        .iter()
                        .filter_map(|g| g.strip_prefix(prefix).map(str::to_string)),
                );
            }
            "RolesFromEmails" | "RolesFromDomain" => {
                let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
                let by_domain = class(matcher) == "RolesFromDomain";
                for (role, values) in kwargs.into_iter().flatten() {
                    let hit = strings(Some(values)).iter().any(|v| {
                        if by_domain {
                            v == domain
                        } else {
                            v == email
                        }
                    });
                    if hit {
                        out.push(role.clone());
                    }
                }
            }
            "RolesFromOwner" => {
                let owner = check
                    .object
                    .as_ref()
                    .and_then(|o| o.get("owner"))
                    .and_then(Json::as_str);
                if owner == Some(email) {
                    out.extend(strings(kwarg(matcher, "role", 0)));
                }
            }
            _ => {}
        }
    }
    out
}

/// `fnmatch`-style glob: `*` any run, `?` one character.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::User;

    fn identity(name: &str, groups: &[&str]) -> Identity {
        Identity {
            user: Some(User {
                name: name.to_string(),
                email: Some(format!("{name}@example.org")),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            }),
            ..Identity::default()
        }
    }

    fn check(rules: Json, matchers: Json, who: &Identity, method: &str, builder: &str) -> bool {
        let rules = rules.as_array().cloned().unwrap_or_default();
        let matchers = matchers.as_array().cloned().unwrap_or_default();
        let check = Check {
            action: Action("forceBuild"),
            method: method.to_string(),
            builders: vec![builder.to_string()],
            object: None,
        };
        modern_allows(&rules, &matchers, who, &check)
    }

    #[test]
    fn modern_rules_decide_by_first_match_and_roles() {
        let rules = json!([
            {"class": "ForceBuildEndpointMatcher", "args": [], "kwargs": {"builder": "rel-*", "role": "releng"}},
            {"class": "AnyControlEndpointMatcher", "args": [], "kwargs": {"role": "admins"}},
        ]);
        let matchers = json!([
            {"class": "RolesFromUsername", "args": [], "kwargs": {"roles": ["admins"], "usernames": ["root"]}},
            {"class": "RolesFromGroups", "args": [], "kwargs": {"groupPrefix": "ci-"}},
            {"class": "RolesFromEmails", "args": [], "kwargs": {"releng": ["bob@example.org"]}},
        ]);
        let bob = identity("bob", &[]);
        let root = identity("root", &[]);
        let carol = identity("carol", &["ci-releng"]);
        let anonymous = Identity::default();
        assert!(check(
            rules.clone(),
            matchers.clone(),
            &bob,
            "force",
            "rel-1"
        ));
        assert!(check(
            rules.clone(),
            matchers.clone(),
            &carol,
            "force",
            "rel-1"
        ));
        assert!(!check(
            rules.clone(),
            matchers.clone(),
            &root,
            "force",
            "rel-1"
        ));
        assert!(check(rules.clone(), matchers.clone(), &root, "stop", "x"));
        assert!(!check(rules.clone(), matchers.clone(), &bob, "stop", "x"));
        assert!(!check(
            rules.clone(),
            matchers.clone(),
            &anonymous,
            "force",
            "rel-1"
        ));
        assert!(check(rules, matchers, &anonymous, "get", "x"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("rel-*", "rel-1"));
        assert!(!glob_match("rel-*", "dev"));
        assert!(glob_match("a?c*", "abcdef"));
    }
}
