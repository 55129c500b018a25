//! The `alerting:` section of the configuration.

use serde::Deserialize;
use serde_saphyr::Location;

use crate::config::{KnownNames, Validator};

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertingSpec {
    #[serde(default)]
    pub alertmanagers: Vec<String>,
}

impl AlertingSpec {
    pub fn validate(&mut self, _v: &mut Validator, _at: Location, _known: &KnownNames) {}
}
