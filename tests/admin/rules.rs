//! Rule editing on the draft: add with validation (parser message next to
//! the field, typed values kept), edit, toggle, reorder, delete, settings,
//! stale-page protection, import (all or nothing) and export.

use super::{demo_draft, location, rev_of, Browser};
use crate::common::spawn_app;
use reqwest::StatusCode;

fn rule<'a>(
    selector: &'a str,
    action: &'a str,
    url: &'a str,
    description: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("selector", selector),
        ("action", action),
        ("url", url),
        ("description", description),
        ("enabled", "on"),
    ]
}

#[tokio::test]
async fn invalid_selector_shows_the_parser_message_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    let resp = admin
        .post(
            "/admin/sites/demo/rules",
            &rule(
                "input[name=card] %",
                "block",
                "/checkout/*",
                "card field typed",
            ),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("id=\"selector-error\""),
        "error next to the field"
    );
    let error = &html[html.find("id=\"selector-error\"").unwrap()..];
    let error = &error[..error.find("</div>").unwrap()];
    assert!(
        error.contains("Invalid selector at 1:"),
        "line:column shown: {error}"
    );
    assert!(
        html.contains("value=\"input[name=card] %\""),
        "typed selector kept"
    );
    assert!(html.contains("value=\"/checkout/*\""), "typed URL kept");
    assert!(
        html.contains("value=\"card field typed\""),
        "typed description kept"
    );
    assert!(
        html.contains("<option value=\"block\" selected>"),
        "chosen action kept"
    );
    assert_eq!(demo_draft(&app).await.len(), 2, "nothing written");

    // An unknown pseudo-class and a bad URL glob are reported the same way.
    let resp = admin
        .post("/admin/sites/demo/rules", &rule("p:bogus", "mask", "", ""))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("id=\"selector-error\""));
    let resp = admin
        .post("/admin/sites/demo/rules", &rule(".ok", "mask", "/a/[", ""))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("id=\"url-error\""),
        "URL pattern error next to its field"
    );
    assert!(!html.contains("id=\"selector-error\""));
    assert_eq!(demo_draft(&app).await.len(), 2);
}

#[tokio::test]
async fn rules_are_added_edited_toggled_reordered_and_deleted() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    let resp = admin
        .post(
            "/admin/sites/demo/rules",
            &rule(".balance", "mask", "/account/*", "Balances"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/admin/sites/demo/rules");
    let page = admin.get_text("/admin/sites/demo/rules").await;
    assert!(
        page.contains("Rule 3 added"),
        "flash shown after the redirect"
    );
    assert!(page.contains(".balance"));
    assert_eq!(
        demo_draft(&app).await[2],
        (".balance".into(), "mask".into(), true)
    );

    // Edit rule 3.
    let resp = admin
        .post(
            "/admin/sites/demo/rules/3",
            &rule("#ssn", "block", "", "SSN"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        demo_draft(&app).await[2],
        ("#ssn".into(), "block".into(), true)
    );

    // Toggle, move up twice (the second is a no-op at the top), delete.
    assert_eq!(
        admin
            .post("/admin/sites/demo/rules/3/toggle", &[])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert!(!demo_draft(&app).await[2].2);
    admin.post("/admin/sites/demo/rules/3/up", &[]).await;
    admin.post("/admin/sites/demo/rules/2/up", &[]).await;
    admin.post("/admin/sites/demo/rules/1/up", &[]).await;
    let draft = demo_draft(&app).await;
    assert_eq!(draft[0].0, "#ssn");
    assert!(draft[1].0.starts_with("input[type=password]"));
    admin.post("/admin/sites/demo/rules/1/down", &[]).await;
    assert_eq!(demo_draft(&app).await[1].0, "#ssn");
    assert_eq!(
        admin
            .post("/admin/sites/demo/rules/2/delete", &[])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let draft = demo_draft(&app).await;
    assert_eq!(draft.len(), 2);
    assert!(draft.iter().all(|r| r.0 != "#ssn"));

    // Out of range rule numbers are a 404.
    assert_eq!(
        admin
            .post("/admin/sites/demo/rules/9/delete", &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Every change is in the audit log under the admin's name.
    let audit = app.state.store.list_audit(50).await.unwrap();
    for action in [
        "rules.add",
        "rules.edit",
        "rules.toggle",
        "rules.move",
        "rules.delete",
    ] {
        assert!(
            audit.iter().any(|e| e.action == action
                && e.actor == "admin"
                && e.target == "demo"
                && e.before_json.is_some()
                && e.after_json.is_some()),
            "{action} audited with before/after"
        );
    }
}

#[tokio::test]
async fn a_change_from_a_stale_page_is_refused() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    let old_rev = rev_of(&admin.get_text("/admin/sites/demo/rules").await);
    let mut fields = rule(".a", "mask", "", "");
    fields.push(("rev", &old_rev));
    assert_eq!(
        admin
            .post("/admin/sites/demo/rules", &fields)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    // The same (now stale) page deletes rule 1: refused, nothing deleted.
    let resp = admin
        .post("/admin/sites/demo/rules/1/delete", &[("rev", &old_rev)])
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("reload the page"));
    assert_eq!(demo_draft(&app).await.len(), 3);
}

#[tokio::test]
async fn privacy_settings_are_saved_to_the_draft() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    let resp = admin
        .post(
            "/admin/sites/demo/settings",
            &[("privacy", "mask-inputs"), ("email", "on")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let site = app.state.store.site_by_key("demo").await.unwrap().unwrap();
    let s = app
        .state
        .store
        .draft(site.id)
        .await
        .unwrap()
        .unwrap()
        .settings;
    assert_eq!(s.privacy, cobrowse::rules::PrivacyLevel::MaskInputs);
    assert!(s.detectors.email && !s.detectors.card && !s.detectors.national_id);
    let resp = admin
        .post("/admin/sites/demo/settings", &[("privacy", "everything")])
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

const GOOD_PACK: &str = "version: 1\nrules:\n  - selector: \".balance\"\n    action: mask\n    url: \"/account/*\"\n  - selector: \"#promo\"\n    action: block\n    enabled: false\n";

#[tokio::test]
async fn import_with_one_bad_rule_writes_nothing_and_lists_every_problem() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/import").await;
    let before = demo_draft(&app).await;
    let audit_before = app.state.store.list_audit(1000).await.unwrap().len();
    let bad = "version: 1\nrules:\n  - selector: \".ok\"\n    action: mask\n  - selector: \"div >>\"\n    action: block\n  - selector: \".fine\"\n    action: disable\n  - selector: \"p:bogus\"\n    action: mask\n";
    let resp = admin
        .post_multipart(
            "/admin/sites/demo/import",
            reqwest::multipart::Form::new().text("yaml", bad),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("Nothing was imported: 2 problem(s)"),
        "{html}"
    );
    assert!(html.contains("<strong>Rule 2</strong>"));
    assert!(html.contains("<strong>Rule 4</strong>"));
    assert!(!html.contains("<strong>Rule 1</strong>"));
    assert!(
        html.contains(".fine"),
        "the pasted YAML is kept in the form"
    );
    assert_eq!(demo_draft(&app).await, before, "draft untouched");
    assert_eq!(
        app.state.store.list_audit(1000).await.unwrap().len(),
        audit_before,
        "no audit entry"
    );

    // A YAML syntax error is one clear problem.
    let resp = admin
        .post_multipart(
            "/admin/sites/demo/import",
            reqwest::multipart::Form::new().text("yaml", "version: 1\nrules: [\n"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("invalid rule pack"));
    assert_eq!(demo_draft(&app).await, before);
}

#[tokio::test]
async fn a_valid_pack_uploaded_as_a_file_replaces_the_draft_and_exports_back() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/import").await;
    let file = reqwest::multipart::Part::text(GOOD_PACK).file_name("pack.yaml");
    let resp = admin
        .post_multipart(
            "/admin/sites/demo/import",
            reqwest::multipart::Form::new()
                .part("file", file)
                .text("yaml", ""),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        demo_draft(&app).await,
        vec![
            (".balance".into(), "mask".into(), true),
            ("#promo".into(), "block".into(), false)
        ]
    );
    let resp = admin.get("/admin/sites/demo/export").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("demo-draft.yaml")));
    let yaml = resp.text().await.unwrap();
    let pack = cobrowse::rules::RulePack::from_yaml(&yaml).expect("export parses as a rule pack");
    assert_eq!(pack.rules.len(), 2);
    assert_eq!(pack.rules[0].url.as_deref(), Some("/account/*"));
    assert!(!pack.rules[1].enabled);
    // The published export is still the default pack (v1).
    let live = admin.get_text("/admin/sites/demo/export?published=1").await;
    assert!(live.contains("input[type=password]"));
}
