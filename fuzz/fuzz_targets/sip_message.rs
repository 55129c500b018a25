//! The SIP message parser and framer, and the digest challenge parser, on
//! whatever bytes a hostile SIP server sends: they return an error or a
//! message, never panic.
#![no_main]

use continuity::probe::sip::{digest, message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = message::frame(data);
    if let Ok(m) = message::parse(data) {
        let _ = format!("{m:?}");
    }
    let _ = message::escape(data, 200);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = digest::parse_challenge(text);
        let _ = digest::best(text.lines());
        let _ = message::cseq(text);
        let _ = message::addr_uri(text);
    }
});
