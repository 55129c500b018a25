//! Alerts for on-call staff: deciding what fires (here) and delivering it
//! (`notify/`).

pub mod config;
