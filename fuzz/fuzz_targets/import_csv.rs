//! The CSV history importer on any file: rows are checked and every
//! problem named with its line, never a panic.
#![no_main]

use std::sync::OnceLock;

use continuity::config::Config;
use continuity::import;
use libfuzzer_sys::fuzz_target;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_str(
            "/tmp/continuity-fuzz.yaml",
            "services:\n  - id: portal\n    checks:\n      - id: home\n        http: { url: \"https://portal.example/\" }\n      - id: dns\n        dns: { name: portal.example }\n",
        )
        .expect("fuzz configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!(
        "continuity-fuzz-import-{}.csv",
        std::process::id()
    ));
    std::fs::write(&path, data).expect("input file");
    let now = jiff::Timestamp::from_second(1_800_000_000).expect("now");
    let _ = import::csv::read(config(), &path, now);
});
