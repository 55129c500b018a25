//! The JSONL history importer on any file: rows are checked and every
//! problem named with its line, never a panic.
#![no_main]

#[path = "import_input.rs"]
mod import_input;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = import_input::file(data, "jsonl");
    let _ = continuity::import::jsonl::read(import_input::config(), &path, import_input::now());
});
