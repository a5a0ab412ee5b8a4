//! No stall (issue 8, item 6): rewriting runs off the async workers under a
//! time budget per frame, and rules are checked against a complexity budget
//! at validation. A hostile page ends its own session with a reason; other
//! sessions and `/healthz` keep answering.

use crate::common::{sample_snapshot, spawn_app_with, TestOptions, SOON};
use cobrowse::rules::{Action, CompiledRules, Rule};
use serde_json::{json, Value};

/// A snapshot with `n` nested-enough elements to be costly to rewrite.
fn heavy_snapshot(n: usize) -> Value {
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": 1000 + 2 * i, "type": "element", "tag": "div",
                   "attrs": {"class": format!("row r{}", i % 97)},
                   "children": [{"id": 1001 + 2 * i, "type": "text", "text": "cell"}]})
        })
        .collect();
    let mut s = sample_snapshot("heavy");
    s["root"]["children"][1]["children"][0]["children"] = json!(rows);
    s
}

#[tokio::test]
async fn a_page_over_the_rewrite_budget_ends_its_session_and_others_carry_on() {
    let mut opts = TestOptions::default();
    opts.limits.rewrite_budget_ms = 50;
    let app = spawn_app_with(opts).await;
    // A healthy session on the same server.
    let (_id, _t, mut other_c, mut other_a) = app.active_session().await;
    // The hostile one: a page far too heavy for the budget.
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("rules").await;
    c.send(heavy_snapshot(40_000)).await;
    assert_eq!(c.recv_ended().await, "overloaded");
    let row = app.ended_history(&id).await;
    assert_eq!(row.end_reason.as_deref(), Some("overloaded"));
    // The server and the other session go on.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(health.status().is_success());
    other_c
        .send(json!({"t": "pointer", "x": 5.0, "y": 6.0}))
        .await;
    assert_eq!(other_a.recv_type("pointer").await["x"], 5.0);
    other_c
        .send(json!({"t": "mutations", "ops": [{"op": "text", "id": 6, "text": "still live"}]}))
        .await;
    let m = other_a.recv_until(|m| m["t"] == "mutations", SOON).await;
    assert_eq!(m["ops"][0]["text"], "still live");
}

#[test]
fn a_pathological_selector_is_refused_at_validation_with_a_message() {
    let classes: Vec<String> = (0..30_000).map(|i| format!(".c{i}")).collect();
    let huge = format!(":not({})", classes.join(","));
    let few: Vec<String> = (0..600).map(|i| format!(".c{i}")).collect();
    let wide = format!("div:not({})", few.join(","));
    for selector in [huge, wide] {
        let rules = vec![Rule {
            selector: selector.clone(),
            action: Action::Mask,
            url: None,
            description: String::new(),
            enabled: true,
        }];
        let errors = CompiledRules::validate_all(&rules);
        assert_eq!(errors.len(), 1, "{selector:.60}");
        let message = errors[0].to_string();
        assert!(
            message.contains("too long") || message.contains("too complex"),
            "{message:.300}"
        );
        assert!(CompiledRules::compile(&rules, Default::default()).is_err());
    }
}

#[tokio::test]
async fn a_mirror_over_its_memory_budget_is_refused_with_a_clear_error() {
    let mut opts = TestOptions::default();
    opts.limits.max_mirror_bytes = 256 * 1024;
    let app = spawn_app_with(opts).await;
    let (_id, _t, mut c, mut a) = app.active_session().await;
    // A batch that would grow the mirror past the budget is refused whole:
    // the session resyncs instead of holding it.
    let rows: Vec<Value> = (0..3000)
        .map(|i| json!({"id": 5000 + i, "type": "element", "tag": "i"}))
        .collect();
    c.send(
        json!({"t": "mutations", "ops": [{"op": "insert", "parent": 4, "before": null,
        "node": {"id": 4999, "type": "element", "tag": "div", "children": rows}}]}),
    )
    .await;
    let e = c.recv_type("error").await;
    assert_eq!(e["code"], "rewrite");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("too large to co-browse"),
        "{e}"
    );
    a.recv_type("resync").await;
    // A snapshot over the budget is refused the same way; a small one is fine.
    c.send(heavy_snapshot(3000)).await;
    let e = c.recv_type("error").await;
    assert!(e["message"].as_str().unwrap().contains("MiB"), "{e}");
    c.send(sample_snapshot("small page")).await;
    let snap = a.recv_type("snapshot").await;
    assert!(snap.to_string().contains("small page"));
}
