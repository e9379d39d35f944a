//! File descriptors: every client connection holds one, and so do upstream and Redis
//! connections, the log file and the listener. At start-up hydrant raises its soft
//! `RLIMIT_NOFILE` to the hard limit (the soft default, often 1024, is far below what a proxy
//! needs), then lowers the connection limit, if it must, so that it is reached before the
//! descriptors run out: at the limit new connections wait in the listen backlog (see
//! `accept`), which is far better than accepting, failing with EMFILE, and starving the
//! upstream calls of descriptors.
//!
//! The rule: client connections get the limit minus
//! [`FD_RESERVE`], or half the limit when that reserve
//! would be more than half (tiny limits still serve some clients).

use crate::config::defaults::FD_RESERVE;

/// Client connections that fit in `nofile` descriptors.
pub fn fitting(nofile: u64) -> u64 {
    nofile - FD_RESERVE.min(nofile / 2)
}

/// Raise the soft descriptor limit to the hard one and return the connection limit to use:
/// `max_connections`, or less when it does not fit (logged once, at warn).
pub fn fit_connections(max_connections: usize) -> usize {
    // Raising may be refused (a seccomp filter such as systemd's `~@resources`): then fit
    // the limit as it stands.
    let raised = rlimit::increase_nofile_limit(u64::MAX).or_else(|e| {
        tracing::warn!(error = %e, "cannot raise RLIMIT_NOFILE to its hard limit");
        rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft)
    });
    let nofile = match raised {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read RLIMIT_NOFILE; connection limit unchanged");
            return max_connections;
        }
    };
    let fit = fitting(nofile);
    if max_connections as u64 <= fit {
        tracing::debug!(nofile, max_connections, "descriptor limit");
        return max_connections;
    }
    let lowered = usize::try_from(fit).unwrap_or(usize::MAX).max(1);
    tracing::warn!(
        nofile,
        max_connections,
        reserve = nofile - fit,
        lowered_to = lowered,
        "--max-connections plus the descriptor reserve does not fit RLIMIT_NOFILE (raise the hard \
         limit: ulimit -Hn, LimitNOFILE=); the connection limit is lowered to fit"
    );
    lowered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept_free_but_never_more_than_half() {
        assert_eq!(fitting(1_048_576), 1_048_576 - 256);
        assert_eq!(fitting(10_256), 10_000);
        assert_eq!(fitting(1024), 768);
        assert_eq!(fitting(512), 256);
        assert_eq!(fitting(200), 100);
        assert_eq!(fitting(1), 1);
    }

    #[test]
    fn a_limit_that_fits_is_kept() {
        // The test process's own limit is raised too (harmless); 1 always fits.
        assert_eq!(fit_connections(1), 1);
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, hard, "the soft limit was raised to the hard one");
    }
}
