//! Rules pages of one site's draft: the rules table with add / edit / delete /
//! reorder (up, down) / enable-disable, the privacy level and detectors form,
//! and YAML import / export. Every change is validated with
//! [`CompiledRules::validate_all`] (the parser's `line:column` message is shown
//! next to the field, the form keeping what was typed) and audited.
//!
//! Forms carry the draft's revision (`updated_at`): a change made on a page
//! that is older than the draft is refused instead of editing the wrong rule.

use super::sites::store_message;
use super::{read_multipart, see_other, Admin, Nav, UPLOAD_LIMIT};
use crate::rules::{
    Action, CompiledRules, Detectors, PrivacyLevel, Rule, RuleError, RulePack, SiteSettings,
};
use crate::store::{Draft, Site, StoreError};
use crate::web::{AppState, WebError};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{DefaultBodyLimit, Form, Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/rules", get(pick_site))
        .route("/admin/sites/{key}/rules", get(page).post(add))
        .route(
            "/admin/sites/{key}/rules/{index}",
            get(edit_form).post(update),
        )
        .route("/admin/sites/{key}/rules/{index}/delete", post(delete))
        .route("/admin/sites/{key}/rules/{index}/toggle", post(toggle))
        .route("/admin/sites/{key}/rules/{index}/up", post(move_up))
        .route("/admin/sites/{key}/rules/{index}/down", post(move_down))
        .route("/admin/sites/{key}/settings", post(settings))
        .route("/admin/sites/{key}/export", get(export))
        .route(
            "/admin/sites/{key}/import",
            get(import_form)
                .post(import)
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT + 64 * 1024)),
        )
}

/// `?site=KEY` on the per-site navigation entries.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SiteQuery {
    #[serde(default)]
    pub site: String,
}

/// The navigation's "Rules" entry: the given or first site's rules.
async fn pick_site(admin: Admin, Query(q): Query<SiteQuery>) -> Result<Response, WebError> {
    let key = first_site(&admin, &q.site).await?;
    Ok(see_other(&format!("/admin/sites/{key}/rules")))
}

/// The key of the named site, or of the first site (404 when there is none).
pub(super) async fn first_site(admin: &Admin, wanted: &str) -> Result<String, WebError> {
    if !wanted.is_empty() {
        return Ok(admin.site(wanted).await?.key);
    }
    admin
        .store
        .list_sites()
        .await?
        .into_iter()
        .next()
        .map(|s| s.key)
        .ok_or_else(|| WebError::NotFound("there are no sites yet; create one first".into()))
}

/// One rule form's values and per-field errors.
#[derive(Debug, Clone, Default)]
pub struct RuleFormView {
    pub selector: String,
    pub action: String,
    pub url: String,
    pub description: String,
    pub enabled: bool,
    pub selector_error: Option<String>,
    pub action_error: Option<String>,
    pub url_error: Option<String>,
    pub other_error: Option<String>,
}

impl RuleFormView {
    fn blank() -> RuleFormView {
        RuleFormView {
            action: "mask".into(),
            enabled: true,
            ..Default::default()
        }
    }

    fn from_rule(rule: &Rule) -> RuleFormView {
        RuleFormView {
            selector: rule.selector.clone(),
            action: rule.action.as_str().into(),
            url: rule.url.clone().unwrap_or_default(),
            description: rule.description.clone(),
            enabled: rule.enabled,
            ..Default::default()
        }
    }

    fn has_errors(&self) -> bool {
        self.selector_error.is_some()
            || self.action_error.is_some()
            || self.url_error.is_some()
            || self.other_error.is_some()
    }
}

/// The rule form as submitted.
#[derive(Debug, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rev: String,
    #[serde(default)]
    selector: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    enabled: Option<String>,
}

/// Parse an action name from a form.
pub fn parse_action(s: &str) -> Option<Action> {
    match s {
        "mask" => Some(Action::Mask),
        "block" => Some(Action::Block),
        "disable" => Some(Action::Disable),
        "unmask" => Some(Action::Unmask),
        _ => None,
    }
}

/// Turn a rule form into a rule, with every problem placed next to its field.
fn rule_from_form(form: &RuleForm) -> (RuleFormView, Option<Rule>) {
    let mut view = RuleFormView {
        selector: form.selector.clone(),
        action: form.action.clone(),
        url: form.url.clone(),
        description: form.description.clone(),
        enabled: form.enabled.is_some(),
        ..Default::default()
    };
    let selector = form.selector.trim();
    if selector.is_empty() {
        view.selector_error = Some("enter a CSS selector, e.g. input[name=card]".into());
    } else if selector.len() > 4096 {
        view.selector_error = Some("the selector is longer than 4096 characters".into());
    }
    if form.description.chars().count() > 500 {
        view.other_error = Some("the description must have at most 500 characters".into());
    }
    let action = parse_action(&form.action);
    if action.is_none() {
        view.action_error = Some("choose mask, block, disable or unmask".into());
    }
    let url = form.url.trim();
    let rule = Rule {
        selector: selector.to_owned(),
        action: action.unwrap_or(Action::Mask),
        url: (!url.is_empty()).then(|| url.to_owned()),
        description: form.description.trim().to_owned(),
        enabled: form.enabled.is_some(),
    };
    if view.selector_error.is_none() {
        for e in CompiledRules::validate_all(std::slice::from_ref(&rule)) {
            place_error(&mut view, &e);
        }
    }
    if view.has_errors() {
        (view, None)
    } else {
        (view, Some(rule))
    }
}

/// Put a rule error next to the field it is about.
fn place_error(view: &mut RuleFormView, e: &RuleError) {
    match e {
        RuleError::Selector {
            line,
            column,
            message,
            ..
        } => view.selector_error = Some(format!("{line}:{column}: {message}")),
        RuleError::UrlPattern { message, .. } => view.url_error = Some(message.clone()),
        other => view.other_error = Some(other.to_string()),
    }
}

/// The human description of a rule error for listings ("rule 3 ...").
pub fn describe_error(e: &RuleError) -> (Option<usize>, String) {
    match e {
        RuleError::Selector {
            index,
            selector,
            line,
            column,
            message,
        } => (
            Some(*index),
            format!("selector `{selector}` is invalid at {line}:{column}: {message}"),
        ),
        RuleError::UrlPattern {
            index,
            pattern,
            message,
        } => (
            Some(*index),
            format!("URL pattern `{pattern}` is invalid: {message}"),
        ),
        other => (None, other.to_string()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/rules.html")]
struct RulesPage {
    nav: Nav,
    site: Site,
    rev: String,
    rules: Vec<Rule>,
    form: RuleFormView,
    settings: SiteSettings,
    /// The privacy level's form value.
    privacy: &'static str,
    published_version: Option<i64>,
    unpublished: bool,
    pick_url: String,
}

async fn load_draft(admin: &Admin, site: &Site) -> Result<Draft, WebError> {
    Ok(admin.store.draft(site.id).await?.unwrap_or(Draft {
        rules: Vec::new(),
        settings: SiteSettings::default(),
        updated_by: String::new(),
        updated_at: String::new(),
    }))
}

/// The page the element picker opens by default: the demo checkout for the
/// demo site, the site's first origin otherwise.
fn default_pick_url(site: &Site) -> String {
    let origin = site.origins.first().cloned().unwrap_or_default();
    if site.key == "demo" {
        format!("{origin}/demo/checkout")
    } else {
        format!("{origin}/")
    }
}

async fn render_rules(
    admin: &Admin,
    site: Site,
    form: RuleFormView,
    status: StatusCode,
) -> Result<Response, WebError> {
    let draft = load_draft(admin, &site).await?;
    let published = admin.store.published(site.id).await?;
    let unpublished = published
        .as_ref()
        .is_none_or(|p| p.rules != draft.rules || p.settings != draft.settings);
    let nav = admin.nav("rules", &site.key).await?;
    let page = RulesPage {
        nav,
        pick_url: default_pick_url(&site),
        rev: draft.updated_at.clone(),
        rules: draft.rules,
        privacy: match draft.settings.privacy {
            PrivacyLevel::Allow => "allow",
            PrivacyLevel::MaskInputs => "mask-inputs",
            PrivacyLevel::MaskAll => "mask-all",
        },
        settings: draft.settings,
        published_version: published.map(|p| p.version),
        unpublished,
        site,
        form,
    };
    Ok((status, page).into_response())
}

async fn page(admin: Admin, Path(key): Path<String>) -> Result<Response, WebError> {
    let site = admin.site(&key).await?;
    render_rules(&admin, site, RuleFormView::blank(), StatusCode::OK).await
}

/// Refuse a change made on a page older than the draft.
fn check_rev(draft: &Draft, rev: &str) -> Result<(), WebError> {
    if !rev.is_empty() && rev != draft.updated_at {
        return Err(WebError::BadRequest(
            "the draft was changed (by you in another tab or by another admin) after this page was loaded; reload the page and try again".into(),
        ));
    }
    Ok(())
}

async fn add(
    admin: Admin,
    Path(key): Path<String>,
    Form(form): Form<RuleForm>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let (view, rule) = rule_from_form(&form);
    let Some(rule) = rule else {
        return render_rules(&admin, site, view, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let mut draft = load_draft(&admin, &site).await?;
    check_rev(&draft, &form.rev)?;
    draft.rules.push(rule);
    save(&admin, &site, &draft, "rules.add").await?;
    admin
        .flash(
            true,
            format!("Rule {} added to the draft.", draft.rules.len()),
        )
        .await?;
    Ok(see_other(&format!("/admin/sites/{}/rules", site.key)))
}

async fn save(admin: &Admin, site: &Site, draft: &Draft, action: &str) -> Result<(), WebError> {
    admin
        .store
        .save_draft_as(
            site.id,
            &draft.rules,
            draft.settings,
            &admin.user.name,
            action,
        )
        .await
        .map_err(|e| match e {
            StoreError::Rules(errors) => WebError::BadRequest(
                errors
                    .iter()
                    .map(|e| describe_error(e).1)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => other.into(),
        })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/rule_edit.html")]
struct RuleEditPage {
    nav: Nav,
    site: Site,
    index: usize,
    rev: String,
    form: RuleFormView,
}

/// Rule numbers in URLs are 1-based, like the table.
fn rule_index(draft: &Draft, number: usize) -> Result<usize, WebError> {
    if number == 0 || number > draft.rules.len() {
        return Err(WebError::NotFound(format!(
            "there is no rule {number} in this draft (it has {})",
            draft.rules.len()
        )));
    }
    Ok(number - 1)
}

async fn edit_form(
    admin: Admin,
    Path((key, number)): Path<(String, usize)>,
) -> Result<Response, WebError> {
    let site = admin.site(&key).await?;
    let draft = load_draft(&admin, &site).await?;
    let i = rule_index(&draft, number)?;
    let nav = admin.nav("rules", &site.key).await?;
    Ok(RuleEditPage {
        nav,
        index: number,
        rev: draft.updated_at.clone(),
        form: RuleFormView::from_rule(&draft.rules[i]),
        site,
    }
    .into_response())
}

async fn update(
    admin: Admin,
    Path((key, number)): Path<(String, usize)>,
    Form(form): Form<RuleForm>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let mut draft = load_draft(&admin, &site).await?;
    let i = rule_index(&draft, number)?;
    check_rev(&draft, &form.rev)?;
    let (view, rule) = rule_from_form(&form);
    let Some(rule) = rule else {
        let nav = admin.nav("rules", &site.key).await?;
        let page = RuleEditPage {
            nav,
            index: number,
            rev: form.rev.clone(),
            form: view,
            site,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    draft.rules[i] = rule;
    save(&admin, &site, &draft, "rules.edit").await?;
    admin.flash(true, format!("Rule {number} saved.")).await?;
    Ok(see_other(&format!("/admin/sites/{}/rules", site.key)))
}

/// The small forms of the table's row buttons.
#[derive(Debug, Deserialize)]
struct RowForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rev: String,
}

/// What a row button does to the draft.
enum RowOp {
    Delete,
    Toggle,
    Up,
    Down,
}

async fn row_op(
    admin: Admin,
    key: String,
    number: usize,
    form: RowForm,
    op: RowOp,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let mut draft = load_draft(&admin, &site).await?;
    let i = rule_index(&draft, number)?;
    check_rev(&draft, &form.rev)?;
    let (action, message) = match op {
        RowOp::Delete => {
            let r = draft.rules.remove(i);
            (
                "rules.delete",
                format!("Rule {number} (`{}`) deleted.", r.selector),
            )
        }
        RowOp::Toggle => {
            let r = &mut draft.rules[i];
            r.enabled = !r.enabled;
            let what = if r.enabled { "enabled" } else { "disabled" };
            ("rules.toggle", format!("Rule {number} {what}."))
        }
        RowOp::Up if i > 0 => {
            draft.rules.swap(i, i - 1);
            ("rules.move", format!("Rule {number} moved up."))
        }
        RowOp::Down if i + 1 < draft.rules.len() => {
            draft.rules.swap(i, i + 1);
            ("rules.move", format!("Rule {number} moved down."))
        }
        RowOp::Up | RowOp::Down => {
            return Ok(see_other(&format!("/admin/sites/{}/rules", site.key)))
        }
    };
    save(&admin, &site, &draft, action).await?;
    admin.flash(true, message).await?;
    Ok(see_other(&format!("/admin/sites/{}/rules", site.key)))
}

async fn delete(
    admin: Admin,
    Path((key, n)): Path<(String, usize)>,
    Form(f): Form<RowForm>,
) -> Result<Response, WebError> {
    row_op(admin, key, n, f, RowOp::Delete).await
}

async fn toggle(
    admin: Admin,
    Path((key, n)): Path<(String, usize)>,
    Form(f): Form<RowForm>,
) -> Result<Response, WebError> {
    row_op(admin, key, n, f, RowOp::Toggle).await
}

async fn move_up(
    admin: Admin,
    Path((key, n)): Path<(String, usize)>,
    Form(f): Form<RowForm>,
) -> Result<Response, WebError> {
    row_op(admin, key, n, f, RowOp::Up).await
}

async fn move_down(
    admin: Admin,
    Path((key, n)): Path<(String, usize)>,
    Form(f): Form<RowForm>,
) -> Result<Response, WebError> {
    row_op(admin, key, n, f, RowOp::Down).await
}

/// The privacy level and detectors form.
#[derive(Debug, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    privacy: String,
    #[serde(default)]
    card: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    national_id: Option<String>,
}

async fn settings(
    admin: Admin,
    Path(key): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let privacy = match form.privacy.as_str() {
        "allow" => PrivacyLevel::Allow,
        "mask-inputs" => PrivacyLevel::MaskInputs,
        "mask-all" => PrivacyLevel::MaskAll,
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown privacy level `{other}` (expected allow, mask-inputs or mask-all)"
            )))
        }
    };
    let mut draft = load_draft(&admin, &site).await?;
    draft.settings.privacy = privacy;
    draft.settings.detectors = Detectors {
        card: form.card.is_some(),
        email: form.email.is_some(),
        national_id: form.national_id.is_some(),
    };
    save(&admin, &site, &draft, "rules.settings").await?;
    admin
        .flash(true, "Privacy settings saved to the draft.")
        .await?;
    Ok(see_other(&format!("/admin/sites/{}/rules", site.key)))
}

/// `?published=1` exports the latest published version instead of the draft.
#[derive(Debug, Deserialize)]
struct ExportQuery {
    #[serde(default)]
    published: Option<String>,
}

async fn export(
    admin: Admin,
    Path(key): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, WebError> {
    let site = admin.site(&key).await?;
    let (rules, settings, what) = if q.published.is_some() {
        let p = admin
            .store
            .published(site.id)
            .await?
            .ok_or_else(|| WebError::NotFound("this site has no published version".into()))?;
        (p.rules, p.settings, format!("v{}", p.version))
    } else {
        let d = load_draft(&admin, &site).await?;
        (d.rules, d.settings, "draft".to_owned())
    };
    let pack = RulePack {
        version: 1,
        settings: Some(settings),
        rules,
    };
    let file = format!("{}-{what}.yaml", site.key);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/yaml; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        pack.to_yaml(),
    )
        .into_response())
}

/// One problem found in an imported rule pack.
#[derive(Debug, Clone)]
pub struct ImportProblem {
    /// 1-based rule number, when the problem is about one rule.
    pub rule: Option<usize>,
    pub selector: String,
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/import.html")]
struct ImportPage {
    nav: Nav,
    site: Site,
    yaml: String,
    problems: Vec<ImportProblem>,
}

async fn import_form(admin: Admin, Path(key): Path<String>) -> Result<Response, WebError> {
    let site = admin.site(&key).await?;
    let nav = admin.nav("rules", &site.key).await?;
    Ok(ImportPage {
        nav,
        site,
        yaml: String::new(),
        problems: Vec::new(),
    }
    .into_response())
}

/// Parse and validate a YAML rule pack; every problem is listed.
pub fn check_import(yaml: &str) -> Result<RulePack, Vec<ImportProblem>> {
    let pack = RulePack::from_yaml(yaml).map_err(|e| {
        vec![ImportProblem {
            rule: None,
            selector: String::new(),
            message: e.to_string(),
        }]
    })?;
    let errors = CompiledRules::validate_all(&pack.rules);
    if errors.is_empty() {
        return Ok(pack);
    }
    Err(errors
        .iter()
        .map(|e| {
            let (index, message) = describe_error(e);
            ImportProblem {
                rule: index.map(|i| i + 1),
                selector: index
                    .and_then(|i| pack.rules.get(i))
                    .map(|r| r.selector.clone())
                    .unwrap_or_default(),
                message,
            }
        })
        .collect())
}

async fn import(
    admin: Admin,
    State(_state): State<AppState>,
    Path(key): Path<String>,
    mp: Multipart,
) -> Result<Response, WebError> {
    let fields = read_multipart(mp, UPLOAD_LIMIT).await?;
    admin
        .check_csrf(fields.get("csrf").map(String::as_str).unwrap_or(""))
        .await?;
    let site = admin.site(&key).await?;
    let yaml = fields
        .get("file")
        .filter(|f| !f.trim().is_empty())
        .or_else(|| fields.get("yaml"))
        .cloned()
        .unwrap_or_default();
    if yaml.trim().is_empty() {
        let nav = admin.nav("rules", &site.key).await?;
        let problems = vec![ImportProblem {
            rule: None,
            selector: String::new(),
            message: "paste a rule pack or choose a YAML file".into(),
        }];
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            ImportPage {
                nav,
                site,
                yaml,
                problems,
            },
        )
            .into_response());
    }
    match check_import(&yaml) {
        Ok(pack) => {
            let settings = pack.settings.unwrap_or_default();
            admin
                .store
                .save_draft_as(
                    site.id,
                    &pack.rules,
                    settings,
                    &admin.user.name,
                    "rules.import",
                )
                .await
                .map_err(|e| match e {
                    StoreError::Rules(_) | StoreError::Invalid(_) => {
                        WebError::BadRequest(store_message(&e))
                    }
                    other => other.into(),
                })?;
            admin
                .flash(
                    true,
                    format!(
                        "Imported {} rule(s) into the draft. Review them, then publish.",
                        pack.rules.len()
                    ),
                )
                .await?;
            Ok(see_other(&format!("/admin/sites/{}/rules", site.key)))
        }
        Err(problems) => {
            let nav = admin.nav("rules", &site.key).await?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                ImportPage {
                    nav,
                    site,
                    yaml,
                    problems,
                },
            )
                .into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(selector: &str, action: &str, url: &str) -> RuleForm {
        RuleForm {
            csrf: String::new(),
            rev: String::new(),
            selector: selector.into(),
            action: action.into(),
            url: url.into(),
            description: " why ".into(),
            enabled: Some("on".into()),
        }
    }

    #[test]
    fn a_valid_form_becomes_a_rule() {
        let (view, rule) = rule_from_form(&form(" .balance ", "block", "/account/*"));
        assert!(!view.has_errors());
        let rule = rule.unwrap();
        assert_eq!(rule.selector, ".balance");
        assert_eq!(rule.action, Action::Block);
        assert_eq!(rule.url.as_deref(), Some("/account/*"));
        assert_eq!(rule.description, "why");
        assert!(rule.enabled);
    }

    #[test]
    fn empty_selector_and_unknown_action_are_reported_per_field() {
        let (view, rule) = rule_from_form(&form("  ", "hide", ""));
        assert!(rule.is_none());
        assert!(view.selector_error.is_some());
        assert!(view.action_error.is_some());
        assert_eq!(view.action, "hide", "the typed value is kept");
    }

    #[test]
    fn a_yaml_syntax_error_is_one_problem() {
        let problems = check_import("version: 1\nrules: [").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].rule.is_none());
    }
}
