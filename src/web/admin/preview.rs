//! The preview page: paste HTML or upload a saved page (multipart,
//! size-limited) plus the page URL, and see side by side how the customer
//! and the agent would see it under the site's draft rules, in sandboxed
//! iframes (`sandbox=""`, `srcdoc`: no script runs), with every masked,
//! blocked or disabled element outlined and a "rule → elements it matched"
//! list that flags rules matching nothing. The rewriting itself is the
//! engine's [`tooling::preview`](crate::rules::tooling::preview).

use super::rules::{describe_error, first_site, SiteQuery};
use super::{read_multipart, Admin, Nav, UPLOAD_LIMIT};
use crate::rules::tooling::{self, RuleMatches};
use crate::rules::{Action, Rule, UrlPattern};
use crate::store::Site;
use crate::web::{AppState, WebError};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/admin/preview", get(pick_site)).route(
        "/admin/sites/{key}/preview",
        get(form)
            .post(run)
            .layer(DefaultBodyLimit::max(UPLOAD_LIMIT + 64 * 1024)),
    )
}

async fn pick_site(admin: Admin, Query(q): Query<SiteQuery>) -> Result<Response, WebError> {
    let key = first_site(&admin, &q.site).await?;
    Ok(super::see_other(&format!("/admin/sites/{key}/preview")))
}

/// One row of the "rule → elements it matched" list.
pub struct MatchRow {
    /// 1-based rule number.
    pub number: usize,
    pub selector: String,
    pub action: String,
    pub enabled: bool,
    /// The rule's URL pattern does not cover the preview URL.
    pub other_page: bool,
    pub count: usize,
    pub elements: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/preview.html")]
struct PreviewPage {
    nav: Nav,
    site: Site,
    html: String,
    url: String,
    error: Option<String>,
    result: Option<PreviewResult>,
}

struct PreviewResult {
    customer_srcdoc: String,
    agent_srcdoc: String,
    rows: Vec<MatchRow>,
    unmatched: usize,
}

/// A small sample page so the preview form is never empty.
const SAMPLE_HTML: &str = "<!doctype html>\n<html><body>\n<form>\n  <label>Name <input name=\"name\" value=\"Ada Lovelace\"></label>\n  <label>Password <input type=\"password\" value=\"hunter2\"></label>\n  <button>Pay now</button>\n</form>\n</body></html>\n";

fn default_url(site: &Site) -> String {
    let origin = site.origins.first().cloned().unwrap_or_default();
    if site.key == "demo" {
        format!("{origin}/demo/checkout")
    } else {
        format!("{origin}/")
    }
}

async fn form(admin: Admin, Path(key): Path<String>) -> Result<Response, WebError> {
    let site = admin.site(&key).await?;
    let nav = admin.nav("preview", &site.key).await?;
    Ok(PreviewPage {
        nav,
        url: default_url(&site),
        site,
        html: SAMPLE_HTML.into(),
        error: None,
        result: None,
    }
    .into_response())
}

/// Outline styles for the agent view (the engine's output markers).
const AGENT_OUTLINES: &str = "<style data-cobrowse-preview>\
[data-cobrowse-masked]{outline:2px dashed #b45309!important;outline-offset:1px}\
[data-cobrowse-blocked]{outline:2px solid #b91c1c!important;outline-offset:1px;background:repeating-linear-gradient(45deg,#f3f4f6,#f3f4f6 6px,#e5e7eb 6px,#e5e7eb 12px)!important;min-height:1em}\
[data-cobrowse-disabled]{outline:2px dotted #1d4ed8!important;outline-offset:1px}\
</style>";

/// Escape a selector for use inside a `<style>` element: no `<` may close it.
fn css_safe(selector: &str) -> String {
    selector.replace('<', "\\3c ")
}

/// Outline styles for the customer view: the browser matches the rules' own
/// selectors against the original page (colour per action).
fn customer_outlines(rules: &[Rule], url: &str) -> String {
    let mut css = String::from("<style data-cobrowse-preview>");
    for r in rules.iter().filter(|r| r.enabled && applies(r, url)) {
        let style = match r.action {
            Action::Mask => "outline:2px dashed #b45309!important;outline-offset:1px",
            Action::Block => "outline:2px solid #b91c1c!important;outline-offset:1px",
            Action::Disable => "outline:2px dotted #1d4ed8!important;outline-offset:1px",
            Action::Unmask => continue,
        };
        // An unsupported selector in one rule must not void the others.
        css.push_str(&format!(":is({}){{{style}}}", css_safe(&r.selector)));
    }
    css.push_str("</style>");
    css
}

fn applies(rule: &Rule, url: &str) -> bool {
    match rule.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => true,
        Some(p) => UrlPattern::new(p).is_ok_and(|p| p.matches(url)),
    }
}

/// Put the outline styles at the start of the document's `<head>` (or in
/// front of everything when there is none).
fn with_styles(html: &str, styles: &str) -> String {
    let lower = html.to_ascii_lowercase();
    if let Some(at) = lower
        .find("<head")
        .and_then(|h| lower[h..].find('>').map(|e| h + e + 1))
    {
        format!("{}{styles}{}", &html[..at], &html[at..])
    } else {
        format!("{styles}{html}")
    }
}

fn rows(rules: &[Rule], matches: Vec<RuleMatches>, url: &str) -> Vec<MatchRow> {
    matches
        .into_iter()
        .map(|m| {
            let rule = rules.get(m.rule_index);
            MatchRow {
                number: m.rule_index + 1,
                selector: m.selector,
                action: m.action.as_str().to_owned(),
                enabled: rule.is_some_and(|r| r.enabled),
                other_page: rule.is_some_and(|r| !applies(r, url)),
                count: m.count,
                elements: m.elements,
            }
        })
        .collect()
}

async fn run(admin: Admin, Path(key): Path<String>, mp: Multipart) -> Result<Response, WebError> {
    let fields = read_multipart(mp, UPLOAD_LIMIT).await?;
    admin
        .check_csrf(fields.get("csrf").map(String::as_str).unwrap_or(""))
        .await?;
    let site = admin.site(&key).await?;
    let html = fields
        .get("file")
        .filter(|f| !f.trim().is_empty())
        .or_else(|| fields.get("html"))
        .cloned()
        .unwrap_or_default();
    let url = fields
        .get("url")
        .map(|u| u.trim().to_owned())
        .unwrap_or_default();
    let nav = admin.nav("preview", &site.key).await?;
    let fail = |nav: Nav, site: Site, html: String, url: String, error: String| {
        let page = PreviewPage {
            nav,
            site,
            html,
            url,
            error: Some(error),
            result: None,
        };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    if html.trim().is_empty() {
        return fail(
            nav,
            site,
            html,
            url,
            "paste the page's HTML or choose a saved page".into(),
        );
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return fail(
            nav,
            site,
            html,
            url,
            "give the page's full URL (http:// or https://): URL-scoped rules depend on it".into(),
        );
    }
    let draft = admin.store.draft(site.id).await?.unwrap_or_default_draft();
    let (rules, settings) = draft;
    let result = {
        let rules = rules.clone();
        let html = html.clone();
        let url = url.clone();
        tokio::task::spawn_blocking(move || tooling::preview(&rules, settings, &html, &url))
            .await
            .map_err(|e| WebError::Internal(format!("preview task failed: {e}")))?
    };
    match result {
        Ok(p) => {
            let rows = rows(&rules, p.matches, &url);
            let unmatched = rows
                .iter()
                .filter(|r| r.enabled && !r.other_page && r.count == 0)
                .count();
            let result = PreviewResult {
                customer_srcdoc: with_styles(&p.customer_html, &customer_outlines(&rules, &url)),
                agent_srcdoc: with_styles(&p.agent_html, AGENT_OUTLINES),
                rows,
                unmatched,
            };
            Ok(PreviewPage {
                nav,
                site,
                html,
                url,
                error: None,
                result: Some(result),
            }
            .into_response())
        }
        Err(errors) => {
            let msg = errors
                .iter()
                .map(|e| match describe_error(e) {
                    (Some(i), m) => format!("rule {}: {m}", i + 1),
                    (None, m) => m,
                })
                .collect::<Vec<_>>()
                .join("; ");
            fail(nav, site, html, url, msg)
        }
    }
}

/// A missing draft previews as an empty rule set.
trait DraftOrEmpty {
    fn unwrap_or_default_draft(self) -> (Vec<Rule>, crate::rules::SiteSettings);
}

impl DraftOrEmpty for Option<crate::store::Draft> {
    fn unwrap_or_default_draft(self) -> (Vec<Rule>, crate::rules::SiteSettings) {
        self.map(|d| (d.rules, d.settings)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_go_into_the_head() {
        assert_eq!(
            with_styles(
                "<html><HEAD><title>x</title></head></html>",
                "<style></style>"
            ),
            "<html><HEAD><style></style><title>x</title></head></html>"
        );
        assert_eq!(with_styles("<p>x</p>", "<s>"), "<s><p>x</p>");
    }

    #[test]
    fn selectors_cannot_close_the_style_element() {
        let rules = vec![Rule {
            selector: "[title=\"</style><script>\"]".into(),
            action: Action::Mask,
            url: None,
            description: String::new(),
            enabled: true,
        }];
        let css = customer_outlines(&rules, "http://x/");
        assert_eq!(css.matches("</style>").count(), 1, "{css}");
    }
}
