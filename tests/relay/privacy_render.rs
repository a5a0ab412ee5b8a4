//! The rendering leaks of issue 7 over real sockets (real server on port 0,
//! customer and agent WebSockets): one test per leak, named after it. Each
//! drives the customer side as the snippet would and checks what the
//! agent's socket receives.

use crate::common::spawn_app;
use crate::common::{sample_snapshot, TestApp, WsClient, SOON};
use cobrowse::rules::{Action, PrivacyLevel, SiteSettings};
use serde_json::{json, Value};

/// Publish `rules` + `settings` for the demo site before any session.
async fn publish(app: &TestApp, rules: &[(&str, Action)], settings: SiteSettings) {
    let rules: Vec<_> = rules.iter().map(|&(s, a)| (s, a, None)).collect();
    app.publish_demo_rules(&rules, settings).await;
}

/// A session whose first snapshot is `body` (children of `<body>`, id 4)
/// at `url`; returns (customer, agent, the agent's snapshot).
async fn session_with(
    app: &TestApp,
    url: &str,
    title: &str,
    body: Value,
) -> (WsClient, WsClient, Value) {
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("session").await;
    c.recv_type("rules").await;
    let mut snap = sample_snapshot("x");
    snap["url"] = json!(url);
    snap["title"] = json!(title);
    snap["root"]["children"][1]["children"][0]["children"] = body;
    c.send(snap).await;
    c.recv_type("rules").await;
    let mut a = app.agent(&id).await;
    let s = a.recv_type("snapshot").await;
    c.recv_until(|m| m["t"] == "session" && m["state"] == "active", SOON)
        .await;
    (c, a, s)
}

fn text(id: u64, t: &str) -> Value {
    json!({"id": id, "type": "text", "text": t})
}

fn el(id: u64, tag: &str, attrs: Value, children: Vec<Value>) -> Value {
    json!({"id": id, "type": "element", "tag": tag, "attrs": attrs, "children": children})
}

/// The longest run of clear ASCII digits (up to 3 separators between) in `s`.
fn longest_clear_digits(s: &str) -> usize {
    let (mut best, mut cur, mut seps) = (0, 0, 0);
    for c in s.chars() {
        if c.is_ascii_digit() {
            cur += 1;
            seps = 0;
            best = best.max(cur);
        } else if " -.\u{a0}\u{2009}\u{202f}\u{2007}".contains(c) && seps < 3 {
            seps += 1;
        } else {
            cur = 0;
            seps = 0;
        }
    }
    best
}

async fn grant_write(c: &mut WsClient, a: &mut WsClient) {
    a.send(json!({"t": "control", "request": true})).await;
    c.recv_type("control").await;
    c.send(json!({"t": "control", "grant": true})).await;
    a.recv_until(|m| m["t"] == "mode" && m["mode"] == "write", SOON)
        .await;
}

#[tokio::test]
async fn card_number_typed_key_by_key_reaches_the_agent_as_at_most_six_digits() {
    let app = spawn_app().await;
    let (mut c, mut a, _) = session_with(
        &app,
        "http://shop.test/checkout",
        "Checkout",
        json!([el(10, "input", json!({"name": "card"}), vec![])]),
    )
    .await;
    let card = "4111 1111 1111 1111";
    for n in 1..=card.len() {
        c.send(json!({"t": "mutations", "ops": [{"op": "value", "id": 10, "value": &card[..n]}]}))
            .await;
        let m = a.recv_type("mutations").await.to_string();
        assert!(longest_clear_digits(&m) <= 6, "{}: {m}", &card[..n]);
    }
    // detector-masked: the agent may not type the mask back into it
    grant_write(&mut c, &mut a).await;
    a.send(json!({"t": "input", "id": 10, "value": "4111 11•• •••• ••••"}))
        .await;
    let d = a.recv_type("denied").await;
    assert_eq!(d["reason"], "masked", "{d}");
}

#[tokio::test]
async fn card_number_split_across_inline_elements_is_masked() {
    let app = spawn_app().await;
    let spans: Vec<Value> = (0..4u64)
        .flat_map(|i| {
            [
                el(
                    10 + 2 * i,
                    "span",
                    json!({}),
                    vec![text(11 + 2 * i, if i == 0 { "4111" } else { "1111" })],
                ),
                text(30 + i, " "),
            ]
        })
        .collect();
    let (mut c, mut a, s) = session_with(
        &app,
        "http://shop.test/receipt",
        "Receipt",
        json!([el(9, "p", json!({}), spans)]),
    )
    .await;
    let s = s.to_string();
    assert!(!s.contains("4111"), "{s}");
    // over mutations: the number broken (shown), then completed again
    c.send(json!({"t": "mutations", "ops": [{"op": "text", "id": 17, "text": "111"}]}))
        .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(m.contains("4111"), "{m}");
    c.send(json!({"t": "mutations", "ops": [
        {"op": "text", "id": 17, "text": "1111"},
    ]}))
    .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(!m.contains("4111") && !m.contains("1111"), "{m}");
}

#[tokio::test]
async fn password_and_masked_select_values_have_fixed_length_masks() {
    let app = spawn_app().await;
    publish(
        &app,
        &[("input[type=password], select", Action::Mask)],
        SiteSettings::default(),
    )
    .await;
    let (mut c, mut a, _) = session_with(
        &app,
        "http://shop.test/login",
        "Login",
        json!([
            el(10, "input", json!({"type": "password"}), vec![]),
            el(
                11,
                "select",
                json!({}),
                vec![
                    el(12, "option", json!({}), vec![text(13, "UK")]),
                    el(14, "option", json!({}), vec![text(15, "United States")]),
                ]
            ),
        ]),
    )
    .await;
    for (id, v) in [
        (10, "a"),
        (10, "a much longer password"),
        (11, "UK"),
        (11, "United States"),
    ] {
        c.send(json!({"t": "mutations", "ops": [{"op": "value", "id": id, "value": v}]}))
            .await;
        let m = a.recv_type("mutations").await;
        assert_eq!(m["ops"][0]["value"], "••••••••", "{m}");
    }
}

#[tokio::test]
async fn masked_elements_keep_no_urls_styles_or_uppercase_attributes() {
    let app = spawn_app().await;
    publish(&app, &[(".m", Action::Mask)], SiteSettings::default()).await;
    let (mut c, mut a, _) = session_with(
        &app,
        "http://shop.test/profile",
        "Profile",
        json!([el(10, "div", json!({"class": "m"}), vec![])]),
    )
    .await;
    c.send(
        json!({"t": "mutations", "ops": [{"op": "insert", "parent": 10, "before": null, "node":
        el(20, "a", json!({
            "href": "mailto:ann@example.com", "HREF": "tel:+15551234",
            "style": "width: 5px; background: url(data:,ANNDATA); --who: 'ann'",
            "datetime": "1990-02-03", "for": "ssn", "XLINK:HREF": "/u/ann",
            "data-user": "ann", "TITLE": "Ann Lee", "class": "link"
        }), vec![text(21, "Ann")])}]}),
    )
    .await;
    let m = a.recv_type("mutations").await.to_string();
    for secret in ["ann", "Ann", "1555", "1990", "ssn", "ANNDATA"] {
        assert!(!m.contains(secret), "{secret} leaked: {m}");
    }
    assert!(
        m.contains("width: 5px") && m.contains("\"class\":\"link\""),
        "{m}"
    );
}

#[tokio::test]
async fn page_url_query_and_fragment_never_reach_the_agent() {
    let app = spawn_app().await;
    let (_c, _a, s) = session_with(
        &app,
        "http://shop.test/reset?email=ann@example.com&token=T0KEN#step2",
        "Reset password",
        json!([]),
    )
    .await;
    assert_eq!(s["url"], "http://shop.test/reset", "{s}");
    assert_eq!(s["title"], "Reset password");
}

#[tokio::test]
async fn mask_all_keeps_stylesheet_text_and_button_labels() {
    let app = spawn_app().await;
    let settings = SiteSettings {
        privacy: PrivacyLevel::MaskAll,
        ..SiteSettings::default()
    };
    publish(&app, &[], settings).await;
    let (_c, _a, s) = session_with(
        &app,
        "http://shop.test/account",
        "Account",
        json!([
            el(
                10,
                "style",
                json!({}),
                vec![text(11, ".card { width: 20em }")]
            ),
            el(
                12,
                "button",
                json!({"type": "button"}),
                vec![text(13, "Show details")]
            ),
            el(
                14,
                "input",
                json!({"type": "submit", "value": "Send order"}),
                vec![]
            ),
            el(15, "p", json!({}), vec![text(16, "Balance 1,234.56")]),
        ]),
    )
    .await;
    let s = s.to_string();
    assert!(
        s.contains(".card { width: 20em }")
            && s.contains("Show details")
            && s.contains("Send order"),
        "{s}"
    );
    assert!(!s.contains("Balance") && !s.contains("Account"), "{s}");
}

#[tokio::test]
async fn mask_inputs_covers_contenteditable_and_leaves_button_labels() {
    let app = spawn_app().await;
    let settings = SiteSettings {
        privacy: PrivacyLevel::MaskInputs,
        ..SiteSettings::default()
    };
    publish(&app, &[], settings).await;
    let (mut c, mut a, s) = session_with(
        &app,
        "http://shop.test/support",
        "Support",
        json!([
            el(
                10,
                "div",
                json!({"contenteditable": "true"}),
                vec![text(11, "draft")]
            ),
            el(
                12,
                "input",
                json!({"type": "submit", "value": "Send message"}),
                vec![]
            ),
        ]),
    )
    .await;
    let s = s.to_string();
    assert!(s.contains("Send message") && !s.contains("draft"), "{s}");
    c.send(json!({"t": "mutations", "ops": [{"op": "text", "id": 11, "text": "my address is 1 Main St"}]}))
        .await;
    let m = a.recv_type("mutations").await.to_string();
    assert!(!m.contains("Main"), "{m}");
}

#[tokio::test]
async fn event_handlers_and_srcdoc_in_upper_case_never_reach_the_agent() {
    let app = spawn_app().await;
    let (_c, _a, s) = session_with(
        &app,
        "http://shop.test/",
        "Shop",
        json!([
            el(
                10,
                "div",
                json!({"ONCLICK": "steal()", "OnMouseOver": "steal()"}),
                vec![]
            ),
            el(11, "iframe", json!({"SRCDOC": "<b>inner</b>"}), vec![]),
        ]),
    )
    .await;
    let s = s.to_string().to_ascii_lowercase();
    assert!(!s.contains("steal") && !s.contains("inner"), "{s}");
}
