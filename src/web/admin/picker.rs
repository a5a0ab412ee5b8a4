//! The element picker's server side: signed, short-lived picker links and
//! the API the picker script (`static/picker.js`) posts its choice to.
//!
//! From the rules page an admin opens one of the site's pages (on an allowed
//! origin) with `#cobrowse-pick=TOKEN`; the snippet then loads the picker.
//! The token is `hex(payload).hex(mac)` where the payload is
//! `v2|site|admin|expiry|credential generation|nonce|page` and the MAC is
//! HMAC-SHA256 with a server secret kept in the `meta` table.
//! `POST /admin/api/picker` (CORS for the site's origins) accepts only
//! `{token, selector, action, count}`, checks the token, that its admin is
//! still an enabled admin with the same credentials (a disabled admin's or a
//! changed password's links are dead), validates the selector, spends the
//! link (single use: a replay is refused) and appends an enabled draft rule
//! "picked on PAGE", audited as `rules.pick` under the admin's name.

use super::rules::parse_action;
use super::Admin;
use crate::rules::{Action, CompiledRules, Rule};
use crate::store::{normalize_origin, unix_now, Site, Store};
use crate::web::{AppState, WebError};
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// How long a picker link stays valid (seconds).
pub const TOKEN_TTL_SECS: i64 = 15 * 60;

/// Largest picker request body (bytes).
const BODY_LIMIT: usize = 8 * 1024;

/// The editor-side route (a form on the rules page).
pub(super) fn page_routes() -> Router<AppState> {
    Router::new().route("/admin/sites/{key}/pick", post(open))
}

/// The JSON API the picker script calls from the site's pages.
pub(super) fn api_routes() -> Router<AppState> {
    Router::new().route("/admin/api/picker", post(api).options(preflight))
}

/// Why a picker token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `payload.mac` with hex parts and five payload fields.
    #[error("the picker link is malformed")]
    Malformed,
    /// The MAC does not match (forged or altered).
    #[error("the picker link's signature is not valid")]
    BadSignature,
    /// Past its expiry.
    #[error("the picker link has expired; open the picker again from the editor")]
    Expired,
    /// Already used once.
    #[error("the picker link has already been used; open the picker again from the editor")]
    Used,
    /// Its admin was disabled, lost the admin role or changed password.
    #[error(
        "the picker link is no longer valid for its admin; open the picker again from the editor"
    )]
    Revoked,
    /// The server secret cannot key the MAC (never expected with HMAC).
    #[error("the picker secret is unusable")]
    Key,
}

/// What a valid picker token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerGrant {
    pub site: String,
    pub admin: String,
    /// Unix seconds.
    pub expires: i64,
    /// The admin's credential generation when the link was made.
    pub generation: i64,
    /// Random, so that every link is distinct (each is spent once).
    pub nonce: String,
    /// The page the admin opened (for the rule's description).
    pub page: String,
}

fn mac(secret: &[u8]) -> Result<Hmac<Sha256>, TokenError> {
    Hmac::<Sha256>::new_from_slice(secret).map_err(|_| TokenError::Key)
}

/// Sign a grant into a token.
pub fn sign(secret: &[u8], grant: &PickerGrant) -> Result<String, TokenError> {
    let payload = format!(
        "v2|{}|{}|{}|{}|{}|{}",
        grant.site, grant.admin, grant.expires, grant.generation, grant.nonce, grant.page
    );
    let mut m = mac(secret)?;
    m.update(payload.as_bytes());
    Ok(format!(
        "{}.{}",
        hex::encode(payload),
        hex::encode(m.finalize().into_bytes())
    ))
}

/// Check a token's signature and expiry (`now` in unix seconds).
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<PickerGrant, TokenError> {
    let (payload_hex, mac_hex) = token.trim().split_once('.').ok_or(TokenError::Malformed)?;
    let payload = hex::decode(payload_hex).map_err(|_| TokenError::Malformed)?;
    let tag = hex::decode(mac_hex).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(secret)?;
    m.update(&payload);
    m.verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
    let payload = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
    let mut parts = payload.splitn(7, '|');
    let (
        Some("v2"),
        Some(site),
        Some(admin),
        Some(expires),
        Some(generation),
        Some(nonce),
        Some(page),
    ) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    )
    else {
        return Err(TokenError::Malformed);
    };
    let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let generation: i64 = generation.parse().map_err(|_| TokenError::Malformed)?;
    if expires < now {
        return Err(TokenError::Expired);
    }
    Ok(PickerGrant {
        site: site.to_owned(),
        admin: admin.to_owned(),
        expires,
        generation,
        nonce: nonce.to_owned(),
        page: page.to_owned(),
    })
}

/// The "Pick on site" form: which page to open.
#[derive(Debug, Deserialize)]
struct OpenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
}

/// Check that a page URL is on one of the site's allowed origins; returns
/// the URL without any fragment.
pub fn page_on_site(site: &Site, url: &str) -> Result<String, String> {
    let url = url.trim();
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    let origin = normalize_origin(url).map_err(|e| e.to_string())?;
    if !site.origins.contains(&origin) {
        return Err(format!(
            "{origin} is not one of this site's allowed origins ({}); add it on the site's page first",
            site.origins.join(", ")
        ));
    }
    Ok(url.to_owned())
}

async fn open(
    admin: Admin,
    Path(key): Path<String>,
    Form(form): Form<OpenForm>,
) -> Result<Response, WebError> {
    admin.check_csrf(&form.csrf).await?;
    let site = admin.site(&key).await?;
    let page = match page_on_site(&site, &form.url) {
        Ok(p) => p,
        Err(message) => {
            admin
                .flash(false, format!("Cannot open the picker: {message}"))
                .await?;
            return Ok(Redirect::to(&format!("/admin/sites/{}/rules", site.key)).into_response());
        }
    };
    let generation = admin
        .store
        .credential_gen(admin.user.id)
        .await?
        .map_or(0, |(g, _)| g);
    let grant = PickerGrant {
        site: site.key.clone(),
        admin: admin.user.name.clone(),
        expires: unix_now() + TOKEN_TTL_SECS,
        generation,
        nonce: crate::store::random_hex(16),
        page: page.clone(),
    };
    let token = sign(&admin.store.picker_secret().await?, &grant)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    admin
        .store
        .audit(
            &admin.user.name,
            "picker.open",
            &site.key,
            None,
            Some(&serde_json::json!({"page": page})),
        )
        .await?;
    Ok(Redirect::to(&format!("{page}#cobrowse-pick={token}")).into_response())
}

/// The picker's request body; nothing else is accepted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PickRequest {
    token: String,
    selector: String,
    action: String,
    count: u32,
}

/// A JSON answer with the CORS header for `origin` when it is allowed.
fn answer(status: StatusCode, origin: Option<&str>, body: serde_json::Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(o) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    resp
}

fn refuse(status: StatusCode, origin: Option<&str>, message: impl Into<String>) -> Response {
    answer(
        status,
        origin,
        serde_json::json!({"ok": false, "error": message.into()}),
    )
}

/// Whether some site allows this origin (preflights carry no token).
async fn origin_known(store: &Store, origin: &str) -> Result<bool, WebError> {
    let Ok(origin) = normalize_origin(origin) else {
        return Ok(false);
    };
    Ok(store
        .list_sites()
        .await?
        .iter()
        .any(|s| s.origins.contains(&origin)))
}

async fn preflight(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    let Some(origin) = origin else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    if !origin_known(&state.store, origin).await? {
        return Ok((StatusCode::FORBIDDEN, "origin not allowed").into_response());
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    if let Ok(o) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    Ok(resp)
}

async fn api(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let origin_header = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if body.len() > BODY_LIMIT {
        return Ok(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            "request too large",
        ));
    }
    let req: PickRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Ok(refuse(
                StatusCode::BAD_REQUEST,
                None,
                format!("expected {{token, selector, action, count}}: {e}"),
            ))
        }
    };
    let secret = state.store.picker_secret().await?;
    let grant = match verify(&secret, &req.token, unix_now()) {
        Ok(g) => g,
        Err(e) => return Ok(refuse(StatusCode::FORBIDDEN, None, e.to_string())),
    };
    // The link dies with its admin: disabled, no longer an admin, or new credentials.
    let alive = match state.store.user_by_name(&grant.admin).await? {
        Some(u) if u.role == crate::store::Role::Admin && !u.disabled => state
            .store
            .credential_gen(u.id)
            .await?
            .is_some_and(|(g, disabled)| !disabled && g == grant.generation),
        _ => false,
    };
    if !alive {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            None,
            TokenError::Revoked.to_string(),
        ));
    }
    let Some(site) = state.store.site_by_key(&grant.site).await? else {
        return Ok(refuse(
            StatusCode::NOT_FOUND,
            None,
            "the site no longer exists",
        ));
    };
    // Browsers always send Origin on cross-origin POSTs: it must be the site's.
    let origin = match origin_header {
        Some(o) => match normalize_origin(o) {
            Ok(n) if site.origins.contains(&n) => Some(o),
            _ => {
                return Ok(refuse(
                    StatusCode::FORBIDDEN,
                    None,
                    "this origin is not allowed for the site",
                ))
            }
        },
        None => None,
    };
    let Some(action) = parse_action(&req.action).filter(|a| *a != Action::Unmask) else {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            origin,
            "action must be mask, block or disable",
        ));
    };
    let selector = req.selector.trim().to_owned();
    if selector.is_empty() || selector.len() > 2048 {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            origin,
            "the selector is empty or too long",
        ));
    }
    let path = page_path(&grant.page);
    let rule = Rule {
        selector,
        action,
        url: None,
        description: format!("picked on {path}"),
        enabled: true,
    };
    if let Some(e) = CompiledRules::validate_all(std::slice::from_ref(&rule))
        .into_iter()
        .next()
    {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            origin,
            e.to_string(),
        ));
    }
    // Single use: the first valid pick spends the link; replays are refused.
    let mac_part = req.token.trim().rsplit('.').next().unwrap_or_default();
    if !state
        .store
        .spend_picker_link(mac_part, grant.expires)
        .await?
    {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            origin,
            TokenError::Used.to_string(),
        ));
    }
    let mut draft = state
        .store
        .draft(site.id)
        .await?
        .map(|d| (d.rules, d.settings))
        .unwrap_or_default();
    if let Some(i) = draft
        .0
        .iter()
        .position(|r| r.selector == rule.selector && r.action == rule.action && r.url.is_none())
    {
        return Ok(answer(
            StatusCode::OK,
            origin,
            serde_json::json!({
                "ok": true,
                "rule": i + 1,
                "message": format!("Already in the draft as rule {}; nothing added.", i + 1),
            }),
        ));
    }
    draft.0.push(rule.clone());
    let number = draft.0.len();
    state
        .store
        .save_draft_as(site.id, &draft.0, draft.1, &grant.admin, "rules.pick")
        .await?;
    tracing::info!(site = %site.key, admin = %grant.admin, selector = %rule.selector, "rule picked");
    Ok(answer(
        StatusCode::CREATED,
        origin,
        serde_json::json!({
            "ok": true,
            "rule": number,
            "message": format!("Rule {number} added to the draft of {} ({} {} element(s) on this page). Publish it in the editor.",
                site.name, action.as_str(), req.count),
        }),
    ))
}

/// The path (and query) of a page URL, for rule descriptions.
fn page_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_owned(),
        None => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires: i64) -> PickerGrant {
        PickerGrant {
            site: "demo".into(),
            admin: "ada".into(),
            expires,
            generation: 3,
            nonce: "00ff".into(),
            page: "http://127.0.0.1:8080/demo/checkout?a=1|b".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips() {
        let t = sign(b"secret", &grant(1_000)).unwrap();
        assert_eq!(verify(b"secret", &t, 999).unwrap(), grant(1_000));
    }

    #[test]
    fn expired_forged_and_malformed_tokens_are_refused() {
        let t = sign(b"secret", &grant(1_000)).unwrap();
        assert_eq!(verify(b"secret", &t, 1_001), Err(TokenError::Expired));
        assert_eq!(verify(b"other", &t, 0), Err(TokenError::BadSignature));
        let (p, m) = t.split_once('.').unwrap();
        let forged_payload = hex::encode("v1|demo|ada|99999999999|/x");
        assert_eq!(
            verify(b"secret", &format!("{forged_payload}.{m}"), 0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verify(b"secret", p, 0), Err(TokenError::Malformed));
        assert_eq!(verify(b"secret", "zz.zz", 0), Err(TokenError::Malformed));
    }

    #[test]
    fn pages_must_be_on_an_allowed_origin() {
        let site = Site {
            id: 1,
            key: "demo".into(),
            name: "Demo".into(),
            origins: vec!["http://127.0.0.1:8080".into()],
        };
        assert_eq!(
            page_on_site(&site, "http://127.0.0.1:8080/demo/checkout#x").unwrap(),
            "http://127.0.0.1:8080/demo/checkout"
        );
        assert!(page_on_site(&site, "http://evil.example/demo/checkout").is_err());
        assert!(page_on_site(&site, "javascript:alert(1)").is_err());
        assert_eq!(
            page_path("http://h:1/demo/checkout?x=1"),
            "/demo/checkout?x=1"
        );
        assert_eq!(page_path("http://h"), "/");
    }
}
