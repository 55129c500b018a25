//! Delivery channels. Each channel formats a [`Notification`] its own way
//! and sends it; none decides anything (that is `rules.rs`) and none
//! retries (that is the outbox). One file per channel, one small trait.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::config::{ChannelKind, ReceiverSpec};
use super::rules::Alert;

pub mod alertmanager;
pub mod email;
pub mod slack;
pub mod teams;
pub mod webhook;

/// Version of the [`Notification`] JSON schema (the generic webhook body).
pub const SCHEMA_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One notification about one alert for one receiver: what the outbox
/// stores, what the generic webhook posts as is, and what the other
/// channels render. Documented in docs/alerting.md; change it only by
/// adding fields, or bump [`SCHEMA_VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub version: String,
    /// Always `continuity`.
    pub source: String,
    pub status: Status,
    /// The same for every delivery attempt of this notification:
    /// `{incident}:{status}`. Receivers can drop repeats with it.
    pub idempotency_key: String,
    /// One spell of firing of one alert: `{fingerprint}-{startsAt unix}`.
    pub incident: String,
    pub fingerprint: String,
    pub receiver: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: Timestamp,
    /// Set when resolved.
    #[serde(rename = "endsAt")]
    pub ends_at: Option<Timestamp>,
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// Why it resolved when not by itself (maintenance, restart, ...).
    pub note: Option<String>,
}

impl Notification {
    pub fn new(
        status: Status,
        incident: &str,
        receiver: &str,
        alert: &Alert,
        ends_at: Option<Timestamp>,
        note: Option<String>,
    ) -> Notification {
        Notification {
            version: SCHEMA_VERSION.to_string(),
            source: "continuity".to_string(),
            status,
            idempotency_key: format!("{incident}:{}", status.as_str()),
            incident: incident.to_string(),
            fingerprint: alert.fingerprint(),
            receiver: receiver.to_string(),
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            starts_at: alert.starts_at,
            ends_at,
            generator_url: alert.generator_url.clone(),
            note,
        }
    }

    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.annotations.get(name).map(String::as_str)
    }

    pub fn alertname(&self) -> &str {
        self.label("alertname")
    }

    /// One line for a chat message or an e-mail subject:
    /// `[FIRING] ServiceDown (page): Citizen portal is down: check home fails`.
    pub fn title(&self) -> String {
        let summary = self
            .annotation("summary")
            .map(str::to_string)
            .unwrap_or_else(|| self.alertname().to_string());
        format!(
            "[{}] {} ({}): {summary}",
            self.status.as_str().to_uppercase(),
            self.alertname(),
            self.label("severity")
        )
    }

    /// The body text: description, then the note for a resolution.
    pub fn body(&self) -> String {
        let mut s = self.annotation("description").unwrap_or("").to_string();
        if let Some(n) = &self.note {
            if !s.is_empty() {
                s.push_str("\n\n");
            }
            s.push_str(n);
        }
        s
    }

    /// The labels and times worth showing as facts, in a stable order.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (label, title) in [
            ("service", "Service"),
            ("check", "Check"),
            ("sla", "SLA"),
            ("category", "Category"),
            ("supplier", "Supplier"),
            ("severity", "Severity"),
            ("location", "Location"),
        ] {
            if let Some(v) = self.labels.get(label) {
                out.push((title.to_string(), v.clone()));
            }
        }
        out.push(("Started".to_string(), self.starts_at.to_string()));
        if let Some(e) = self.ends_at {
            out.push(("Ended".to_string(), e.to_string()));
        }
        out
    }

    /// Links for buttons: runbook first, then the status page.
    pub fn links(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(r) = self.annotation("runbook_url") {
            out.push(("Runbook", r.to_string()));
        }
        if let Some(s) = self
            .annotation("status_url")
            .map(str::to_string)
            .or_else(|| self.generator_url.clone())
        {
            out.push(("Status", s));
        }
        out
    }
}

/// A failed delivery. The text never contains a secret (webhook URLs are
/// left out of HTTP errors).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("request failed: {0}")]
    Request(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

impl DeliveryError {
    pub(crate) fn from_reqwest(e: reqwest::Error) -> DeliveryError {
        // reqwest puts the URL in its messages; the URL is the secret.
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        DeliveryError::Request(msg)
    }
}

/// A channel that can send a notification: the one interface every
/// provider implements.
pub trait Notifier: Send + Sync {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// Build the notifier for a validated receiver.
pub fn notifier_for(
    r: &ReceiverSpec,
    http: &reqwest::Client,
) -> Result<Arc<dyn Notifier>, DeliveryError> {
    let missing =
        || DeliveryError::Build(format!("receiver '{}' has no usable target", r.name.value));
    Ok(match r.channel() {
        Some(ChannelKind::Webhook) => {
            let w = r.webhook.as_ref().ok_or_else(missing)?;
            Arc::new(webhook::WebhookNotifier::new(w, http.clone()).ok_or_else(missing)?)
        }
        Some(ChannelKind::Slack) => {
            let s = r
                .slack
                .as_ref()
                .and_then(|s| s.resolved.clone())
                .ok_or_else(missing)?;
            Arc::new(slack::SlackNotifier::new(s, http.clone()))
        }
        Some(ChannelKind::Teams) => {
            let t = r
                .teams
                .as_ref()
                .and_then(|t| t.resolved.clone())
                .ok_or_else(missing)?;
            Arc::new(teams::TeamsNotifier::new(t, http.clone()))
        }
        Some(ChannelKind::Email) => {
            let e = r.email.as_ref().ok_or_else(missing)?;
            Arc::new(email::EmailNotifier::new(e)?)
        }
        None => return Err(missing()),
    })
}

/// The HTTP client every HTTP channel shares: rustls on ring with the
/// public web PKI roots, a timeout, and no proxy surprises.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, DeliveryError> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    let roots = ROOTS
        .get_or_init(|| {
            Arc::new(rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone();
    let tls = rustls::ClientConfig::builder_with_provider(crate::probe::tls_util::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| DeliveryError::Build(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("continuity/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DeliveryError::Build(DeliveryError::from_reqwest(e).to_string()))
}

/// POST a JSON body; 2xx is success, anything else an error with the
/// start of the response body (what Slack and Teams explain errors with).
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    headers: &[(String, String)],
) -> Result<(), DeliveryError> {
    let mut req = http.post(url).json(body);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.map_err(DeliveryError::from_reqwest)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let body: String = text.chars().take(300).collect();
    Err(DeliveryError::Status {
        status: status.as_u16(),
        body: body.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_names_status_alert_and_severity() {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), "ServiceDown".to_string());
        labels.insert("severity".to_string(), "page".to_string());
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".to_string(), "Portal is down".to_string());
        let a = Alert {
            labels,
            annotations,
            starts_at: Timestamp::from_second(1_800_000_000).unwrap(),
            generator_url: None,
        };
        let n = Notification::new(Status::Firing, "x-1", "r", &a, None, None);
        assert_eq!(n.title(), "[FIRING] ServiceDown (page): Portal is down");
        assert_eq!(n.idempotency_key, "x-1:firing");
    }
}
