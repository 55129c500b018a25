//! HTTP(S) probe: a fresh connection per probe, timed phase by phase.

use serde::Deserialize;
use serde_saphyr::Location;

use super::{ProbeContext, ProbeError, ProbeOutcome};
use crate::config::Validator;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub url: String,
    #[serde(default)]
    pub expect_status: Vec<u16>,
    #[serde(default)]
    pub body_contains: Option<String>,
}

impl HttpSpec {
    pub fn validate(&mut self, _v: &mut Validator, _at: Location) {}
}

pub async fn probe(_spec: &HttpSpec, _ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    todo!("http probe")
}
