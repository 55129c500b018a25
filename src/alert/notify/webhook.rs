//! The generic webhook: POSTs the [`Notification`] JSON as is (schema in
//! docs/alerting.md), with an `Idempotency-Key` header so that a receiver
//! can drop the repeat of a delivery whose answer was lost.

use futures::future::BoxFuture;

use super::{DeliveryError, Notification, Notifier, post_json};
use crate::alert::config::WebhookSpec;
use crate::config::Secret;

pub struct WebhookNotifier {
    url: Secret,
    headers: Vec<(String, Secret)>,
    http: reqwest::Client,
}

impl WebhookNotifier {
    /// `None` when the spec has no resolved URL (it failed validation).
    pub fn new(spec: &WebhookSpec, http: reqwest::Client) -> Option<WebhookNotifier> {
        Some(WebhookNotifier {
            url: spec.resolved.clone()?,
            headers: spec
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect(),
            http,
        })
    }
}

/// The request body: the notification itself.
pub fn render(n: &Notification) -> serde_json::Value {
    serde_json::to_value(n).unwrap_or_default()
}

impl Notifier for WebhookNotifier {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let mut headers: Vec<(String, String)> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_string()))
                .collect();
            headers.push(("Idempotency-Key".to_string(), n.idempotency_key.clone()));
            post_json(&self.http, self.url.expose(), &render(n), &headers).await
        })
    }
}
