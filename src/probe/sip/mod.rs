//! SIP probe: OPTIONS, REGISTER with digest authentication, and test calls.

use serde::Deserialize;
use serde_saphyr::Location;

use super::{ProbeContext, ProbeError, ProbeOutcome};
use crate::config::Validator;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSpec {
    pub uri: String,
}

impl SipSpec {
    pub fn validate(&mut self, _v: &mut Validator, _at: Location) {}
}

pub async fn probe(_spec: &SipSpec, _ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    todo!("sip probe")
}
