//! Publishing: the rule-level diff, publish with a comment, version history,
//! roll-back, and the effect of both on a live session (a real WebSocket
//! agent receives re-masked operations at once).

use super::{location, Browser};
use crate::common::{spawn_app, SOON};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn the_diff_shows_added_removed_and_changed_rules() {
    let app = spawn_app().await;
    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    let page = admin.get_text("/admin/sites/demo/publish").await;
    assert!(page.contains("no changes"), "draft = v1 at start");
    // Add one, change one (toggle), delete one.
    admin
        .post(
            "/admin/sites/demo/rules",
            &[
                ("selector", ".new-rule"),
                ("action", "block"),
                ("enabled", "on"),
            ],
        )
        .await;
    admin.post("/admin/sites/demo/rules/1/toggle", &[]).await;
    admin.post("/admin/sites/demo/rules/2/delete", &[]).await;
    let page = admin.get_text("/admin/sites/demo/publish").await;
    assert!(page.contains("3 change(s)"), "{page}");
    assert!(page.contains("class=\"diff-added\""));
    assert!(page.contains("class=\"diff-removed\""));
    assert!(page.contains("class=\"diff-changed\""));
    assert!(page.contains("changed: enabled"));
}

/// Text of every `text` node or op in a frame, for leak checks.
fn frame_text(v: &Value) -> String {
    v.to_string()
}

#[tokio::test]
async fn publish_and_rollback_switch_a_live_session_at_once() {
    let app = spawn_app().await;
    let (_id, _token, _customer, mut agent) = app.active_session().await;
    let snapshot = agent
        .seen
        .iter()
        .find(|m| m["t"] == "snapshot")
        .cloned()
        .expect("snapshot");
    assert!(
        frame_text(&snapshot).contains("hello"),
        "not masked under v1"
    );

    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    let resp = admin
        .post(
            "/admin/sites/demo/rules",
            &[
                ("selector", "p"),
                ("action", "mask"),
                ("enabled", "on"),
                ("description", "hide paragraphs"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // The draft alone changes nothing for the live session: publish it.
    let resp = admin
        .post(
            "/admin/sites/demo/publish",
            &[("comment", "mask paragraphs")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/admin/sites/demo/publish");
    let ops = agent
        .recv_until(
            |m| m["t"] == "mutations" && m.to_string().contains("data-cobrowse-masked"),
            SOON,
        )
        .await;
    assert!(
        !frame_text(&ops).contains("hello"),
        "re-masked ops never carry the clear text: {ops}"
    );
    assert!(frame_text(&ops).contains("•••••"), "{ops}");

    let page = admin.get_text("/admin/sites/demo/publish").await;
    assert!(page.contains("Published version 2"));
    assert!(page.contains("mask paragraphs"), "comment in the history");
    let v2 = app.state.store.version(1, 2).await.unwrap().expect("v2");
    assert_eq!(
        (v2.author.as_str(), v2.comment.as_str()),
        ("admin", "mask paragraphs")
    );

    // Roll back to v1: published as v3, the session un-masks at once.
    let resp = admin
        .post("/admin/sites/demo/versions/1/rollback", &[])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let ops = agent
        .recv_until(
            |m| m["t"] == "mutations" && m.to_string().contains("hello"),
            SOON,
        )
        .await;
    assert!(!frame_text(&ops).contains("•••••"), "{ops}");
    let site = app.state.store.site_by_key("demo").await.unwrap().unwrap();
    let v3 = app.state.store.published(site.id).await.unwrap().unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(v3.comment, "roll back to v1");
    assert_eq!(
        v3.rules,
        app.state
            .store
            .version(site.id, 1)
            .await
            .unwrap()
            .unwrap()
            .rules
    );
    assert_eq!(
        app.state.store.draft(site.id).await.unwrap().unwrap().rules,
        v3.rules,
        "the draft is reset to the rolled-back rules"
    );
    let history = admin.get_text("/admin/sites/demo/publish").await;
    assert!(history.contains("v3") && history.contains("roll back to v1"));
    let audit = app.state.store.list_audit(100).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "rules.publish" && e.actor == "admin"));
    assert!(audit
        .iter()
        .any(|e| e.action == "rules.rollback" && e.actor == "admin"));

    // Unknown versions are a 404; an old version can be viewed.
    assert_eq!(
        admin
            .post("/admin/sites/demo/versions/99/rollback", &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let v2_page = admin.get_text("/admin/sites/demo/versions/2").await;
    assert!(v2_page.contains("hide paragraphs"));
}

/// Item 9 of issue 7: a roll-back from the editor that lifts a mask sends
/// the agent the field's current clear value, as a publish does — not the
/// dots it had while masked.
#[tokio::test]
async fn editor_rollback_lifting_a_mask_sends_the_agent_the_clear_field_value() {
    let app = spawn_app().await;
    let (_id, _token, mut customer, mut agent) = app.active_session().await;
    customer
        .send(serde_json::json!({"t": "mutations", "ops": [
            {"op": "value", "id": 7, "value": "typed-clear-77"}
        ]}))
        .await;
    agent
        .recv_until(|m| m.to_string().contains("typed-clear-77"), SOON)
        .await;

    let mut admin = Browser::admin(&app).await;
    admin.refresh_csrf("/admin/sites/demo/rules").await;
    admin
        .post(
            "/admin/sites/demo/rules",
            &[
                ("selector", "input[name=q]"),
                ("action", "mask"),
                ("enabled", "on"),
            ],
        )
        .await;
    let resp = admin
        .post("/admin/sites/demo/publish", &[("comment", "mask q")])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let masked = agent
        .recv_until(
            |m| m["t"] == "mutations" && m.to_string().contains("data-cobrowse-masked"),
            SOON,
        )
        .await;
    assert!(!frame_text(&masked).contains("typed-clear-77"), "{masked}");

    // The customer keeps typing while masked: the agent sees dots only.
    customer
        .send(serde_json::json!({"t": "mutations", "ops": [
            {"op": "value", "id": 7, "value": "typed-clear-78"}
        ]}))
        .await;
    let dotted = agent
        .recv_until(
            |m| m["t"] == "mutations" && m.to_string().contains("\"value\""),
            SOON,
        )
        .await;
    assert!(!frame_text(&dotted).contains("typed-clear-78"), "{dotted}");

    let resp = admin
        .post("/admin/sites/demo/versions/1/rollback", &[])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let lifted = agent
        .recv_until(
            |m| m["t"] == "mutations" && m.to_string().contains("typed-clear-78"),
            SOON,
        )
        .await;
    assert!(
        !frame_text(&lifted).contains("data-cobrowse-masked"),
        "{lifted}"
    );
}
