//! TLS on the worker port (`ssl:PORT:privateKey=…:certKey=…`), with rustls and ring.
//!
//! Handshakes run in their own tasks, so that a client that stalls in the middle of one delays
//! nobody else; finished streams are handed to the HTTP server through [`TlsListener`]. A
//! failed handshake (a worker without TLS, a client that rejects our certificate) is logged
//! with a hint and closes only that connection.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::throttle::{Throttle, WARNING_INTERVAL};
use crate::EngineError;

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Handshakes in progress at once; more connections wait in the kernel's accept queue, so a
/// flood of half-open TLS connections cannot grow memory without bound.
const MAX_HANDSHAKES: usize = 256;

/// Failed and timed-out handshakes share one throttle: a port scan or a plain worker
/// retrying every few seconds gives one warning per interval.
static HANDSHAKE_FAILED: Throttle = Throttle::new(WARNING_INTERVAL);

/// Reads the PEM key and certificate chain (paths relative to `basedir`) into a server config.
pub fn server_config(
    basedir: &Path,
    private_key: &str,
    cert_key: &str,
) -> Result<Arc<rustls::ServerConfig>, EngineError> {
    let key_path = basedir.join(private_key);
    let cert_path = basedir.join(cert_key);
    let invalid = |what: String| EngineError::Invalid(format!("worker port TLS: {what}"));
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            invalid(format!(
                "cannot read certificates from {}: {e}",
                cert_path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{} holds no PEM certificate (certKey= must name the certificate chain)",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        invalid(format!(
            "cannot read a private key from {}: {e}",
            key_path.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("the key does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// A listener whose connections have completed a TLS handshake.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    local_addr: std::net::SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener`; the accept task ends when this value is dropped.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx));
        Ok(TlsListener {
            ready,
            local_addr,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, std::net::SocketAddr)>,
) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(%err, "worker port: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(err)) => {
                    if let Some(held_back) = HANDSHAKE_FAILED.allow() {
                        tracing::warn!(
                            %peer, %err, held_back,
                            "worker port: TLS handshake failed (a worker without --use-tls, or one that does not trust our certificate?)"
                        )
                    }
                }
                Err(_) => {
                    if let Some(held_back) = HANDSHAKE_FAILED.allow() {
                        tracing::warn!(%peer, held_back, "worker port: TLS handshake timed out")
                    }
                }
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
