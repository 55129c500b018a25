//! File descriptors: the probes' budget comes first. At start the soft
//! `RLIMIT_NOFILE` is raised to the hard limit (the usual soft limit of
//! 1,024 is far too low for 1,024 concurrent probes), and our own HTTP
//! server gets only what is left once the probes, the store and the
//! runtime have their share, so that no number of clients can make a
//! healthy service look down.

/// Descriptors a probe may hold at once: a SIP call holds its signalling
/// socket and an RTP socket; every other kind holds one.
const PER_PROBE: usize = 2;
/// The store (a writer, a pool of readers, their journals), the runtime,
/// the log and the listener, with room to spare.
const BASE: usize = 256;

/// Raise the soft descriptor limit to the hard one; the soft limit in
/// force afterwards (`None` where it cannot be read).
pub(super) fn raise_nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                tracing::debug!(
                    from = lim.rlim_cur,
                    to = lim.rlim_max,
                    "raised the soft limit of open files"
                );
                return Some(lim.rlim_max);
            }
            tracing::warn!(
                soft = lim.rlim_cur,
                hard = lim.rlim_max,
                "cannot raise the soft limit of open files to the hard limit"
            );
        }
    }
    Some(lim.rlim_cur)
}

/// Descriptors kept for the probes and the daemon itself.
pub(super) fn reserved(max_concurrency: usize) -> usize {
    max_concurrency
        .saturating_mul(PER_PROBE)
        .saturating_add(BASE)
}

/// How many connections our server may hold: `wanted`, or fewer when the
/// descriptor limit `nofile` would not leave `reserved` for the rest.
pub(super) fn connection_cap(wanted: usize, nofile: Option<u64>, reserved: usize) -> usize {
    let Some(nofile) = nofile else {
        return wanted;
    };
    let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
    let left = nofile.saturating_sub(reserved);
    // Even a starved server keeps a few connections, so that /metrics can
    // still say what is wrong; the probes' budget is then the warning.
    let cap = wanted.min(left).max(4);
    if left < wanted {
        tracing::warn!(
            open_files_limit = nofile,
            reserved_for_probes = reserved,
            server_connections = cap,
            "the open-files limit leaves our HTTP server fewer connections than server.max_connections; raise `ulimit -n` (LimitNOFILE= in systemd)"
        );
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_gets_only_what_the_probes_leave() {
        let reserved = reserved(1024);
        assert_eq!(reserved, 2304);
        assert_eq!(connection_cap(256, Some(1_048_576), reserved), 256);
        assert_eq!(connection_cap(256, Some(2400), reserved), 96);
        assert_eq!(connection_cap(256, Some(1024), reserved), 4);
        assert_eq!(connection_cap(256, None, reserved), 256);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let soft = raise_nofile_limit().expect("getrlimit works here");
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(soft, lim.rlim_cur);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
