//! History from a Prometheus server: one `probe_success`-like series read
//! with `/api/v1/query_range` at a fixed step, page by page (Prometheus
//! answers at most 11,000 points per series), each sample 1 a success and
//! 0 a failure of one configured check.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

use super::{ImportError, Place, Rows};
use crate::config::Config;
use crate::sla::range::{from_ms, ms};

/// Points asked for per request; Prometheus refuses more than 11,000.
pub const MAX_POINTS_PER_PAGE: usize = 10_000;

/// What to read from which Prometheus, and which check it measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusSource {
    /// Base URL, e.g. `http://prometheus:9090`.
    pub url: String,
    /// A PromQL expression giving exactly one series of 0 and 1,
    /// e.g. `probe_success{instance="https://portal.example/"}`.
    pub query: String,
    pub service: String,
    pub check: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// One result per step: use the check's interval.
    pub step: Duration,
    /// At most [`MAX_POINTS_PER_PAGE`].
    pub points_per_page: usize,
}

impl PrometheusSource {
    /// The origin stored with each imported result.
    pub fn origin(&self) -> String {
        format!("prometheus {} {}", self.url, self.query)
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Read the series over `[from, to]` and check every sample; results are
/// stored with origin `prometheus <url> <query>`, failures with the detail
/// "imported from prometheus" and no reason (the series does not say).
pub async fn read<'c>(
    config: &'c Config,
    src: &PrometheusSource,
    now: Timestamp,
) -> Result<Rows<'c>, ImportError> {
    let origin = src.origin();
    let format = |problem: String| ImportError::Format {
        origin: origin.clone(),
        problem,
    };
    let Some(service) = config.service(&src.service) else {
        let hint =
            crate::config::closest(&src.service, config.services.iter().map(|s| s.id.as_str()))
                .map(|c| format!(" (did you mean '{c}'?)"))
                .unwrap_or_default();
        return Err(format(format!("unknown service '{}'{hint}", src.service)));
    };
    if !service.checks.iter().any(|c| c.id == src.check) {
        let known: Vec<&str> = service.checks.iter().map(|c| c.id.as_str()).collect();
        return Err(format(format!(
            "service '{}' has no check '{}' (its checks: {})",
            service.id,
            src.check,
            known.join(", ")
        )));
    }
    let step_ms = i64::try_from(src.step.as_millis()).unwrap_or(i64::MAX);
    if step_ms < 1 {
        return Err(format(
            "the step must be at least 1ms (use the check's interval, e.g. 30s)".into(),
        ));
    }
    if src.from > src.to {
        return Err(format(format!(
            "--from {} is after --to {}",
            src.from, src.to
        )));
    }
    let endpoint = format!("{}/api/v1/query_range", src.url.trim_end_matches('/'));
    let base = reqwest::Url::parse(&endpoint)
        .map_err(|e| format(format!("'{}' is not a URL: {e}", src.url)))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| ImportError::Prometheus(format!("cannot build an HTTP client: {e}")))?;

    let per_page = src.points_per_page.clamp(1, MAX_POINTS_PER_PAGE) as i64;
    let mut rows = Rows::new(config, origin.clone(), now);
    let mut series_seen: Option<BTreeMap<String, String>> = None;
    let mut start = ms(src.from);
    let end_all = ms(src.to);
    while start <= end_all {
        let end = start
            .saturating_add(step_ms.saturating_mul(per_page - 1))
            .min(end_all);
        let mut url = base.clone();
        url.query_pairs_mut()
            .append_pair("query", &src.query)
            .append_pair("start", &seconds(start))
            .append_pair("end", &seconds(end))
            .append_pair("step", &seconds(step_ms));
        let answer = fetch(&client, url).await?;
        let data = answer
            .data
            .ok_or_else(|| ImportError::Prometheus("the answer has no data".into()))?;
        if data.result_type != "matrix" {
            return Err(ImportError::Prometheus(format!(
                "the query gave a {} instead of a range of samples (a matrix)",
                data.result_type
            )));
        }
        let mut labels: Vec<BTreeMap<String, String>> =
            data.result.iter().map(|s| s.metric.clone()).collect();
        if let Some(seen) = &series_seen
            && !labels.contains(seen)
        {
            labels.insert(0, seen.clone());
        }
        if labels.len() > 1 {
            let listed: Vec<String> = labels.iter().map(series_name).collect();
            return Err(format(format!(
                "the query must give exactly one series, but it gives {}: {}; narrow it with label matchers, e.g. {}",
                listed.len(),
                listed.join(", "),
                listed[0]
            )));
        }
        for series in data.result {
            series_seen = Some(series.metric);
            for (t, value) in series.values {
                let at = from_ms((t * 1000.0).round() as i64);
                let place = Place::Sample(at);
                match value.trim().parse::<f64>() {
                    Ok(v) if v == 1.0 || v == 0.0 => rows.add_result(
                        place,
                        &src.service,
                        &src.check,
                        at,
                        v == 1.0,
                        Some("imported from prometheus".into()),
                    ),
                    _ => rows.reject(
                        place,
                        format!("value '{value}' is neither 1 (success) nor 0 (failure)"),
                    ),
                }
            }
        }
        start = end.saturating_add(step_ms);
        if end == end_all {
            break;
        }
    }
    Ok(rows)
}

async fn fetch(client: &reqwest::Client, url: reqwest::Url) -> Result<Answer, ImportError> {
    let shown = url.to_string();
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| ImportError::Prometheus(format!("GET {shown}: {}", chain(&e))))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| {
        ImportError::Prometheus(format!("GET {shown}: reading the answer: {}", chain(&e)))
    })?;
    let answer: Answer = match serde_json::from_str(&body) {
        Ok(a) => a,
        Err(_) => {
            let excerpt: String = body.chars().take(200).collect();
            return Err(ImportError::Prometheus(format!(
                "GET {shown}: HTTP {status}, not a Prometheus API answer: {excerpt}"
            )));
        }
    };
    if answer.status != "success" {
        return Err(ImportError::Prometheus(format!(
            "the query failed ({}): {}",
            answer.error_type.as_deref().unwrap_or("error"),
            answer.error.as_deref().unwrap_or("no message")
        )));
    }
    Ok(answer)
}

/// An error with its causes: reqwest's own message leaves out why
/// ("connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Milliseconds as the seconds Prometheus takes: `1700000000.250`.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// `probe_success{instance="https://portal.example/", job="blackbox"}`.
fn series_name(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_sent_as_seconds_with_milliseconds() {
        assert_eq!(seconds(1_700_000_000_250), "1700000000.250");
        assert_eq!(seconds(30_000), "30.000");
    }

    #[test]
    fn series_are_named_as_promql_selectors() {
        let labels: BTreeMap<String, String> = [
            ("__name__".to_string(), "probe_success".to_string()),
            (
                "instance".to_string(),
                "https://portal.example/".to_string(),
            ),
        ]
        .into();
        assert_eq!(
            series_name(&labels),
            r#"probe_success{instance="https://portal.example/"}"#
        );
    }
}
