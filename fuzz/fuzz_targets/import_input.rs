//! What the two importer targets share: the configuration the rows are
//! checked against, and the input written to a file of the process's own.

use std::path::PathBuf;
use std::sync::OnceLock;

use continuity::config::Config;

pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_str(
            "/tmp/continuity-fuzz.yaml",
            "services:\n  - id: portal\n    checks:\n      - id: home\n        http: { url: \"https://portal.example/\" }\n      - id: dns\n        dns: { name: portal.example }\n",
        )
        .expect("fuzz configuration")
    })
}

pub fn file(data: &[u8], extension: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "continuity-fuzz-import-{}.{extension}",
        std::process::id()
    ));
    std::fs::write(&path, data).expect("input file");
    path
}

pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000).expect("now")
}
