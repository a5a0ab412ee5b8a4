//! Rule sets per site: one editable draft and immutable published versions.
//! Publishing copies the draft into a new version in one transaction; an
//! import replaces the draft (all or nothing, validated first).

use super::{Store, StoreError};
use crate::rules::{CompiledRules, Rule, RulePack, SiteSettings};
use serde::Serialize;

/// A site's draft rule set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draft {
    pub rules: Vec<Rule>,
    pub settings: SiteSettings,
    pub updated_by: String,
    pub updated_at: String,
}

/// One published version with its rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedVersion {
    pub version: i64,
    pub rules: Vec<Rule>,
    pub settings: SiteSettings,
    pub comment: String,
    pub author: String,
    pub created_at: String,
}

/// A published version without its rules (history listings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionSummary {
    pub version: i64,
    pub comment: String,
    pub author: String,
    pub created_at: String,
}

/// Validate rules with the engine's compiler; every error is reported.
pub fn validate_rules(rules: &[Rule]) -> Result<(), StoreError> {
    let errors = CompiledRules::validate_all(rules);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Rules(errors))
    }
}

/// Replace a site's draft (insert or update), binding site id, rules JSON,
/// settings JSON and the author, in that order.
pub(crate) const UPSERT_DRAFT_SQL: &str =
    "INSERT INTO rule_drafts (site_id, rules_json, settings_json, updated_by)
     VALUES (?, ?, ?, ?)
     ON CONFLICT(site_id) DO UPDATE SET rules_json = excluded.rules_json,
       settings_json = excluded.settings_json, updated_by = excluded.updated_by,
       updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Inside a publishing transaction: validate the rules, then store them as the
/// site's next version; returns its number. Shared by publish and rollback.
pub(crate) async fn insert_next_version(
    tx: &mut sqlx::SqliteConnection,
    site_id: i64,
    rules_json: &str,
    settings_json: &str,
    comment: &str,
    actor: &str,
) -> Result<i64, StoreError> {
    let rules: Vec<Rule> = serde_json::from_str(rules_json)?;
    validate_rules(&rules)?;
    let (next,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(version), 0) + 1 FROM rule_versions WHERE site_id = ?")
            .bind(site_id)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO rule_versions (site_id, version, rules_json, settings_json, comment, author)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(site_id)
    .bind(next)
    .bind(rules_json)
    .bind(settings_json)
    .bind(comment)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(next)
}

impl Store {
    /// The draft rule set of a site.
    pub async fn draft(&self, site_id: i64) -> Result<Option<Draft>, StoreError> {
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT rules_json, settings_json, updated_by, updated_at FROM rule_drafts WHERE site_id = ?",
        )
        .bind(site_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(rules, settings, updated_by, updated_at)| {
            Ok(Draft {
                rules: serde_json::from_str(&rules)?,
                settings: serde_json::from_str(&settings)?,
                updated_by,
                updated_at,
            })
        })
        .transpose()
    }

    /// Replace a site's draft after validating every rule; audited with before/after.
    pub async fn save_draft(
        &self,
        site_id: i64,
        rules: &[Rule],
        settings: SiteSettings,
        actor: &str,
    ) -> Result<(), StoreError> {
        validate_rules(rules)?;
        let site = self
            .site_by_id(site_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("site {site_id}")))?;
        let before = self.draft(site_id).await?;
        let rules_json = serde_json::to_string(rules)?;
        let settings_json = serde_json::to_string(&settings)?;
        sqlx::query(UPSERT_DRAFT_SQL)
            .bind(site_id)
            .bind(&rules_json)
            .bind(&settings_json)
            .bind(actor)
            .execute(self.pool())
            .await?;
        let before = before.map(|d| serde_json::json!({"rules": d.rules, "settings": d.settings}));
        let after = serde_json::json!({"rules": rules, "settings": settings});
        self.audit(
            actor,
            "rules.draft",
            &site.key,
            before.as_ref(),
            Some(&after),
        )
        .await
    }

    /// Publish the draft as the next version (one transaction); returns the version number.
    pub async fn publish_draft(
        &self,
        site_id: i64,
        actor: &str,
        comment: &str,
    ) -> Result<i64, StoreError> {
        let site = self
            .site_by_id(site_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("site {site_id}")))?;
        let mut tx = self.begin_write().await?;
        let draft: Option<(String, String)> =
            sqlx::query_as("SELECT rules_json, settings_json FROM rule_drafts WHERE site_id = ?")
                .bind(site_id)
                .fetch_optional(&mut *tx)
                .await?;
        let (rules_json, settings_json) = draft
            .ok_or_else(|| StoreError::NotFound(format!("draft rules of site `{}`", site.key)))?;
        let next = insert_next_version(
            &mut tx,
            site_id,
            &rules_json,
            &settings_json,
            comment,
            actor,
        )
        .await?;
        sqlx::query(
            "INSERT INTO audit_log (actor, action, target, before_json, after_json) VALUES (?, 'rules.publish', ?, NULL, ?)",
        )
        .bind(actor)
        .bind(&site.key)
        .bind(serde_json::json!({"version": next, "comment": comment}).to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(next)
    }

    /// Replace the draft with a rule pack (validated, all or nothing) and
    /// optionally publish it; returns the new version when published.
    pub async fn import_pack(
        &self,
        site_id: i64,
        pack: &RulePack,
        actor: &str,
        publish: bool,
    ) -> Result<Option<i64>, StoreError> {
        self.save_draft(
            site_id,
            &pack.rules,
            pack.settings.unwrap_or_default(),
            actor,
        )
        .await?;
        if publish {
            Ok(Some(self.publish_draft(site_id, actor, "imported").await?))
        } else {
            Ok(None)
        }
    }

    /// The latest published version of a site's rules.
    pub async fn published(&self, site_id: i64) -> Result<Option<PublishedVersion>, StoreError> {
        self.version_where(site_id, None).await
    }

    /// A given published version.
    pub async fn version(
        &self,
        site_id: i64,
        version: i64,
    ) -> Result<Option<PublishedVersion>, StoreError> {
        self.version_where(site_id, Some(version)).await
    }

    async fn version_where(
        &self,
        site_id: i64,
        version: Option<i64>,
    ) -> Result<Option<PublishedVersion>, StoreError> {
        let row: Option<(i64, String, String, String, String, String)> = sqlx::query_as(
            "SELECT version, rules_json, settings_json, comment, author, created_at FROM rule_versions
             WHERE site_id = ? AND (? IS NULL OR version = ?) ORDER BY version DESC LIMIT 1",
        )
        .bind(site_id)
        .bind(version)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(version, rules, settings, comment, author, created_at)| {
            Ok(PublishedVersion {
                version,
                rules: serde_json::from_str(&rules)?,
                settings: serde_json::from_str(&settings)?,
                comment,
                author,
                created_at,
            })
        })
        .transpose()
    }

    /// The number of the latest published version (cheap; for rule caches).
    pub async fn latest_version_number(&self, site_id: i64) -> Result<Option<i64>, StoreError> {
        let row: (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM rule_versions WHERE site_id = ?")
                .bind(site_id)
                .fetch_one(self.pool())
                .await?;
        Ok(row.0)
    }

    /// Every published version of a site, newest first.
    pub async fn versions(&self, site_id: i64) -> Result<Vec<VersionSummary>, StoreError> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT version, comment, author, created_at FROM rule_versions WHERE site_id = ? ORDER BY version DESC",
        )
        .bind(site_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(version, comment, author, created_at)| VersionSummary {
                version,
                comment,
                author,
                created_at,
            })
            .collect())
    }
}
