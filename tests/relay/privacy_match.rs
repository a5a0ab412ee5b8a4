//! Matching like a browser, over real sockets (issue 7 items 5 and 10):
//! upper-case attribute names, quirks-mode class/id matching, the snippet's
//! password mark, `:checked` on the default-selected `<option>`, `:disabled`
//! inside a disabled `<fieldset>`, and `<template>` content. Each test names
//! the leak it closes: a value the rules mask must never reach the agent.

use crate::common::{TestApp, WsClient, SOON};
use cobrowse::rules::Action;
use serde_json::{json, Value};

/// Publish `rules` for the demo site (before any session starts).
async fn publish(app: &TestApp, rules: &[(&str, Action)]) {
    let rules: Vec<_> = rules.iter().map(|&(s, a)| (s, a, None)).collect();
    app.publish_demo_rules(&rules, Default::default()).await;
}

/// A snapshot frame whose `<body>` (id 4) holds `body`; with or without
/// `<!DOCTYPE html>` (id 2).
fn snapshot(doctype: bool, body: Value) -> Value {
    let mut children = Vec::new();
    if doctype {
        children.push(json!({"id": 2, "type": "doctype", "name": "html"}));
    }
    children.push(
        json!({"id": 3, "type": "element", "tag": "html", "children": [
            {"id": 4, "type": "element", "tag": "body", "children": body}
        ]}),
    );
    json!({
        "t": "snapshot",
        "url": "http://shop.test/checkout",
        "title": "Checkout",
        "viewport": {"w": 1280.0, "h": 800.0},
        "root": {"id": 1, "type": "document", "children": children}
    })
}

/// An active session whose customer sent `snap`; returns (customer, agent,
/// the agent's first snapshot).
async fn session(app: &TestApp, snap: Value) -> (WsClient, WsClient, Value) {
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("session").await;
    c.recv_type("rules").await;
    c.send(snap).await;
    c.recv_type("rules").await;
    let mut a = app.agent(&id).await;
    let first = a.recv_type("snapshot").await;
    c.recv_until(|m| m["t"] == "session" && m["state"] == "active", SOON)
        .await;
    (c, a, first)
}

fn text(id: u64, t: &str) -> Value {
    json!({"id": id, "type": "text", "text": t})
}

#[tokio::test]
async fn upper_case_attribute_names_never_carry_a_masked_value_to_the_agent() {
    let app = crate::common::spawn_app().await;
    let (mut c, mut a, first) = session(
        &app,
        snapshot(
            true,
            json!([
                {"id": 10, "type": "element", "tag": "INPUT",
                 "attrs": {"TYPE": "password", "VALUE": "Hunter2-upper", "ONCLICK": "steal()"}},
                {"id": 11, "type": "element", "tag": "input", "attrs": {"Type": "text", "Class": "x"}}
            ]),
        ),
    )
    .await;
    let s = first.to_string();
    assert!(!s.contains("Hunter2-upper"), "{s}");
    assert!(!s.contains("steal()"), "{s}");
    assert!(!s.contains("\"VALUE\"") && !s.contains("\"TYPE\""), "{s}");
    assert!(
        s.contains("data-cobrowse-masked"),
        "the password is masked: {s}"
    );
    // An `attr` op in upper case on the masked field, and one turning a
    // text field into a password field.
    c.send(json!({"t": "mutations", "ops": [
        {"op": "attr", "id": 10, "name": "VALUE", "value": "Typed-upper-2"},
        {"op": "attr", "id": 11, "name": "TYPE", "value": "password"},
        {"op": "attr", "id": 11, "name": "Value", "value": "Typed-upper-3"}
    ]}))
    .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(
        !m.contains("Typed-upper-2") && !m.contains("Typed-upper-3"),
        "{m}"
    );
    assert!(
        !m.contains("\"VALUE\"") && !m.contains("\"Value\""),
        "names lower case: {m}"
    );
}

#[tokio::test]
async fn quirks_mode_pages_match_classes_and_ids_case_insensitively() {
    let app = crate::common::spawn_app().await;
    publish(
        &app,
        &[(".secret", Action::Mask), ("#hidden-id", Action::Block)],
    )
    .await;
    let body = json!([
        {"id": 10, "type": "element", "tag": "p", "attrs": {"class": "SECRET"},
         "children": [text(11, "quirks-class-secret")]},
        {"id": 12, "type": "element", "tag": "div", "attrs": {"id": "Hidden-ID"},
         "children": [text(13, "quirks-id-secret")]}
    ]);
    // No doctype: quirks mode, as in a browser.
    let (mut c, mut a, first) = session(&app, snapshot(false, body.clone())).await;
    let s = first.to_string();
    assert!(
        !s.contains("quirks-class-secret") && !s.contains("quirks-id-secret"),
        "{s}"
    );
    // A class added later in another case is matched too.
    c.send(json!({"t": "mutations", "ops": [
        {"op": "insert", "parent": 4, "before": null, "node":
            {"id": 20, "type": "element", "tag": "span", "children": [text(21, "late-secret")]}},
        {"op": "attr", "id": 20, "name": "class", "value": "Secret"}
    ]}))
    .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(!m.contains("late-secret"), "{m}");
    // With `<!DOCTYPE html>` (no quirks) classes are case-sensitive, as in
    // Chromium: the rule does not match `SECRET`.
    c.send(json!({"t": "end"})).await;
    a.recv_ended().await;
    let (_c2, _a2, first) = session(&app, snapshot(true, body)).await;
    assert!(first.to_string().contains("quirks-class-secret"));
}

#[tokio::test]
async fn a_field_marked_as_ever_password_stays_masked_and_the_mark_is_not_forwarded() {
    let app = crate::common::spawn_app().await;
    // A show-password toggle: now type=text, but the snippet marked it.
    let (mut c, mut a, first) = session(
        &app,
        snapshot(
            true,
            json!([{"id": 10, "type": "element", "tag": "input",
                "attrs": {"type": "text", "data-cobrowse-password": "1"}, "value": "shown-pw-1"}]),
        ),
    )
    .await;
    let s = first.to_string();
    assert!(!s.contains("shown-pw-1"), "{s}");
    assert!(!s.contains("data-cobrowse-password"), "{s}");
    // The mark removed later (a bad snippet): still masked for good.
    c.send(json!({"t": "mutations", "ops": [
        {"op": "attr", "id": 10, "name": "data-cobrowse-password", "value": null},
        {"op": "value", "id": 10, "value": "shown-pw-2"}
    ]}))
    .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(!m.contains("shown-pw-2"), "{m}");
}

#[tokio::test]
async fn the_default_selected_option_matches_checked_and_follows_the_live_value() {
    let app = crate::common::spawn_app().await;
    publish(&app, &[("option:checked", Action::Mask)]).await;
    let (mut c, mut a, first) = session(
        &app,
        snapshot(
            true,
            json!([{"id": 10, "type": "element", "tag": "select", "children": [
                {"id": 11, "type": "element", "tag": "option", "children": [text(12, "first-plan")]},
                {"id": 13, "type": "element", "tag": "optgroup", "children": [
                    {"id": 14, "type": "element", "tag": "option", "attrs": {"value": "b"},
                     "children": [text(15, "second-plan")]}
                ]}
            ]}]),
        ),
    )
    .await;
    let s = first.to_string();
    assert!(
        !s.contains("first-plan"),
        "no `selected`: the first option is checked: {s}"
    );
    assert!(s.contains("second-plan"), "{s}");
    // The customer picks the option in the optgroup.
    c.send(json!({"t": "mutations", "ops": [{"op": "value", "id": 10, "value": "b"}]}))
        .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(!m.contains("second-plan"), "{m}");
    assert!(
        m.contains("first-plan"),
        "the old choice is shown again: {m}"
    );
}

#[tokio::test]
async fn controls_inside_a_disabled_fieldset_match_disabled_except_in_its_legend() {
    let app = crate::common::spawn_app().await;
    publish(&app, &[("input:disabled", Action::Mask)]).await;
    let (mut c, mut a, first) = session(
        &app,
        snapshot(
            true,
            json!([{"id": 10, "type": "element", "tag": "fieldset", "children": [
                {"id": 11, "type": "element", "tag": "legend", "children": [
                    {"id": 12, "type": "element", "tag": "input", "value": "legend-value"}
                ]},
                {"id": 13, "type": "element", "tag": "div", "children": [
                    {"id": 14, "type": "element", "tag": "input", "value": "inner-value"}
                ]}
            ]}]),
        ),
    )
    .await;
    assert!(first.to_string().contains("inner-value"));
    c.send(json!({"t": "mutations", "ops": [
        {"op": "attr", "id": 10, "name": "disabled", "value": ""}
    ]}))
    .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(m.contains("data-cobrowse-masked"), "{m}");
    c.send(json!({"t": "mutations", "ops": [
        {"op": "value", "id": 14, "value": "inner-typed"},
        {"op": "value", "id": 12, "value": "legend-typed"}
    ]}))
    .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(!m.contains("inner-typed"), "{m}");
    assert!(
        m.contains("legend-typed"),
        "inside the first legend: enabled: {m}"
    );
}

#[tokio::test]
async fn template_content_is_not_part_of_the_document() {
    let app = crate::common::spawn_app().await;
    let (mut c, mut a, first) = session(
        &app,
        snapshot(
            true,
            json!([{"id": 10, "type": "element", "tag": "template", "children": [
                {"id": 11, "type": "element", "tag": "p", "children": [text(12, "template-secret")]}
            ]}]),
        ),
    )
    .await;
    assert!(!first.to_string().contains("template-secret"), "{first}");
    // Nothing can be put into a template's content afterwards either.
    c.send(json!({"t": "mutations", "ops": [
        {"op": "insert", "parent": 10, "before": null, "node": text(20, "late-template-secret")}
    ]}))
    .await;
    // Then a snapshot with a marker: everything the agent got up to it
    // is free of the template's content.
    c.send(snapshot(
        true,
        json!([{"id": 30, "type": "element", "tag": "template", "children": [
        text(31, "template-secret-2")
    ]}, text(32, "after-marker")]),
    ))
    .await;
    a.recv_until(|m| m.to_string().contains("after-marker"), SOON)
        .await;
    for m in &a.seen {
        let m = m.to_string();
        assert!(!m.contains("template-secret"), "{m}");
    }
}
