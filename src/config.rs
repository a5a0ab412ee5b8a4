//! Server configuration: built from command-line flags and environment
//! variables (already merged by clap, flags first), then an optional TOML
//! file, then defaults. This module only resolves and validates values; it
//! does not read the database or bind sockets.

use crate::protocol::Limits;
use serde::Deserialize;
use std::net::SocketAddr;
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
        }
    }
}

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
    pub rewrite_budget_ms: Option<u64>,
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
            max_depth: positive("limits.max_depth", fl.max_depth, dl.max_depth)?,
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
        };
        let queues = QueueLimits {
            frames: positive("queues.frames", file.queues.frames, d.queues.frames)?,
            bytes: positive("queues.bytes", file.queues.bytes, d.queues.bytes)?,
        };
        Ok(Config {
            listen,
            db,
            public_url,
            timeouts,
            limits,
            queues,
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
