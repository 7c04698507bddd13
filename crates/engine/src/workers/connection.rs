//! One attached worker: the master side of the msgpack RPC over a WebSocket.
//!
//! The connection task owns the socket. Requests we send get a `seq_number` and a oneshot for
//! the answer. Commands are registered *before* `start_command` is sent, because a fast
//! worker's `update` and `complete` arrive before the `start_command` response (spec §6.1).
//! Updates are handed to the command's bounded channel before they are acknowledged, so a
//! worker that streams faster than we store is slowed down by TCP instead of filling memory.
//!
//! A connection's memory is bounded whatever the peer sends: frames are at most [`MAX_FRAME`]
//! bytes, frames queued for commands hold at most [`IN_FLIGHT_BYTES`] between them, and a peer
//! that sends [`MAX_BAD_FRAMES`] frames we cannot use is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use futures::{SinkExt, StreamExt};
use protocol::{Message, Op, Value};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

/// Largest frame we accept from a worker.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Updates buffered per command before we stop reading the socket. The stock worker keeps
/// up to 8 updates of ~64 KiB in flight, so 8 keeps it streaming while bounding memory to
/// ~0.5 MiB per command (64 gave ~14 MiB per streaming worker in bench/workers.sh).
const COMMAND_QUEUE: usize = 8;
/// Bytes of received frames that may wait in command queues, per connection. Past this the
/// reader waits, so a worker that streams faster than we store is slowed down by TCP.
pub const IN_FLIGHT_BYTES: usize = 32 * 1024 * 1024;
/// Malformed frames, unknown ops and stray responses a connection may send before it is
/// dropped. The stock worker never sends any.
pub const MAX_BAD_FRAMES: u32 = 100;
/// How long a request to the worker may go unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What a running command hears from the worker.
#[derive(Debug)]
pub enum CommandEvent {
    /// A batch of `[key, value]` updates.
    Update(Vec<(String, Value)>),
    /// The command finished; `Some` carries a worker-side failure text.
    Complete(Option<String>),
    /// A transfer request that needs an answer (`update_read_file`, upload writes…).
    Transfer(Op, oneshot::Sender<Result<Value, String>>),
    /// The connection was lost; no more events follow.
    Lost,
}

/// Why a request to the worker failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// The worker answered with `is_exception`.
    #[error("worker error: {0}")]
    Exception(String),
    /// The connection closed before an answer.
    #[error("worker connection lost")]
    Lost,
    /// No answer in time.
    #[error("worker did not answer in time")]
    Timeout,
}

/// Why a worker's request was refused.
enum Refusal {
    /// The request makes no sense (unknown op or command): it counts toward [`MAX_BAD_FRAMES`].
    Bad(String),
    /// A transfer failed on our side (a file we cannot write…): the worker's command fails.
    Failed(String),
}

type Pending = HashMap<i64, oneshot::Sender<Result<Value, RemoteError>>>;

/// An event on its way to a command, with the share of [`IN_FLIGHT_BYTES`] it holds until the
/// command takes it.
type Queued = (CommandEvent, Option<OwnedSemaphorePermit>);

/// A live connection to one worker. Cheap to share.
pub struct WorkerConnection {
    /// Worker name.
    pub name: String,
    out: mpsc::Sender<Vec<u8>>,
    pending: Mutex<Pending>,
    commands: Mutex<HashMap<String, mpsc::Sender<Queued>>>,
    next_seq: AtomicI64,
    next_command: AtomicU64,
    closed: watch::Sender<bool>,
    detached: watch::Sender<bool>,
    in_flight: Arc<Semaphore>,
    bad_frames: std::sync::atomic::AtomicU32,
}

impl WorkerConnection {
    /// Starts the reader and writer tasks for `socket`; returns the handle and a future that
    /// resolves when the connection ends.
    pub fn start(
        name: String,
        socket: WebSocket,
    ) -> (Arc<WorkerConnection>, tokio::sync::watch::Receiver<bool>) {
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(256);
        let (closed, closed_rx) = watch::channel(false);
        let conn = Arc::new(WorkerConnection {
            name,
            out: out_tx,
            pending: Mutex::new(HashMap::new()),
            commands: Mutex::new(HashMap::new()),
            next_seq: AtomicI64::new(0),
            next_command: AtomicU64::new(0),
            closed,
            detached: watch::channel(false).0,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT_BYTES)),
            bad_frames: std::sync::atomic::AtomicU32::new(0),
        });
        let (mut sink, mut stream) = socket.split();
        let writer_conn = conn.clone();
        let mut writer_closed = closed_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    frame = out_rx.recv() => {
                        let Some(frame) = frame else { break };
                        if sink.send(WsMessage::Binary(frame.into())).await.is_err() {
                            break;
                        }
                    }
                    _ = writer_closed.changed() => break,
                }
            }
            let _ = sink.close().await;
            writer_conn.shut();
        });
        let reader_conn = conn.clone();
        let mut reader_closed = closed_rx.clone();
        tokio::spawn(async move {
            loop {
                // A peer that went silent without closing (a cut cable) never ends the stream;
                // `shut` (a keepalive timeout) must end the reader too, to free the socket.
                let frame = tokio::select! {
                    frame = stream.next() => frame,
                    _ = reader_closed.wait_for(|closed| *closed) => break,
                };
                let bytes = match frame {
                    Some(Ok(WsMessage::Binary(b))) => b,
                    None | Some(Ok(WsMessage::Close(_))) => break,
                    Some(Err(e)) => {
                        tracing::info!(worker = %reader_conn.name, error = %e, "worker connection failed");
                        break;
                    }
                    Some(Ok(_)) => continue, // text and ping frames carry no protocol messages
                };
                // The permit is this frame's share of the in-flight budget; it is released when
                // the frame is handled, or when a command takes the event it became.
                let size = bytes.len().clamp(1, IN_FLIGHT_BYTES) as u32;
                let Ok(permit) = reader_conn.in_flight.clone().acquire_many_owned(size).await
                else {
                    break;
                };
                if let Err(e) = reader_conn.handle_frame(&bytes, permit).await {
                    let bad = reader_conn.bad_frames.fetch_add(1, Ordering::Relaxed) + 1;
                    if bad <= 10 {
                        tracing::warn!(worker = %reader_conn.name, error = %e, "bad message from worker");
                    }
                    if bad >= MAX_BAD_FRAMES {
                        tracing::warn!(worker = %reader_conn.name, bad, "dropping a worker that sends bad messages");
                        break;
                    }
                }
            }
            reader_conn.shut();
        });
        (conn, closed_rx)
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Marks the end of the attach task's cleanup (the slot and the database no longer name
    /// this connection), so that a replacing connection may take over.
    pub fn mark_detached(&self) {
        self.detached.send_replace(true);
    }

    /// Waits until [`WorkerConnection::mark_detached`], at most `within`.
    pub async fn wait_detached(&self, within: Duration) {
        let mut detached = self.detached.subscribe();
        let _ = tokio::time::timeout(within, detached.wait_for(|d| *d)).await;
    }

    /// Ends the connection: fails every pending request and every running command.
    pub fn shut(&self) {
        self.closed.send_replace(true);
        let pending: Pending =
            std::mem::take(&mut *self.pending.lock().expect("pending lock poisoned"));
        for (_, tx) in pending {
            let _ = tx.send(Err(RemoteError::Lost));
        }
        let commands: HashMap<_, _> =
            std::mem::take(&mut *self.commands.lock().expect("commands lock poisoned"));
        for (_, tx) in commands {
            let _ = tx.try_send((CommandEvent::Lost, None));
        }
    }

    /// Handles one frame; an error means the frame was of no use (it counts as bad).
    async fn handle_frame(&self, bytes: &[u8], permit: OwnedSemaphorePermit) -> Result<(), String> {
        let msg = match protocol::decode(bytes) {
            Ok(msg) => msg,
            Err(e) => {
                // A request whose keys are wrong still gets its answer, as the stock sides do.
                if let Some(seq) = e.request_seq() {
                    self.respond(seq, Err(e.to_string())).await;
                }
                return Err(e.to_string());
            }
        };
        match msg {
            Message::Response {
                seq,
                result,
                is_exception,
            } => {
                let tx = self
                    .pending
                    .lock()
                    .expect("pending lock poisoned")
                    .remove(&seq);
                let Some(tx) = tx else {
                    return Err(format!("response to unknown seq_number {seq}"));
                };
                let answer = if is_exception {
                    Err(RemoteError::Exception(value_text(&result)))
                } else {
                    Ok(result)
                };
                let _ = tx.send(answer);
                Ok(())
            }
            Message::Request { seq, op } => match self.handle_request(op, permit).await {
                Ok(result) => {
                    self.respond(seq, Ok(result)).await;
                    Ok(())
                }
                Err(Refusal::Failed(text)) => {
                    self.respond(seq, Err(text)).await;
                    Ok(())
                }
                Err(Refusal::Bad(text)) => {
                    self.respond(seq, Err(text.clone())).await;
                    Err(text)
                }
            },
        }
    }

    async fn handle_request(&self, op: Op, permit: OwnedSemaphorePermit) -> Result<Value, Refusal> {
        let command_id = match &op {
            Op::Update { command_id, .. }
            | Op::Complete { command_id, .. }
            | Op::UploadFileWrite { command_id, .. }
            | Op::UploadFileClose { command_id }
            | Op::UploadFileUtime { command_id, .. }
            | Op::UploadDirectoryWrite { command_id, .. }
            | Op::UploadDirectoryUnpack { command_id }
            | Op::ReadFile { command_id, .. }
            | Op::ReadFileClose { command_id } => command_id.clone(),
            Op::Unknown { op, .. } => {
                return Err(Refusal::Bad(format!("Command {op} does not exist.")))
            }
            other => {
                return Err(Refusal::Bad(format!(
                    "Command {} does not exist.",
                    op_name(other)
                )))
            }
        };
        let tx = self
            .commands
            .lock()
            .expect("commands lock poisoned")
            .get(&command_id)
            .cloned();
        let Some(tx) = tx else {
            return Err(Refusal::Bad("'unknown \"command_id\"'".to_string()));
        };
        match op {
            Op::Update { updates, .. } => {
                let _ = tx.send((CommandEvent::Update(updates), Some(permit))).await;
                Ok(Value::Nil)
            }
            Op::Complete { failure, .. } => {
                self.commands
                    .lock()
                    .expect("commands lock poisoned")
                    .remove(&command_id);
                let _ = tx.send((CommandEvent::Complete(failure), None)).await;
                Ok(Value::Nil)
            }
            transfer => {
                let (reply_tx, reply_rx) = oneshot::channel();
                if tx
                    .send((CommandEvent::Transfer(transfer, reply_tx), Some(permit)))
                    .await
                    .is_err()
                {
                    return Err(Refusal::Failed("command is no longer running".to_string()));
                }
                reply_rx
                    .await
                    .unwrap_or_else(|_| Err("command is no longer running".to_string()))
                    .map_err(Refusal::Failed)
            }
        }
    }

    async fn respond(&self, seq: i64, answer: Result<Value, String>) {
        let msg = match answer {
            Ok(result) => Message::Response {
                seq,
                result,
                is_exception: false,
            },
            Err(text) => Message::Response {
                seq,
                result: Value::from(text),
                is_exception: true,
            },
        };
        let _ = self.out.send(protocol::encode(&msg)).await;
    }

    /// Sends a request and waits for its answer.
    pub async fn request(&self, op: Op) -> Result<Value, RemoteError> {
        let rx = self.send_request(op).await?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(RemoteError::Lost),
            Err(_) => Err(RemoteError::Timeout),
        }
    }

    /// Sends a request; the receiver yields its answer.
    pub async fn send_request(
        &self,
        op: Op,
    ) -> Result<oneshot::Receiver<Result<Value, RemoteError>>, RemoteError> {
        if self.is_closed() {
            return Err(RemoteError::Lost);
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock poisoned")
            .insert(seq, tx);
        let frame = protocol::encode(&Message::Request { seq, op });
        if self.out.send(frame).await.is_err() {
            self.pending
                .lock()
                .expect("pending lock poisoned")
                .remove(&seq);
            return Err(RemoteError::Lost);
        }
        Ok(rx)
    }

    /// Registers a new command and sends `start_command`. The receiver yields its events;
    /// the oneshot yields the `start_command` answer, which may come after the events.
    pub async fn start_command(
        &self,
        command_name: &str,
        args: Value,
        builder_name: Option<&str>,
    ) -> Result<RunningCommand, RemoteError> {
        let id = self
            .next_command
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        self.commands
            .lock()
            .expect("commands lock poisoned")
            .insert(id.clone(), tx);
        let op = Op::StartCommand {
            command_id: id.clone(),
            command_name: command_name.to_string(),
            args,
            builder_name: builder_name.map(str::to_string),
        };
        match self.send_request(op).await {
            Ok(started) => Ok(RunningCommand {
                id,
                events: rx,
                started: Some(started),
            }),
            Err(e) => {
                self.commands
                    .lock()
                    .expect("commands lock poisoned")
                    .remove(&id);
                Err(e)
            }
        }
    }

    /// Asks the worker to interrupt a command.
    pub async fn interrupt(&self, command_id: &str, why: &str) -> Result<(), RemoteError> {
        let op = Op::InterruptCommand {
            command_id: command_id.to_string(),
            why: why.to_string(),
        };
        self.request(op).await.map(|_| ())
    }

    /// Forgets a command whose start failed, so late messages for it are refused.
    pub fn forget(&self, command_id: &str) {
        self.commands
            .lock()
            .expect("commands lock poisoned")
            .remove(command_id);
    }
}

/// A command started on a worker.
pub struct RunningCommand {
    /// The `command_id`.
    pub id: String,
    /// Updates, transfers and completion.
    events: mpsc::Receiver<Queued>,
    /// The answer to `start_command`, until it has been seen.
    pub started: Option<oneshot::Receiver<Result<Value, RemoteError>>>,
}

impl RunningCommand {
    /// The next event. A failed `start_command` is reported as `Complete(Some(reason))`.
    pub async fn next(&mut self) -> CommandEvent {
        loop {
            let started = self.started.as_mut();
            match started {
                Some(started) => tokio::select! {
                    answer = started => {
                        self.started = None;
                        match answer {
                            Ok(Ok(_)) => continue,
                            Ok(Err(RemoteError::Lost)) | Err(_) => return CommandEvent::Lost,
                            Ok(Err(e)) => return CommandEvent::Complete(Some(e.to_string())),
                        }
                    }
                    event = self.events.recv() => return event.map_or(CommandEvent::Lost, |(e, _)| e),
                },
                None => {
                    return self
                        .events
                        .recv()
                        .await
                        .map_or(CommandEvent::Lost, |(e, _)| e)
                }
            }
        }
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Print { .. } => "print",
        Op::Keepalive => "keepalive",
        Op::GetWorkerInfo => "get_worker_info",
        Op::SetWorkerSettings { .. } => "set_worker_settings",
        Op::Shutdown => "shutdown",
        Op::StartCommand { .. } => "start_command",
        Op::InterruptCommand { .. } => "interrupt_command",
        _ => "unknown",
    }
}

/// Text of an error result.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.as_str().unwrap_or_default().to_string(),
        other => other.to_string(),
    }
}
