//! `MailNotifier`: mail about finished builds (or whole buildsets), as seed 002 documents it.
//!
//! `config.rs` validates the arguments, `message.rs` decides recipients and writes the
//! bodies, `template.rs` renders `MessageFormatter` templates, this module assembles the
//! RFC 5322 message that the outbox records, and `send.rs` delivers it over SMTP.

pub mod config;
pub mod message;
pub mod send;
pub mod template;

use std::sync::Arc;

use ::config::status_objects::MasterStatus;
use ::config::{FunctionHost, StatusTargetConfig};
use futures::future::BoxFuture;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment as LettreAttachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use model::{RenderContext, Results};

use crate::build_status::{BuildSnapshot, LogNeeds};
use crate::outbox::OutgoingMessage;
use crate::targets::mail::config::{AddLogs, Formatter, MailConfig};
use crate::targets::mail::message::{Attachment, MailBody};
use crate::targets::mail::send::{MailContent, RenderFailure, Sender};
use crate::targets::mail::template::RenderInput;
use crate::{BuildEvent, BuilderInfo, DeliveryError, ReporterError, StatusTarget};

/// A configured `MailNotifier`.
pub struct MailNotifier {
    name: String,
    config: MailConfig,
    functions: FunctionHost,
    master: MasterStatus,
    sender: Sender,
}

impl MailNotifier {
    /// Validates `target` and prepares its SMTP client (no I/O yet).
    pub fn new(
        name: String,
        target: &StatusTargetConfig,
        runtime: &engine::master::Runtime,
    ) -> Result<MailNotifier, ReporterError> {
        let error = |message: String| ReporterError::Config {
            at: target.location.to_string(),
            kind: target.kind.clone(),
            message,
        };
        let config = MailConfig::from_target(target).map_err(error)?;
        let sender = Sender::new(&config).map_err(error)?;
        Ok(MailNotifier {
            name,
            config,
            functions: runtime.functions.clone(),
            master: MasterStatus {
                title: runtime.config.title.clone(),
                buildbot_url: runtime.config.buildbot_url.clone(),
            },
            sender,
        })
    }

    /// The validated settings.
    pub fn config(&self) -> &MailConfig {
        &self.config
    }

    /// The previous build's result as the mode sees it: `None` when there is no previous
    /// build (or the getter chose none).
    fn previous(&self, build: &BuildSnapshot) -> Option<Option<Results>> {
        if !self.config.mode.needs_previous() {
            return None;
        }
        let previous = match self.config.previous_build_getter {
            Some(getter) => crate::previous::from_getter(&self.functions, getter, &build.status),
            None => build.previous,
        };
        previous.map(|p| p.results)
    }

    /// The body for one build, and a subject if a formatter gave one. A formatter function
    /// that fails is logged and the default message is sent instead (the seed's behaviour);
    /// a template that fails to render is an error, recorded as a failed message.
    fn body(
        &self,
        event: &BuildEvent,
        build: &BuildSnapshot,
    ) -> Result<(MailBody, Option<String>), String> {
        match &self.config.message_formatter {
            None => Ok((message::default_body(build), None)),
            Some(Formatter::Function(formatter)) => Ok(self.function_body(*formatter, build)),
            Some(Formatter::Template(template)) => {
                let previous_results = match self.config.mode.needs_previous() {
                    true => self.previous(build).flatten(),
                    false => build.previous.as_ref().and_then(|p| p.results),
                };
                template.render(&RenderInput {
                    build,
                    mode: &self.config.mode.names,
                    previous_results,
                    is_buildset: matches!(event, BuildEvent::BuildsetComplete),
                })
            }
        }
    }

    /// The body a `messageFormatter` function makes, or the default one if it fails.
    fn function_body(
        &self,
        formatter: ::config::FunctionRef,
        build: &BuildSnapshot,
    ) -> (MailBody, Option<String>) {
        let result = self
            .functions
            .call_message_formatter(
                formatter,
                &self.config.mode.names,
                &build.builder.name,
                &build.status,
                &self.master,
            )
            .map_err(|e| e.to_string())
            .and_then(|value| message::formatter_body(&value));
        match result {
            Ok(it) => it,
            Err(e) => {
                tracing::error!(target = %self.name, error = %e, builder = %build.builder.name, number = build.status.number, "messageFormatter failed; sending the default message");
                (message::default_body(build), None)
            }
        }
    }

    /// One mail about `builds` (one build, or a buildset summary), or `None` when nobody
    /// is to receive it.
    fn mail(&self, event: &BuildEvent, builds: &[Arc<BuildSnapshot>]) -> Option<OutgoingMessage> {
        let first = builds.first()?;
        let mut outgoing = OutgoingMessage {
            target: self.name.clone(),
            event: event.clone(),
            buildid: match event {
                BuildEvent::BuildFinished => Some(first.buildid),
                BuildEvent::BuildsetComplete => None,
            },
            buildsetid: Some(first.buildsetid),
            content: String::new(),
        };
        let recipients = message::recipients(&self.config, builds, &self.functions);
        if recipients.is_empty() {
            tracing::info!(target = %self.name, builder = %first.builder.name, number = first.status.number, "no recipients for this mail; not sending it");
            return None;
        }
        let worst = builds
            .iter()
            .map(|b| b.results)
            .fold(Results::Success, Results::worst);
        let builder_names: Vec<&str> = builds.iter().map(|b| b.builder.name.as_str()).collect();
        let default_subject = message::subject(
            &self.config.subject,
            &builder_names.join(", "),
            worst,
            &first.title,
        );
        let mut bodies = Vec::with_capacity(builds.len());
        let mut subject = None;
        let mut attachments = Vec::new();
        for build in builds {
            let (body, formatter_subject) = match self.body(event, build) {
                Ok(it) => it,
                Err(error) => {
                    tracing::error!(target = %self.name, error = %error, builder = %build.builder.name, number = build.status.number, "MessageFormatter template failed; the mail is recorded as failed");
                    outgoing.content = RenderFailure::content(&default_subject, &error);
                    return Some(outgoing);
                }
            };
            bodies.push(body);
            subject = subject.or(formatter_subject);
            attachments.extend(message::attachments(&self.config, build));
        }
        let subject = subject.unwrap_or(default_subject);
        let body = message::concatenate(bodies);
        let message_id = format!(
            "<{}@signalbox>",
            outgoing
                .dedup_key()
                .chars()
                .map(|c| match c.is_ascii_alphanumeric() || c == '-' {
                    true => c,
                    false => '.',
                })
                .collect::<String>()
        );
        match self.assemble(first, &subject, body, &attachments, &recipients, message_id) {
            Ok(content) => {
                outgoing.content = content;
                Some(outgoing)
            }
            Err(e) => {
                tracing::error!(target = %self.name, error = %e, "cannot assemble the mail");
                None
            }
        }
    }

    /// The recorded form: envelope and formatted message.
    fn assemble(
        &self,
        build: &BuildSnapshot,
        subject: &str,
        body: MailBody,
        attachments: &[Attachment],
        recipients: &[String],
        message_id: String,
    ) -> Result<String, String> {
        let from: Mailbox = self
            .config
            .fromaddr
            .parse()
            .map_err(|e| format!("fromaddr {:?}: {e}", self.config.fromaddr))?;
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(subject)
            .message_id(Some(message_id))
            .date_now();
        let mut to = Vec::with_capacity(recipients.len());
        for r in recipients {
            match r.parse::<Mailbox>() {
                Ok(mailbox) => {
                    to.push(mailbox.email.to_string());
                    builder = builder.to(mailbox);
                }
                Err(e) => {
                    tracing::warn!(target = %self.name, address = %r, error = %e, "skipping a recipient that is not an address")
                }
            }
        }
        if to.is_empty() {
            return Err("no valid recipient".into());
        }
        for (name, value) in self.extra_headers(build) {
            match HeaderName::new_from_ascii(name.clone()) {
                Ok(header) => builder = builder.raw_header(HeaderValue::new(header, value)),
                Err(e) => {
                    tracing::warn!(target = %self.name, header = %name, error = %e, "skipping an extra header with a bad name")
                }
            }
        }
        let main = match (body.text, body.html) {
            (Some(text), Some(html)) => Part::Multi(MultiPart::alternative_plain_html(text, html)),
            (None, Some(html)) => Part::Single(SinglePart::html(html)),
            (Some(text), None) => Part::Single(SinglePart::plain(text)),
            (None, None) => Part::Single(SinglePart::plain(String::new())),
        };
        let message = match (attachments.is_empty(), main) {
            (true, Part::Multi(m)) => builder.multipart(m),
            (true, Part::Single(s)) => builder.singlepart(s),
            (false, main) => {
                let mut mixed = match main {
                    Part::Multi(m) => MultiPart::mixed().multipart(m),
                    Part::Single(s) => MultiPart::mixed().singlepart(s),
                };
                for a in attachments {
                    mixed = mixed.singlepart(
                        LettreAttachment::new(a.name.clone())
                            .body(a.text.clone(), ContentType::TEXT_PLAIN),
                    );
                }
                builder.multipart(mixed)
            }
        }
        .map_err(|e| format!("cannot build the message: {e}"))?;
        let formatted = String::from_utf8(message.formatted())
            .map_err(|e| format!("formatted message is not UTF-8: {e}"))?;
        serde_json::to_string(&MailContent {
            from: from.email.to_string(),
            to,
            subject: subject.to_string(),
            message: formatted,
        })
        .map_err(|e| format!("cannot serialize the mail: {e}"))
    }

    /// `extraHeaders` rendered with the build's properties; line breaks removed so that a
    /// property cannot add headers.
    fn extra_headers(&self, build: &BuildSnapshot) -> Vec<(String, String)> {
        let context = RenderContext {
            properties: &build.properties,
            sourcestamps: &build.sourcestamps,
            functions: Some(&self.functions),
        };
        let mut out = Vec::new();
        for (name, value) in &self.config.extra_headers {
            match value.render_text(&context) {
                Ok(text) => out.push((name.clone(), text.replace(['\r', '\n'], " "))),
                Err(e) => {
                    tracing::warn!(target = %self.name, header = %name, error = %e, "cannot render an extra header")
                }
            }
        }
        out
    }
}

/// The main part of a message before attachments.
enum Part {
    Single(SinglePart),
    Multi(MultiPart),
}

impl StatusTarget for MailNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants(&self, event: &BuildEvent, builder: &BuilderInfo) -> bool {
        let summary = matches!(event, BuildEvent::BuildsetComplete);
        summary == self.config.build_set_summary && self.config.filter.matches(builder)
    }

    fn log_needs(&self) -> LogNeeds {
        // A formatter function may read any log; a template reads logs only when it asks
        // for their content.
        let formatter_reads_logs = match &self.config.message_formatter {
            None => false,
            Some(Formatter::Function(_)) => true,
            Some(Formatter::Template(t)) => t.wants().logs_content,
        };
        let every_log_tail = match (formatter_reads_logs, &self.config.add_logs) {
            (false, AddLogs::None) => 0,
            _ => message::ATTACHED_LOG_LINES,
        };
        LogNeeds { every_log_tail }
    }

    fn render(&self, event: &BuildEvent, builds: &[Arc<BuildSnapshot>]) -> Vec<OutgoingMessage> {
        let wanted: Vec<Arc<BuildSnapshot>> = builds
            .iter()
            .filter(|b| self.wants(event, &b.builder))
            .filter(|b| self.config.mode.wants(b.results, self.previous(b)))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Vec::new();
        }
        match event {
            BuildEvent::BuildFinished => wanted
                .iter()
                .filter_map(|b| self.mail(event, std::slice::from_ref(b)))
                .collect(),
            BuildEvent::BuildsetComplete => self.mail(event, &wanted).into_iter().collect(),
        }
    }

    fn deliver<'a>(&'a self, content: &'a str) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.sender.send(content))
    }
}
