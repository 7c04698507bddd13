//! The audit log from the web side: every decided control action is recorded by
//! [`crate::authz::authorize`], and `/audit` shows the newest entries to those allowed
//! `showUsersPage` (the seed's one action about seeing who does what).

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use crate::auth::Identity;
use crate::authz::{self, Action};
use crate::{AppState, WebError};

/// Records one decision. A failed write is logged, never fatal: refusing the action would
/// let a full disk stop every stop button.
pub async fn record(
    state: &AppState,
    identity: &Identity,
    action: Action,
    target: &str,
    allowed: bool,
) {
    let username = identity
        .user
        .as_ref()
        .map(|u| u.name.as_str())
        .unwrap_or("anonymous");
    let entry = store::audit::NewAuditEntry {
        username,
        action: action.0,
        target,
        remote: identity.remote.as_deref(),
        allowed,
    };
    tracing::info!(
        user = username,
        action = action.0,
        target,
        remote = identity.remote.as_deref().unwrap_or("-"),
        allowed,
        "control action"
    );
    if let Err(e) = state.shared.store.audit_add(&entry).await {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}

/// GET `/audit`: the newest 200 control actions.
pub async fn page(State(state): State<AppState>) -> Result<Response, WebError> {
    let check = authz::Check::plain(Action("showUsersPage"));
    if !authz::allows_check(&state, &check) {
        return Err(WebError::Forbidden(
            "you are not allowed to see the audit log".to_string(),
        ));
    }
    let entries = state
        .shared
        .store
        .audit_recent(200)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "at": e.at, "username": e.username, "action": e.action,
                "target": e.target, "remote": e.remote, "allowed": e.allowed,
            })
        })
        .collect();
    crate::pages::Pages::of(&state).page(&state, "audit.html", json!({ "entries": rows }))
}
