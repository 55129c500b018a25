//! Tls probe.

use serde::Deserialize;
use serde_saphyr::Location;

use super::{ProbeContext, ProbeError, ProbeOutcome};
use crate::config::Validator;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub target: String,
}

impl TlsSpec {
    pub fn validate(&mut self, _v: &mut Validator, _at: Location) {}
}

pub async fn probe(_spec: &TlsSpec, _ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    todo!("tls probe")
}
