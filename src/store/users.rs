//! Accounts (agents and admins) with argon2 password hashes, login checks,
//! revocable API bearer tokens (stored as SHA-256 hashes), and credential
//! generations: every password change, disable or token revocation bumps a
//! per-user generation and a global credentials epoch, so the web layer can
//! drop login sessions and open sockets made with the old credentials.
//! Login back-off lives in the web layer (`web::admin::login_guard`), not
//! here: the store never locks an account.

use super::{random_hex, sha256_hex, Store, StoreError};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use serde::Serialize;
use std::sync::OnceLock;

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
    /// The account is disabled (only said to someone who knows the password).
    Disabled,
}

/// How an agent socket was authenticated, to re-check it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A login session made under this credential generation.
    Login { generation: i64 },
    /// This API token (row id).
    Token { id: i64 },
}

type UserRow = (i64, String, String, i64);
/// A user row with its secret.
type LoginRow = (i64, String, String, i64, String);

/// Meta key of the global credentials epoch.
const EPOCH_KEY: &str = "credentials_epoch";

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
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL,
               credential_gen = credential_gen + 1 WHERE name = ?",
        )
        .bind(&hash)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user `{name}`")));
        }
        bump_epoch(&mut tx).await?;
        tx.commit().await?;
        self.audit(actor, "user.passwd", name, None, None).await
    }

    /// Enable or disable an account.
    pub async fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET disabled = ?, credential_gen = credential_gen + 1 WHERE name = ?",
        )
        .bind(disabled as i64)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user `{name}`")));
        }
        bump_epoch(&mut tx).await?;
        tx.commit().await?;
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

    /// Check a login. Unknown names verify a dummy hash, so both kinds of
    /// failure take the same time and give the same answer; repeated
    /// failures are slowed down by the web layer's back-off, never by a lock.
    pub async fn verify_login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<LoginOutcome, StoreError> {
        let row: Option<LoginRow> = sqlx::query_as(
            "SELECT id, name, role, disabled, password_hash FROM users WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        let Some((id, uname, role, disabled, hash)) = row else {
            let _ = verify_password(password, &dummy_hash().await?).await?;
            return Ok(LoginOutcome::Invalid);
        };
        if !verify_password(password, &hash).await? {
            return Ok(LoginOutcome::Invalid);
        }
        if disabled != 0 {
            return Ok(LoginOutcome::Disabled);
        }
        Ok(LoginOutcome::Ok(user_from_row((
            id, uname, role, disabled,
        ))?))
    }

    /// The credential generation of an account and whether it is disabled.
    pub async fn credential_gen(&self, user_id: i64) -> Result<Option<(i64, bool)>, StoreError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT credential_gen, disabled FROM users WHERE id = ?")
                .bind(user_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(g, d)| (g, d != 0)))
    }

    /// The global credentials epoch: changes whenever any password is set, an
    /// account is disabled or enabled, or tokens are revoked (by this process
    /// or another one, such as the CLI).
    pub async fn credentials_epoch(&self) -> Result<i64, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(EPOCH_KEY)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.and_then(|(v,)| v.parse().ok()).unwrap_or(0))
    }

    /// Whether a credential an agent socket was opened with still holds:
    /// the account exists and is enabled, and the login session's generation
    /// is current or the token is not revoked.
    pub async fn credential_valid(
        &self,
        user_id: i64,
        credential: Credential,
    ) -> Result<bool, StoreError> {
        let Some((generation, disabled)) = self.credential_gen(user_id).await? else {
            return Ok(false);
        };
        if disabled {
            return Ok(false);
        }
        Ok(match credential {
            Credential::Login { generation: g } => g == generation,
            Credential::Token { id } => {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT id FROM api_tokens WHERE id = ? AND user_id = ? AND revoked = 0",
                )
                .bind(id)
                .bind(user_id)
                .fetch_optional(self.pool())
                .await?;
                row.is_some()
            }
        })
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
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0")
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
        bump_epoch(&mut tx).await?;
        tx.commit().await?;
        self.audit("cli", "token.revoke", user_name, None, None)
            .await?;
        Ok(done.rows_affected())
    }

    /// The enabled account a live (not revoked) bearer token belongs to.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        Ok(self.token_user(token).await?.map(|(u, _)| u))
    }

    /// The enabled account of a live bearer token, and the token's row id.
    pub async fn token_user(&self, token: &str) -> Result<Option<(User, i64)>, StoreError> {
        let row: Option<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT u.id, u.name, u.role, u.disabled, t.id FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ? AND t.revoked = 0 AND u.disabled = 0",
        )
        .bind(sha256_hex(token))
        .fetch_optional(self.pool())
        .await?;
        row.map(|(id, name, role, disabled, token_id)| {
            user_from_row((id, name, role, disabled)).map(|u| (u, token_id))
        })
        .transpose()
    }
}

/// Advance the global credentials epoch inside a write transaction.
async fn bump_epoch(tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES (?, '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
    )
    .bind(EPOCH_KEY)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
