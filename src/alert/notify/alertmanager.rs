//! Alertmanager's API v2: `POST /api/v2/alerts` with the firing alerts
//! (`endsAt` a few resend intervals ahead, so they expire by themselves if
//! the monitor dies) and the recently resolved ones (`endsAt` in the past).
//! Stateless: the whole list is re-sent on every interval, so a restarted
//! or briefly unreachable Alertmanager catches up on the next one.

use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

use super::{DeliveryError, post_json};
use crate::alert::rules::Alert;

/// One alert as Alertmanager's `postableAlert`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: Timestamp,
    #[serde(rename = "endsAt")]
    pub ends_at: Timestamp,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

impl PostableAlert {
    pub fn new(a: &Alert, ends_at: Timestamp) -> PostableAlert {
        PostableAlert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.starts_at,
            ends_at,
            generator_url: a.generator_url.clone(),
        }
    }
}

/// `{base}/api/v2/alerts`, for a base with or without a path prefix.
pub fn alerts_url(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

/// A label for metrics and logs that names the Alertmanager without any
/// credentials its URL may carry.
pub fn display_name(base: &str) -> String {
    match base.parse::<http::Uri>() {
        Ok(u) => match (u.host(), u.port_u16()) {
            (Some(h), Some(p)) => format!("alertmanager:{h}:{p}"),
            (Some(h), None) => format!("alertmanager:{h}"),
            _ => "alertmanager".to_string(),
        },
        Err(_) => "alertmanager".to_string(),
    }
}

pub async fn post(
    http: &reqwest::Client,
    base: &str,
    alerts: &[PostableAlert],
) -> Result<(), DeliveryError> {
    let body = serde_json::to_value(alerts).map_err(|e| DeliveryError::Build(e.to_string()))?;
    post_json(http, &alerts_url(base), &body, &[], false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_drops_credentials_and_path() {
        assert_eq!(
            display_name("http://user:pw@am-1.example.org:9093/am"),
            "alertmanager:am-1.example.org:9093"
        );
        assert_eq!(
            alerts_url("http://am:9093/"),
            "http://am:9093/api/v2/alerts"
        );
    }
}
