//! Shadow roots, frame documents, CSSOM sheets and placeholders (protocol
//! v1.2, issue 9 item 1) over real sockets: rules apply inside shadow trees
//! and nested documents as in the light tree (fail closed: combinators see
//! through the boundary), ops can target nodes inside them, the limits
//! count them, misplaced nodes resync, and CSSOM text is treated like
//! `<style>` text.

use crate::common::{spawn_app, spawn_app_with, TestApp, TestOptions, WsClient, SOON};
use cobrowse::rules::Action;
use serde_json::{json, Value};

async fn publish(app: &TestApp, rules: &[(&str, Action)]) {
    let rules: Vec<_> = rules.iter().map(|&(s, a)| (s, a, None)).collect();
    app.publish_demo_rules(&rules, Default::default()).await;
}

/// A snapshot whose `<body>` (id 4) holds `body`.
fn snapshot(epoch: u32, body: Value) -> Value {
    json!({
        "t": "snapshot",
        "epoch": epoch,
        "url": "http://shop.test/checkout",
        "title": "Checkout",
        "viewport": {"w": 1280.0, "h": 800.0},
        "root": {"id": 1, "type": "document", "children": [
            {"id": 2, "type": "doctype", "name": "html"},
            {"id": 3, "type": "element", "tag": "html", "children": [
                {"id": 4, "type": "element", "tag": "body", "children": body}
            ]}
        ]}
    })
}

fn mutations(epoch: u32, ops: Value) -> Value {
    json!({"t": "mutations", "epoch": epoch, "ops": ops})
}

fn text(id: u64, t: &str) -> Value {
    json!({"id": id, "type": "text", "text": t})
}

fn el(id: u64, tag: &str, attrs: Value, children: Value) -> Value {
    json!({"id": id, "type": "element", "tag": tag, "attrs": attrs, "children": children})
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

/// Find the node with `id` in a wire tree.
fn find(n: &Value, id: u64) -> Option<&Value> {
    if n["id"] == id {
        return Some(n);
    }
    n["children"].as_array()?.iter().find_map(|c| find(c, id))
}

/// `<form class=pay>` › `<pay-widget>` (10) › shadow root (11) ›
/// label text (12), `<input>` (13) with a secret value, `<span>` (14).
fn widget_page(epoch: u32) -> Value {
    snapshot(
        epoch,
        json!([el(
            5,
            "form",
            json!({"class": "pay"}),
            json!([el(
                10,
                "pay-widget",
                json!({}),
                json!([{"id": 11, "type": "shadow", "children": [
                    text(12, "Card number"),
                    {"id": 13, "type": "element", "tag": "input",
                     "attrs": {"value": "attr-secret-4111"}, "value": "live-secret-4111"},
                    el(14, "span", json!({}), json!([]))
                ]}])
            )])
        )]),
    )
}

#[tokio::test]
async fn a_light_tree_rule_masks_an_input_inside_a_shadow_root() {
    let app = spawn_app().await;
    publish(&app, &[("form.pay input", Action::Mask)]).await;
    let (mut c, mut a, first) = session(&app, widget_page(1)).await;
    let s = first.to_string();
    assert!(!s.contains("secret"), "a masked shadow input leaked: {s}");
    let shadow = find(&first["root"], 11).expect("the shadow root reaches the agent");
    assert_eq!(shadow["type"], "shadow");
    assert!(
        s.contains("Card number"),
        "text inside the shadow shows: {s}"
    );
    let input = find(&first["root"], 13).expect("the input is there");
    assert!(
        input["attrs"].get("data-cobrowse-masked").is_some(),
        "{input}"
    );

    // typing into it, and a mutation inside the shadow tree
    c.send(mutations(
        1,
        json!([
            {"op": "value", "id": 13, "value": "typed-secret-5500"},
            {"op": "insert", "parent": 14, "before": null, "node": text(15, "Visa")},
            {"op": "insert", "parent": 11, "before": null, "node":
                {"id": 16, "type": "element", "tag": "input", "value": "second-secret"}}
        ]),
    ))
    .await;
    let m = a.recv_type("mutations").await;
    let s = m.to_string();
    assert!(!s.contains("secret"), "{s}");
    assert!(
        s.contains("Visa"),
        "a mutation inside the shadow shows: {s}"
    );
    assert!(s.contains("\"id\":16"), "{s}");
}

#[tokio::test]
async fn a_masked_host_masks_its_whole_shadow_tree() {
    let app = spawn_app().await;
    publish(&app, &[("pay-widget", Action::Mask)]).await;
    let (mut c, mut a, first) = session(&app, widget_page(1)).await;
    let s = first.to_string();
    assert!(!s.contains("Card number"), "{s}");
    assert!(!s.contains("secret"), "{s}");
    c.send(mutations(
        1,
        json!([{"op": "text", "id": 12, "text": "Holder: Jane Roe"}]),
    ))
    .await;
    let m = a.recv_type("mutations").await;
    assert!(!m.to_string().contains("Jane"), "{m}");
}

#[tokio::test]
async fn blocking_a_host_hides_its_shadow_root_and_ops_inside_it() {
    let app = spawn_app().await;
    publish(&app, &[("pay-widget", Action::Block)]).await;
    let (mut c, mut a, first) = session(&app, widget_page(1)).await;
    assert!(find(&first["root"], 11).is_none(), "{first}");
    c.send(mutations(
        1,
        json!([
            {"op": "insert", "parent": 11, "before": null, "node": text(20, "hidden-insert")},
            {"op": "text", "id": 12, "text": "hidden-text"}
        ]),
    ))
    .await;
    // a marker after the hidden ops shows that they produced nothing
    c.send(mutations(
        1,
        json!([{"op": "attr", "id": 4, "name": "class", "value": "marker"}]),
    ))
    .await;
    let m = a
        .recv_until(|m| m.to_string().contains("marker"), SOON)
        .await;
    assert!(!m.to_string().contains("hidden"), "{m}");
}

#[tokio::test]
async fn publishing_a_mask_re_masks_an_existing_shadow_tree() {
    let app = spawn_app().await;
    let (_c, mut a, first) = session(&app, widget_page(1)).await;
    assert!(first.to_string().contains("live-secret-4111"));
    publish(&app, &[(".pay input", Action::Mask)]).await;
    let m = a.recv_type("mutations").await;
    let s = m.to_string();
    assert!(s.contains("\"id\":13"), "the shadow input is re-sent: {s}");
    assert!(!s.contains("secret"), "{s}");
}

/// `<iframe>` (20) › document (21) › `<html>` (22) › `<body>` (23) ›
/// text (24), `<input id=card>` (25).
fn frame_page(epoch: u32) -> Value {
    snapshot(
        epoch,
        json!([el(
            20,
            "iframe",
            json!({"src": "/pay-frame.html", "width": "300", "height": "120"}),
            json!([{"id": 21, "type": "document", "children": [
                el(22, "html", json!({}), json!([
                    el(23, "body", json!({}), json!([
                        text(24, "Pay securely"),
                        {"id": 25, "type": "element", "tag": "input",
                         "attrs": {"id": "card"}, "value": "frame-secret-4111"}
                    ]))
                ]))
            ]}])
        )]),
    )
}

#[tokio::test]
async fn rules_apply_inside_a_same_origin_frame_document() {
    let app = spawn_app().await;
    publish(&app, &[("#card", Action::Mask)]).await;
    let (mut c, mut a, first) = session(&app, frame_page(1)).await;
    let s = first.to_string();
    assert!(!s.contains("frame-secret"), "{s}");
    assert!(s.contains("Pay securely"), "{s}");
    let frame = find(&first["root"], 20).unwrap();
    assert_eq!(frame["attrs"]["sandbox"], "", "{frame}");
    assert!(frame["attrs"].get("src").is_none(), "{frame}");
    assert_eq!(find(&first["root"], 21).unwrap()["type"], "document");

    // ops inside the frame's document; a reload replaces the document
    c.send(mutations(
        1,
        json!([
            {"op": "value", "id": 25, "value": "typed-frame-secret"},
            {"op": "insert", "parent": 23, "before": null, "node": text(26, "Total: 12 EUR")},
            {"op": "remove", "id": 21},
            {"op": "insert", "parent": 20, "before": null, "node":
                {"id": 30, "type": "document", "children": [
                    el(31, "html", json!({}), json!([el(32, "body", json!({}), json!([
                        text(33, "Thank you"),
                        {"id": 34, "type": "element", "tag": "input",
                         "attrs": {"id": "card"}, "value": "reloaded-secret"}
                    ]))]))
                ]}}
        ]),
    ))
    .await;
    let m = a.recv_type("mutations").await;
    let s = m.to_string();
    assert!(!s.contains("secret"), "{s}");
    assert!(s.contains("Thank you"), "{s}");
}

#[tokio::test]
async fn a_rule_on_the_frame_element_reaches_into_its_document() {
    let app = spawn_app().await;
    publish(&app, &[("iframe", Action::Mask)]).await;
    let (_c, _a, first) = session(&app, frame_page(1)).await;
    let s = first.to_string();
    assert!(!s.contains("frame-secret"), "{s}");
    assert!(!s.contains("Pay securely"), "{s}");
    // and a descendant combinator across the frame boundary
    let app = spawn_app().await;
    publish(&app, &[("body iframe input", Action::Mask)]).await;
    let (_c, _a, first) = session(&app, frame_page(1)).await;
    assert!(!first.to_string().contains("frame-secret"), "{first}");
}

#[tokio::test]
async fn misplaced_v1_2_nodes_are_refused_and_resync() {
    let app = spawn_app().await;
    let (mut c, mut a, _first) = session(&app, widget_page(1)).await;
    let mut epoch = 1;
    // a document under a <div>, a shadow root under the document, a sheet
    // under a <span>: each is refused whole
    for bad in [
        json!({"op": "insert", "parent": 4, "before": null,
               "node": {"id": 40, "type": "document", "children": []}}),
        json!({"op": "insert", "parent": 1, "before": null,
               "node": {"id": 41, "type": "shadow", "children": []}}),
        json!({"op": "insert", "parent": 14, "before": null,
               "node": {"id": 42, "type": "sheet", "css": "b{}"}}),
        json!({"op": "insert", "parent": 12, "before": null,
               "node": {"id": 43, "type": "text", "text": "under a text node"}}),
    ] {
        c.send(mutations(epoch, json!([bad]))).await;
        assert_eq!(c.recv_type("error").await["code"], "rewrite", "{bad}");
        c.recv_type("resync").await;
        a.recv_type("resync").await;
        epoch += 1;
        c.send(widget_page(epoch)).await;
        a.recv_type("snapshot").await;
        c.recv_type("rules").await;
    }
}

#[tokio::test]
async fn the_depth_and_node_limits_count_shadow_and_frame_content() {
    let mut opts = TestOptions::default();
    // document, html, body, form, pay-widget, shadow, input: 7 levels
    opts.limits.max_depth = 6;
    let app = spawn_app_with(opts).await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(widget_page(1)).await;
    assert_eq!(c.recv_type("error").await["code"], "too_deep");

    let mut opts = TestOptions::default();
    // frame_page has 9 nodes; the frame's document brings 5 of them
    opts.limits.max_nodes = 8;
    let app = spawn_app_with(opts).await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(frame_page(1)).await;
    assert_eq!(c.recv_type("error").await["code"], "too_many_nodes");
}

#[tokio::test]
async fn cssom_sheets_are_passed_like_style_text_and_follow_text_ops() {
    let app = spawn_app().await;
    publish(&app, &[(".secret-style", Action::Mask)]).await;
    let page = snapshot(
        1,
        json!([
            el(
                5,
                "style",
                json!({}),
                json!([
                    {"id": 6, "type": "sheet", "css": ".a { color: red; }"}
                ])
            ),
            el(
                7,
                "style",
                json!({"class": "secret-style"}),
                json!([
                    {"id": 8, "type": "sheet", "css": ".b::after { content: \"Jane Roe\"; }"}
                ])
            ),
            el(
                9,
                "my-card",
                json!({}),
                json!([{"id": 10, "type": "shadow", "children": [
                    {"id": 11, "type": "sheet", "css": ":host { display: block; }"},
                    text(12, "in shadow")
                ]}])
            )
        ]),
    );
    let (mut c, mut a, first) = session(&app, page).await;
    assert_eq!(
        find(&first["root"], 6).unwrap()["css"],
        ".a { color: red; }"
    );
    assert_eq!(
        find(&first["root"], 11).unwrap()["css"],
        ":host { display: block; }"
    );
    let s = first.to_string();
    assert!(
        !s.contains("Jane Roe"),
        "a masked style's sheet is masked: {s}"
    );
    c.send(mutations(
        1,
        json!([
            {"op": "text", "id": 6, "text": ".a { color: red; } .c { margin: 0; }"},
            {"op": "text", "id": 8, "text": ".b::after { content: \"John Doe\"; }"},
            {"op": "insert", "parent": 1, "before": null, "node":
                {"id": 13, "type": "sheet", "css": "body { margin: 3px; }"}}
        ]),
    ))
    .await;
    let m = a.recv_type("mutations").await;
    let s = m.to_string();
    assert!(s.contains(".c { margin: 0; }"), "{s}");
    assert!(s.contains("body { margin: 3px; }"), "an adopted sheet: {s}");
    assert!(!s.contains("John Doe"), "{s}");
}

#[tokio::test]
async fn placeholders_reach_the_agent_with_a_safe_size() {
    let app = spawn_app().await;
    let page = snapshot(
        1,
        json!([
            el(
                5,
                "iframe",
                json!({"src": "https://other.example/"}),
                json!([
                    {"id": 6, "type": "placeholder", "kind": "frame", "w": 300.5, "h": 150.0}
                ])
            ),
            el(
                7,
                "canvas",
                json!({}),
                json!([
                    {"id": 8, "type": "placeholder", "kind": "canvas", "w": 1e300, "h": -4.0}
                ])
            ),
        ]),
    );
    let (_c, _a, first) = session(&app, page).await;
    let p = find(&first["root"], 6).unwrap();
    assert_eq!(p["type"], "placeholder");
    assert_eq!(p["kind"], "frame");
    assert_eq!(p["w"], 300.5);
    let p = find(&first["root"], 8).unwrap();
    assert_eq!(p["w"], 100000.0);
    assert_eq!(p["h"], 0.0);
    // an unknown kind is a malformed frame
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(snapshot(
        1,
        json!([el(
            5,
            "div",
            json!({}),
            json!([
                {"id": 6, "type": "placeholder", "kind": "video", "w": 1.0, "h": 1.0}
            ])
        )]),
    ))
    .await;
    assert_eq!(c.recv_type("error").await["code"], "malformed");
}

#[tokio::test]
async fn agent_actions_inside_shadow_roots_and_frames_follow_the_rules_there() {
    let app = spawn_app().await;
    publish(
        &app,
        &[
            ("form.pay #holder", Action::Mask),
            ("#card", Action::Disable),
        ],
    )
    .await;
    let page = snapshot(
        1,
        json!([
            el(
                5,
                "form",
                json!({"class": "pay"}),
                json!([el(
                    10,
                    "pay-widget",
                    json!({}),
                    json!([
                        {"id": 11, "type": "shadow", "children": [
                            {"id": 13, "type": "element", "tag": "input", "attrs": {"id": "holder"}, "value": ""},
                            {"id": 14, "type": "element", "tag": "input", "attrs": {"id": "nick"}, "value": ""}
                        ]}
                    ])
                )])
            ),
            el(
                20,
                "iframe",
                json!({}),
                json!([{"id": 21, "type": "document", "children": [
                    el(22, "html", json!({}), json!([el(23, "body", json!({}), json!([
                        {"id": 25, "type": "element", "tag": "input", "attrs": {"id": "card"}, "value": ""}
                    ]))]))
                ]}])
            )
        ]),
    );
    let (mut c, mut a, _first) = session(&app, page).await;
    a.send(json!({"t": "control", "request": true})).await;
    c.recv_type("control").await;
    c.send(json!({"t": "control", "grant": true})).await;
    a.recv_type("mode").await;
    a.send(json!({"t": "input", "id": 13, "value": "x"})).await;
    assert_eq!(a.recv_type("denied").await["reason"], "masked");
    a.send(json!({"t": "click", "id": 25})).await;
    assert_eq!(a.recv_type("denied").await["reason"], "disabled");
    a.send(json!({"t": "input", "id": 14, "value": "ok"})).await;
    assert_eq!(
        c.recv_type("input").await,
        json!({"t": "input", "id": 14, "value": "ok"})
    );
}
