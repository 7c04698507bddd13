//! `/builders` (one box per builder), `/builders/$B` (recent builds, pending requests, force
//! form, charts), its force POST, and `/one_line_per_build`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use config::SchedulerKind;
use serde_json::{json, Value as Json};
use store::pages::BuildFilter;

use super::args::Args;
use super::view::{self, builder_boxes, internal, seg, Catalog};
use super::{charts, csrf, Pages};
use crate::{AppState, WebError};

/// `/builders?builder=&branch=&category=`: one box per builder with its last finished build.
pub(crate) async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let shown = catalog.select(&args.all("builder"), &args.all("category"));
    let branches = args.all("branch");
    let boxes = builder_boxes(&state, &catalog, &shown, &branches).await?;
    let ids: Vec<i64> = shown.iter().map(|b| b.id.0).collect();
    Pages::of(&state).page(
        &state,
        "builders.html",
        json!({ "boxes": boxes, "live_builders": ids, "branches": branches }),
    )
}

/// The access policy for a control action from the pages: the same check as REST's.
pub(crate) fn policy_allows(state: &AppState, action: &'static str) -> bool {
    crate::authz::advertised(state, crate::authz::Action(action))
}

/// The force schedulers that can build `builder`, as forms.
fn force_forms(state: &AppState, builder: &str) -> Vec<Json> {
    let runtime = state.shared.runtime();
    let field = |p: &config::ForceParameter| {
        json!({
            "name": p.name,
            "label": if p.label.is_empty() { p.name.clone() } else { p.label.clone() },
            "kind": p.kind,
            "default": view::display(&p.default).trim_matches('"').to_string(),
            "choices": p.choices,
            "required": p.required,
        })
    };
    runtime
        .config
        .schedulers
        .iter()
        .filter(|s| s.builder_names.iter().any(|b| b == builder))
        .filter_map(|s| match &s.kind {
            SchedulerKind::Force {
                button_name,
                label,
                reason,
                username,
                codebase_fields,
                properties,
            } => {
                let mut fields = vec![field(username), field(reason)];
                fields.extend(codebase_fields.iter().map(field));
                fields.extend(properties.iter().map(field));
                Some(json!({
                    "scheduler": s.name,
                    "label": label.clone().unwrap_or_else(|| s.name.clone()),
                    "button": button_name.clone().unwrap_or_else(|| "Force Build".to_string()),
                    "fields": fields,
                }))
            }
            _ => None,
        })
        .collect()
}

/// `/builders/$B?numbuilds=&property.X=`.
pub(crate) async fn one(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let builder = catalog.require(&name)?;
    let numbuilds = args.count("numbuilds", default_numbuilds(&state, 5), 1000);
    let properties = args.properties();
    let store = &state.shared.store;
    let rows = store
        .builds_filtered(&BuildFilter {
            builders: Some(vec![builder.id]),
            properties: properties.clone(),
            limit: numbuilds,
            ..BuildFilter::default()
        })
        .await
        .map_err(internal)?;
    let mut boxes = builder_boxes(&state, &catalog, &[builder], &[]).await?;
    if !properties.is_empty() {
        if let Some(builder_box) = boxes.first_mut() {
            keep_pending_with(&state, builder_box, &properties).await?;
        }
    }
    let history = store
        .builder_history(builder.id, 100)
        .await
        .map_err(internal)?;
    let builds: Vec<Json> = rows
        .iter()
        .map(|r| {
            let mut b = view::build(&catalog, &r.build);
            b["branch"] = json!(r.branch);
            b["revision"] = json!(r.revision);
            b
        })
        .collect();
    let pages = Pages::of(&state);
    let allowed = policy_allows(&state, "forceBuild");
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let (token, fresh) = csrf::token(&pages.secret, cookie);
    let mut response = pages.page(
        &state,
        "builder.html",
        json!({
            "builder": boxes.first(),
            "builds": builds,
            "numbuilds": numbuilds,
            "properties": properties,
            "force_allowed": allowed,
            "forms": if allowed { force_forms(&state, &builder.name) } else { Vec::new() },
            "csrf": token,
            "chart": charts::builder_svg(&history),
            "live_builders": [builder.id.0],
            "live_rows": true,
            "force_url": format!("/builders/{}/force", seg(&builder.name)),
        }),
    )?;
    if fresh && allowed {
        if let Ok(v) = HeaderValue::from_str(&csrf::set_cookie(&token)) {
            response.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// The `numbuilds` WebStatus option, else `fallback`.
pub(crate) fn default_numbuilds(state: &AppState, fallback: i64) -> i64 {
    state
        .shared
        .runtime()
        .config
        .www
        .options
        .get("numbuilds")
        .and_then(Json::as_i64)
        .filter(|n| *n > 0)
        .unwrap_or(fallback)
}

/// POST `/builders/$B/force`: the force form. Needs the `forceBuild` permission and a valid
/// CSRF token; answers with a redirect to the builder page.
pub(crate) async fn force(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    if body.len() > 64 * 1024 {
        return Err(WebError::BadRequest("form too large".to_string()));
    }
    let catalog = Catalog::of(&state);
    let builder = catalog.require(&name)?;
    let check = crate::actions::force_check(&state, &builder.name);
    crate::authz::authorize(&state, &check, &format!("builders/{}", builder.name)).await?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let pages = Pages::of(&state);
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    if !csrf::check(&pages.secret, get("csrf"), cookie) {
        return Err(WebError::Forbidden(
            "missing or invalid CSRF token: reload the page and try again".to_string(),
        ));
    }
    let Some(scheduler) = get("scheduler") else {
        return Err(WebError::BadRequest("no scheduler given".to_string()));
    };
    let params: serde_json::Map<String, Json> = pairs
        .iter()
        .filter(|(k, _)| k != "csrf" && k != "scheduler")
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    match engine::control::force(
        &state.shared,
        scheduler,
        Some(vec![builder.name.clone()]),
        &params,
        &crate::auth::current_name(),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&builder.url()).into_response()),
        Err(engine::control::ForceError::Fields(fields)) => Err(WebError::BadRequest(
            fields
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )),
        Err(engine::control::ForceError::UnknownScheduler(n)) => Err(WebError::NotFound(format!(
            "no force scheduler named {n:?}"
        ))),
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

/// `/one_line_per_build?builder=&branch=&numbuilds=`: one line per build, newest finished
/// first.
pub(crate) async fn one_line_per_build(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let catalog = Catalog::of(&state);
    let names = args.all("builder");
    let builders = if names.is_empty() {
        None
    } else {
        Some(catalog.select(&names, &[]).iter().map(|b| b.id).collect())
    };
    let numbuilds = args.count("numbuilds", default_numbuilds(&state, 20), 1000);
    let rows = state
        .shared
        .store
        .builds_filtered(&BuildFilter {
            builders,
            branches: args.all("branch"),
            finished_only: true,
            by_completion: true,
            limit: numbuilds,
            ..BuildFilter::default()
        })
        .await
        .map_err(internal)?;
    let builds: Vec<Json> = rows
        .iter()
        .map(|r| {
            let mut b = view::build(&catalog, &r.build);
            b["branch"] = json!(r.branch);
            b["revision"] = json!(r.revision);
            b
        })
        .collect();
    Pages::of(&state).page(
        &state,
        "one_line_per_build.html",
        json!({ "builds": builds, "numbuilds": numbuilds }),
    )
}

/// Keeps the pending build requests of `builder_box` whose buildset has every `property.X=`
/// pair (one query for all their buildsets), as the seed's filter does for builds.
async fn keep_pending_with(
    state: &AppState,
    builder_box: &mut Json,
    properties: &[(String, String)],
) -> Result<(), WebError> {
    let pending = builder_box["pending"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<model::BuildsetId> = pending
        .iter()
        .filter_map(|r| r["buildsetid"].as_i64().map(model::BuildsetId))
        .collect();
    let by_buildset = state
        .shared
        .store
        .buildsets_properties(&ids)
        .await
        .map_err(internal)?;
    let kept: Vec<Json> = pending
        .into_iter()
        .filter(|r| {
            let Some(props) = r["buildsetid"]
                .as_i64()
                .and_then(|id| by_buildset.get(&model::BuildsetId(id)))
            else {
                return false;
            };
            properties.iter().all(|(name, value)| {
                props.get(name).is_some_and(|v| {
                    view::display(v) == *value
                        || value.parse::<Json>().is_ok_and(|parsed| parsed == *v)
                })
            })
        })
        .collect();
    builder_box["pending_count"] = json!(kept.len());
    builder_box["pending"] = json!(kept);
    Ok(())
}
