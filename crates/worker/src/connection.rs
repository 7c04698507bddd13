//! The connection to the master: the reconnect loop with back-off, and the per-connection actor
//! that owns the socket, answers the master's requests and runs commands.
//!
//! A connection ends when the socket closes or fails, when the master sends `shutdown`, or when
//! the caller's shutdown future resolves. Its end interrupts every running command (killing
//! their process groups, spec §5.5) and waits for them before the next attempt.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use protocol::{decode, Message, Op, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::commands::{self, Interrupt};
use crate::info::worker_info;
use crate::output::OutputSettings;
use crate::reporter::Reporter;
use crate::rpc::Rpc;
use crate::tls::Transport;
use crate::{WorkerError, WorkerOptions};

/// Longest wait between connection attempts (plus jitter), as in the stock worker.
const MAX_BACKOFF: f64 = 60.0;
/// Time allowed for the TCP connect and the WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time running commands get to die when a connection ends.
const COMMANDS_GRACE: Duration = Duration::from_secs(30);

type WsStream = tokio_tungstenite::WebSocketStream<Box<dyn Transport>>;

/// Why one connection ended.
enum Ended {
    /// The socket closed or failed: reconnect.
    Disconnected,
    /// The master sent `shutdown` or the caller asked to stop: exit.
    Shutdown,
}

/// Connects to the master and serves it until `shutdown` (from the master or the future);
/// reconnects with back-off `min(1.5^n, 60) s + [0, 1) s` after `n` consecutive failures.
///
/// Returns `Ok(())` on shutdown, [`WorkerError::GaveUp`] after `max_retries` consecutive
/// failures, and an error at once for unusable options.
pub async fn run(
    opts: WorkerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    opts.validate()?;
    let tls = match opts.use_tls {
        true => Some(crate::tls::client_config(opts.tls_ca.as_deref())?),
        false => None,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut settings = OutputSettings::default();
    let mut failures: u32 = 0;
    loop {
        let attempt = tokio::select! {
            attempt = connect(&opts, tls.clone()) => attempt,
            _ = &mut shutdown => return Ok(()),
        };
        match attempt {
            Ok(ws) => {
                tracing::info!(master = %opts.master_address(), "connected to master");
                failures = 0;
                if let Ended::Shutdown = serve(ws, &opts, &mut settings, shutdown.as_mut()).await {
                    tracing::info!("worker shutting down");
                    return Ok(());
                }
                tracing::info!("lost connection to master");
            }
            Err(err) => {
                failures += 1;
                tracing::warn!(master = %opts.master_address(), %err, failures, "connection attempt failed");
                if opts.max_retries.is_some_and(|max| failures >= max) {
                    return Err(WorkerError::GaveUp { attempts: failures });
                }
            }
        }
        let delay = 1.5f64.powi(failures.min(64) as i32).min(MAX_BACKOFF) + jitter();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(delay)) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// A pseudo-random fraction in [0, 1), enough to spread reconnecting workers.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Why a connection attempt failed (logged, then retried).
#[derive(Debug)]
enum ConnectError {
    Request(String),
    Tcp(std::io::Error),
    Tls(std::io::Error),
    Handshake(tokio_tungstenite::tungstenite::Error),
    Timeout,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Request(message) => write!(f, "bad request: {message}"),
            ConnectError::Tcp(err) => write!(f, "{err}"),
            // The usual causes, said plainly: the master's certificate is not trusted, or the
            // master's port does not speak TLS (rustls then sees an HTTP answer).
            ConnectError::Tls(err) => write!(
                f,
                "TLS handshake failed: {err} (check that the master's worker port is ssl: and \
                 that --tls-ca or SSL_CERT_FILE names the certificate that signs the master's)"
            ),
            ConnectError::Handshake(tokio_tungstenite::tungstenite::Error::Protocol(err)) => {
                write!(
                    f,
                    "{err} (if the master's worker port is ssl:, create the worker with --use-tls)"
                )
            }
            ConnectError::Handshake(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                write!(f, "master answered {}", response.status())
            }
            ConnectError::Handshake(err) => write!(f, "{err}"),
            ConnectError::Timeout => write!(f, "timed out"),
        }
    }
}

async fn connect(
    opts: &WorkerOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<WsStream, ConnectError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connect_unbounded(opts, tls)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout),
    }
}

async fn connect_unbounded(
    opts: &WorkerOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<WsStream, ConnectError> {
    let url = format!("ws://{}/", opts.master_address());
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectError::Request(e.to_string()))?;
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", opts.name, opts.password));
    let header = format!("Basic {credentials}")
        .parse()
        .map_err(|_| ConnectError::Request("invalid credentials".into()))?;
    request.headers_mut().insert("Authorization", header);
    let config = WebSocketConfig::default()
        .max_message_size(Some(protocol::MAX_MESSAGE_SIZE))
        .max_frame_size(Some(protocol::MAX_MESSAGE_SIZE));
    let address = opts.master_address();
    let tcp = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(ConnectError::Tcp)?;
    // Nagle off: transfers are strict ping-pong of small messages.
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Transport> = match tls {
        Some(tls) => {
            let host = address
                .rsplit_once(':')
                .map_or(address.as_str(), |(h, _)| h);
            let stream = crate::tls::connect(tls, host, tcp)
                .await
                .map_err(ConnectError::Tls)?;
            Box::new(stream)
        }
        None => Box::new(tcp),
    };
    // Like the stock worker, the URL stays ws:// over TLS (spec Q13); only the socket differs.
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((ws, _response)) => Ok(ws),
        Err(err) => Err(ConnectError::Handshake(err)),
    }
}

/// Running commands by id: a token (so that a finished command only removes itself) and the
/// sender of its interrupt.
type Running = HashMap<String, (u64, watch::Sender<Option<String>>)>;
type Registry = Arc<Mutex<Running>>;

fn lock(registry: &Registry) -> std::sync::MutexGuard<'_, Running> {
    // Each critical section is one map operation, so a poisoned map is still consistent.
    registry
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection's state, owned by [`serve`].
struct Session<'a> {
    opts: &'a WorkerOptions,
    settings: &'a mut OutputSettings,
    rpc: Rpc,
    registry: Registry,
    tasks: JoinSet<()>,
    next_token: u64,
}

async fn serve(
    ws: WsStream,
    opts: &WorkerOptions,
    settings: &mut OutputSettings,
    mut shutdown: Pin<&mut (impl Future<Output = ()> + Send)>,
) -> Ended {
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    // The writer owns the sink; on stop it sends what is queued (e.g. the `shutdown` answer).
    let writer = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                bytes = out_rx.recv() => match bytes {
                    Some(bytes) => if sink.send(WsMessage::Binary(bytes.into())).await.is_err() { break },
                    None => break,
                },
                _ = &mut stop_rx => {
                    while let Ok(bytes) = out_rx.try_recv() {
                        if sink.send(WsMessage::Binary(bytes.into())).await.is_err() {
                            break;
                        }
                    }
                    break;
                }
            }
        }
        let _ = sink.close().await;
    });
    let mut session = Session {
        opts,
        settings,
        rpc: Rpc::new(out_tx),
        registry: Arc::new(Mutex::new(HashMap::new())),
        tasks: JoinSet::new(),
        next_token: 0,
    };
    let ended = loop {
        tokio::select! {
            frame = stream.next() => match frame {
                None | Some(Ok(WsMessage::Close(_))) => break Ended::Disconnected,
                Some(Err(err)) => {
                    tracing::warn!(%err, "connection error");
                    break Ended::Disconnected;
                }
                Some(Ok(WsMessage::Binary(bytes))) => {
                    if session.handle_frame(&bytes) {
                        break Ended::Shutdown;
                    }
                }
                Some(Ok(WsMessage::Text(text))) => tracing::warn!(len = text.len(), "text message from master ignored"),
                Some(Ok(_)) => {}
            },
            Some(_) = session.tasks.join_next(), if !session.tasks.is_empty() => {}
            _ = &mut shutdown => break Ended::Shutdown,
        }
    };
    // Our pending requests can no longer be answered; then stop every command (spec §5.5).
    session.rpc.close();
    let why = match ended {
        Ended::Shutdown => "worker shutting down",
        Ended::Disconnected => "connection lost",
    };
    let running: Vec<_> = lock(&session.registry).drain().collect();
    for (command_id, (_, interrupt)) in running {
        tracing::info!(command_id, why, "stopping command");
        interrupt.send_replace(Some(why.to_owned()));
    }
    let all_done = async { while session.tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(COMMANDS_GRACE, all_done)
        .await
        .is_err()
    {
        tracing::warn!("commands did not stop in time; abandoning them");
        session.tasks.abort_all();
    }
    drop(session);
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    ended
}

impl Session<'_> {
    /// Handles one binary frame; returns true when the master asked us to shut down.
    fn handle_frame(&mut self, bytes: &[u8]) -> bool {
        let (seq, op) = match decode(bytes) {
            Ok(Message::Request { seq, op }) => (seq, op),
            Ok(Message::Response {
                seq,
                result,
                is_exception,
            }) => {
                let reply = match is_exception {
                    false => Ok(result),
                    true => Err(result
                        .as_str()
                        .map_or_else(|| result.to_string(), str::to_owned)),
                };
                self.rpc.resolve(seq, reply);
                return false;
            }
            Err(err) => {
                match err.request_seq() {
                    Some(seq) => self.respond(Message::exception(seq, err.to_string())),
                    None => tracing::warn!(%err, "malformed message from master ignored"),
                }
                return false;
            }
        };
        let reply = match op {
            Op::Print { message } => {
                let text = message
                    .as_str()
                    .map_or_else(|| message.to_string(), str::to_owned);
                tracing::info!("message from master: {text}");
                Message::ok(seq, Value::Nil)
            }
            Op::Keepalive => Message::ok(seq, Value::Nil),
            Op::GetWorkerInfo => Message::ok(seq, worker_info(&self.opts.basedir)),
            Op::SetWorkerSettings { args } => match OutputSettings::from_args(&args) {
                Ok(settings) => {
                    *self.settings = settings;
                    Message::ok(seq, Value::Nil)
                }
                Err(text) => Message::exception(seq, text),
            },
            Op::Shutdown => {
                self.respond(Message::ok(seq, Value::Nil));
                return true;
            }
            Op::StartCommand {
                command_id,
                command_name,
                args,
                ..
            } => match self.start(&command_id, &command_name, &args) {
                Ok(()) => Message::ok(seq, Value::Nil),
                Err(text) => Message::exception(seq, text),
            },
            Op::InterruptCommand { command_id, why } => {
                match lock(&self.registry).get(&command_id) {
                    Some((_, interrupt)) => {
                        interrupt.send_replace(Some(why));
                    }
                    None => {
                        tracing::info!(command_id, "interrupt for a command that is not running")
                    }
                }
                Message::ok(seq, Value::Nil)
            }
            other => Message::unknown_op(seq, other.name()),
        };
        self.respond(reply);
        false
    }

    /// Sends a response without blocking the reader (the socket may be busy with output).
    fn respond(&mut self, msg: Message) {
        let rpc = self.rpc.clone();
        self.tasks.spawn(async move { rpc.respond(msg).await });
    }

    /// Registers and starts a command; the error text is the `start_command` exception.
    fn start(&mut self, command_id: &str, name: &str, args: &Value) -> Result<(), String> {
        if lock(&self.registry).contains_key(command_id) {
            return Err(format!("command id {command_id} is already running"));
        }
        let command = commands::parse(command_id, name, args)?;
        let (interrupt_tx, interrupt) = Interrupt::channel();
        self.next_token += 1;
        let token = self.next_token;
        lock(&self.registry).insert(command_id.to_owned(), (token, interrupt_tx));
        let reporter = Reporter::new(
            command_id.to_owned(),
            self.rpc.clone(),
            self.settings.clone(),
        );
        let registry = self.registry.clone();
        let command_id = command_id.to_owned();
        tracing::info!(command_id, name, "starting command");
        self.tasks.spawn(async move {
            commands::run(command, reporter, interrupt).await;
            let mut running = lock(&registry);
            if running.get(&command_id).is_some_and(|(t, _)| *t == token) {
                running.remove(&command_id);
            }
        });
        Ok(())
    }
}
