//! Publish / history page: the rule-level diff of the draft against the
//! latest published version (added / removed / changed / unchanged, plus
//! settings), publishing with a comment (one transaction), the version
//! history, viewing an old version, and roll-back (= publishing a copy of an
//! earlier version as a new one). After a publish or roll-back every live
//! session of the site switches to the new rules at once through
//! [`SessionRegistry::publish_rules`](crate::session::SessionRegistry::publish_rules).

use super::rules::{describe_error, first_site, SiteQuery};
use super::{see_other, Admin, CsrfOnly, Nav};
use crate::rules::{CompiledRules, Rule, SiteSettings};
use crate::store::{Site, StoreError, VersionSummary};
use crate::web::{AppState, WebError};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use std::sync::Arc;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/publish", get(pick_site))
        .route("/admin/sites/{key}/publish", get(page).post(publish))
        .route("/admin/sites/{key}/versions/{version}", get(version_page))
        .route(
            "/admin/sites/{key}/versions/{version}/rollback",
            post(rollback),
        )
}

async fn pick_site(admin: Admin, Query(q): Query<SiteQuery>) -> Result<Response, WebError> {
    let key = first_site(&admin, &q.site).await?;
    Ok(see_other(&format!("/admin/sites/{key}/publish")))
}

/// How a rule differs between the published version and the draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    Changed,
    Unchanged,
}

impl Change {
    /// The label shown in the diff table (also its CSS class).
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One line of the rule-level diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffRow {
    pub change: Change,
    /// The rule as published (removed, changed, unchanged).
    pub before: Option<Rule>,
    /// The rule in the draft (added, changed, unchanged).
    pub after: Option<Rule>,
}

impl DiffRow {
    /// The rule to show (draft side when there is one).
    pub fn rule(&self) -> Option<&Rule> {
        self.after.as_ref().or(self.before.as_ref())
    }

    /// For a changed rule, which fields differ (e.g. "action, enabled").
    pub fn fields(&self) -> String {
        let (Some(b), Some(a)) = (&self.before, &self.after) else {
            return String::new();
        };
        let mut out = Vec::new();
        if b.selector != a.selector {
            out.push("selector");
        }
        if b.action != a.action {
            out.push("action");
        }
        if b.url != a.url {
            out.push("url");
        }
        if b.description != a.description {
            out.push("description");
        }
        if b.enabled != a.enabled {
            out.push("enabled");
        }
        if out.is_empty() {
            out.push("position");
        }
        out.join(", ")
    }
}

/// Rule-level diff: a rule is identified by (selector, url); a draft rule
/// whose identity exists in the published set is unchanged or changed, the
/// others are added, and published rules left unmatched are removed.
/// Order follows the draft, with removed rules after the rule that preceded them.
pub fn diff(published: &[Rule], draft: &[Rule]) -> Vec<DiffRow> {
    let mut used = vec![false; published.len()];
    let mut pairs: Vec<(Option<usize>, &Rule)> = Vec::new();
    // First pass: identical rules, then same identity.
    let mut matched: Vec<Option<usize>> = vec![None; draft.len()];
    for (d, rule) in draft.iter().enumerate() {
        if let Some(p) = (0..published.len()).find(|&p| !used[p] && published[p] == *rule) {
            used[p] = true;
            matched[d] = Some(p);
        }
    }
    for (d, rule) in draft.iter().enumerate() {
        if matched[d].is_some() {
            continue;
        }
        if let Some(p) = (0..published.len()).find(|&p| {
            !used[p] && published[p].selector == rule.selector && published[p].url == rule.url
        }) {
            used[p] = true;
            matched[d] = Some(p);
        }
    }
    for (d, rule) in draft.iter().enumerate() {
        pairs.push((matched[d], rule));
    }
    let mut rows = Vec::new();
    let mut removed: Vec<usize> = (0..published.len()).filter(|&p| !used[p]).collect();
    for (p, rule) in pairs {
        // Removed rules that came before this one in the published order.
        if let Some(p) = p {
            let (before, after): (Vec<usize>, Vec<usize>) = removed.iter().partition(|&&r| r < p);
            for r in before {
                rows.push(DiffRow {
                    change: Change::Removed,
                    before: Some(published[r].clone()),
                    after: None,
                });
            }
            removed = after;
        }
        rows.push(match p {
            None => DiffRow {
                change: Change::Added,
                before: None,
                after: Some(rule.clone()),
            },
            Some(p) if published[p] == *rule => DiffRow {
                change: Change::Unchanged,
                before: Some(published[p].clone()),
                after: Some(rule.clone()),
            },
            Some(p) => DiffRow {
                change: Change::Changed,
                before: Some(published[p].clone()),
                after: Some(rule.clone()),
            },
        });
    }
    for r in removed {
        rows.push(DiffRow {
            change: Change::Removed,
            before: Some(published[r].clone()),
            after: None,
        });
    }
    rows
}

/// Privacy settings in words, e.g. "rules only; detectors: card".
pub fn describe_settings(s: &SiteSettings) -> String {
    let level = match s.privacy {
        crate::rules::PrivacyLevel::Allow => "rules only",
        crate::rules::PrivacyLevel::MaskInputs => "mask inputs",
        crate::rules::PrivacyLevel::MaskAll => "mask everything",
    };
    let mut detectors = Vec::new();
    if s.detectors.card {
        detectors.push("card numbers");
    }
    if s.detectors.email {
        detectors.push("e-mail");
    }
    if s.detectors.national_id {
        detectors.push("national ids");
    }
    let detectors = if detectors.is_empty() {
        "none".to_owned()
    } else {
        detectors.join(", ")
    };
    format!("{level}; detectors: {detectors}")
}

/// Whether the order of the kept rules changed (rules apply in order).
fn reordered(published: &[Rule], draft: &[Rule]) -> bool {
    let kept_p: Vec<&Rule> = published.iter().filter(|r| draft.contains(r)).collect();
    let kept_d: Vec<&Rule> = draft.iter().filter(|r| published.contains(r)).collect();
    kept_p != kept_d
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/publish.html")]
struct PublishPage {
    nav: Nav,
    site: Site,
    published: Option<i64>,
    rows: Vec<DiffRow>,
    pending: usize,
    settings_before: String,
    settings_after: String,
    settings_changed: bool,
    reordered: bool,
    versions: Vec<VersionSummary>,
}

async fn page(admin: Admin, Path(key): Path<String>) -> Result<Response, WebError> {
    let site = admin.site(&key).await?;
    let draft = admin.store.draft(site.id).await?;
    let (draft_rules, draft_settings) = draft.map(|d| (d.rules, d.settings)).unwrap_or_default();
    let published = admin.store.published(site.id).await?;
    let (pub_rules, pub_settings, pub_version) = match published {
        Some(p) => (p.rules, Some(p.settings), Some(p.version)),
        None => (Vec::new(), None, None),
    };
    let rows = diff(&pub_rules, &draft_rules);
    let settings_changed = pub_settings != Some(draft_settings);
    let reordered = reordered(&pub_rules, &draft_rules);
    let pending = rows
        .iter()
        .filter(|r| r.change != Change::Unchanged)
        .count()
        + usize::from(settings_changed)
        + usize::from(reordered && rows.iter().all(|r| r.change == Change::Unchanged));
    let versions = admin.store.versions(site.id).await?;
    let nav = admin.nav("publish", &site.key).await?;
    Ok(PublishPage {
        nav,
        site,
        published: pub_version,
        rows,
        pending,
        settings_before: pub_settings
            .map(|s| describe_settings(&s))
            .unwrap_or_default(),
        settings_after: describe_settings(&draft_settings),
        settings_changed,
        reordered,
        versions,
    }
    .into_response())
}

/// Push the site's latest published rules to its live sessions.
async fn push_live(state: &AppState, site: &Site) -> Result<(), WebError> {
    let p = state.store.published(site.id).await?.ok_or_else(|| {
        WebError::Internal(format!(
            "site `{}` has no published version after publishing",
            site.key
        ))
    })?;
    let compiled = CompiledRules::compile(&p.rules, p.settings)
        .map_err(|e| WebError::Internal(format!("published rules do not compile: {e}")))?;
    state
        .registry
        .publish_rules(site.id, Arc::new(compiled))
        .await;
    Ok(())
}

/// The publish form.
#[derive(Debug, Deserialize)]
struct PublishForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
}

fn rules_error(e: StoreError) -> WebError {
    match e {
        StoreError::Rules(errors) => WebError::BadRequest(format!(
            "the draft cannot be published: {}",
            errors
                .iter()
                .map(|e| describe_error(e).1)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        other => other.into(),
    }
}

async fn publish(
    admin: Admin,
    State(state): State<AppState>,
    Path(key): Path<String>,
    Form(form): Form<PublishForm>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let comment = form.comment.trim();
    if comment.chars().count() > 500 {
        return Err(WebError::BadRequest(
            "the comment must have at most 500 characters".into(),
        ));
    }
    let version = admin
        .store
        .publish_draft(site.id, &admin.user.name, comment)
        .await
        .map_err(rules_error)?;
    push_live(&state, &site).await?;
    let live = state.registry.live_count();
    admin
        .flash(
            true,
            format!("Published version {version}. Live sessions of this site switched to it ({live} live session(s) on the server)."),
        )
        .await?;
    Ok(see_other(&format!("/admin/sites/{}/publish", site.key)))
}

async fn rollback(
    admin: Admin,
    State(state): State<AppState>,
    Path((key, version)): Path<(String, i64)>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let new = admin
        .store
        .rollback_to(site.id, version, &admin.user.name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(m) => WebError::NotFound(m),
            other => rules_error(other),
        })?;
    push_live(&state, &site).await?;
    admin
        .flash(
            true,
            format!("Rolled back: version {new} is a copy of version {version}, published now; the draft was reset to it."),
        )
        .await?;
    Ok(see_other(&format!("/admin/sites/{}/publish", site.key)))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/version.html")]
struct VersionPage {
    nav: Nav,
    site: Site,
    version: crate::store::PublishedVersion,
    is_latest: bool,
}

async fn version_page(
    admin: Admin,
    Path((key, version)): Path<(String, i64)>,
) -> Result<Response, WebError> {
    let site = admin.site(&key).await?;
    let v = admin
        .store
        .version(site.id, version)
        .await?
        .ok_or_else(|| {
            WebError::NotFound(format!("site `{}` has no version {version}", site.key))
        })?;
    let latest = admin.store.latest_version_number(site.id).await?;
    let nav = admin.nav("publish", &site.key).await?;
    Ok(VersionPage {
        nav,
        site,
        is_latest: latest == Some(v.version),
        version: v,
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Action;

    fn rule(sel: &str, action: Action) -> Rule {
        Rule {
            selector: sel.into(),
            action,
            url: None,
            description: String::new(),
            enabled: true,
        }
    }

    #[test]
    fn diff_reports_added_removed_changed_and_unchanged() {
        let published = vec![
            rule("a", Action::Mask),
            rule("b", Action::Mask),
            rule("c", Action::Disable),
        ];
        let draft = vec![
            rule("a", Action::Mask),
            rule("c", Action::Block),
            rule("d", Action::Mask),
        ];
        let rows = diff(&published, &draft);
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.change.as_str(),
                    r.rule().map_or("", |r| r.selector.as_str()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("unchanged", "a"),
                ("removed", "b"),
                ("changed", "c"),
                ("added", "d")
            ]
        );
        assert_eq!(rows[2].fields(), "action");
    }

    #[test]
    fn identical_sets_have_no_changes_and_reordering_is_noticed() {
        let a = vec![rule("a", Action::Mask), rule("b", Action::Block)];
        assert!(diff(&a, &a).iter().all(|r| r.change == Change::Unchanged));
        assert!(!reordered(&a, &a));
        let b = vec![a[1].clone(), a[0].clone()];
        assert!(reordered(&a, &b));
    }
}
