//! The log viewer and its endpoints. A log is never loaded whole: the page carries one
//! window of lines; scripts fetch other windows (`/pages/logs/ID/lines`), search
//! (`/pages/logs/ID/search`, which scans a bounded slice per request and says where to go
//! on) and follow a running log (`/pages/logs/ID/follow`, SSE). `.../text` streams it.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use model::LogId;
use serde_json::{json, Value as Json};
use store::{LogKind, LogRecord};

use super::ansi::line_to_html;
use super::args::Args;
use super::build::find_build;
use super::view::{self, internal, seg, Catalog};
use super::Pages;
use crate::{AppState, WebError};

/// Lines the page itself carries (and one JSON window at most).
const WINDOW: i64 = 500;
const MAX_WINDOW: i64 = 5000;
/// Lines read per query while searching.
const SEARCH_BATCH: i64 = 20_000;
/// Time one search request may spend before answering "go on from line N".
const SEARCH_BUDGET: Duration = Duration::from_millis(300);

/// Lines that count as errors for "jump to the first error".
fn error_pattern() -> regex::Regex {
    regex::Regex::new(r"(?i)\b(error|errors|failed|failure|fatal)\b|panicked at|Traceback")
        .expect("the error pattern is a valid regex")
}

/// Splits a stored line into (stream, text): stdio logs start each line with `o`, `e` or `h`.
fn split_stream(kind: LogKind, line: &str) -> (&'static str, &str) {
    if kind != LogKind::Stdio {
        return ("o", line);
    }
    let mut chars = line.chars();
    let stream = match chars.next() {
        Some('e') => "e",
        Some('h') => "h",
        _ => "o",
    };
    (stream, chars.as_str())
}

/// Lines `first..first+count` as JSON objects with escaped HTML.
async fn window(
    state: &AppState,
    log: &LogRecord,
    first: i64,
    count: i64,
) -> Result<Vec<Json>, WebError> {
    if count <= 0 || first >= log.num_lines {
        return Ok(Vec::new());
    }
    let text = state
        .shared
        .store
        .log_lines(log.id, first, first + count - 1)
        .await
        .map_err(internal)?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let (stream, body) = split_stream(log.kind, line);
            json!({"n": first + i as i64, "s": stream, "h": line_to_html(body)})
        })
        .collect())
}

async fn get_log(state: &AppState, id: i64) -> Result<LogRecord, WebError> {
    state
        .shared
        .store
        .log_get(LogId(id))
        .await
        .map_err(internal)?
        .ok_or_else(|| WebError::NotFound(format!("no log {id}")))
}

/// Finds the log of `/builders/$B/builds/$N/steps/$S/logs/$L`.
async fn find_log(
    state: &AppState,
    (name, number, step_name, slug): &(String, String, String, String),
) -> Result<(Json, Json, LogRecord), WebError> {
    let catalog = Catalog::of(state);
    let (_, build) = find_build(state, &catalog, name, number).await?;
    let store = &state.shared.store;
    let steps = store.steps_for_build(build.id).await.map_err(internal)?;
    let step = steps
        .iter()
        .find(|s| &s.name == step_name)
        .ok_or_else(|| WebError::NotFound(format!("no step {step_name:?}")))?;
    let log = store
        .log_get_by_slug(step.id, slug)
        .await
        .map_err(internal)?
        .ok_or_else(|| WebError::NotFound(format!("no log {slug:?}")))?;
    let build_json = view::build(&catalog, &build);
    let step_json = view::step(build_json["url"].as_str().unwrap_or_default(), step);
    Ok((build_json, step_json, log))
}

/// `.../logs/$L?first=N`: the viewer. Without scripts it pages with links; with them it
/// loads windows on scroll, searches, jumps to the first error and follows live.
pub(crate) async fn page(
    State(state): State<AppState>,
    Path(path): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    let (build, step, log) = find_log(&state, &path).await?;
    let last_page = (log.num_lines - 1).max(0) / WINDOW * WINDOW;
    let first = match args.one("first") {
        Some("end") => last_page,
        _ => args.int("first").unwrap_or(0).clamp(0, last_page),
    };
    let lines = window(&state, &log, first, WINDOW).await?;
    let url = format!(
        "{}/logs/{}",
        step["url"].as_str().unwrap_or_default(),
        seg(&log.slug)
    );
    Pages::of(&state).page(
        &state,
        "log.html",
        json!({
            "build": build,
            "step": step,
            "log": {"id": log.id.0, "name": log.name, "lines": log.num_lines, "complete": log.complete, "url": url, "text_url": format!("{url}/text")},
            "lines": lines,
            "first": first,
            "window": WINDOW,
            "prev": if first > 0 { Some((first - WINDOW).max(0)) } else { None },
            "next": if first + WINDOW < log.num_lines { Some(first + WINDOW) } else { None },
            "live_builders": [build["builderid"].clone()],
        }),
    )
}

/// `/pages/logs/ID/lines?first=&count=`: a window of lines as JSON.
pub(crate) async fn lines(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    super::require_view(&state)?;
    let log = get_log(&state, id).await?;
    let first = args.int("first").unwrap_or(0).max(0);
    let count = args.count("count", WINDOW, MAX_WINDOW);
    let lines = window(&state, &log, first, count).await?;
    let body = json!({"first": first, "lines": lines, "num_lines": log.num_lines, "complete": log.complete});
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

/// `/pages/logs/ID/search?q=TEXT|errors=1&from=N`: the first matching line at or after
/// `from`, or where to continue when the time budget ran out (`{"line": null, "next": M}`).
pub(crate) async fn search(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let args = Args::parse(query.as_deref());
    super::require_view(&state)?;
    let log = get_log(&state, id).await?;
    let needle = args.one("q").unwrap_or_default().to_lowercase();
    let errors = args.flag("errors", false);
    if needle.is_empty() && !errors {
        return Err(WebError::BadRequest("give q= or errors=1".to_string()));
    }
    let pattern = error_pattern();
    let started = Instant::now();
    let mut from = args.int("from").unwrap_or(0).max(0);
    let mut found = None;
    while from < log.num_lines {
        let text = state
            .shared
            .store
            .log_lines(log.id, from, from + SEARCH_BATCH - 1)
            .await
            .map_err(internal)?;
        for (i, line) in text.lines().enumerate() {
            let (stream, body) = split_stream(log.kind, line);
            let hit = if errors {
                stream != "h" && pattern.is_match(body)
            } else {
                body.to_lowercase().contains(&needle)
            };
            if hit {
                found = Some(from + i as i64);
                break;
            }
        }
        if found.is_some() {
            break;
        }
        from += SEARCH_BATCH;
        if started.elapsed() > SEARCH_BUDGET {
            break;
        }
    }
    let next = (found.is_none() && from < log.num_lines).then_some(from);
    let body = json!({"line": found, "next": next});
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

/// `.../logs/$L/text`: the log as plain text without header lines, streamed chunk by chunk.
pub(crate) async fn text(
    State(state): State<AppState>,
    Path(path): Path<(String, String, String, String)>,
) -> Result<Response, WebError> {
    super::require_view(&state)?;
    let (_, _, log) = find_log(&state, &path).await?;
    let stdio = log.kind == LogKind::Stdio;
    let stream = state
        .shared
        .store
        .log_chunks_stream(log.id)
        .map(move |chunk| {
            chunk
                .map(|text| {
                    if !stdio {
                        return Bytes::from(text);
                    }
                    let mut out = String::with_capacity(text.len());
                    for line in text.split_inclusive('\n') {
                        if line.starts_with('h') {
                            continue;
                        }
                        let mut chars = line.chars();
                        chars.next();
                        out.push_str(chars.as_str());
                    }
                    Bytes::from(out)
                })
                .map_err(|e| std::io::Error::other(e.to_string()))
        });
    // A log that fits in SMALL_TEXT goes out as one body with a length: streamed as chunks,
    // its last chunk waited on the client's delayed ACK (40 ms per request in
    // bench/pages.sh). Longer logs stream from where the buffer stops, in constant memory.
    const SMALL_TEXT: usize = 64 * 1024;
    let mut stream = Box::pin(stream);
    let mut head: Vec<Bytes> = Vec::new();
    let mut buffered = 0;
    while buffered < SMALL_TEXT {
        match stream.next().await {
            Some(Ok(bytes)) => {
                buffered += bytes.len();
                head.push(bytes);
            }
            Some(Err(e)) => return Err(WebError::Internal(format!("log text: {e}"))),
            None => {
                let body: Vec<u8> = head.concat();
                return Ok((
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    Body::from(body),
                )
                    .into_response());
            }
        }
    }
    let rest =
        futures::stream::iter(head.into_iter().map(Ok::<Bytes, std::io::Error>)).chain(stream);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(rest),
    )
        .into_response())
}

/// `/pages/logs/ID/follow?from=N`: new lines of a running log as they arrive (`lines`
/// events with a JSON window), then `done` when the log finishes.
pub(crate) async fn follow(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let args = Args::parse(query.as_deref());
    // Subscribe before reading, so no append falls between the read and the subscription.
    let receiver = state.shared.bus.subscribe();
    super::require_view(&state)?;
    let log = get_log(&state, id).await?;
    let from = args.int("from").unwrap_or(0).max(0);
    struct Follow {
        state: AppState,
        receiver: tokio::sync::broadcast::Receiver<engine::bus::Event>,
        log: LogRecord,
        next: i64,
        done: bool,
        first_round: bool,
    }
    let start = Follow {
        state,
        receiver,
        log,
        next: from,
        done: false,
        first_round: true,
    };
    let stream = futures::stream::unfold(start, |mut f| async move {
        if f.done {
            return None;
        }
        loop {
            if !f.first_round {
                match f.receiver.recv().await {
                    Ok(event) => {
                        let key = event.key_string();
                        let prefix = format!("logs/{}/", f.log.id.0);
                        if !key.starts_with(&prefix) {
                            continue;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
            f.first_round = false;
            let Ok(log) = get_log(&f.state, f.log.id.0).await else {
                return None;
            };
            f.log = log;
            if f.next < f.log.num_lines {
                let count = (f.log.num_lines - f.next).min(MAX_WINDOW);
                let Ok(lines) = window(&f.state, &f.log, f.next, count).await else {
                    return None;
                };
                let body = json!({"first": f.next, "lines": lines, "num_lines": f.log.num_lines});
                f.next += count;
                // Come straight back: more lines may be waiting, or the end.
                f.first_round = true;
                let event = Event::default().event("lines").data(body.to_string());
                return Some((Ok(event), f));
            }
            if f.log.complete {
                f.done = true;
                return Some((Ok(Event::default().event("done").data("{}")), f));
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
