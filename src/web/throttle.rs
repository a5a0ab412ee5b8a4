//! Abuse throttles of the web layer, all in memory and per server:
//!
//! - [`Backoff`]: a few free misses per key, then exponentially growing
//!   delays up to a cap (forgotten after a quiet period). Used for session-ID
//!   guessing (failed agent joins and `GET /api/v1/sessions/{id}` misses, per
//!   agent and per client address) and for sign-in failures
//!   (`admin::login_guard`).
//! - [`RateWindow`]: at most N events per key in a sliding minute (session
//!   creation per client address).
//! - [`client_ip`]: the client address of a request — the socket peer, or,
//!   when the peer is a configured trusted proxy, the right-most
//!   `X-Forwarded-For` entry that is not itself a trusted proxy.
//!
//! It does not decide what a miss is (the handlers do) nor write the audit
//! log (the handlers do, once per key entering back-off).

use crate::config::{Config, IpNet};
use axum::http::HeaderMap;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered at most by one throttle (stale ones are dropped first).
const MAX_KEYS: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    misses: u32,
    last: Instant,
}

/// Free misses, then doubling delays (`base`, `2·base`, … up to `cap`)
/// between attempts; a key is forgotten `forget` after its last miss.
#[derive(Debug)]
pub struct Backoff {
    free: u32,
    base: Duration,
    cap: Duration,
    forget: Duration,
    map: Mutex<HashMap<String, Entry>>,
}

impl Backoff {
    /// A back-off with `free` misses before the first delay.
    pub fn new(free: u32, base: Duration, cap: Duration, forget: Duration) -> Backoff {
        Backoff {
            free,
            base,
            cap,
            forget,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn delay(&self, misses: u32) -> Duration {
        if misses < self.free {
            return Duration::ZERO;
        }
        let exp = (misses - self.free).min(20);
        self.base.saturating_mul(1u32 << exp).min(self.cap)
    }

    /// `Err(wait)` while `key` must wait before its next attempt.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.lock();
        let Some(e) = map.get(key) else {
            return Ok(());
        };
        if now.duration_since(e.last) >= self.forget {
            return Ok(());
        }
        let until = e.last + self.delay(e.misses);
        if now < until {
            Err(until - now)
        } else {
            Ok(())
        }
    }

    /// Count a miss; returns the key's misses so far (1 for the first).
    pub fn miss(&self, key: &str) -> u32 {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let forget = self.forget;
            map.retain(|_, e| now.duration_since(e.last) < forget);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let e = map.entry(key.to_owned()).or_insert(Entry {
            misses: 0,
            last: now,
        });
        if now.duration_since(e.last) >= self.forget {
            e.misses = 0;
        }
        e.misses = e.misses.saturating_add(1);
        e.last = now;
        e.misses
    }

    /// Forget a key (a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.lock().remove(key);
    }

    /// The number of free misses.
    pub fn free(&self) -> u32 {
        self.free
    }
}

/// At most `per_minute` events per key in any sliding 60 seconds.
#[derive(Debug)]
pub struct RateWindow {
    per_minute: u32,
    map: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateWindow {
    /// A window allowing `per_minute` events per key.
    pub fn new(per_minute: u32) -> RateWindow {
        RateWindow {
            per_minute,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Count an event for `key`; `Err(wait)` (and not counted) when the key
    /// is over its rate.
    pub fn hit(&self, key: &str) -> Result<(), Duration> {
        const MINUTE: Duration = Duration::from_secs(60);
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < MINUTE));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let q = map.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= MINUTE) {
            q.pop_front();
        }
        if q.len() >= self.per_minute as usize {
            let oldest = q.front().copied().unwrap_or(now);
            return Err(MINUTE.saturating_sub(now.duration_since(oldest)));
        }
        q.push_back(now);
        Ok(())
    }
}

/// The throttles shared by the handlers.
#[derive(Debug)]
pub struct Throttles {
    /// Session-ID misses per agent (`u:ID`) and per client address (`a:IP`).
    pub id_misses: Backoff,
    /// Session creation per client address.
    pub creations: RateWindow,
}

impl Throttles {
    /// Throttles from the configured limits.
    pub fn new(config: &Config) -> Throttles {
        Throttles {
            id_misses: Backoff::new(
                config.server.free_id_misses,
                Duration::from_secs(1),
                Duration::from_secs(60),
                Duration::from_secs(15 * 60),
            ),
            creations: RateWindow::new(config.server.sessions_per_minute),
        }
    }
}

fn user_key(user_id: i64) -> String {
    format!("u:{user_id}")
}

fn address_key(address: &str) -> String {
    format!("a:{address}")
}

/// Whether an agent (by user id) or a client address is in its ID-guessing
/// back-off: `Err(wait)` refuses the lookup or join, hit or miss.
pub fn check_id_guessing(
    throttles: &Throttles,
    user_id: i64,
    address: &str,
) -> Result<(), Duration> {
    let a = throttles.id_misses.check(&user_key(user_id));
    let b = throttles.id_misses.check(&address_key(address));
    match (a, b) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(w), Ok(())) | (Ok(()), Err(w)) => Err(w),
        (Err(x), Err(y)) => Err(x.max(y)),
    }
}

/// Count a lookup or join of a session id that is not live, for the agent
/// and for the address; the miss that starts the back-off is audited
/// (`session.id_guessing`, actor: the agent, target: the address).
pub async fn id_miss(state: &super::AppState, user: &crate::store::User, address: &str) {
    let t = &state.throttles;
    let by_user = t.id_misses.miss(&user_key(user.id));
    let by_address = t.id_misses.miss(&address_key(address));
    // The miss that starts the back-off is the one audited.
    let first_over = t.id_misses.free();
    if by_user == first_over || by_address == first_over {
        tracing::warn!(agent = %user.name, address, "session id guessing: back-off started");
        if let Err(e) = state
            .store
            .audit(
                &user.name,
                "session.id_guessing",
                address,
                None,
                Some(&serde_json::json!({
                    "misses_by_agent": by_user,
                    "misses_by_address": by_address,
                })),
            )
            .await
        {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
}

/// Whole seconds to announce for a wait (at least 1).
pub fn wait_secs(wait: Duration) -> u64 {
    (wait.as_millis().div_ceil(1000) as u64).max(1)
}

/// The client address of a request: the socket peer unless the peer is a
/// trusted proxy, then the right-most `X-Forwarded-For` hop that is not a
/// trusted proxy (entries left of it could be forged by the client).
pub fn client_ip(
    config: &Config,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Option<IpAddr> {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())?;
    Some(forwarded_client(&config.trusted_proxies, peer, headers))
}

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    proxies.iter().any(|n| n.contains(ip))
}

/// See [`client_ip`].
pub fn forwarded_client(proxies: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !trusted(proxies, peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|h| h.parse::<IpAddr>())
        .collect::<Result<_, _>>()
        // A malformed header is not believed at all.
        .unwrap_or_default();
    hops.into_iter()
        .rev()
        .find(|ip| !trusted(proxies, *ip))
        .unwrap_or(peer)
}

/// [`client_ip`] as a string key (`unknown` without connection info).
pub fn client_key(
    config: &Config,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> String {
    client_ip(config, headers, extensions)
        .map(|ip| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        })
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_gives_free_misses_then_doubles_up_to_the_cap() {
        let b = Backoff::new(
            2,
            Duration::from_secs(1),
            Duration::from_secs(3),
            Duration::from_secs(600),
        );
        assert_eq!(b.delay(1), Duration::ZERO);
        assert_eq!(b.delay(2), Duration::from_secs(1));
        assert_eq!(b.delay(3), Duration::from_secs(2));
        assert_eq!(b.delay(4), Duration::from_secs(3));
        assert_eq!(b.delay(40), Duration::from_secs(3));
        b.miss("k");
        assert!(b.check("k").is_ok());
        b.miss("k");
        assert!(b.check("k").is_err());
        assert!(b.check("other").is_ok());
        b.clear("k");
        assert!(b.check("k").is_ok());
    }

    #[test]
    fn rate_window_refuses_past_the_rate_per_key() {
        let r = RateWindow::new(2);
        assert!(r.hit("a").is_ok());
        assert!(r.hit("a").is_ok());
        let wait = r.hit("a").unwrap_err();
        assert!(wait <= Duration::from_secs(60));
        assert!(r.hit("b").is_ok());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = vec![IpNet::parse("10.0.0.0/8").unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.9".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let direct: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(
            forwarded_client(&proxies, proxy, &h),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(forwarded_client(&proxies, direct, &h), direct);
        assert_eq!(forwarded_client(&[], proxy, &h), proxy);
        h.insert("x-forwarded-for", "junk".parse().unwrap());
        assert_eq!(forwarded_client(&proxies, proxy, &h), proxy);
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(wait_secs(Duration::from_millis(1500)), 2);
        assert_eq!(wait_secs(Duration::from_secs(3)), 3);
        assert_eq!(wait_secs(Duration::ZERO), 1);
    }
}
