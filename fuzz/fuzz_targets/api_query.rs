//! The HTTP API's query parameters: `from`/`to` of /api/v1/incidents, SLA
//! and maintenance queries go through `parse_time` (and its durations),
//! which must return a time or an error for any text, never panic.
#![no_main]

use continuity::config::Dur;
use continuity::import::parse_time;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = jiff::Timestamp::from_second(1_800_000_000).expect("now");
    for part in text.split('&') {
        let value = part.split_once('=').map_or(part, |(_, v)| v);
        if let Ok(t) = parse_time(value, now) {
            // What the handlers do next: order and span.
            let _ = t < now;
            let _ = now.since(t);
        }
        let _ = Dur::parse(value);
    }
});
