//! End-state masking (issue 7, item 2): restrictions are decided on the
//! state at the end of a batch, and no message carries a value that is not
//! visible at that end — including in-between states within the batch and
//! nodes inserted and removed within it. The harness also checks the agent's
//! copy against the oracle after every batch.

use super::support::*;
use cobrowse::protocol::Op;
use cobrowse::rules::{Action, SiteSettings};

const URL: &str = "https://shop.example/account";

fn mask(sel: &str) -> std::sync::Arc<cobrowse::rules::CompiledRules> {
    compiled(&[rule(sel, Action::Mask)], SiteSettings::default())
}

#[test]
fn a_batch_that_lifts_a_mask_and_replaces_the_text_never_shows_the_old_secret() {
    let mut s = Session::new(
        mask(".m"),
        "<div id=box class=m><span>OLD-SECRET</span><input id=f></div>",
        URL,
    );
    let boxed = s.id("#box");
    let t = s.first_child("#box span");
    let f = s.id("#f");
    s.batch(vec![Op::Value {
        id: f,
        value: "OLDVALUE".into(),
        checked: None,
    }]);
    s.batch(vec![
        Op::Attr {
            id: boxed,
            name: "class".into(),
            value: None,
        },
        Op::Text {
            id: t,
            text: "new public text".into(),
        },
        Op::Value {
            id: f,
            value: "new value".into(),
            checked: None,
        },
    ]);
    assert!(!s.ever_sent("OLD-SECRET"), "{:?}", s.sent);
    assert!(!s.ever_sent("OLDVALUE"), "{:?}", s.sent);
    assert!(s.agent_json().contains("new public text"));
}

#[test]
fn text_inserted_under_a_mask_and_removed_in_the_same_batch_never_goes_out() {
    let mut s = Session::new(mask(".m"), "<div id=p><b>x</b></div>", URL);
    let p = s.id("#p");
    s.batch(vec![
        Op::Insert {
            parent: p,
            before: None,
            node: text(1000, "TRANSIENT-SECRET"),
        },
        Op::Attr {
            id: p,
            name: "class".into(),
            value: Some("m".into()),
        },
        Op::Remove { id: 1000 },
    ]);
    assert!(!s.ever_sent("TRANSIENT-SECRET"), "{:?}", s.sent);
}

#[test]
fn an_element_inserted_in_clear_then_masked_and_removed_never_goes_out() {
    let mut s = Session::new(mask(".m"), "<div id=p></div>", URL);
    let p = s.id("#p");
    s.batch(vec![
        Op::Insert {
            parent: p,
            before: None,
            node: el(
                1000,
                "input",
                &[("id", "x"), ("placeholder", "PLACEHOLDER-SECRET")],
                vec![],
            ),
        },
        Op::Value {
            id: 1000,
            value: "VALUE-SECRET".into(),
            checked: None,
        },
        Op::Attr {
            id: 1000,
            name: "class".into(),
            value: Some("m".into()),
        },
        Op::Remove { id: 1000 },
    ]);
    assert!(!s.ever_sent("PLACEHOLDER-SECRET"), "{:?}", s.sent);
    assert!(!s.ever_sent("VALUE-SECRET"), "{:?}", s.sent);
}

#[test]
fn intermediate_values_of_one_field_within_a_batch_are_not_sent() {
    let mut s = Session::new(mask(".m"), "<div id=p><input id=f></div>", URL);
    let f = s.id("#f");
    let p = s.id("#p");
    let out = s.batch(vec![
        Op::Value {
            id: f,
            value: "FIRST-DRAFT".into(),
            checked: None,
        },
        Op::Value {
            id: f,
            value: "final".into(),
            checked: None,
        },
        Op::Attr {
            id: p,
            name: "title".into(),
            value: Some("t".into()),
        },
    ]);
    let json = serde_json::to_string(&out).unwrap();
    assert!(!json.contains("FIRST-DRAFT"), "{json}");
    assert!(json.contains("final"), "{json}");
}

#[test]
fn a_node_moved_out_of_a_mask_shows_only_its_end_state() {
    let mut s = Session::new(
        mask(".m"),
        "<div class=m id=src><p id=moved>MOVED-TEXT</p></div><div id=dst></div>",
        URL,
    );
    let moved = s.id("#moved");
    let dst = s.id("#dst");
    let t = s.first_child("#moved");
    // The snippet sends a move as remove + insert with the same ids.
    s.batch(vec![
        Op::Remove { id: moved },
        Op::Insert {
            parent: dst,
            before: None,
            node: el(moved, "p", &[("id", "moved")], vec![text(t, "MOVED-TEXT")]),
        },
        Op::Text {
            id: t,
            text: "now public".into(),
        },
    ]);
    assert!(!s.ever_sent("MOVED-TEXT"), "{:?}", s.sent);
    assert!(s.agent_json().contains("now public"));
}

#[test]
fn a_show_password_toggle_keeps_the_field_masked_like_the_oracle() {
    let mut s = Session::new(
        mask(".nothing"),
        "<div><input id=f type=text value=v></div>",
        URL,
    );
    let f = s.id("#f");
    let attr = |name: &str, value: &str| Op::Attr {
        id: f,
        name: name.into(),
        value: Some(value.into()),
    };
    s.batch(vec![
        attr("type", "password"),
        attr("data-cobrowse-password", "1"),
    ]);
    s.batch(vec![Op::Value {
        id: f,
        value: "PW-SECRET".into(),
        checked: None,
    }]);
    s.batch(vec![attr("type", "text")]);
    assert!(!s.ever_sent("PW-SECRET"), "{:?}", s.sent);
}
