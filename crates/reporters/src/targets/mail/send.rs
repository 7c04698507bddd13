//! SMTP delivery with lettre over rustls (ring): plain, STARTTLS (`useTls`), or implicit TLS
//! (`useSmtps`, or port 465), with optional authentication.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::targets::mail::config::MailConfig;
use crate::DeliveryError;

/// A mail as the outbox keeps it: the envelope and the formatted message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailContent {
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The subject, for people reading the outbox.
    pub subject: String,
    /// The whole RFC 5322 message.
    pub message: String,
}

/// A mail whose template failed to render, recorded so the failure is a row that the
/// outbox page shows; delivering it marks it failed at once with `render_error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderFailure {
    /// The subject the mail would have had without its formatter, for people reading the
    /// outbox.
    pub subject: String,
    /// What went wrong, with the template's name and line.
    pub render_error: String,
}

impl RenderFailure {
    /// The outbox content for a failed render.
    pub fn content(subject: &str, error: &str) -> String {
        let failure = RenderFailure {
            subject: subject.to_string(),
            render_error: error.to_string(),
        };
        serde_json::to_string(&failure).unwrap_or_else(|_| {
            // Serializing two strings cannot fail; keep a readable row regardless.
            r#"{"subject":"","render_error":"the mail could not be rendered"}"#.to_string()
        })
    }
}

/// What an outbox row of a mail target holds.
#[derive(Deserialize)]
#[serde(untagged)]
enum Recorded {
    Mail(MailContent),
    Failed(RenderFailure),
}

/// Longest an SMTP command may take; the outbox lease is longer.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest error text kept from a server reply.
const MAX_ERROR_LEN: usize = 500;

/// One notifier's SMTP client, with a small connection pool.
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for error messages.
    relay: String,
    /// Whether TLS is used, so a failed handshake can be explained.
    tls: bool,
}

impl Sender {
    /// The client for `config`'s relay. No I/O happens until the first send.
    pub fn new(config: &MailConfig) -> Result<Sender, String> {
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.relayhost)
                .port(config.smtp_port)
                .timeout(Some(SMTP_TIMEOUT))
                .pool_config(
                    PoolConfig::new()
                        .max_size(10)
                        .idle_timeout(Duration::from_secs(30)),
                );
        if config.use_tls || config.use_smtps {
            let parameters = tls_parameters(&config.relayhost)?;
            builder = builder.tls(match config.use_smtps {
                true => Tls::Wrapper(parameters),
                false => Tls::Required(parameters),
            });
        }
        if let (Some(user), Some(password)) = (&config.smtp_user, &config.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.0.clone()));
        }
        Ok(Sender {
            transport: builder.build(),
            relay: format!("{}:{}", config.relayhost, config.smtp_port),
            tls: config.use_tls || config.use_smtps,
        })
    }

    /// Sends one recorded mail.
    pub async fn send(&self, content: &str) -> Result<(), DeliveryError> {
        let recorded: Recorded = serde_json::from_str(content)
            .map_err(|e| DeliveryError::Permanent(format!("unreadable outbox content: {e}")))?;
        let mail = match recorded {
            Recorded::Mail(mail) => mail,
            Recorded::Failed(failure) => {
                return Err(DeliveryError::Permanent(format!(
                    "not sent: the MessageFormatter could not render it: {}; fix the template and run `signalbox reconfig`",
                    failure.render_error
                )))
            }
        };
        let parse = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| DeliveryError::Permanent(format!("bad address {a:?}: {e}")))
        };
        let from = parse(&mail.from)?;
        let to = mail
            .to
            .iter()
            .map(|a| parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), to)
            .map_err(|e| DeliveryError::Permanent(format!("bad envelope: {e}")))?;
        match self
            .transport
            .send_raw(&envelope, mail.message.as_bytes())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let mut text = truncate(&e.to_string());
                // A refused certificate arrives as a connection error whose text names it.
                let tls_failed = self.tls && (e.is_tls() || text.contains("certificate"));
                if tls_failed {
                    text.push_str(&format!(
                        " (TLS with {} failed: the server's certificate must be valid for relayhost and signed by a CA the master trusts; SIGNALBOX_SMTP_CA_FILE adds one; the mail stays queued)",
                        self.relay
                    ));
                }
                match e.is_permanent() {
                    true => Err(DeliveryError::Permanent(text)),
                    false => Err(DeliveryError::Retry(text)),
                }
            }
        }
    }
}

/// TLS towards `host`, trusting the web PKI roots and, for tests, the PEM file named by
/// `SIGNALBOX_SMTP_CA_FILE`.
fn tls_parameters(host: &str) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(path) = std::env::var_os("SIGNALBOX_SMTP_CA_FILE") {
        let pem = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read SIGNALBOX_SMTP_CA_FILE {}: {e}",
                path.to_string_lossy()
            )
        })?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| format!("SIGNALBOX_SMTP_CA_FILE is not a PEM certificate: {e}"))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("cannot set up TLS for {host}: {e}"))
}

/// Keeps a server's error text short, on a character boundary.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_LEN) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
