//! The generic webhook: POSTs the [`Notification`] JSON (schema in
//! docs/alerting.md) with the group's alerts under `alerts`, like
//! Alertmanager's webhook, and an `Idempotency-Key` header so that a
//! receiver can drop the repeat of a delivery whose answer was lost.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::{
    Channel, ChannelSender, ChannelSpec, CompileContext, DeliveryError, Message, Notification,
    Notifier, post_json, resolve_url,
};
use crate::alert::config::InlineSecret;
use crate::config::{Secret, Spanned};

/// The `webhook:` block of a receiver.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub url: Option<InlineSecret>,
    pub url_file: Option<Spanned<String>>,
    /// Extra request headers (e.g. `Authorization: Bearer ${TOKEN}`);
    /// values are treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, InlineSecret>,
    /// Follow a 307/308 within the URL's origin (never to another one).
    #[serde(default)]
    pub follow_redirects: bool,
}

/// A checked webhook: its URL and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: Secret,
    pub headers: Vec<(String, Secret)>,
    pub follow_redirects: bool,
}

impl ChannelSpec for WebhookSpec {
    fn compile(&self, cx: &mut CompileContext<'_>) -> Option<Channel> {
        let url = resolve_url(&self.url, &self.url_file, "webhook", cx);
        let name = cx.receiver;
        let mut ok = true;
        for h in self.headers.keys() {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                cx.v.error(
                    cx.at,
                    format!("receiver '{name}': '{h}' is not a valid header name"),
                    None,
                );
                ok = false;
            }
        }
        for (h, value) in &self.headers {
            if http::HeaderValue::from_str(value.0.expose()).is_err() {
                cx.v.error(
                    cx.at,
                    format!(
                        "receiver '{name}': the value of header '{h}' is not a valid header value"
                    ),
                    Some("header values are one line of visible ASCII".into()),
                );
                ok = false;
            }
        }
        let headers = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        Some(Channel::Webhook(Webhook {
            url: url?,
            headers,
            follow_redirects: self.follow_redirects,
        }))
        .filter(|_| ok)
    }
}

impl ChannelSender for Webhook {
    fn notifier(&self, http: &reqwest::Client) -> Result<Arc<dyn Notifier>, DeliveryError> {
        Ok(Arc::new(WebhookNotifier::new(self, http.clone())))
    }
}

pub struct WebhookNotifier {
    spec: Webhook,
    http: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(spec: &Webhook, http: reqwest::Client) -> WebhookNotifier {
        WebhookNotifier {
            spec: spec.clone(),
            http,
        }
    }
}

/// One notification as JSON: what a lone notification's body has at its
/// top level, and each entry of `alerts`.
pub fn render(n: &Notification) -> serde_json::Value {
    serde_json::to_value(n).unwrap_or_default()
}

/// The request body: the first notification's fields at the top level
/// (the body before grouping, kept for receivers written against it),
/// with the message's status and idempotency key, then `groupKey`,
/// `groupLabels` and every notification under `alerts`.
pub fn render_message(m: &Message) -> serde_json::Value {
    let mut body = render(&m.notifications[0]);
    body["status"] = json!(m.status().as_str());
    body["idempotency_key"] = json!(m.idempotency_key);
    body["groupKey"] = json!(m.group_key);
    body["groupLabels"] = json!(m.group_labels);
    body["alerts"] = m.notifications.iter().map(render).collect();
    body
}

impl Notifier for WebhookNotifier {
    fn send<'a>(&'a self, m: &'a Message) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let mut headers: Vec<(String, String)> = self
                .spec
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_string()))
                .collect();
            headers.push(("Idempotency-Key".to_string(), m.idempotency_key.clone()));
            post_json(
                &self.http,
                self.spec.url.expose(),
                &render_message(m),
                &headers,
                self.spec.follow_redirects,
            )
            .await
        })
    }
}
