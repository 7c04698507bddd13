//! Seed 002's `/users`, `/users/table` and `/users/table/NN`, under `showUsersPage`.
//!
//! `/users` only redirects: to `/authfail` when the action is denied, to `/users/table` when
//! allowed, and to the login form when logging in could allow it (`'auth'`, a function, a
//! modern rule). The table pages apply the same rule, so a bookmark cannot skip it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::authz::{self, Action};
use crate::{AppState, WebError};

const SHOW_USERS: Action = Action("showUsersPage");

/// GET `/users`.
pub async fn users(State(state): State<AppState>) -> Response {
    match gate(&state, "/users/table") {
        Ok(()) => Redirect::to("/users/table").into_response(),
        Err(redirect) => redirect.into_response(),
    }
}

/// GET `/users/table`: uid and identifier of every user.
pub async fn table(State(state): State<AppState>) -> Result<Response, Response> {
    gate(&state, "/users/table").map_err(IntoResponse::into_response)?;
    let users = state
        .shared
        .store
        .users_list()
        .await
        .map_err(|e| WebError::Internal(e.to_string()).into_response())?;
    let rows: Vec<_> = users
        .iter()
        .map(|u| json!({ "uid": u.uid.0, "identifier": u.identifier }))
        .collect();
    crate::pages::Pages::of(&state)
        .page(&state, "users.html", json!({ "users": rows }))
        .map_err(IntoResponse::into_response)
}

/// GET `/users/table/NN`: every attribute of one user (never the password hash).
pub async fn one(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Response, Response> {
    gate(&state, &format!("/users/table/{uid}")).map_err(IntoResponse::into_response)?;
    let not_found = || WebError::NotFound(format!("no user {uid}")).into_response();
    let Ok(id) = uid.parse::<i64>() else {
        return Err(not_found());
    };
    let users = state
        .shared
        .store
        .users_list()
        .await
        .map_err(|e| WebError::Internal(e.to_string()).into_response())?;
    let Some(user) = users.iter().find(|u| u.uid.0 == id) else {
        return Err(not_found());
    };
    let mut attributes = vec![
        json!(["uid", user.uid.0.to_string()]),
        json!(["identifier", user.identifier]),
    ];
    if let Some(name) = &user.bb_username {
        attributes.push(json!(["bb_username", name]));
    }
    attributes.extend(user.attributes.iter().map(|(k, v)| json!([k, v])));
    crate::pages::Pages::of(&state)
        .page(
            &state,
            "user.html",
            json!({ "uid": id, "attributes": attributes }),
        )
        .map_err(IntoResponse::into_response)
}

/// Ok when the current user may see the users; else the redirect the seed prescribes.
fn gate(state: &AppState, here: &str) -> Result<(), Redirect> {
    if authz::allows(state, SHOW_USERS) {
        return Ok(());
    }
    let logged_in = crate::auth::current().user.is_some();
    if !logged_in && authz::advertised(state, SHOW_USERS) {
        let target = form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>();
        return Err(Redirect::to(&format!("/login?redirect={target}")));
    }
    Err(Redirect::to("/authfail"))
}
