//! Sign-in back-off: failed sign-ins are counted per (client address, user
//! name) and per client address, and past a few free failures every further
//! attempt must wait a doubling delay that is capped at a few seconds — so
//! guessing is slowed to a crawl but the right password is never locked out
//! for long (there is no account lock). The answer is the same whether the
//! name exists or not. In memory, per server; the client address honours
//! `trusted_proxies` (see `web::throttle::client_ip`).

use crate::web::throttle::Backoff;
use std::sync::Arc;
use std::time::Duration;

/// Failed sign-ins for one name from one address before the back-off starts.
pub const FREE_PER_NAME: u32 = 5;
/// Longest wait for one name from one address.
pub const MAX_WAIT_PER_NAME: Duration = Duration::from_secs(8);
/// Failed sign-ins from one address (any names) before its back-off starts.
pub const FREE_PER_ADDRESS: u32 = 20;
/// Longest wait for an address.
pub const MAX_WAIT_PER_ADDRESS: Duration = Duration::from_secs(60);
/// Failures are forgotten this long after the last one.
pub const FORGET: Duration = Duration::from_secs(15 * 60);

/// The failure counters; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct LoginGuard {
    by_name: Arc<Backoff>,
    by_address: Arc<Backoff>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard {
            by_name: Arc::new(Backoff::new(
                FREE_PER_NAME,
                Duration::from_secs(2),
                MAX_WAIT_PER_NAME,
                FORGET,
            )),
            by_address: Arc::new(Backoff::new(
                FREE_PER_ADDRESS,
                Duration::from_secs(2),
                MAX_WAIT_PER_ADDRESS,
                FORGET,
            )),
        }
    }
}

fn name_key(address: &str, name: &str) -> String {
    format!("{address}|{}", name.to_lowercase())
}

impl LoginGuard {
    /// `Err(wait)` when this address (or address and name) must wait before
    /// trying again.
    pub fn check(&self, address: &str, name: &str) -> Result<(), Duration> {
        let a = self.by_address.check(address);
        let n = self.by_name.check(&name_key(address, name));
        match (a, n) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(w), Ok(())) | (Ok(()), Err(w)) => Err(w),
            (Err(x), Err(y)) => Err(x.max(y)),
        }
    }

    /// Count a failed sign-in.
    pub fn failed(&self, address: &str, name: &str) {
        self.by_address.miss(address);
        self.by_name.miss(&name_key(address, name));
    }

    /// A successful sign-in clears the (address, name) counter.
    pub fn succeeded(&self, address: &str, name: &str) {
        self.by_name.clear(&name_key(address, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_backs_off_after_five_failures_for_seconds_not_minutes() {
        let g = LoginGuard::default();
        for _ in 0..FREE_PER_NAME {
            assert!(g.check("1.2.3.4", "ada").is_ok());
            g.failed("1.2.3.4", "ada");
        }
        let wait = g.check("1.2.3.4", "ADA").unwrap_err();
        assert!(wait <= MAX_WAIT_PER_NAME, "{wait:?}");
        // Many more failures (still under the address limit): the wait stays capped.
        for _ in 0..(FREE_PER_ADDRESS - FREE_PER_NAME - 1) {
            g.failed("1.2.3.4", "ada");
        }
        assert!(g.check("1.2.3.4", "ada").unwrap_err() <= MAX_WAIT_PER_NAME);
        assert!(g.check("1.2.3.4", "bob").is_ok());
        assert!(g.check("5.6.7.8", "ada").is_ok());
    }

    #[test]
    fn an_address_is_limited_across_names() {
        let g = LoginGuard::default();
        for i in 0..FREE_PER_ADDRESS {
            g.failed("1.2.3.4", &format!("user{i}"));
        }
        assert!(g.check("1.2.3.4", "someone-else").is_err());
        assert!(g.check("9.9.9.9", "someone-else").is_ok());
    }

    #[test]
    fn success_clears_the_name_counter() {
        let g = LoginGuard::default();
        for _ in 0..FREE_PER_NAME {
            g.failed("1.2.3.4", "ada");
        }
        g.succeeded("1.2.3.4", "ada");
        assert!(g.check("1.2.3.4", "ada").is_ok());
    }
}
