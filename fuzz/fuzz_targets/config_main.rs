//! The configuration loader on a main file: any text gives a configuration
//! or a list of issues, never a panic (nor a hang on what it names). Runs
//! in a directory of its own, so relative paths name nothing of the repo.
#![no_main]

use continuity::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("continuity-fuzz-main-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = Config::from_str(&dir.join("continuity.yaml").display().to_string(), text);
});
