//! The configuration loader on an included catalogue file: written to disk
//! and included by a fixed main file, so the bytes go through the same file
//! reading (size, UTF-8) and parsing as a real catalogue.
#![no_main]

use std::sync::OnceLock;

use continuity::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("continuity-fuzz-catalogue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("fuzz directory");
        std::fs::write(dir.join("continuity.yaml"), "include: [catalogue.yaml]\n")
            .expect("main file");
        dir
    });
    std::fs::write(dir.join("catalogue.yaml"), data).expect("catalogue");
    let _ = Config::load(&dir.join("continuity.yaml"));
});
