//! TLS to the master (`--use-tls`), with rustls and ring.
//!
//! The master's certificate is checked against, in order: the `tls_ca` file of `worker.cfg`
//! (`--tls-ca`), the file named by `SSL_CERT_FILE` (as OpenSSL-based clients such as the stock
//! worker do), or the Mozilla roots built in. A self-signed master certificate is trusted by
//! naming the certificate itself as the CA file.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::WorkerError;

/// A byte stream to the master, plain or TLS.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Builds the client config once, before the first attempt, so that an unreadable CA file is
/// reported at start-up rather than at every reconnection.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, WorkerError> {
    let mut roots = rustls::RootCertStore::empty();
    let env_file = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    match ca_file.or(env_file.as_deref()) {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    tls_error(format!(
                        "cannot read CA certificates from {}: {e}",
                        path.display()
                    ))
                })?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(tls_error(format!(
                    "{} holds no usable PEM certificate",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn tls_error(message: String) -> WorkerError {
    WorkerError::InvalidOption(format!("tls: {message}"))
}

/// Runs the TLS handshake on `tcp`, checking the certificate against `host`.
pub(crate) async fn connect(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("'{host}' is not a valid TLS server name"),
        )
    })?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}
