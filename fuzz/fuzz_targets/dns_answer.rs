//! DNS answer handling: whatever bytes a resolver answers with are parsed
//! and checked (rcode, expected answers, counts) into an outcome with a
//! typed reason, never a panic.
#![no_main]

use std::sync::OnceLock;

use continuity::probe::dns::{DnsProbe, DnsSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static PROBES: OnceLock<Vec<DnsProbe>> = OnceLock::new();
    let probes = PROBES.get_or_init(|| {
        [
            "name: portal.example\nserver: 127.0.0.1:53\nexpect_answers: [192.0.2.1, 2001:db8::1]\nexpect_min_answers: 2\n",
            "name: portal.example\ntype: MX\nserver: 127.0.0.1:53\nexpect_rcode: NXDOMAIN\n",
            "name: portal.example\ntype: TXT\nserver: 127.0.0.1:53\nexpect_answers: ['v=spf1 -all']\n",
        ]
        .iter()
        .map(|yaml| {
            let spec: DnsSpec = serde_saphyr::from_str(yaml).expect("spec");
            continuity::probe::compile(spec, "fuzz.yaml").expect("compiles")
        })
        .collect()
    });
    for probe in probes {
        let _ = probe.judge_reply(data);
    }
});
