//! Accounts (agents and admins) with argon2 password hashes, login checks
//! with lock-out after repeated failures, and revocable API bearer tokens
//! (stored as SHA-256 hashes).

use super::{random_hex, sha256_hex, unix_now, Store, StoreError};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde::Serialize;
use std::sync::OnceLock;

/// Failed logins in a row before the account is locked.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long a locked account stays locked, in seconds.
pub const LOCKOUT_SECS: i64 = 15 * 60;
/// Shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 8;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Joins co-browse sessions.
    Agent,
    /// Manages rules, sites and users; may also act as an agent.
    Admin,
}

impl Role {
    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Role, StoreError> {
        match s {
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            other => Err(StoreError::Invalid(format!(
                "unknown role `{other}` (expected agent or admin)"
            ))),
        }
    }
}

/// An account, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
}

/// The result of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Name and password match an enabled, unlocked account.
    Ok(User),
    /// Unknown name or wrong password (deliberately not distinguished).
    Invalid,
    /// Too many failures; try again after `until` (unix seconds).
    Locked { until: i64 },
    /// The account is disabled.
    Disabled,
}

type UserRow = (i64, String, String, i64);
/// A user row with its secret and lock-out state.
type LoginRow = (i64, String, String, i64, String, i64, Option<i64>);

fn user_from_row((id, name, role, disabled): UserRow) -> Result<User, StoreError> {
    Ok(User {
        id,
        name,
        role: role.parse()?,
        disabled: disabled != 0,
    })
}

/// Check a user name: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "user name `{name}` must be 1-64 characters of letters, digits, '.', '_', '-', '@'"
        )))
    }
}

pub(crate) fn validate_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(StoreError::Invalid(format!(
            "password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(StoreError::Invalid(
            "password is longer than 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Hash a password with argon2 (default parameters, random salt) off the async runtime.
pub async fn hash_password(password: &str) -> Result<String, StoreError> {
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(pw.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| StoreError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))?
}

/// Verify a password against a stored hash off the async runtime.
async fn verify_password(password: &str, hash: &str) -> Result<bool, StoreError> {
    let pw = password.to_owned();
    let hash = hash.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(pw.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))
}

/// A hash nobody's password matches, verified for unknown names so that
/// timing does not reveal which names exist.
async fn dummy_hash() -> Result<String, StoreError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(h) = DUMMY.get() {
        return Ok(h.clone());
    }
    let h = hash_password(&random_hex(16)).await?;
    Ok(DUMMY.get_or_init(|| h).clone())
}

impl Store {
    /// Create an account from the command line (audited as `cli`).
    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<User, StoreError> {
        self.create_user_by(name, role, password, "cli").await
    }

    /// Replace an account's password (and clear any lock-out).
    pub async fn set_password(
        &self,
        name: &str,
        password: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        validate_password(password)?;
        let hash = hash_password(password).await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE name = ?",
        )
        .bind(&hash)
        .bind(name)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user `{name}`")));
        }
        self.audit(actor, "user.passwd", name, None, None).await
    }

    /// Enable or disable an account.
    pub async fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET disabled = ? WHERE name = ?")
            .bind(disabled as i64)
            .bind(name)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user `{name}`")));
        }
        self.audit(
            actor,
            "user.disable",
            name,
            None,
            Some(&serde_json::json!({"disabled": disabled})),
        )
        .await
    }

    /// Look an account up by name.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, name, role, disabled FROM users WHERE name = ?")
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        row.map(user_from_row).transpose()
    }

    /// Look an account up by id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT id, name, role, disabled FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.map(user_from_row).transpose()
    }

    /// Every account, by name.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> =
            sqlx::query_as("SELECT id, name, role, disabled FROM users ORDER BY name")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter().map(user_from_row).collect()
    }

    /// Check a login; counts failures and locks the account after
    /// [`MAX_FAILED_LOGINS`] in a row for [`LOCKOUT_SECS`].
    pub async fn verify_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<LoginOutcome, StoreError> {
        let row: Option<LoginRow> = sqlx::query_as(
            "SELECT id, name, role, disabled, password_hash, failed_logins, locked_until FROM users WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        let Some((id, uname, role, disabled, hash, failed, locked_until)) = row else {
            let _ = verify_password(password, &dummy_hash().await?).await?;
            return Ok(LoginOutcome::Invalid);
        };
        let now = unix_now();
        if let Some(until) = locked_until {
            if until > now {
                return Ok(LoginOutcome::Locked { until });
            }
        }
        if !verify_password(password, &hash).await? {
            let failed = failed + 1;
            let lock = (failed >= MAX_FAILED_LOGINS).then_some(now + LOCKOUT_SECS);
            sqlx::query("UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?")
                .bind(if lock.is_some() { 0 } else { failed })
                .bind(lock)
                .bind(id)
                .execute(self.pool())
                .await?;
            return Ok(match lock {
                Some(until) => LoginOutcome::Locked { until },
                None => LoginOutcome::Invalid,
            });
        }
        if disabled != 0 {
            return Ok(LoginOutcome::Disabled);
        }
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(LoginOutcome::Ok(user_from_row((
            id, uname, role, disabled,
        ))?))
    }

    /// Create a bearer token for a user; returns the token (shown once).
    pub async fn create_token(
        &self,
        user_name: &str,
        token_name: &str,
    ) -> Result<String, StoreError> {
        let user = self
            .user_by_name(user_name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user `{user_name}`")))?;
        let token = format!("cbt_{}", random_hex(32));
        sqlx::query("INSERT INTO api_tokens (user_id, name, token_hash) VALUES (?, ?, ?)")
            .bind(user.id)
            .bind(token_name)
            .bind(sha256_hex(&token))
            .execute(self.pool())
            .await?;
        self.audit("cli", "token.create", user_name, None, None)
            .await?;
        Ok(token)
    }

    /// Revoke every token of a user; returns how many were revoked.
    pub async fn revoke_tokens(&self, user_name: &str) -> Result<u64, StoreError> {
        let user = self
            .user_by_name(user_name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user `{user_name}`")))?;
        let done =
            sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0")
                .bind(user.id)
                .execute(self.pool())
                .await?;
        self.audit("cli", "token.revoke", user_name, None, None)
            .await?;
        Ok(done.rows_affected())
    }

    /// The enabled account a live (not revoked) bearer token belongs to.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT u.id, u.name, u.role, u.disabled FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ? AND t.revoked = 0 AND u.disabled = 0",
        )
        .bind(sha256_hex(token))
        .fetch_optional(self.pool())
        .await?;
        row.map(user_from_row).transpose()
    }
}
