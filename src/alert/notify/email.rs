//! E-mail over SMTP (lettre): STARTTLS, implicit TLS or, for a relay on
//! the same machine, plain; optional AUTH. Each message has a text and an
//! HTML part, and a resolution replies to its firing message so that mail
//! clients thread them.

use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{DeliveryError, Notification, Notifier, Status};
use crate::alert::config::{EmailSpec, SmtpTls};

pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject_prefix: Option<String>,
}

const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

impl EmailNotifier {
    pub fn new(spec: &EmailSpec) -> Result<EmailNotifier, DeliveryError> {
        let build = |e: &dyn std::fmt::Display| DeliveryError::Build(e.to_string());
        let tls_params = || -> Result<TlsParameters, DeliveryError> {
            let mut b = TlsParameters::builder(spec.host.clone());
            if let Some(path) = &spec.ca_path {
                let pem = std::fs::read(path).map_err(|e| {
                    DeliveryError::Build(format!("cannot read {}: {e}", path.display()))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| build(&e))?;
                b = b
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| build(&e))
        };
        let tls = match spec.tls {
            SmtpTls::Starttls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(spec.host.clone())
                .port(spec.port)
                .tls(tls)
                .timeout(Some(SMTP_TIMEOUT));
        if let Some(user) = &spec.username {
            let password = spec
                .password_resolved
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from: Mailbox = spec.from.value.parse().map_err(|e| build(&e))?;
        let to = spec
            .to
            .value
            .iter()
            .map(|a| a.parse::<Mailbox>().map_err(|e| build(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EmailNotifier {
            transport: builder.build(),
            from,
            to,
            subject_prefix: spec.subject_prefix.clone(),
        })
    }

    /// The message as it will be sent (also used by tests).
    pub fn message(&self, n: &Notification) -> Result<Message, DeliveryError> {
        let subject = match &self.subject_prefix {
            Some(p) => format!("{p} {}", n.title()),
            None => n.title(),
        };
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id(n, n.status)))
            .date_now();
        if n.status == Status::Resolved {
            let first = message_id(n, Status::Firing);
            b = b.in_reply_to(first.clone()).references(first);
        }
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.multipart(MultiPart::alternative_plain_html(
            render_text(n),
            render_html(n),
        ))
        .map_err(|e| DeliveryError::Build(e.to_string()))
    }
}

/// The same notification always gets the same Message-ID, so a repeat
/// after a lost answer is recognisable as the same mail.
fn message_id(n: &Notification, status: Status) -> String {
    format!("<{}.{}@continuity>", n.incident, status.as_str())
}

pub fn render_text(n: &Notification) -> String {
    let mut s = format!("{}\n\n{}\n\n", n.title(), n.body());
    for (k, v) in n.facts() {
        s.push_str(&format!("{k}: {v}\n"));
    }
    for (name, url) in n.links() {
        s.push_str(&format!("{name}: {url}\n"));
    }
    s.push_str(&format!("\nIdempotency key: {}\n", n.idempotency_key));
    s
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn render_html(n: &Notification) -> String {
    let colour = match (n.status, n.label("severity")) {
        (Status::Resolved, _) => "#2eb886",
        (Status::Firing, "page") => "#d00000",
        (Status::Firing, "ticket") => "#f2a900",
        _ => "#808080",
    };
    let mut rows = String::new();
    for (k, v) in n.facts() {
        rows.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            html_escape(&k),
            html_escape(&v)
        ));
    }
    let links: Vec<String> = n
        .links()
        .into_iter()
        .map(|(name, url)| format!("<a href=\"{}\">{}</a>", html_escape(&url), name))
        .collect();
    let body = html_escape(&n.body()).replace("\n\n", "</p><p>");
    format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n\
         <h2 style=\"color: {colour}\">{}</h2>\n<p>{body}</p>\n\
         <table cellpadding=\"4\">\n{rows}</table>\n<p>{}</p>\n\
         <p style=\"color: #808080; font-size: small\">continuity &middot; {}</p>\n</body></html>\n",
        html_escape(&n.title()),
        links.join(" &middot; "),
        html_escape(&n.idempotency_key)
    )
}

impl Notifier for EmailNotifier {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let message = self.message(n)?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| DeliveryError::Smtp(smtp_error(&e)))
        })
    }
}

/// lettre's error with its causes, which say what the server answered.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
