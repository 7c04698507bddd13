//! Running one remote command for a step: streaming its output to logs, answering its
//! transfer requests, and turning its end into an outcome.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use protocol::{Op, Value};
use tokio::sync::watch;

use super::logwriter::LogWriter;
use crate::convert::msgpack_to_json;
use crate::master::Shared;
use crate::workers::{CommandEvent, WorkerConnection};
use model::Results;

/// How a remote command ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Exit code, if the worker sent one.
    pub rc: Option<i64>,
    /// Worker-side failure text (`complete` with a string): the step ends in EXCEPTION.
    pub failure: Option<String>,
    /// The connection was lost: the build ends in RETRY.
    pub lost: bool,
    /// Stopped by someone, with the result to use (CANCELLED normally).
    pub stopped: Option<Results>,
    /// Last value of every non-output update key (`files`, `stat`, `failure_reason`…).
    pub values: HashMap<String, serde_json::Value>,
    /// Collected stdout, when asked for.
    pub stdout: String,
    /// Collected stderr, when asked for.
    pub stderr: String,
}

/// Answers a command's transfer requests (file uploads and downloads).
pub trait Transfer: Send {
    /// The answer to one transfer op.
    fn handle(&mut self, op: &Op) -> Result<Value, String>;
}

/// Where a command's output goes.
pub struct Sinks<'a> {
    /// The step's `stdio` log.
    pub stdio: Option<&'a mut LogWriter>,
    /// Keep stdout and stderr in the outcome.
    pub collect: bool,
    /// Transfer handler, for transfer commands.
    pub transfer: Option<&'a mut dyn Transfer>,
    /// Logs for `logfiles`, created on first use, keyed by name.
    pub extra_logs: Option<(&'a mut HashMap<String, LogWriter>, model::StepId)>,
}

/// Runs `command_name` with `args` on `conn` until it completes, is lost, or is stopped.
pub async fn run(
    shared: &Arc<Shared>,
    conn: &Arc<WorkerConnection>,
    builder_name: &str,
    command_name: &str,
    args: Value,
    mut sinks: Sinks<'_>,
    stop: &mut watch::Receiver<Option<(Results, String)>>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut cmd = match conn
        .start_command(command_name, args, Some(builder_name))
        .await
    {
        Ok(cmd) => cmd,
        Err(_) => {
            outcome.lost = true;
            return outcome;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut interrupted = false;
    loop {
        let event = tokio::select! {
            event = cmd.next() => event,
            _ = tick.tick() => {
                if let Some(log) = sinks.stdio.as_deref_mut() {
                    log.flush(shared).await;
                }
                continue;
            }
            changed = stop.changed(), if !interrupted => {
                if changed.is_ok() {
                    if let Some((result, why)) = stop.borrow().clone() {
                        interrupted = true;
                        outcome.stopped = Some(result);
                        let conn = conn.clone();
                        let id = cmd.id.clone();
                        // Interrupting waits for the worker's answer; events keep flowing meanwhile.
                        tokio::spawn(async move {
                            let _ = conn.interrupt(&id, &why).await;
                        });
                    }
                } else {
                    interrupted = true;
                }
                continue;
            }
        };
        match event {
            CommandEvent::Update(updates) => {
                for (key, value) in updates {
                    apply_update(shared, &mut outcome, &mut sinks, &key, &value).await;
                }
            }
            CommandEvent::Transfer(op, reply) => {
                let answer = match sinks.transfer.as_deref_mut() {
                    Some(t) => t.handle(&op),
                    None => Err("this command takes no transfers".to_string()),
                };
                let _ = reply.send(answer);
            }
            CommandEvent::Complete(failure) => {
                outcome.failure = failure;
                break;
            }
            CommandEvent::Lost => {
                conn.forget(&cmd.id);
                outcome.lost = true;
                break;
            }
        }
    }
    outcome
}

async fn apply_update(
    shared: &Arc<Shared>,
    outcome: &mut Outcome,
    sinks: &mut Sinks<'_>,
    key: &str,
    value: &Value,
) {
    match key {
        "stdout" | "stderr" | "header" => {
            let text = chunk_text(value);
            if sinks.collect {
                match key {
                    "stdout" => outcome.stdout.push_str(&text),
                    "stderr" => outcome.stderr.push_str(&text),
                    _ => {}
                }
            }
            if let Some(log) = sinks.stdio.as_deref_mut() {
                let prefix = match key {
                    "stdout" => 'o',
                    "stderr" => 'e',
                    _ => 'h',
                };
                log.write(shared, Some(prefix), &text).await;
            }
        }
        "log" => {
            let Value::Array(parts) = value else { return };
            let (Some(Value::String(name)), Some(chunk)) = (parts.first(), parts.get(1)) else {
                return;
            };
            let name = name.as_str().unwrap_or("log").to_string();
            let text = chunk_text(chunk);
            if let Some((logs, step)) = sinks.extra_logs.as_mut() {
                if !logs.contains_key(&name) {
                    match LogWriter::create(shared, *step, &name, store::LogKind::Text).await {
                        Ok(w) => {
                            logs.insert(name.clone(), w);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "could not create log");
                            return;
                        }
                    }
                }
                if let Some(w) = logs.get_mut(&name) {
                    w.write(shared, None, &text).await;
                }
            }
        }
        "rc" => outcome.rc = value.as_i64(),
        other => {
            outcome
                .values
                .insert(other.to_string(), msgpack_to_json(value));
        }
    }
}

/// The text of a `[text, offsets, times]` chunk (or a bare string from older workers).
fn chunk_text(value: &Value) -> String {
    let text = match value {
        Value::Array(parts) => parts.first(),
        other => Some(other),
    };
    match text {
        Some(Value::String(s)) => s
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Some(Value::Binary(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// Builds an args map from pairs.
pub fn args(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// A string list as a msgpack array.
pub fn str_list<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(s.as_ref())).collect())
}
