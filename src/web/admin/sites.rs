//! Sites pages: list, create, edit (display name and allowed origins, one per
//! line, each validated as an origin), the snippet tag to copy, and rotation
//! of the integration API key (the new key is shown once).

use super::rules::SiteQuery;
use super::{see_other, Admin, CsrfOnly, Nav};
use crate::store::{normalize_origin, Site, StoreError};
use crate::web::{AppState, WebError};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/sites", get(list))
        .route("/admin/sites/new", get(new_form).post(create))
        .route("/admin/sites/{key}", get(edit_form).post(update))
        .route("/admin/sites/{key}/rotate", post(rotate))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/sites.html")]
struct SitesPage {
    nav: Nav,
    rows: Vec<SiteRow>,
}

struct SiteRow {
    site: Site,
    version: Option<i64>,
    draft_rules: usize,
}

async fn list(admin: Admin, Query(q): Query<SiteQuery>) -> Result<Response, WebError> {
    if !q.site.is_empty() {
        // The navigation's site switcher.
        let site = admin.site(&q.site).await?;
        return Ok(see_other(&format!("/admin/sites/{}", site.key)));
    }
    let nav = admin.nav("sites", "").await?;
    let mut rows = Vec::new();
    for site in nav.sites.clone() {
        let version = admin.store.latest_version_number(site.id).await?;
        let draft_rules = admin
            .store
            .draft(site.id)
            .await?
            .map_or(0, |d| d.rules.len());
        rows.push(SiteRow {
            site,
            version,
            draft_rules,
        });
    }
    Ok(SitesPage { nav, rows }.into_response())
}

/// The values and per-field errors of the site form.
#[derive(Debug, Clone, Default)]
struct SiteFormView {
    key: String,
    name: String,
    origins: String,
    key_error: Option<String>,
    name_error: Option<String>,
    origins_error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/site_form.html")]
struct SiteFormPage {
    nav: Nav,
    /// `None` when creating a site.
    existing: Option<Site>,
    form: SiteFormView,
    snippet: String,
    version: Option<i64>,
}

async fn new_form(admin: Admin) -> Result<Response, WebError> {
    let nav = admin.nav("sites", "").await?;
    Ok(SiteFormPage {
        nav,
        existing: None,
        form: SiteFormView::default(),
        snippet: String::new(),
        version: None,
    }
    .into_response())
}

/// The site form as submitted.
#[derive(Debug, Deserialize)]
struct SiteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    origins: String,
}

/// Split the origins textarea (one per line) and validate each line.
fn parse_origins(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match normalize_origin(line) {
            Ok(o) if !out.contains(&o) => out.push(o),
            Ok(_) => {}
            Err(e) => errors.push(format!("line {}: {}", i + 1, store_message(&e))),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    if out.is_empty() {
        return Err("give at least one origin, e.g. https://shop.example.com".into());
    }
    Ok(out)
}

/// The user-facing part of a store validation error.
pub(super) fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::Invalid(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The snippet tag integrators paste into their pages.
fn snippet_tag(public_url: &str, key: &str) -> String {
    format!("<script src=\"{public_url}/cobrowse.js\" data-site=\"{key}\" async></script>")
}

async fn create(
    admin: Admin,
    State(state): State<AppState>,
    Form(form): Form<SiteForm>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let mut view = SiteFormView {
        key: form.key.trim().to_owned(),
        name: form.name.trim().to_owned(),
        origins: form.origins.clone(),
        ..Default::default()
    };
    if let Err(e) = crate::store::sites::validate_site_key(&view.key) {
        view.key_error = Some(store_message(&e));
    }
    if view.name.chars().count() > 100 {
        view.name_error = Some("the name must have at most 100 characters".into());
    }
    let origins = parse_origins(&form.origins)
        .map_err(|e| view.origins_error = Some(e))
        .ok();
    if let (None, None, None, Some(origins)) = (
        &view.key_error,
        &view.name_error,
        &view.origins_error,
        origins,
    ) {
        let name = if view.name.is_empty() {
            view.key.clone()
        } else {
            view.name.clone()
        };
        match admin
            .store
            .create_site(&view.key, &name, &origins, &admin.user.name)
            .await
        {
            Ok((_, api_key)) => {
                admin
                    .flash_secret(
                        true,
                        format!(
                            "Site `{}` created with the default rule pack. Its integration API key is shown below once; copy it now.",
                            view.key
                        ),
                        Some(api_key),
                    )
                    .await?;
                return Ok(see_other(&format!("/admin/sites/{}", view.key)));
            }
            Err(StoreError::Duplicate(_)) => {
                view.key_error = Some(format!("a site with key `{}` already exists", view.key));
            }
            Err(e @ StoreError::Invalid(_)) => view.origins_error = Some(store_message(&e)),
            Err(e) => return Err(e.into()),
        }
    }
    let _ = state;
    let nav = admin.nav("sites", "").await?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        SiteFormPage {
            nav,
            existing: None,
            form: view,
            snippet: String::new(),
            version: None,
        },
    )
        .into_response())
}

async fn edit_form(
    admin: Admin,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let site = admin.site(&key).await?;
    let nav = admin.nav("sites", &site.key).await?;
    let version = admin.store.latest_version_number(site.id).await?;
    let form = SiteFormView {
        key: site.key.clone(),
        name: site.name.clone(),
        origins: site.origins.join("\n"),
        ..Default::default()
    };
    Ok(SiteFormPage {
        nav,
        snippet: snippet_tag(&state.config.public_url, &site.key),
        existing: Some(site),
        form,
        version,
    }
    .into_response())
}

async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Path(key): Path<String>,
    Form(form): Form<SiteForm>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let mut view = SiteFormView {
        key: site.key.clone(),
        name: form.name.trim().to_owned(),
        origins: form.origins.clone(),
        ..Default::default()
    };
    if view.name.is_empty() || view.name.chars().count() > 100 {
        view.name_error = Some("the name must have 1-100 characters".into());
    }
    let origins = parse_origins(&form.origins)
        .map_err(|e| view.origins_error = Some(e))
        .ok();
    if let (None, None, Some(origins)) = (&view.name_error, &view.origins_error, origins) {
        admin
            .store
            .set_site_name(&site.key, &view.name, &admin.user.name)
            .await?;
        if origins != site.origins {
            admin
                .store
                .set_origins(&site.key, &origins, &admin.user.name)
                .await?;
        }
        admin.flash(true, "Site saved.").await?;
        return Ok(see_other(&format!("/admin/sites/{}", site.key)));
    }
    let nav = admin.nav("sites", &site.key).await?;
    let version = admin.store.latest_version_number(site.id).await?;
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        SiteFormPage {
            nav,
            snippet: snippet_tag(&state.config.public_url, &site.key),
            existing: Some(site),
            form: view,
            version,
        },
    )
        .into_response())
}

async fn rotate(
    admin: Admin,
    Path(key): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let api_key = admin
        .store
        .rotate_api_key(&site.key, &admin.user.name)
        .await?;
    admin
        .flash_secret(
            true,
            "A new integration API key was issued; the old one no longer works. Copy it now: it is shown only once.",
            Some(api_key),
        )
        .await?;
    Ok(see_other(&format!("/admin/sites/{}", site.key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_one_per_line() {
        assert_eq!(
            parse_origins("https://a.example\n\n http://b.example:8080/path \nhttps://a.example")
                .unwrap(),
            vec![
                "https://a.example".to_string(),
                "http://b.example:8080".to_string()
            ]
        );
        let err = parse_origins("https://ok.example\nnot an origin").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_origins("  \n").is_err());
    }
}
