//! Server configuration: built from command-line flags and environment
//! variables (already merged by clap, flags first), then an optional TOML
//! file, then defaults. This module only resolves and validates values; it
//! does not read the database or bind sockets.

use crate::protocol::Limits;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML file is not valid or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range or malformed (the message names the setting).
    #[error("invalid setting `{setting}`: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

/// Session timeouts (design §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A session with no agent ends after this long (`waiting_timeout`).
    pub waiting: Duration,
    /// An active session with no message from either side ends after this long.
    pub inactivity: Duration,
    /// Grace period for the agent's socket to come back (`agent_away_timeout`).
    pub agent_away: Duration,
    /// Grace period for the customer's socket to come back, e.g. across a
    /// page navigation (`customer_away_timeout`).
    pub customer_away: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            waiting: Duration::from_secs(600),
            inactivity: Duration::from_secs(1800),
            agent_away: Duration::from_secs(60),
            customer_away: Duration::from_secs(60),
        }
    }
}

/// Bounds of the per-connection outbound queues (back-pressure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most frames queued for one socket.
    pub frames: usize,
    /// Most bytes queued for one socket (one frame larger than this is still sent alone).
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            frames: 1024,
            bytes: 32 * 1024 * 1024,
        }
    }
}

/// Server-wide resource bounds and abuse limits (`[limits]`, next to the
/// protocol limits), each with a safe default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Sessions one client address may start per minute (`429` beyond).
    pub sessions_per_minute: u32,
    /// Live sessions in total (`503` beyond).
    pub live_sessions: usize,
    /// Live sessions of one site (`503` beyond).
    pub live_sessions_per_site: usize,
    /// Concurrent HTTP/WebSocket connections; more are answered `503` and closed.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Misses (unknown session ids) an agent or address may make before back-off.
    pub free_id_misses: u32,
    /// A WebSocket from which nothing (not even a pong) arrives this long is closed.
    pub ws_idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            sessions_per_minute: 10,
            live_sessions: 1000,
            live_sessions_per_site: 200,
            max_connections: 2048,
            header_read_timeout: Duration::from_secs(10),
            free_id_misses: 5,
            ws_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A trusted reverse proxy: one address or a CIDR block (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Parse `ADDR` or `ADDR/PREFIX`.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|e| format!("`{text}`: {e} (expected an IP address or CIDR block)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}`: prefix must be 0-{max}"))?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is inside this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The resolved configuration of `cobrowse serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub db: PathBuf,
    /// Base URL the server is reached at (no trailing slash).
    pub public_url: String,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub queues: QueueLimits,
    /// Resource bounds and abuse limits of the server.
    pub server: ServerLimits,
    /// Peers whose `X-Forwarded-For` is believed (none by default: the
    /// client address is the socket's).
    pub trusted_proxies: Vec<IpNet>,
    /// Session history older than this is deleted (at start-up and daily).
    pub history_retention: Duration,
    /// The resource proxy's limits (`[proxy]`).
    pub proxy: ProxyLimits,
}

/// Limits of the resource proxy (`[proxy]`, see `web::proxy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyLimits {
    /// Time allowed for one resource, redirects included (`504` beyond).
    pub timeout: Duration,
    /// Largest resource fetched (`413` beyond).
    pub max_bytes: usize,
    /// Bytes the in-memory cache holds (least recently used evicted).
    pub cache_bytes: usize,
    /// Redirects followed (each must stay on the site's allowed origins).
    pub max_redirects: usize,
}

impl Default for ProxyLimits {
    fn default() -> Self {
        ProxyLimits {
            timeout: Duration::from_secs(10),
            max_bytes: 5 * 1024 * 1024,
            cache_bytes: 64 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database path.
pub const DEFAULT_DB: &str = "cobrowse.db";

impl Default for Config {
    fn default() -> Self {
        let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
        Config {
            listen,
            db: PathBuf::from(DEFAULT_DB),
            public_url: format!("http://{listen}"),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            queues: QueueLimits::default(),
            server: ServerLimits::default(),
            trusted_proxies: Vec::new(),
            history_retention: DEFAULT_RETENTION,
            proxy: ProxyLimits::default(),
        }
    }
}

/// Default history retention: 90 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Values given on the command line or in the environment (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub db: Option<PathBuf>,
    pub public_url: Option<String>,
    pub waiting_timeout: Option<Duration>,
    pub inactivity_timeout: Option<Duration>,
    pub agent_away_timeout: Option<Duration>,
    pub customer_away_timeout: Option<Duration>,
}

/// The TOML file format; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub db: Option<PathBuf>,
    pub public_url: Option<String>,
    #[serde(default)]
    pub timeouts: FileTimeouts,
    #[serde(default)]
    pub limits: FileLimits,
    #[serde(default)]
    pub queues: FileQueues,
    /// Addresses or CIDR blocks of reverse proxies whose `X-Forwarded-For` is used.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub history: FileHistory,
    #[serde(default)]
    pub proxy: FileProxy,
}

/// `[proxy]`: the resource proxy's limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProxy {
    pub timeout: Option<String>,
    pub max_bytes: Option<usize>,
    pub cache_bytes: Option<usize>,
    pub max_redirects: Option<usize>,
}

/// `[history]`: how long session history is kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHistory {
    pub retention: Option<String>,
}

/// `[timeouts]`: durations as `30s`, `10m`, `1h`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTimeouts {
    pub waiting: Option<String>,
    pub inactivity: Option<String>,
    pub agent_away: Option<String>,
    pub customer_away: Option<String>,
}

/// `[limits]`: protocol limits (see `protocol::Limits`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub max_message_bytes: Option<usize>,
    pub max_nodes: Option<usize>,
    pub max_depth: Option<usize>,
    pub max_ops: Option<usize>,
    pub max_messages_per_sec: Option<u32>,
    pub sessions_per_minute: Option<u32>,
    pub live_sessions: Option<usize>,
    pub live_sessions_per_site: Option<usize>,
    pub max_connections: Option<usize>,
    pub header_read_timeout: Option<String>,
    pub free_id_misses: Option<u32>,
    pub ws_idle_timeout: Option<String>,
    pub rewrite_budget_ms: Option<u64>,
    pub max_mirror_bytes: Option<usize>,
}

/// `[queues]`: outbound queue bounds per socket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileQueues {
    pub frames: Option<usize>,
    pub bytes: Option<usize>,
}

/// Parse a human duration (`30s`, `10m`); zero is refused.
pub fn parse_duration(setting: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| ConfigError::Invalid {
        setting,
        message: format!("`{text}`: {e} (use e.g. 30s, 10m, 1h)"),
    })?;
    if d.is_zero() {
        return Err(ConfigError::Invalid {
            setting,
            message: "must be greater than zero".into(),
        });
    }
    Ok(d)
}

fn positive<T: PartialOrd + Default + Copy>(
    setting: &'static str,
    v: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match v {
        Some(v) if v <= T::default() => Err(ConfigError::Invalid {
            setting,
            message: "must be greater than zero".into(),
        }),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// The largest `limits.max_depth` accepted: the default. Every walk of a
/// document is iterative or depth-checked, but serde's decoding of the
/// internally tagged wire `Node` recurses (through buffered content) a few
/// frames per level: `fuzz::depth` shows 256 levels decode, rewrite and
/// serialise on a tokio worker's 2 MiB stack in a debug build, while 384
/// already overflows it. Raising this needs an iterative `Node` decoder
/// first (issue 8, item 7).
pub const MAX_DEPTH_CAP: usize = 256;

/// `v`, unless it is over `max`.
fn at_most(setting: &'static str, v: usize, max: usize) -> Result<usize, ConfigError> {
    if v > max {
        return Err(ConfigError::Invalid {
            setting,
            message: format!("must be at most {max} (got {v})"),
        });
    }
    Ok(v)
}

/// Check a public base URL and drop any trailing slash.
pub fn normalize_public_url(url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim().trim_end_matches('/');
    crate::store::normalize_origin(trimmed).map_err(|e| ConfigError::Invalid {
        setting: "public_url",
        message: e.to_string(),
    })?;
    Ok(trimmed.to_owned())
}

impl FileConfig {
    /// Read and parse a TOML file.
    pub fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }
}

impl Config {
    /// Resolve: overrides (flags > env) > file > defaults.
    pub fn resolve(over: Overrides, file: FileConfig) -> Result<Config, ConfigError> {
        let d = Config::default();
        let listen = match (over.listen, &file.listen) {
            (Some(l), _) => l,
            (None, Some(text)) => text.trim().parse().map_err(|e| ConfigError::Invalid {
                setting: "listen",
                message: format!("`{text}`: {e} (expected HOST:PORT, e.g. 127.0.0.1:8080)"),
            })?,
            (None, None) => d.listen,
        };
        let db = over.db.or(file.db).unwrap_or(d.db);
        let public_url = match over.public_url.or(file.public_url) {
            Some(u) => normalize_public_url(&u)?,
            None => format!("http://{listen}"),
        };
        let ft = &file.timeouts;
        let pick = |flag: Option<Duration>,
                    text: &Option<String>,
                    setting: &'static str,
                    default: Duration| {
            match (flag, text) {
                (Some(v), _) => Ok(v),
                (None, Some(t)) => parse_duration(setting, t),
                (None, None) => Ok(default),
            }
        };
        let timeouts = Timeouts {
            waiting: pick(
                over.waiting_timeout,
                &ft.waiting,
                "timeouts.waiting",
                d.timeouts.waiting,
            )?,
            inactivity: pick(
                over.inactivity_timeout,
                &ft.inactivity,
                "timeouts.inactivity",
                d.timeouts.inactivity,
            )?,
            agent_away: pick(
                over.agent_away_timeout,
                &ft.agent_away,
                "timeouts.agent_away",
                d.timeouts.agent_away,
            )?,
            customer_away: pick(
                over.customer_away_timeout,
                &ft.customer_away,
                "timeouts.customer_away",
                d.timeouts.customer_away,
            )?,
        };
        for (name, v) in [
            ("waiting_timeout", timeouts.waiting),
            ("inactivity_timeout", timeouts.inactivity),
            ("agent_away_timeout", timeouts.agent_away),
            ("customer_away_timeout", timeouts.customer_away),
        ] {
            if v.is_zero() {
                return Err(ConfigError::Invalid {
                    setting: name,
                    message: "must be greater than zero".into(),
                });
            }
        }
        let fl = &file.limits;
        let dl = d.limits;
        let limits = Limits {
            max_message_bytes: positive(
                "limits.max_message_bytes",
                fl.max_message_bytes,
                dl.max_message_bytes,
            )?,
            max_nodes: positive("limits.max_nodes", fl.max_nodes, dl.max_nodes)?,
            max_depth: at_most(
                "limits.max_depth",
                positive("limits.max_depth", fl.max_depth, dl.max_depth)?,
                MAX_DEPTH_CAP,
            )?,
            max_ops: positive("limits.max_ops", fl.max_ops, dl.max_ops)?,
            max_messages_per_sec: positive(
                "limits.max_messages_per_sec",
                fl.max_messages_per_sec,
                dl.max_messages_per_sec,
            )?,
            rewrite_budget_ms: positive(
                "limits.rewrite_budget_ms",
                fl.rewrite_budget_ms,
                dl.rewrite_budget_ms,
            )?,
            max_mirror_bytes: positive(
                "limits.max_mirror_bytes",
                fl.max_mirror_bytes,
                dl.max_mirror_bytes,
            )?,
        };
        let queues = QueueLimits {
            frames: positive("queues.frames", file.queues.frames, d.queues.frames)?,
            bytes: positive("queues.bytes", file.queues.bytes, d.queues.bytes)?,
        };
        let ds = d.server;
        let server = ServerLimits {
            sessions_per_minute: positive(
                "limits.sessions_per_minute",
                fl.sessions_per_minute,
                ds.sessions_per_minute,
            )?,
            live_sessions: positive("limits.live_sessions", fl.live_sessions, ds.live_sessions)?,
            live_sessions_per_site: positive(
                "limits.live_sessions_per_site",
                fl.live_sessions_per_site,
                ds.live_sessions_per_site,
            )?,
            max_connections: positive(
                "limits.max_connections",
                fl.max_connections,
                ds.max_connections,
            )?,
            header_read_timeout: match &fl.header_read_timeout {
                Some(t) => parse_duration("limits.header_read_timeout", t)?,
                None => ds.header_read_timeout,
            },
            free_id_misses: positive(
                "limits.free_id_misses",
                fl.free_id_misses,
                ds.free_id_misses,
            )?,
            ws_idle_timeout: match &fl.ws_idle_timeout {
                Some(t) => parse_duration("limits.ws_idle_timeout", t)?,
                None => ds.ws_idle_timeout,
            },
        };
        let trusted_proxies = file
            .trusted_proxies
            .iter()
            .map(|t| IpNet::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| ConfigError::Invalid {
                setting: "trusted_proxies",
                message,
            })?;
        let history_retention = match &file.history.retention {
            Some(t) => parse_duration("history.retention", t)?,
            None => d.history_retention,
        };
        let proxy = ProxyLimits {
            timeout: match &file.proxy.timeout {
                Some(t) => parse_duration("proxy.timeout", t)?,
                None => d.proxy.timeout,
            },
            max_bytes: positive("proxy.max_bytes", file.proxy.max_bytes, d.proxy.max_bytes)?,
            cache_bytes: file.proxy.cache_bytes.unwrap_or(d.proxy.cache_bytes),
            max_redirects: file.proxy.max_redirects.unwrap_or(d.proxy.max_redirects),
        };
        Ok(Config {
            listen,
            db,
            public_url,
            timeouts,
            limits,
            queues,
            server,
            trusted_proxies,
            history_retention,
            proxy,
        })
    }

    /// Whether cookies must be `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_anything() {
        let c = Config::resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.db, PathBuf::from("cobrowse.db"));
        assert_eq!(c.timeouts.waiting, Duration::from_secs(600));
        assert_eq!(c.timeouts.inactivity, Duration::from_secs(1800));
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            db = "file.db"
            [timeouts]
            waiting = "5m"
            agent_away = "10s"
            [limits]
            max_depth = 64
            "#,
        )
        .unwrap();
        let over = Overrides {
            db: Some(PathBuf::from("flag.db")),
            waiting_timeout: Some(Duration::from_secs(30)),
            ..Overrides::default()
        };
        let c = Config::resolve(over, file).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.public_url, "http://0.0.0.0:9000");
        assert_eq!(c.db, PathBuf::from("flag.db"));
        assert_eq!(c.timeouts.waiting, Duration::from_secs(30));
        assert_eq!(c.timeouts.agent_away, Duration::from_secs(10));
        assert_eq!(c.timeouts.inactivity, Duration::from_secs(1800));
        assert_eq!(c.limits.max_depth, 64);
    }

    /// Regression (issue 8, item 7): any `max_depth` was accepted, so a
    /// config could let frames through deeper than the walks were ever
    /// shown to survive on a worker's stack.
    #[test]
    fn max_depth_over_the_cap_is_refused_with_a_clear_message() {
        let at = |depth: usize| {
            let file: FileConfig =
                toml::from_str(&format!("[limits]\nmax_depth = {depth}\n")).unwrap();
            Config::resolve(Overrides::default(), file)
        };
        assert_eq!(at(MAX_DEPTH_CAP).unwrap().limits.max_depth, MAX_DEPTH_CAP);
        let err = at(MAX_DEPTH_CAP + 1).unwrap_err().to_string();
        assert!(err.contains("limits.max_depth"), "{err}");
        assert!(err.contains("at most 256"), "{err}");
    }

    #[test]
    fn server_limits_proxies_and_retention_come_from_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            trusted_proxies = ["10.0.0.0/8", "::1"]
            [limits]
            sessions_per_minute = 3
            live_sessions = 7
            header_read_timeout = "2s"
            [history]
            retention = "30days"
            "#,
        )
        .unwrap();
        let c = Config::resolve(Overrides::default(), file).unwrap();
        assert_eq!(c.server.sessions_per_minute, 3);
        assert_eq!(c.server.live_sessions, 7);
        assert_eq!(c.server.live_sessions_per_site, 200);
        assert_eq!(c.server.header_read_timeout, Duration::from_secs(2));
        assert_eq!(c.history_retention, Duration::from_secs(30 * 86400));
        let net = c.trusted_proxies[0];
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.1.2.3".parse().unwrap()));
        assert!(c.trusted_proxies[1].contains("::1".parse().unwrap()));
        let d = Config::resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert!(d.trusted_proxies.is_empty());
        assert_eq!(d.history_retention, Duration::from_secs(90 * 86400));
        let bad: FileConfig = toml::from_str("trusted_proxies = [\"10.0.0.0/40\"]").unwrap();
        let err = Config::resolve(Overrides::default(), bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn https_public_url_means_secure_cookies() {
        let over = Overrides {
            public_url: Some("https://cobrowse.example.com/".into()),
            ..Overrides::default()
        };
        let c = Config::resolve(over, FileConfig::default()).unwrap();
        assert_eq!(c.public_url, "https://cobrowse.example.com");
        assert!(c.secure_cookies());
        let c = Config::resolve(Overrides::default(), FileConfig::default()).unwrap();
        assert!(!c.secure_cookies());
    }

    #[test]
    fn bad_values_name_the_setting() {
        let file: FileConfig = toml::from_str("[timeouts]\nwaiting = \"soon\"").unwrap();
        let err = Config::resolve(Overrides::default(), file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeouts.waiting"), "{err}");
        let file: FileConfig = toml::from_str("[limits]\nmax_nodes = 0").unwrap();
        let err = Config::resolve(Overrides::default(), file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_nodes"), "{err}");
        assert!(toml::from_str::<FileConfig>("colour = 1").is_err());
        let over = Overrides {
            public_url: Some("ftp://x".into()),
            ..Overrides::default()
        };
        assert!(Config::resolve(over, FileConfig::default()).is_err());
    }
}
