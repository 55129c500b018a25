//! continuity: guards the public services citizens depend on while a
//! municipality hands its ICT over to new suppliers.
//!
//! Data flows one way: [`scheduler`] runs probes ([`probe`]), their outcomes
//! feed the state and SLA engine ([`engine`], [`sla`]), which updates
//! [`telemetry`], the [`store`] and [`alert`]s. Reports and the API
//! ([`server`]) read the store.

pub mod alert;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod healthcheck;
pub mod import;
pub mod migration;
pub mod probe;
pub mod recompute;
pub mod report;
pub mod rules;
pub mod scheduler;
pub mod server;
pub mod sla;
pub mod status_page;
pub mod store;
pub mod telemetry;

pub use daemon::{run, run_on_clock};
