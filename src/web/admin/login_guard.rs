//! Login rate limiting in front of the store's per-account lock-out: failed
//! sign-ins are counted per client address and per (address, user name) in
//! a sliding window, so guessing across many names from one address, or at
//! a name that does not exist, is slowed down too. In memory, per server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sliding window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed sign-ins allowed from one address (any names) per window.
pub const MAX_PER_ADDRESS: usize = 20;
/// Failed sign-ins allowed from one address for one name per window.
pub const MAX_PER_ADDRESS_AND_NAME: usize = 5;
/// Keys remembered at most (oldest are dropped first).
const MAX_KEYS: usize = 20_000;

/// The failure counters; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct LoginGuard {
    failures: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
}

impl LoginGuard {
    fn keys(address: &str, name: &str) -> [String; 2] {
        [
            format!("a|{address}"),
            format!("n|{address}|{}", name.to_lowercase()),
        ]
    }

    /// `Err(wait)` when this address (or address and name) must wait before
    /// trying again.
    pub fn check(&self, address: &str, name: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let [by_address, by_name] = Self::keys(address, name);
        let mut wait = None;
        for (key, max) in [
            (by_address, MAX_PER_ADDRESS),
            (by_name, MAX_PER_ADDRESS_AND_NAME),
        ] {
            if let Some(times) = map.get(&key) {
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < WINDOW)
                    .collect();
                if recent.len() >= max {
                    // Free again when the oldest failure that still counts leaves the window.
                    let oldest = recent[recent.len() - max];
                    let w = WINDOW.saturating_sub(now.duration_since(*oldest));
                    wait = Some(wait.map_or(w, |x: Duration| x.max(w)));
                }
            }
        }
        wait.map_or(Ok(()), Err)
    }

    /// Count a failed sign-in.
    pub fn failed(&self, address: &str, name: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < WINDOW));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        for key in Self::keys(address, name) {
            let times = map.entry(key).or_default();
            times.retain(|t| now.duration_since(*t) < WINDOW);
            times.push(now);
        }
    }

    /// A successful sign-in clears the (address, name) counter.
    pub fn succeeded(&self, address: &str, name: &str) {
        let [_, by_name] = Self::keys(address, name);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&by_name);
    }
}

/// The client address of a request (from axum's `ConnectInfo`), or
/// `unknown` when the server was started without connection info.
pub fn client_address(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_is_limited_after_five_failures_others_are_not() {
        let g = LoginGuard::default();
        for _ in 0..MAX_PER_ADDRESS_AND_NAME {
            assert!(g.check("1.2.3.4", "ada").is_ok());
            g.failed("1.2.3.4", "ada");
        }
        let wait = g.check("1.2.3.4", "ADA").unwrap_err();
        assert!(wait > Duration::from_secs(14 * 60) && wait <= WINDOW);
        assert!(g.check("1.2.3.4", "bob").is_ok());
        assert!(g.check("5.6.7.8", "ada").is_ok());
    }

    #[test]
    fn an_address_is_limited_across_names() {
        let g = LoginGuard::default();
        for i in 0..MAX_PER_ADDRESS {
            g.failed("1.2.3.4", &format!("user{i}"));
        }
        assert!(g.check("1.2.3.4", "someone-else").is_err());
        assert!(g.check("9.9.9.9", "someone-else").is_ok());
    }

    #[test]
    fn success_clears_the_name_counter() {
        let g = LoginGuard::default();
        for _ in 0..MAX_PER_ADDRESS_AND_NAME {
            g.failed("1.2.3.4", "ada");
        }
        g.succeeded("1.2.3.4", "ada");
        assert!(g.check("1.2.3.4", "ada").is_ok());
    }
}
