//! The SQLite store (sqlx): connection pool, embedded migrations, first-start
//! bootstrap, and the one error type of the persistence layer.
//!
//! Sub-modules own one table family each: [`users`] (accounts and API
//! tokens), [`sites`] (sites and their allowed origins), [`rulesets`] (draft
//! and published rule sets), [`history`] (session history and audit log).
//! Everything uses runtime `query`/`query_as`; no compile-time database.

pub mod editor;
pub mod history;
pub mod rulesets;
pub mod sites;
pub mod users;

use crate::rules::RuleError;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::Path;
use std::time::Duration;

pub use history::{AuditEntry, HistoryEvent, HistoryRow};
pub use rulesets::{Draft, PublishedVersion, VersionSummary};
pub use sites::{normalize_origin, Site};
pub use users::{Credential, LoginOutcome, Role, User};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or a query failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The embedded migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A record with the same unique key already exists.
    #[error("{0} already exists")]
    Duplicate(String),
    /// The named record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A value given by the caller is not acceptable (message says which).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A rule set failed validation; nothing was written.
    #[error("{} invalid rule(s): {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Rules(Vec<RuleError>),
    /// Stored JSON could not be (de)serialised.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A blocking helper task (password hashing) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Map a unique-constraint violation to [`StoreError::Duplicate`].
    pub(crate) fn from_insert(err: sqlx::Error, what: impl Into<String>) -> StoreError {
        if let sqlx::Error::Database(db) = &err {
            if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
                return StoreError::Duplicate(what.into());
            }
        }
        StoreError::Db(err)
    }
}

/// What the first start created, to be shown once to the operator.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// The generated password of the new `admin` account.
    pub admin_password: Option<String>,
    /// The integration API key of the new `demo` site.
    pub demo_api_key: Option<String>,
}

/// The handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Open (creating if missing) the database file and apply migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("src/store/migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// The connection pool (shared with the web session store).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Begin a write transaction with `BEGIN IMMEDIATE`: the write lock is
    /// taken up front (waiting up to the busy timeout), so a transaction that
    /// reads and then writes can never fail half-way with "database is
    /// locked" because another writer committed in between. Every
    /// transaction that writes must start here.
    pub async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// First-start setup, run by `serve`: create the `admin` account and the
    /// `demo` site (default rule pack as draft and published v1) once. On every
    /// start, make sure the demo site accepts the server's own origin.
    pub async fn bootstrap(&self, public_url: &str) -> Result<Bootstrap, StoreError> {
        let mut out = Bootstrap::default();
        let own_origin = normalize_origin(public_url)?;
        let done: Option<(String,)> =
            sqlx::query_as("SELECT value FROM meta WHERE key = 'bootstrapped'")
                .fetch_optional(&self.pool)
                .await?;
        if done.is_none() {
            if self.user_by_name("admin").await?.is_none() {
                let password = random_password();
                self.create_user("admin", Role::Admin, &password).await?;
                out.admin_password = Some(password);
            }
            if self.site_by_key("demo").await?.is_none() {
                let (_, key) = self
                    .create_site(
                        "demo",
                        "Demo shop",
                        std::slice::from_ref(&own_origin),
                        "bootstrap",
                    )
                    .await?;
                out.demo_api_key = Some(key);
            }
            sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES ('bootstrapped', '1')")
                .execute(&self.pool)
                .await?;
        }
        if let Some(demo) = self.site_by_key("demo").await? {
            if !demo.origins.contains(&own_origin) {
                let mut origins = demo.origins.clone();
                origins.push(own_origin.clone());
                self.set_origins("demo", &origins, "bootstrap").await?;
                tracing::info!(origin = %own_origin, "added the server's own origin to the demo site");
            }
        }
        Ok(out)
    }
}

/// Hex SHA-256 of a secret (tokens and API keys are stored this way).
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A random password of 20 characters from an unambiguous alphabet.
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Current time as unix seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
