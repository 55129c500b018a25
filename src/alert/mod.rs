//! Alerts for on-call staff: [`rules`] decides what fires from the state
//! the engine hands it, [`dispatch`] delivers it to Alertmanager (stateless
//! re-sending) and to the configured [`receiver`]s, grouped, through the
//! durable [`outbox`]; each channel's spec and sender live in [`notify`].

pub mod config;
pub mod dispatch;
pub mod notify;
pub mod outbox;
pub mod receiver;
pub mod rules;
