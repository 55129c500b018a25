//! The `metrics:` section: how much per-check detail `/metrics` carries.
//! At 10,000 checks the full detail is about 250,000 per-check series; a
//! Prometheus bill grows with series, so a large catalogue can trim what
//! only the latency distribution needs (docs/metrics.md, "Prometheus
//! cost"). Serde rejects an unknown field or value at its place in the file.

use serde::Deserialize;

/// What each check exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsDetail {
    /// Every family, with the latency histogram's twelve buckets.
    #[default]
    Full,
    /// The latency histogram keeps only `+Inf`, `_sum` and `_count`: the
    /// average latency over time still works, quantiles do not. Every
    /// other family stays (phase durations are last-value gauges anyway).
    Compact,
}

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    #[serde(default)]
    pub detail: MetricsDetail,
}

/// The section as the daemon uses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    pub detail: MetricsDetail,
}

impl From<Option<RawMetrics>> for MetricsConfig {
    fn from(raw: Option<RawMetrics>) -> Self {
        MetricsConfig {
            detail: raw.unwrap_or_default().detail,
        }
    }
}
