//! Store queries used only by the admin editor: the picker signing secret
//! (kept in `meta`), site renames, draft saves with a named audit action,
//! roll-back to an earlier version, accounts created by an admin, the
//! filtered audit log and session history with mode-change counts.
//!
//! The base tables and their everyday queries belong to the sibling modules
//! ([`super::sites`], [`super::rulesets`], [`super::users`],
//! [`super::history`]); this file only adds what the editor needs on top.

use super::rulesets::validate_rules;
use super::users::{hash_password, validate_name};
use super::{random_hex, AuditEntry, Role, Store, StoreError, User};
use crate::rules::{Rule, SiteSettings};
use serde::Serialize;

/// The `meta` key holding the HMAC secret of element-picker links.
const PICKER_SECRET_KEY: &str = "picker_secret";

/// Filters of the audit log page (empty = any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact actor name.
    pub actor: String,
    /// Action prefix (`rules` matches `rules.add`, `rules.publish`, ...).
    pub action: String,
    /// Exact target (site key or user name).
    pub target: String,
}

/// A session history row with its number of mode changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub session_id: String,
    pub site_key: String,
    pub agent: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub mode_changes: i64,
    pub masked_count: i64,
    pub blocked_count: i64,
    pub denied_count: i64,
}

/// The shortest password an admin may set.
pub fn check_password(password: &str) -> Result<(), StoreError> {
    super::users::validate_password(password)
}

impl Store {
    /// The server secret that signs element-picker links; created (32 random
    /// bytes) on first use and kept in the `meta` table.
    pub async fn picker_secret(&self) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
            .bind(PICKER_SECRET_KEY)
            .bind(random_hex(32))
            .execute(self.pool())
            .await?;
        let (value,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(PICKER_SECRET_KEY)
            .fetch_one(self.pool())
            .await?;
        hex::decode(value.trim())
            .map_err(|e| StoreError::Invalid(format!("stored picker secret: {e}")))
    }

    /// Spend a picker link (identified by its MAC): `true` the first time,
    /// `false` if it was already used. Expired entries are dropped on the way.
    pub async fn spend_picker_link(&self, mac: &str, expires: i64) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM picker_used WHERE expires < ?")
            .bind(super::unix_now())
            .execute(self.pool())
            .await?;
        let done = sqlx::query("INSERT OR IGNORE INTO picker_used (mac, expires) VALUES (?, ?)")
            .bind(mac)
            .bind(expires)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Rename a site (display name only; the key never changes).
    pub async fn set_site_name(
        &self,
        key: &str,
        name: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(StoreError::Invalid(
                "the name must have 1-100 characters".into(),
            ));
        }
        let before = self
            .site_by_key(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("site `{key}`")))?;
        if before.name == name {
            return Ok(());
        }
        sqlx::query("UPDATE sites SET name = ? WHERE key = ?")
            .bind(name)
            .bind(key)
            .execute(self.pool())
            .await?;
        self.audit(
            actor,
            "site.rename",
            key,
            Some(&serde_json::json!({"name": before.name})),
            Some(&serde_json::json!({"name": name})),
        )
        .await
    }

    /// Replace a site's draft after validating every rule, audited under
    /// `action` (e.g. `rules.add`) with the whole draft before and after.
    pub async fn save_draft_as(
        &self,
        site_id: i64,
        rules: &[Rule],
        settings: SiteSettings,
        actor: &str,
        action: &str,
    ) -> Result<(), StoreError> {
        validate_rules(rules)?;
        let site = self
            .site_by_id(site_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("site {site_id}")))?;
        let before = self.draft(site_id).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query(super::rulesets::UPSERT_DRAFT_SQL)
            .bind(site_id)
            .bind(serde_json::to_string(rules)?)
            .bind(serde_json::to_string(&settings)?)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        let before = before.map(|d| serde_json::json!({"rules": d.rules, "settings": d.settings}));
        let after = serde_json::json!({"rules": rules, "settings": settings});
        sqlx::query("INSERT INTO audit_log (actor, action, target, before_json, after_json) VALUES (?, ?, ?, ?, ?)")
            .bind(actor)
            .bind(action)
            .bind(&site.key)
            .bind(before.map(|v| v.to_string()))
            .bind(after.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Roll back: publish a copy of an earlier version as a new version and
    /// make it the draft too (one transaction). Returns the new version number.
    pub async fn rollback_to(
        &self,
        site_id: i64,
        version: i64,
        actor: &str,
    ) -> Result<i64, StoreError> {
        let site = self
            .site_by_id(site_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("site {site_id}")))?;
        let mut tx = self.begin_write().await?;
        let old: Option<(String, String)> = sqlx::query_as(
            "SELECT rules_json, settings_json FROM rule_versions WHERE site_id = ? AND version = ?",
        )
        .bind(site_id)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        let (rules_json, settings_json) = old.ok_or_else(|| {
            StoreError::NotFound(format!("version {version} of site `{}`", site.key))
        })?;
        let comment = format!("roll back to v{version}");
        let next = super::rulesets::insert_next_version(
            &mut tx,
            site_id,
            &rules_json,
            &settings_json,
            &comment,
            actor,
        )
        .await?;
        sqlx::query(super::rulesets::UPSERT_DRAFT_SQL)
            .bind(site_id)
            .bind(&rules_json)
            .bind(&settings_json)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO audit_log (actor, action, target, before_json, after_json) VALUES (?, 'rules.rollback', ?, ?, ?)",
        )
        .bind(actor)
        .bind(&site.key)
        .bind(serde_json::json!({"version": version}).to_string())
        .bind(serde_json::json!({"version": next, "comment": comment}).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(next)
    }

    /// Create an account on behalf of an admin (audited under their name).
    pub async fn create_user_by(
        &self,
        name: &str,
        role: Role,
        password: &str,
        actor: &str,
    ) -> Result<User, StoreError> {
        validate_name(name)?;
        check_password(password)?;
        let hash = hash_password(password).await?;
        let id = sqlx::query("INSERT INTO users (name, role, password_hash) VALUES (?, ?, ?)")
            .bind(name)
            .bind(role.as_str())
            .bind(&hash)
            .execute(self.pool())
            .await
            .map_err(|e| StoreError::from_insert(e, format!("user `{name}`")))?
            .last_insert_rowid();
        self.audit(
            actor,
            "user.create",
            name,
            None,
            Some(&serde_json::json!({"role": role.as_str()})),
        )
        .await?;
        Ok(User {
            id,
            name: name.to_owned(),
            role,
            disabled: false,
        })
    }

    /// Audit entries matching a filter, newest first.
    pub async fn audit_filtered(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let action_prefix = format!("{}%", filter.action.replace(['%', '_'], ""));
        Ok(sqlx::query_as(
            "SELECT id, at, actor, action, target, before_json, after_json FROM audit_log
             WHERE (? = '' OR actor = ?) AND action LIKE ? AND (? = '' OR target = ?)
             ORDER BY id DESC LIMIT ?",
        )
        .bind(&filter.actor)
        .bind(&filter.actor)
        .bind(action_prefix)
        .bind(&filter.target)
        .bind(&filter.target)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The distinct actors and action names in the audit log (filter menus).
    pub async fn audit_facets(&self) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let actors: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT actor FROM audit_log ORDER BY actor")
                .fetch_all(self.pool())
                .await?;
        let actions: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT action FROM audit_log ORDER BY action")
                .fetch_all(self.pool())
                .await?;
        Ok((
            actors.into_iter().map(|a| a.0).collect(),
            actions.into_iter().map(|a| a.0).collect(),
        ))
    }

    /// The most recent sessions with their mode-change counts, newest first;
    /// `site` filters by site key when not empty.
    pub async fn session_rows(
        &self,
        site: &str,
        limit: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT h.id, h.session_id, h.site_key, h.agent, h.started_at, h.ended_at, h.end_reason,
                    (SELECT COUNT(*) FROM session_events e WHERE e.history_id = h.id AND e.kind = 'mode')
                      AS mode_changes,
                    h.masked_count, h.blocked_count, h.denied_count
             FROM session_history h WHERE (? = '' OR h.site_key = ?) ORDER BY h.id DESC LIMIT ?",
        )
        .bind(site)
        .bind(site)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
    }
}
