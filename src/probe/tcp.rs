//! Tcp probe.

use serde::Deserialize;
use serde_saphyr::Location;

use super::{ProbeContext, ProbeError, ProbeOutcome};
use crate::config::Validator;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    pub target: String,
}

impl TcpSpec {
    pub fn validate(&mut self, _v: &mut Validator, _at: Location) {}
}

pub async fn probe(_spec: &TcpSpec, _ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    todo!("tcp probe")
}
