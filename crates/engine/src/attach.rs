//! What happens when a worker connects: the attach sequence, keepalives, and detaching.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocket;
use protocol::{Op, Value};

use crate::master::Shared;
use crate::workers::{RemoteError, WorkerConnection, WorkerInfo};

/// How often a connection is checked with a `keepalive` request, unless the worker's
/// `keepalive_interval` says otherwise. Much shorter than Buildbot's 3600 s: a worker whose
/// connection died silently (a cut cable, a frozen host) holds its builds until we notice.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Longest wait for a keepalive answer; shorter intervals wait one interval.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an old connection has to prove it is alive when a duplicate arrives.
const DUPLICATE_CHECK: Duration = Duration::from_secs(10);

/// Runs one worker connection from upgrade to close.
pub async fn attach(shared: Arc<Shared>, name: String, socket: WebSocket) {
    let (conn, mut closed) = WorkerConnection::start(name.clone(), socket);
    if !replace_duplicate(&shared, &name).await {
        tracing::warn!(worker = %name, "refused a second connection: the first one is alive");
        conn.shut();
        return;
    }
    let info = match bootstrap(&shared, &conn).await {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(worker = %name, error = %e, "worker failed to attach");
            conn.shut();
            return;
        }
    };
    let Some(workerid) = shared.workers.with(|slots| {
        let slot = slots.get_mut(&name)?;
        slot.conn = Some(conn.clone());
        slot.info = info.clone();
        Some(slot.id)
    }) else {
        tracing::warn!(worker = %name, "worker was removed from the config while attaching");
        conn.shut();
        return;
    };
    if let Err(e) = shared
        .store
        .worker_connected(workerid, shared.masterid, &info.raw)
        .await
    {
        tracing::error!(worker = %name, error = %e, "could not record worker connection");
    }
    if crate::missing::cancel(&shared, &name) {
        tracing::info!(worker = %name, "worker is back before its missing_timeout");
    }
    crate::events::worker(&shared, workerid, "connected").await;
    tracing::info!(worker = %name, basedir = %info.basedir, "worker attached");
    shared.wake.notify_one();

    keep_alive(&shared, &conn, &mut closed).await;
    conn.shut();
    let still_ours = shared.workers.with(|slots| match slots.get_mut(&name) {
        Some(slot) if slot.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) => {
            slot.conn = None;
            true
        }
        _ => false,
    });
    if still_ours {
        if let Err(e) = shared
            .store
            .worker_disconnected(workerid, shared.masterid)
            .await
        {
            tracing::error!(worker = %name, error = %e, "could not record worker disconnection");
        }
        crate::events::worker(&shared, workerid, "disconnected").await;
        tracing::info!(worker = %name, "worker detached");
        crate::missing::start(&shared, &name, workerid, crate::missing::Away::Disconnected);
    }
    conn.mark_detached();
    shared.wake.notify_one();
}

/// Sends `keepalive` every interval until the connection closes; a keepalive that is not
/// answered within the interval (60 s at most) ends the connection, so that builds on a worker
/// whose connection died silently end in RETRY and run elsewhere.
async fn keep_alive(
    shared: &Arc<Shared>,
    conn: &Arc<WorkerConnection>,
    closed: &mut tokio::sync::watch::Receiver<bool>,
) {
    let configured = shared
        .runtime()
        .config
        .workers
        .iter()
        .find(|w| w.name == conn.name)
        .and_then(|w| w.keepalive_interval);
    let interval = match configured {
        Some(0) => {
            let _ = closed.wait_for(|c| *c).await;
            return;
        }
        Some(secs) => Duration::from_secs(secs),
        None => KEEPALIVE_INTERVAL,
    };
    let timeout = interval.min(KEEPALIVE_TIMEOUT);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = closed.wait_for(|c| *c) => return,
            _ = ticker.tick() => {}
        }
        let answer = match conn.send_request(Op::Keepalive).await {
            Ok(answer) => answer,
            Err(_) => return,
        };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(_))) => {}
            Ok(Ok(Err(RemoteError::Exception(_)))) => {} // it answered: it is alive
            Ok(_) => return,
            Err(_) => {
                tracing::warn!(worker = %conn.name, timeout_secs = timeout.as_secs_f64(), "worker did not answer a keepalive; dropping it");
                return;
            }
        }
    }
}

/// Checks an existing connection of the same name: a live one wins (returns false), a dead
/// one is dropped.
async fn replace_duplicate(shared: &Arc<Shared>, name: &str) -> bool {
    let Some(old) = shared.workers.get(name).and_then(|slot| slot.conn) else {
        return true;
    };
    if old.is_closed() {
        old.wait_detached(DUPLICATE_CHECK).await;
        return true;
    }
    let probe = old.request(Op::Print {
        message: Value::from("master got a duplicate connection"),
    });
    match tokio::time::timeout(DUPLICATE_CHECK, probe).await {
        Ok(Ok(_)) => false,
        _ => {
            tracing::info!(worker = %name, "replacing a dead connection");
            old.shut();
            // The old attach task records the disconnection; let it finish first, so that it
            // cannot mark the new connection disconnected in the database.
            old.wait_detached(DUPLICATE_CHECK).await;
            true
        }
    }
}

/// The attach sequence of spec §5.1: print, get_worker_info, settings, builder directories.
async fn bootstrap(
    shared: &Arc<Shared>,
    conn: &Arc<WorkerConnection>,
) -> Result<WorkerInfo, String> {
    conn.request(Op::Print {
        message: Value::from("attached"),
    })
    .await
    .map_err(|e| e.to_string())?;
    let raw = conn
        .request(Op::GetWorkerInfo)
        .await
        .map_err(|e| e.to_string())?;
    let info = worker_info(&raw)?;
    let settings = Value::Map(vec![
        (
            Value::from("newline_re"),
            Value::from(r"(\r\n|\r(?=.)|\033\[u|\033\[[0-9]+;[0-9]+[Hf]|\033\[2J|\x08+)"),
        ),
        (Value::from("max_line_length"), Value::from(4096)),
        (Value::from("buffer_timeout"), Value::from(5)),
        (Value::from("buffer_size"), Value::from(65536)),
    ]);
    conn.request(Op::SetWorkerSettings { args: settings })
        .await
        .map_err(|e| e.to_string())?;
    let runtime = shared.runtime();
    let dirs: Vec<Value> = runtime
        .config
        .builders
        .iter()
        .filter(|b| b.workernames.iter().any(|w| *w == conn.name))
        .map(|b| Value::from(info.join(&[&crate::build::builder_dir(b)])))
        .collect();
    if !dirs.is_empty() {
        let args = Value::Map(vec![(Value::from("paths"), Value::Array(dirs))]);
        crate::build::run_simple(conn, "mkdir", args)
            .await
            .map_err(|e| format!("mkdir of builder directories failed: {e}"))?;
    }
    Ok(info)
}

fn worker_info(raw: &Value) -> Result<WorkerInfo, String> {
    let json = crate::convert::msgpack_to_json(raw);
    let basedir = json
        .get("basedir")
        .and_then(|v| v.as_str())
        .ok_or("worker info has no basedir")?
        .to_string();
    let system = json
        .get("system")
        .and_then(|v| v.as_str())
        .unwrap_or("posix")
        .to_string();
    // The environment is large and may hold secrets; pages show only the descriptive keys.
    let mut shown = serde_json::Map::new();
    if let Some(map) = json.as_object() {
        for (k, v) in map {
            if k != "environ" && k != "worker_commands" {
                shown.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(WorkerInfo {
        basedir,
        system,
        raw: serde_json::Value::Object(shown),
    })
}
