//! Alerts for on-call staff: the engine hands over a [`view`] of its state
//! (its verdicts included), [`rules`] decides from it what fires
//! ([`model`]: alerts, sets, changes; `flapping`: checks changing state
//! too often; `changes`: what receivers have yet to hear), and
//! [`dispatch`] delivers it to Alertmanager (stateless re-sending) and to
//! the configured [`receiver`]s, grouped, through the durable [`outbox`];
//! each channel's spec and sender live in [`notify`].

mod changes;
pub mod config;
pub mod dispatch;
mod flapping;
pub mod model;
pub mod notify;
pub mod outbox;
pub mod receiver;
pub mod rules;
pub mod view;

pub use model::{Alert, AlertChange, AlertSet};
