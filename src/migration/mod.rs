//! Migration awareness: a service's supplier timeline made concrete.
//! `phase.rs` says where a service stands at an instant and which
//! supplier each stretch of time belongs to (pure functions of the
//! configuration); `status.rs` is what `continuity migration status` and
//! `GET /api/v1/migrations` show.

pub mod cli;
pub mod compare;
pub mod phase;
pub mod stats;
pub mod status;

pub use phase::{Phase, Position, position, supplier_stretches};
pub use status::{MigrationStatus, migration_status, render_table};
