//! E-mail over SMTP (lettre): STARTTLS, implicit TLS or, for a relay on
//! the same machine, plain; optional AUTH. Each message has a text and an
//! HTML part, and a resolution replies to its firing message so that mail
//! clients thread them. A group is one mail listing its alerts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

use super::{
    Channel, ChannelSender, ChannelSpec, CompileContext, DeliveryError, Message as Group,
    Notification, Notifier, Status,
};
use crate::alert::config::InlineSecret;
use crate::config::{Secret, Spanned, expand};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refuses to send
    /// when the server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption; only for a relay on the same machine.
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    /// `host:port`, or `host` for the usual port of `tls`.
    pub smtp: Spanned<String>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of the CA that signed the server's certificate, when it is
    /// not publicly trusted (relative to the configuration file).
    pub ca_file: Option<Spanned<String>>,
    pub username: Option<String>,
    pub password: Option<InlineSecret>,
    pub password_file: Option<Spanned<String>>,
    pub from: Spanned<String>,
    pub to: Spanned<Vec<String>>,
    /// Put in front of every subject, e.g. `[continuity]`.
    #[serde(default)]
    pub subject_prefix: Option<String>,
}

/// A checked SMTP receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub ca_path: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub subject_prefix: Option<String>,
}

impl ChannelSpec for EmailSpec {
    fn compile(&self, cx: &mut CompileContext<'_>) -> Option<Channel> {
        compile(self, cx).map(Channel::Email)
    }
}

impl ChannelSender for Email {
    fn notifier(&self, _http: &reqwest::Client) -> Result<Arc<dyn Notifier>, DeliveryError> {
        Ok(Arc::new(EmailNotifier::new(self)?))
    }
}

pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject_prefix: Option<String>,
}

const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

fn compile(e: &EmailSpec, cx: &mut CompileContext<'_>) -> Option<Email> {
    let (v, receiver, base) = (&mut *cx.v, cx.receiver, cx.base);
    let issues = v.issues.len();
    let default_port = match e.tls {
        SmtpTls::Starttls => 587,
        SmtpTls::Tls => 465,
        SmtpTls::None => 25,
    };
    let written = e.smtp.value.trim();
    let (host, port) = match written.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => match p.parse::<u16>() {
            Ok(p) if p > 0 => (h.trim_start_matches('[').trim_end_matches(']'), p),
            _ => {
                v.error(
                    e.smtp.referenced,
                    format!("receiver '{receiver}': smtp '{written}' has an invalid port"),
                    Some("write host:port, e.g. smtp.example.org:587".into()),
                );
                (h, default_port)
            }
        },
        _ => (written, default_port),
    };
    if host.is_empty() {
        v.error(
            e.smtp.referenced,
            format!("receiver '{receiver}': smtp has no host"),
            Some("write host:port, e.g. smtp.example.org:587".into()),
        );
    }
    let inline = e.password.as_ref().map(|s| s.0.expose().to_string());
    let password = expand::secret("password", inline, e.password_file.as_ref(), base, v);
    if password.is_some() && e.username.is_none() {
        v.error(
            e.smtp.referenced,
            format!("receiver '{receiver}': a password is set without a username"),
            Some("add username:, or remove the password".into()),
        );
    }
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "::1");
    if e.tls == SmtpTls::None && e.username.is_some() && !loopback {
        v.error(
            e.smtp.referenced,
            format!("receiver '{receiver}': tls: none would send the SMTP password in clear text to {host}"),
            Some("use tls: starttls (port 587) or tls (port 465)".into()),
        );
    }
    let mut ca_path = None;
    if let Some(ca) = &e.ca_file {
        let path = crate::probe::tls_util::config_relative(v.file(), &ca.value);
        match crate::probe::tls_util::load_ca_file(&path) {
            Ok(_) => ca_path = Some(path),
            Err(msg) => v.error(
                ca.referenced,
                format!("receiver '{receiver}': ca_file: {msg}"),
                Some("give a PEM file with the CA certificate(s) of the SMTP server".into()),
            ),
        }
        if e.tls == SmtpTls::None {
            v.error(
                ca.referenced,
                format!("receiver '{receiver}': ca_file is set but tls is none"),
                Some("use tls: starttls or tls, or remove ca_file".into()),
            );
        }
    }
    let from = e.from.value.parse::<Mailbox>();
    if from.is_err() {
        v.error(
            e.from.referenced,
            format!(
                "receiver '{receiver}': from '{}' is not an e-mail address",
                e.from.value
            ),
            Some("e.g. from: \"continuity <continuity@example.org>\"".into()),
        );
    }
    if e.to.value.is_empty() {
        v.error(
            e.to.referenced,
            format!("receiver '{receiver}': to is empty"),
            Some("list at least one address, e.g. to: [oncall@example.org]".into()),
        );
    }
    let mut to = Vec::new();
    for addr in &e.to.value {
        match addr.parse::<Mailbox>() {
            Ok(m) => to.push(m),
            Err(_) => v.error(
                e.to.referenced,
                format!("receiver '{receiver}': to address '{addr}' is not an e-mail address"),
                Some("e.g. to: [oncall@example.org]".into()),
            ),
        }
    }
    if v.issues.len() > issues {
        return None;
    }
    Some(Email {
        host: host.to_string(),
        port,
        tls: e.tls,
        ca_path,
        username: e.username.clone(),
        password,
        from: from.ok()?,
        to,
        subject_prefix: e.subject_prefix.clone(),
    })
}

/// The SMTP transport of an e-mail receiver: also how the scheduled
/// management reports are sent (through alerting's first e-mail receiver).
pub fn transport(spec: &Email) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
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
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(spec.host.clone())
        .port(spec.port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = &spec.username {
        let password = spec
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

impl EmailNotifier {
    pub fn new(spec: &Email) -> Result<EmailNotifier, DeliveryError> {
        Ok(EmailNotifier {
            transport: transport(spec)?,
            from: spec.from.clone(),
            to: spec.to.clone(),
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

impl EmailNotifier {
    /// The mail for a message: a lone notification as [`EmailNotifier::message`]
    /// has it, a group as one mail listing its alerts.
    pub fn group_message(&self, g: &Group) -> Result<Message, DeliveryError> {
        if let Some(n) = g.single() {
            return self.message(n);
        }
        let title = g.title();
        let subject = match &self.subject_prefix {
            Some(p) => format!("{p} {title}"),
            None => title.clone(),
        };
        let (lines, more) = g.lines();
        let mut text = format!("{title}\n\n");
        let mut items = String::new();
        for l in &lines {
            text.push_str(&format!("- {l}\n"));
            items.push_str(&format!("<li>{}</li>\n", html_escape(l)));
        }
        if more > 0 {
            text.push_str(&format!("... and {more} more\n"));
            items.push_str(&format!("<li>... and {more} more</li>\n"));
        }
        text.push_str(&format!("\nIdempotency key: {}\n", g.idempotency_key));
        let html = format!(
            "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n\
             <h2>{}</h2>\n<ul>\n{items}</ul>\n\
             <p style=\"color: #808080; font-size: small\">continuity &middot; {}</p>\n</body></html>\n",
            html_escape(&title),
            html_escape(&g.idempotency_key)
        );
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!(
                "<{}@continuity>",
                g.idempotency_key.replace(':', ".")
            )))
            .date_now();
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| DeliveryError::Build(e.to_string()))
    }
}

impl Notifier for EmailNotifier {
    fn send<'a>(&'a self, g: &'a Group) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let message = self.group_message(g)?;
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
