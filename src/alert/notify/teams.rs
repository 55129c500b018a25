//! Microsoft Teams through a Workflows ("Post to a channel when a webhook
//! request is received") webhook: a message with one Adaptive Card 1.4,
//! the format those workflows expect (the old O365 connector cards are
//! retired).

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{DeliveryError, Notification, Notifier, Status, post_json};
use crate::config::Secret;

pub struct TeamsNotifier {
    url: Secret,
    http: reqwest::Client,
}

impl TeamsNotifier {
    pub fn new(url: Secret, http: reqwest::Client) -> TeamsNotifier {
        TeamsNotifier { url, http }
    }
}

/// Adaptive Card colour names: `attention` is red, `warning` orange.
fn colour(n: &Notification) -> &'static str {
    match (n.status, n.label("severity")) {
        (Status::Resolved, _) => "Good",
        (Status::Firing, "page") => "Attention",
        (Status::Firing, "ticket") => "Warning",
        (Status::Firing, _) => "Default",
    }
}

pub fn render(n: &Notification) -> Value {
    let facts: Vec<Value> = n
        .facts()
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    let actions: Vec<Value> = n
        .links()
        .into_iter()
        .map(|(title, url)| json!({"type": "Action.OpenUrl", "title": title, "url": url}))
        .collect();
    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": n.title(),
            "weight": "Bolder",
            "size": "Medium",
            "color": colour(n),
            "wrap": true,
        }),
        json!({"type": "TextBlock", "text": n.body(), "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    body.push(json!({
        "type": "TextBlock",
        "text": format!("continuity · {} · {}", n.label("location"), n.idempotency_key),
        "isSubtle": true,
        "size": "Small",
        "wrap": true,
    }));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

impl Notifier for TeamsNotifier {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move { post_json(&self.http, self.url.expose(), &render(n), &[]).await })
    }
}
