//! Sites: a key (used in the snippet tag), a display name, the origins allowed
//! to start sessions, and a hashed integration API key for the contact-centre
//! API. A new site gets the default rule pack as draft and published v1.

use super::{random_hex, sha256_hex, Store, StoreError};
use crate::rules::RulePack;
use axum::http::Uri;
use serde::Serialize;

/// A site as stored (without its API key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Site {
    pub id: i64,
    pub key: String,
    pub name: String,
    /// Normalised origins (`scheme://host[:port]`, lowercase, no default port).
    pub origins: Vec<String>,
}

type SiteRow = (i64, String, String, String);

fn site_from_row((id, key, name, origins): SiteRow) -> Result<Site, StoreError> {
    Ok(Site {
        id,
        key,
        name,
        origins: serde_json::from_str(&origins)?,
    })
}

/// Normalise an origin or URL to `scheme://host[:port]` (lowercase, default
/// ports dropped, path ignored). Only `http` and `https` are accepted.
pub fn normalize_origin(input: &str) -> Result<String, StoreError> {
    let bad = |why: &str| StoreError::Invalid(format!("`{input}` is not a valid origin: {why}"));
    let uri: Uri = input.trim().parse().map_err(|_| bad("cannot parse"))?;
    let scheme = uri
        .scheme_str()
        .ok_or_else(|| bad("missing scheme"))?
        .to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(bad("scheme must be http or https")),
    };
    let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("user info is not allowed"));
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    Ok(match authority.port_u16() {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Check a site key: 1–64 characters of lowercase letters, digits, `-`, `_`.
pub fn validate_site_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "site key `{key}` must be 1-64 characters of a-z, 0-9, '-', '_'"
        )))
    }
}

impl Store {
    /// Create a site with the default rule pack (draft and published v1);
    /// returns the site and its integration API key (shown once).
    pub async fn create_site(
        &self,
        key: &str,
        name: &str,
        origins: &[String],
        actor: &str,
    ) -> Result<(Site, String), StoreError> {
        validate_site_key(key)?;
        let origins = origins
            .iter()
            .map(|o| normalize_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        let api_key = format!("cbk_{}", random_hex(24));
        let origins_json = serde_json::to_string(&origins)?;
        let pack = RulePack::from_yaml(crate::rules::DEFAULT_PACK_YAML)
            .map_err(|e| StoreError::Invalid(format!("built-in default rule pack: {e}")))?;
        let rules_json = serde_json::to_string(&pack.rules)?;
        let settings_json = serde_json::to_string(&pack.settings.unwrap_or_default())?;

        let mut tx = self.begin_write().await?;
        let id = sqlx::query(
            "INSERT INTO sites (key, name, origins_json, api_key_hash) VALUES (?, ?, ?, ?)",
        )
        .bind(key)
        .bind(if name.is_empty() { key } else { name })
        .bind(&origins_json)
        .bind(sha256_hex(&api_key))
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_insert(e, format!("site `{key}`")))?
        .last_insert_rowid();
        sqlx::query("INSERT INTO rule_drafts (site_id, rules_json, settings_json, updated_by) VALUES (?, ?, ?, ?)")
            .bind(id)
            .bind(&rules_json)
            .bind(&settings_json)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO rule_versions (site_id, version, rules_json, settings_json, comment, author)
             VALUES (?, 1, ?, ?, 'default rule pack', ?)",
        )
        .bind(id)
        .bind(&rules_json)
        .bind(&settings_json)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.audit(
            actor,
            "site.create",
            key,
            None,
            Some(&serde_json::json!({"origins": origins})),
        )
        .await?;
        let site = Site {
            id,
            key: key.to_owned(),
            name: if name.is_empty() { key } else { name }.to_owned(),
            origins,
        };
        Ok((site, api_key))
    }

    /// Look a site up by key.
    pub async fn site_by_key(&self, key: &str) -> Result<Option<Site>, StoreError> {
        let row: Option<SiteRow> =
            sqlx::query_as("SELECT id, key, name, origins_json FROM sites WHERE key = ?")
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
        row.map(site_from_row).transpose()
    }

    /// Look a site up by id.
    pub async fn site_by_id(&self, id: i64) -> Result<Option<Site>, StoreError> {
        let row: Option<SiteRow> =
            sqlx::query_as("SELECT id, key, name, origins_json FROM sites WHERE id = ?")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.map(site_from_row).transpose()
    }

    /// The site an integration API key belongs to.
    pub async fn site_by_api_key(&self, api_key: &str) -> Result<Option<Site>, StoreError> {
        let row: Option<SiteRow> =
            sqlx::query_as("SELECT id, key, name, origins_json FROM sites WHERE api_key_hash = ?")
                .bind(sha256_hex(api_key))
                .fetch_optional(self.pool())
                .await?;
        row.map(site_from_row).transpose()
    }

    /// Every site, by key.
    pub async fn list_sites(&self) -> Result<Vec<Site>, StoreError> {
        let rows: Vec<SiteRow> =
            sqlx::query_as("SELECT id, key, name, origins_json FROM sites ORDER BY key")
                .fetch_all(self.pool())
                .await?;
        rows.into_iter().map(site_from_row).collect()
    }

    /// Replace a site's allowed origins.
    pub async fn set_origins(
        &self,
        key: &str,
        origins: &[String],
        actor: &str,
    ) -> Result<(), StoreError> {
        let before = self
            .site_by_key(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("site `{key}`")))?;
        let origins = origins
            .iter()
            .map(|o| normalize_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query("UPDATE sites SET origins_json = ? WHERE key = ?")
            .bind(serde_json::to_string(&origins)?)
            .bind(key)
            .execute(self.pool())
            .await?;
        self.audit(
            actor,
            "site.origins",
            key,
            Some(&serde_json::json!({"origins": before.origins})),
            Some(&serde_json::json!({"origins": origins})),
        )
        .await
    }

    /// Replace a site's integration API key; returns the new key (shown once).
    pub async fn rotate_api_key(&self, key: &str, actor: &str) -> Result<String, StoreError> {
        let api_key = format!("cbk_{}", random_hex(24));
        let done = sqlx::query("UPDATE sites SET api_key_hash = ? WHERE key = ?")
            .bind(sha256_hex(&api_key))
            .bind(key)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("site `{key}`")));
        }
        self.audit(actor, "site.rotate_key", key, None, None)
            .await?;
        Ok(api_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            normalize_origin("HTTP://Shop.Example:80/x?y").unwrap(),
            "http://shop.example"
        );
        assert_eq!(
            normalize_origin("https://a.b:8443").unwrap(),
            "https://a.b:8443"
        );
        assert_eq!(
            normalize_origin("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalize_origin("ftp://a.b").is_err());
        assert!(normalize_origin("a.b").is_err());
        assert!(normalize_origin("http://u:p@a.b").is_err());
    }
}
