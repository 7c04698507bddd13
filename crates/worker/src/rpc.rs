//! The worker's side of the symmetric RPC: numbering our requests and matching the master's
//! responses to them (spec §3.2).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use protocol::{encode, Message, Op, Seq, Value};
use tokio::sync::{mpsc, oneshot};

use crate::WorkerError;

/// What the reader hands back for one of our requests: the result, or the exception text.
type Reply = Result<Value, String>;

/// A cloneable handle to one connection: sends frames and awaits responses to our requests.
///
/// It ends with the connection: once [`Rpc::close`] ran, every send fails and every pending
/// request resolves to [`WorkerError::ConnectionLost`].
#[derive(Clone)]
pub(crate) struct Rpc {
    inner: Arc<Inner>,
}

struct Inner {
    next_seq: AtomicI64,
    closed: AtomicBool,
    pending: Mutex<HashMap<Seq, oneshot::Sender<Reply>>>,
    outgoing: mpsc::Sender<Vec<u8>>,
}

/// A request sent and not yet answered.
pub(crate) struct PendingReply {
    op: &'static str,
    rx: oneshot::Receiver<Reply>,
}

impl Rpc {
    /// A handle writing encoded frames into `outgoing` (drained by the socket writer).
    pub(crate) fn new(outgoing: mpsc::Sender<Vec<u8>>) -> Rpc {
        Rpc {
            inner: Arc::new(Inner {
                next_seq: AtomicI64::new(0),
                closed: AtomicBool::new(false),
                pending: Mutex::new(HashMap::new()),
                outgoing,
            }),
        }
    }

    /// Sends a request; the returned handle resolves to the master's answer.
    pub(crate) async fn send(&self, op: Op) -> Result<PendingReply, WorkerError> {
        let name = static_name(&op);
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(WorkerError::ConnectionLost);
        }
        let seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        // Registered before sending: the answer can arrive before `send` returns.
        self.pending().insert(seq, tx);
        let bytes = encode(&Message::Request { seq, op });
        if self.inner.outgoing.send(bytes).await.is_err() {
            self.pending().remove(&seq);
            return Err(WorkerError::ConnectionLost);
        }
        Ok(PendingReply { op: name, rx })
    }

    /// Sends a request and waits for its answer.
    pub(crate) async fn call(&self, op: Op) -> Result<Value, WorkerError> {
        self.send(op).await?.wait().await
    }

    /// Sends a response to one of the master's requests; a lost connection is only logged.
    pub(crate) async fn respond(&self, msg: Message) {
        if self.inner.outgoing.send(encode(&msg)).await.is_err() {
            tracing::debug!("response not sent: connection lost");
        }
    }

    /// Hands a response from the master to the request waiting for it.
    pub(crate) fn resolve(&self, seq: Seq, reply: Reply) {
        match self.pending().remove(&seq) {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None => tracing::warn!(seq, "response to an unknown request ignored"),
        }
    }

    /// Fails every pending request and refuses new ones.
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.pending().clear();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Seq, oneshot::Sender<Reply>>> {
        // A poisoned lock only means another task panicked while holding it; the map is still
        // consistent because every operation on it is a single insert/remove/clear.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PendingReply {
    /// Waits for the master's answer.
    pub(crate) async fn wait(self) -> Result<Value, WorkerError> {
        match self.rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(WorkerError::Refused {
                op: self.op,
                message,
            }),
            Err(_) => Err(WorkerError::ConnectionLost),
        }
    }
}

fn static_name(op: &Op) -> &'static str {
    match op {
        Op::Update { .. } => "update",
        Op::Complete { .. } => "complete",
        Op::UploadFileWrite { .. } => "update_upload_file_write",
        Op::UploadFileClose { .. } => "update_upload_file_close",
        Op::UploadFileUtime { .. } => "update_upload_file_utime",
        Op::UploadDirectoryWrite { .. } => "update_upload_directory_write",
        Op::UploadDirectoryUnpack { .. } => "update_upload_directory_unpack",
        Op::ReadFile { .. } => "update_read_file",
        Op::ReadFileClose { .. } => "update_read_file_close",
        _ => "request",
    }
}
