//! daemon
pub async fn run() {}
