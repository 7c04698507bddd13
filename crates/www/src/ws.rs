//! `/ws`: the event stream of spec §10, fed by the bus.
//!
//! Each connection keeps its own subscription patterns and one bus receiver; an event goes
//! out once per matching subscription, as upstream. A connection that falls more than the
//! bus capacity behind loses the oldest events rather than slowing the master down.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::authz::{self, VIEW};
use crate::{AppState, WebError};

/// The `/ws` route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The read check comes first, so a refused client learns nothing else.
    if !authz::allows(&state, VIEW) {
        return WebError::Forbidden("you need to have role 'view'".into()).into_response();
    }
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| serve(state, socket)),
        Err(rejection) => rejection.into_response(),
    }
}

/// Runs one connection until the client leaves or the master stops.
async fn serve(state: AppState, mut socket: WebSocket) {
    let mut events = state.shared.bus.subscribe();
    let mut stopping = state.shared.stopping();
    let mut subscriptions: Vec<Vec<String>> = Vec::new();
    loop {
        tokio::select! {
            frame = socket.recv() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let reply = command(&mut subscriptions, text.as_str());
                if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                    return;
                }
            }
            event = events.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "websocket client fell behind; events dropped");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let matching = subscriptions.iter().filter(|p| {
                    let pattern: Vec<&str> = p.iter().map(String::as_str).collect();
                    event.matches(&pattern)
                }).count();
                if matching == 0 {
                    continue;
                }
                let frame = json!({"k": event.key_string(), "m": &*event.payload}).to_string();
                for _ in 0..matching {
                    if socket.send(Message::Text(frame.clone().into())).await.is_err() {
                        return;
                    }
                }
            }
            _ = async { let _ = stopping.wait_for(|s| *s).await; } => return,
        }
    }
}

/// Answers one client frame, updating `subscriptions`. Pure, so it is tested directly.
fn command(subscriptions: &mut Vec<Vec<String>>, text: &str) -> Value {
    let Ok(Value::Object(frame)) = serde_json::from_str::<Value>(text) else {
        return json!({"error": "invalid JSON frame", "code": 400, "_id": null});
    };
    let id = match frame.get("_id") {
        Some(id) => id.clone(),
        None if frame.contains_key("type") => Value::Null,
        None => {
            return json!({"error": "no '_id' or 'type' in websocket frame", "code": 400, "_id": null})
        }
    };
    let Some(cmd) = frame.get("cmd") else {
        return json!({"error": "no 'cmd' in websocket frame", "code": 400, "_id": null});
    };
    let Some(cmd) = cmd.as_str() else {
        return json!({"error": "'cmd' must be a string", "code": 400, "_id": id});
    };
    let path = || match frame.get("path") {
        Some(Value::String(p)) => Ok(p.split('/').map(str::to_string).collect::<Vec<_>>()),
        Some(_) => Err(json!({"error": "path must be a string", "code": 400, "_id": id})),
        None => Err(json!({"error": "missing argument 'path'", "code": 400, "_id": id})),
    };
    match cmd {
        "ping" => json!({"msg": "pong", "code": 200, "_id": id}),
        "startConsuming" => {
            let pattern = match path() {
                Ok(p) => p,
                Err(e) => return e,
            };
            if !subscriptions.contains(&pattern) {
                subscriptions.push(pattern);
            }
            json!({"msg": "OK", "code": 200, "_id": id})
        }
        "stopConsuming" => {
            let pattern = match path() {
                Ok(p) => p,
                Err(e) => return e,
            };
            match subscriptions.iter().position(|p| *p == pattern) {
                Some(i) => {
                    subscriptions.remove(i);
                    json!({"msg": "OK", "code": 200, "_id": id})
                }
                None => json!({
                    "error": format!("path was not consumed '{}'", pattern.join("/")),
                    "code": 400,
                    "_id": id,
                }),
            }
        }
        other => {
            json!({"error": format!("no such command type '{other}'"), "code": 404, "_id": id})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs frames in order on one connection's subscriptions; one reply per line.
    fn check(frames: &[&str], expected: &str) {
        let mut subscriptions = Vec::new();
        let replies: Vec<String> = frames
            .iter()
            .map(|f| command(&mut subscriptions, f).to_string())
            .collect();
        assert_eq!(replies.join("\n"), expected.trim());
    }

    #[test]
    fn commands() {
        check(
            &[
                r#"{"cmd":"ping","_id":1}"#,
                r#"{"cmd":"startConsuming","path":"builds/*/*","_id":2}"#,
                r#"{"cmd":"startConsuming","path":"builds/*/*","_id":3}"#,
                r#"{"cmd":"stopConsuming","path":"builds/*/*","_id":4}"#,
                r#"{"cmd":"stopConsuming","path":"builds/*/*","_id":"x"}"#,
                r#"{"cmd":"nope","_id":5}"#,
                r#"{"_id":6}"#,
                r#"{"cmd":"ping"}"#,
                r#"{"cmd":"startConsuming","path":3,"_id":7}"#,
            ],
            r#"
{"_id":1,"code":200,"msg":"pong"}
{"_id":2,"code":200,"msg":"OK"}
{"_id":3,"code":200,"msg":"OK"}
{"_id":4,"code":200,"msg":"OK"}
{"_id":"x","code":400,"error":"path was not consumed 'builds/*/*'"}
{"_id":5,"code":404,"error":"no such command type 'nope'"}
{"_id":null,"code":400,"error":"no 'cmd' in websocket frame"}
{"_id":null,"code":400,"error":"no '_id' or 'type' in websocket frame"}
{"_id":7,"code":400,"error":"path must be a string"}
"#,
        );
    }
}
