//! One test per known leak vector (design §5, issue 3): each drives a real
//! rewriter through the path that leaked in other replay tools and checks
//! that no message carries the secret and the agent copy equals the oracle
//! (the harness checks the oracle after every step).

use super::support::*;
use cobrowse::policy::{check, Verdict};
use cobrowse::protocol::{AgentMsg, Mode, Op, SessionState};
use cobrowse::rewrite::Restriction;
use cobrowse::rules::{Action, Detectors, PrivacyLevel, SiteSettings};

fn mask(sel: &str) -> std::sync::Arc<cobrowse::rules::CompiledRules> {
    compiled(&[rule(sel, Action::Mask)], SiteSettings::default())
}

const URL: &str = "https://shop.example/checkout";

#[test]
fn text_added_later_inside_masked_element() {
    let mut s = Session::new(
        mask(".secret"),
        "<div class=secret><span>x</span></div>",
        URL,
    );
    let span = s.id(".secret span");
    let out = s.batch(vec![Op::Insert {
        parent: span,
        before: None,
        node: text(1000, "LATE SECRET"),
    }]);
    let json = serde_json::to_string(&out).unwrap();
    assert!(
        !json.contains("LATE") && json.contains("•••• ••••••"),
        "{json}"
    );
    let out = s.batch(vec![Op::Text {
        id: 1000,
        text: "CHANGED".into(),
    }]);
    assert_eq!(
        out,
        vec![Op::Text {
            id: 1000,
            text: "•••••••".into()
        }]
    );
    assert!(!s.ever_sent("SECRET") && !s.ever_sent("CHANGED"));
}

#[test]
fn text_node_moved_out_of_and_into_masked_subtree() {
    let mut s = Session::new(
        mask(".secret"),
        "<div class=secret>HIDDEN</div><div id=open>PUBLIC</div>",
        URL,
    );
    let (secret, open) = (s.id(".secret"), s.id("#open"));
    let (hidden_text, public_text) = (s.first_child(".secret"), s.first_child("#open"));
    // into the masked subtree
    s.batch(vec![
        Op::Remove { id: public_text },
        Op::Insert {
            parent: secret,
            before: None,
            node: text(public_text, "PUBLIC"),
        },
    ]);
    assert!(!s.agent_json().contains("PUBLIC"));
    // out of it: now unmasked, the agent may see it
    s.batch(vec![
        Op::Remove { id: hidden_text },
        Op::Insert {
            parent: open,
            before: None,
            node: text(hidden_text, "HIDDEN"),
        },
    ]);
    assert!(s.agent_json().contains("HIDDEN"));
    // inserted in clear and moved into the masked subtree in the same batch:
    // the batch message must not carry it
    let out = s.batch(vec![
        Op::Insert {
            parent: open,
            before: None,
            node: text(2000, "SNEAKY"),
        },
        Op::Remove { id: 2000 },
        Op::Insert {
            parent: secret,
            before: None,
            node: text(2000, "SNEAKY"),
        },
    ]);
    assert!(!serde_json::to_string(&out).unwrap().contains("SNEAKY"));
}

#[test]
fn class_toggled_on_ancestor_masks_and_unmasks_descendants() {
    let mut s = Session::new(
        mask(".private"),
        "<section><p>CARDHOLDER <b>NAME</b></p></section>",
        URL,
    );
    let sec = s.id("section");
    let out = s.batch(vec![Op::Attr {
        id: sec,
        name: "class".into(),
        value: Some("private".into()),
    }]);
    let json = serde_json::to_string(&out).unwrap();
    assert!(
        !json.contains("CARDHOLDER") && !json.contains("NAME"),
        "{json}"
    );
    assert!(json.contains("data-cobrowse-masked"));
    s.batch(vec![Op::Attr {
        id: sec,
        name: "class".into(),
        value: None,
    }]);
    assert!(s.agent_json().contains("CARDHOLDER"));
    // a descendant-combinator rule reacting to an ancestor class
    let mut s = Session::new(mask(".private p"), "<section><p>PIN</p></section>", URL);
    let sec = s.id("section");
    let out = s.batch(vec![Op::Attr {
        id: sec,
        name: "class".into(),
        value: Some("x private".into()),
    }]);
    assert!(!serde_json::to_string(&out).unwrap().contains("PIN"));
}

#[test]
fn sibling_inserted_changes_nth_child_adjacent_and_general_matching() {
    let mut s = Session::new(
        mask("li:nth-child(2)"),
        "<ul><li>ONE</li><li>TWO</li></ul>",
        URL,
    );
    let ul = s.id("ul");
    let first = s.id("li");
    let out = s.batch(vec![Op::Insert {
        parent: ul,
        before: Some(first),
        node: el(1000, "li", &[], vec![text(1001, "ZERO")]),
    }]);
    assert!(!serde_json::to_string(&out).unwrap().contains("ONE"));
    assert!(s.agent_json().contains("TWO") && s.agent_json().contains("ZERO"));

    let mut s = Session::new(mask("h2 + p"), "<div><p>ADJ</p></div>", URL);
    let (div, p) = (s.id("div"), s.id("p"));
    let out = s.batch(vec![Op::Insert {
        parent: div,
        before: Some(p),
        node: el(1000, "h2", &[], vec![]),
    }]);
    assert!(!serde_json::to_string(&out).unwrap().contains("ADJ"));
    s.batch(vec![Op::Remove { id: 1000 }]);
    assert!(s.agent_json().contains("ADJ"));

    let mut s = Session::new(mask("h2 ~ p"), "<div><span></span><p>GEN</p></div>", URL);
    let (div, span) = (s.id("div"), s.id("span"));
    let out = s.batch(vec![Op::Insert {
        parent: div,
        before: Some(span),
        node: el(1000, "h2", &[], vec![]),
    }]);
    assert!(!serde_json::to_string(&out).unwrap().contains("GEN"));
}

#[test]
fn value_op_on_masked_input() {
    let mut s = Session::new(mask("input[name=card]"), "<input name=card>", URL);
    let input = s.id("input");
    let out = s.batch(vec![Op::Value {
        id: input,
        value: "HUNTER2".into(),
        checked: None,
    }]);
    assert_eq!(
        out,
        vec![Op::Value {
            id: input,
            value: "•••••••".into(),
            checked: None
        }]
    );
}

#[test]
fn value_attribute_set_by_script() {
    let mut s = Session::new(mask("input[name=card]"), "<input name=card>", URL);
    let input = s.id("input");
    let out = s.batch(vec![Op::Attr {
        id: input,
        name: "value".into(),
        value: Some("SCRIPTSET".into()),
    }]);
    assert_eq!(
        out,
        vec![Op::Attr {
            id: input,
            name: "value".into(),
            value: Some("•••••••••".into())
        }]
    );
}

#[test]
fn placeholder_title_alt_aria_label_on_masked_elements() {
    let html = r#"<div class=m><input placeholder="PH" title="TT" aria-label="AL" name="NM" value="VAL" data-x="DX">
        <img alt="ALT" src="/img.png?user=QUERY#FRAG"><a href="/u?token=TOKEN">link</a>
        <iframe srcdoc="SRCDOC"></iframe><p style="color: red; background: url(/t?q=STYLEURL)">s</p>
        <input type=submit value="SUBMITVAL"></div>"#;
    let s = Session::new(mask(".m"), html, URL);
    let json = s.agent_json();
    for secret in [
        "PH",
        "TT",
        "AL",
        "NM",
        "VAL",
        "DX",
        "ALT",
        "QUERY",
        "FRAG",
        "TOKEN",
        "SRCDOC",
        "STYLEURL",
        "SUBMITVAL",
    ] {
        assert!(!json.contains(secret), "{secret} leaked: {json}");
    }
    // the allow-list: URLs and colours go, layout stays
    assert!(
        !json.contains("/img.png") && !json.contains("color: red") && !json.contains("/u"),
        "{json}"
    );
    // and the same attributes set later by script
    let mut s = Session::new(mask(".m"), "<div class=m><img></div>", URL);
    let img = s.id("img");
    for name in ["title", "alt", "aria-label", "placeholder"] {
        let out = s.batch(vec![Op::Attr {
            id: img,
            name: name.into(),
            value: Some("LATEATTR".into()),
        }]);
        assert!(!serde_json::to_string(&out).unwrap().contains("LATEATTR"));
    }
}

#[test]
fn option_text_of_masked_select() {
    let s = Session::new(
        mask("select.m"),
        "<select class=m><option value=visa selected>Visa</option><option>Amex</option></select>",
        URL,
    );
    let json = s.agent_json();
    assert!(
        !json.contains("Visa") && !json.contains("Amex") && !json.contains("visa"),
        "{json}"
    );
    assert!(
        !json.contains("\"selected\""),
        "initially selected option leaked: {json}"
    );
}

#[test]
fn textarea_content() {
    let mut s = Session::new(mask("textarea"), "<textarea>NOTES line</textarea>", URL);
    assert!(!s.agent_json().contains("NOTES"));
    let ta = s.id("textarea");
    let out = s.batch(vec![Op::Value {
        id: ta,
        value: "TYPED".into(),
        checked: None,
    }]);
    assert!(!serde_json::to_string(&out).unwrap().contains("TYPED"));
}

#[test]
fn masked_svg_text() {
    let s = Session::new(
        mask("svg.m"),
        "<svg class=m><text>SVGSECRET</text><title>TIP</title></svg>",
        URL,
    );
    let json = s.agent_json();
    assert!(
        !json.contains("SVGSECRET") && !json.contains("TIP"),
        "{json}"
    );
}

#[test]
fn rule_publish_mid_session_both_directions() {
    let mut s = Session::new(
        mask(".none"),
        "<p class=bal>1,234.56 EUR</p><p>other</p>",
        URL,
    );
    assert!(s.agent_json().contains("1,234.56"));
    let out = s.publish(mask(".bal"));
    assert!(!serde_json::to_string(&out).unwrap().contains("1,234.56"));
    assert!(!out.is_empty());
    let out = s.publish(mask(".none"));
    assert!(serde_json::to_string(&out).unwrap().contains("1,234.56"));
    // a privacy level change is a publish too
    let out = s.publish(compiled(
        &[],
        SiteSettings {
            privacy: PrivacyLevel::MaskAll,
            ..SiteSettings::default()
        },
    ));
    assert!(!serde_json::to_string(&out).unwrap().contains("other"));
}

#[test]
fn url_scoped_rule_across_navigation() {
    let rules = compiled(
        &[scoped(".balance", Action::Mask, "/account/*")],
        SiteSettings::default(),
    );
    let html = "<p class=balance>BALANCE</p>";
    let mut s = Session::new(rules, html, "https://bank.example/home");
    assert!(s.agent_json().contains("BALANCE"));
    assert!(s.rw.cue().mask.is_empty());
    let snap = s.navigate(
        cobrowse::dom::html::parse_document(html),
        "https://bank.example/account/42",
    );
    assert!(!serde_json::to_string(&snap).unwrap().contains("BALANCE"));
    assert_eq!(s.rw.cue().mask, vec![".balance".to_string()]);
    s.navigate(
        cobrowse::dom::html::parse_document(html),
        "https://bank.example/help",
    );
    assert!(s.agent_json().contains("BALANCE"));
}

#[test]
fn password_switched_to_text_stays_masked() {
    let rules = compiled(&[], SiteSettings::default());
    let root = el(
        1,
        "div",
        &[],
        vec![el(2, "input", &[("type", "password")], vec![])],
    );
    let root = cobrowse::protocol::Node::Document {
        id: 100,
        children: vec![root],
    };
    let mut rw = cobrowse::rewrite::Rewriter::new(rules, unlimited());
    rw.snapshot(snap(URL, root)).unwrap();
    let out = rw
        .apply(vec![Op::Value {
            id: 2,
            value: "PW1".into(),
            checked: None,
        }])
        .unwrap();
    assert_eq!(
        out,
        vec![Op::Value {
            id: 2,
            value: "••••••••".into(),
            checked: None
        }]
    );
    let out = rw
        .apply(vec![
            Op::Attr {
                id: 2,
                name: "type".into(),
                value: Some("text".into()),
            },
            Op::Value {
                id: 2,
                value: "PW2 shown".into(),
                checked: None,
            },
        ])
        .unwrap();
    let json = serde_json::to_string(&out).unwrap();
    assert!(!json.contains("PW2"), "{json}");
    // moved elsewhere (remove + insert of the same id): still masked
    let out = rw
        .apply(vec![
            Op::Remove { id: 2 },
            Op::Insert {
                parent: 1,
                before: None,
                node: el(2, "input", &[("type", "text"), ("value", "PW3")], vec![]),
            },
        ])
        .unwrap();
    assert!(!serde_json::to_string(&out).unwrap().contains("PW3"));
    assert_eq!(rw.restriction(2), Ok(Some(Restriction::Masked)));
}

#[test]
fn card_number_detector_in_plain_text() {
    let rules = compiled(&[], SiteSettings::default());
    let mut s = Session::new(
        rules,
        "<p>Paid with 4111 1111 1111 1111 today</p><input>",
        URL,
    );
    let json = s.agent_json();
    assert!(
        !json.contains("4111") && json.contains("Paid with •••• •••• •••• •••• today"),
        "{json}"
    );
    let input = s.id("input");
    let out = s.batch(vec![Op::Value {
        id: input,
        value: "5500-0055-5555-5559".into(),
        checked: None,
    }]);
    assert!(!serde_json::to_string(&out).unwrap().contains("5559"));
    // e-mail and national id only when switched on
    let on = SiteSettings {
        detectors: Detectors {
            card: true,
            email: true,
            national_id: true,
        },
        ..SiteSettings::default()
    };
    let s = Session::new(compiled(&[], on), "<p>ann@example.com 123-45-6789</p>", URL);
    assert!(!s.agent_json().contains("ann@") && !s.agent_json().contains("6789"));
}

#[test]
fn block_keeps_an_empty_box_and_never_sends_children() {
    let rules = compiled(&[rule("#ad", Action::Block)], SiteSettings::default());
    let mut s = Session::new(
        rules,
        r#"<div id=ad class=box style="width: 10px; background: url(/x?q=1)" title=T><p>INNER</p></div>"#,
        URL,
    );
    let ad = s.id("#ad");
    let p = s.id("#ad p");
    let json = s.agent_json();
    assert!(
        !json.contains("INNER")
            && !json.contains("\"title\"")
            && json.contains("data-cobrowse-blocked"),
        "{json}"
    );
    assert!(
        json.contains("width: 10px") && !json.contains("url("),
        "{json}"
    );
    assert!(
        !json.contains(&format!("\"id\":{p},")),
        "blocked child id reached the agent"
    );
    let out = s.batch(vec![Op::Insert {
        parent: ad,
        before: None,
        node: text(1000, "MORE"),
    }]);
    assert!(out.is_empty());
    assert_eq!(s.rw.restriction(p), Ok(Some(Restriction::Blocked)));
}

/// Issue 9 item 2: the snippet's box measure of a blocked element reaches
/// the agent only as an inline size built from its two numbers, in the
/// snapshot and when it changes; a forged measure is dropped.
#[test]
fn blocked_box_measure_becomes_only_an_inline_size() {
    let rules = compiled(&[rule("#ad", Action::Block)], SiteSettings::default());
    let mut s = Session::new(
        rules,
        r#"<div id=ad data-cobrowse-box="300 200" style="display: inline-block"><p>INNER</p></div><p>after</p>"#,
        URL,
    );
    let ad = s.id("#ad");
    let json = s.agent_json();
    assert!(
        json.contains("display: inline-block; box-sizing: border-box !important; width: 300.00px")
            && json.contains("height: 200.00px")
            && !json.contains("data-cobrowse-box")
            && !json.contains("INNER"),
        "{json}"
    );
    let out = s.batch(vec![Op::Attr {
        id: ad,
        name: "data-cobrowse-box".into(),
        value: Some("320.25 180".into()),
    }]);
    let sent = serde_json::to_string(&out).unwrap();
    assert!(
        sent.contains(r#""name":"style""#) && sent.contains("width: 320.25px"),
        "{sent}"
    );
    assert!(!sent.contains("data-cobrowse-box"), "{sent}");
    let out = s.batch(vec![Op::Attr {
        id: ad,
        name: "data-cobrowse-box".into(),
        value: Some("1 2; background: url(https://evil.example/)".into()),
    }]);
    let sent = serde_json::to_string(&out).unwrap();
    assert!(!sent.contains("evil") && !sent.contains("width"), "{sent}");
}

#[test]
fn disable_marks_descendants_and_policy_denies() {
    let rules = compiled(
        &[
            rule("form.pay", Action::Disable),
            rule("input[name=cvc]", Action::Mask),
        ],
        SiteSettings::default(),
    );
    let s = Session::new(
        rules,
        "<form class=pay><button>Pay</button></form><input name=cvc><input name=q>",
        URL,
    );
    let json = s.agent_json();
    assert!(
        json.contains("data-cobrowse-disabled") && json.contains("\"disabled\":\"\""),
        "{json}"
    );
    let (button, cvc, q) = (s.id("button"), s.id("[name=cvc]"), s.id("[name=q]"));
    let verdict = |m: AgentMsg| check(&m, SessionState::Active, Mode::Write, &s.rw);
    assert!(
        matches!(verdict(AgentMsg::Click { id: button }), Verdict::Deny { reason, .. } if reason == "disabled")
    );
    assert!(
        matches!(verdict(AgentMsg::Input { id: cvc, value: "1".into() }), Verdict::Deny { reason, .. } if reason == "masked")
    );
    assert!(
        matches!(verdict(AgentMsg::Key { id: cvc, key: "1".into() }), Verdict::Deny { reason, .. } if reason == "masked")
    );
    assert!(matches!(
        verdict(AgentMsg::Input {
            id: q,
            value: "ok".into()
        }),
        Verdict::Forward(_)
    ));
    assert!(
        matches!(verdict(AgentMsg::Click { id: 99_999 }), Verdict::Deny { reason, .. } if reason == "unknown_target")
    );
    assert!(matches!(
        check(&AgentMsg::Click { id: q }, SessionState::Active, Mode::Pointer, &s.rw),
        Verdict::Deny { reason, .. } if reason == "pointer_mode"
    ));
}

#[test]
fn default_pack_masks_passwords_and_disables_submit() {
    let pack = cobrowse::rules::RulePack::from_yaml(cobrowse::rules::DEFAULT_PACK_YAML).unwrap();
    let rules = std::sync::Arc::new(cobrowse::rules::CompiledRules::from_pack(&pack).unwrap());
    let s = Session::new(rules, "<form><input type=password value=SECRETPW><button>Go</button><button type=button>x</button></form>", URL);
    assert!(!s.agent_json().contains("SECRETPW"));
    let go = s.id("button:not([type])");
    let other = s.id("button[type=button]");
    assert_eq!(s.rw.restriction(go), Ok(Some(Restriction::Disabled)));
    assert_eq!(s.rw.restriction(other), Ok(None));
}

#[test]
fn mask_inputs_level_masks_hidden_inputs_unless_unmasked() {
    let settings = SiteSettings {
        privacy: PrivacyLevel::MaskInputs,
        ..SiteSettings::default()
    };
    let rules = compiled(
        &[
            rule("#search", Action::Unmask),
            rule("#search", Action::Mask),
        ],
        settings,
    );
    let s = Session::new(
        rules.clone(),
        "<input type=hidden value=HIDDENVAL><p>TEXT</p><input id=q value=QUERY>",
        URL,
    );
    let json = s.agent_json();
    assert!(
        !json.contains("HIDDENVAL") && json.contains("TEXT") && !json.contains("QUERY"),
        "{json}"
    );
    let rules = compiled(&[rule("#q", Action::Unmask)], settings);
    let s = Session::new(rules, "<input id=q value=QUERY>", URL);
    assert!(s.agent_json().contains("QUERY"));
}

#[test]
fn failed_batch_poisons_the_mirror_until_the_next_snapshot() {
    let mut s = Session::new(mask(".m"), "<div id=a></div><div class=m></div>", URL);
    let a = s.id("#a");
    let err =
        s.rw.apply(vec![
            Op::Insert {
                parent: a,
                before: None,
                node: text(1000, "FIRST"),
            },
            Op::Insert {
                parent: 424_242,
                before: None,
                node: text(1001, "SECOND"),
            },
        ])
        .unwrap_err();
    assert_eq!(err, cobrowse::rewrite::RewriteError::UnknownNode(424_242));
    // Fail closed: the half-applied mirror is never rendered or used again
    // until the next snapshot, so nothing of the batch can go out.
    assert!(s.rw.agent_snapshot().is_none());
    assert!(s.rw.restriction(a).is_err());
    assert_eq!(
        s.rw.apply(vec![Op::Text {
            id: a,
            text: "x".into()
        }]),
        Err(cobrowse::rewrite::RewriteError::NoDocument)
    );
}

#[test]
fn event_handlers_srcdoc_and_forged_markers_never_reach_the_agent() {
    let rules = compiled(&[], SiteSettings::default());
    let s = Session::new(
        rules,
        r#"<details open onclick="x()" data-cobrowse-masked="fake"><summary>s</summary></details><iframe srcdoc="<b>hi</b>"></iframe>"#,
        URL,
    );
    let json = s.agent_json();
    assert!(
        json.contains("\"open\"")
            && !json.contains("onclick")
            && !json.contains("fake")
            && !json.contains("srcdoc"),
        "{json}"
    );
}

fn json<T: serde::Serialize>(x: &T) -> String {
    serde_json::to_string(x).unwrap()
}

/// The longest run of clear ASCII digits (separators allowed) in `s`.
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

#[test]
fn card_number_typed_key_by_key_never_shows_more_than_six_digits() {
    let rules = compiled(&[], SiteSettings::default());
    let html = "<input id=cc><input id=sp type=search><textarea id=ta></textarea>\
                <input id=tel type=tel><input id=ac autocomplete=tel-national>";
    let mut s = Session::new(rules, html, URL);
    for (field, card) in [
        ("#cc", "4111111111111111"),
        ("#sp", "4111 1111 1111 1111"),
        ("#ta", "5500-0055-5555-5559"),
        ("#cc", "4111.1111\u{a0}1111\u{2009}1111"),
    ] {
        let id = s.id(field);
        for n in 1..=card.chars().count() {
            let typed: String = card.chars().take(n).collect();
            let out = s.batch(vec![Op::Value {
                id,
                value: typed.clone(),
                checked: None,
            }]);
            let sent = json(&out);
            assert!(longest_clear_digits(&sent) <= 6, "{typed}: {sent}");
        }
        // the field is detector-masked: the agent may not type into it
        let verdict = check(
            &AgentMsg::Input {
                id,
                value: "0".into(),
            },
            SessionState::Active,
            Mode::Write,
            &s.rw,
        );
        assert!(
            matches!(verdict, Verdict::Deny { ref reason, .. } if reason == "masked"),
            "{field}: {verdict:?}"
        );
    }
    // tel fields stay visible and typable
    for field in ["#tel", "#ac"] {
        let id = s.id(field);
        let out = s.batch(vec![Op::Value {
            id,
            value: "+44 20 7946 0958".into(),
            checked: None,
        }]);
        assert!(json(&out).contains("7946 0958"), "{field}");
        assert_eq!(s.rw.restriction(id), Ok(None));
    }
}

#[test]
fn card_number_already_masked_by_the_snippet_counts_as_masked() {
    let rules = compiled(&[], SiteSettings::default());
    let mut s = Session::new(rules, "<input id=cc><input id=name>", URL);
    let (cc, name) = (s.id("#cc"), s.id("#name"));
    let out = s.batch(vec![Op::Value {
        id: cc,
        value: "411111••••".into(),
        checked: None,
    }]);
    assert_eq!(
        out,
        vec![Op::Value {
            id: cc,
            value: "411111••••".into(),
            checked: None
        }]
    );
    assert_eq!(s.rw.restriction(cc), Ok(Some(Restriction::Masked)));
    let key = |id| {
        check(
            &AgentMsg::Key {
                id,
                key: "1".into(),
            },
            SessionState::Active,
            Mode::Write,
            &s.rw,
        )
    };
    assert!(matches!(key(cc), Verdict::Deny { reason, .. } if reason == "masked"));
    assert!(matches!(key(name), Verdict::Forward(_)));
    // the value attribute set by script follows the same rule
    let out = s.batch(vec![Op::Attr {
        id: name,
        name: "value".into(),
        value: Some("4111111111".into()),
    }]);
    assert!(json(&out).contains("411111••••"), "{}", json(&out));
}

#[test]
fn card_number_split_across_inline_elements_of_one_block() {
    let rules = compiled(&[], SiteSettings::default());
    let html = "<p>Card <span>4111</span> <span>1111</span> <b>1111</b> <i>1111</i> ok</p>\
                <div><span>4111</span><div>1111 1111 1111</div></div>";
    let s = Session::new(rules, html, URL);
    let agent = s.agent_json();
    // only the second block's "4111" is shown: a nested block breaks the run
    assert_eq!(agent.matches("\"4111\"").count(), 1, "{agent}");
    assert!(agent.contains("1111 1111 1111"), "{agent}");
    assert!(agent.contains("Card ") && agent.contains(" ok"), "{agent}");
    // incrementally: the last group typed into its own span completes the card
    let mut s = Session::new(
        compiled(&[], SiteSettings::default()),
        "<p><span>4111</span> <span>1111</span> <span>1111</span> <span>111</span></p>",
        URL,
    );
    assert!(s.agent_json().contains("4111"));
    let last = s.first_child("span:last-child");
    let out = s.batch(vec![Op::Text {
        id: last,
        text: "1111".into(),
    }]);
    assert!(!json(&out).contains("4111"), "{}", json(&out));
    assert!(!s.agent_json().contains("4111") && !s.agent_json().contains("1111"));
    // broken again: shown again (the oracle check after each batch agrees)
    s.batch(vec![Op::Text {
        id: last,
        text: "11".into(),
    }]);
    assert!(s.agent_json().contains("4111"));
    // a span inserted to complete it, and one removed
    let p = s.id("p");
    let out = s.batch(vec![Op::Insert {
        parent: p,
        before: None,
        node: el(900, "span", &[], vec![text(901, "11")]),
    }]);
    assert!(!json(&out).contains("4111"), "{}", json(&out));
    s.batch(vec![Op::Remove { id: 900 }]);
    assert!(s.agent_json().contains("4111"));
}

#[test]
fn contenteditable_text_follows_the_value_rule_and_mask_inputs() {
    let rules = compiled(&[], SiteSettings::default());
    let mut s = Session::new(rules, "<div contenteditable>note</div><p>x</p>", URL);
    let t = s.first_child("div");
    let out = s.batch(vec![Op::Text {
        id: t,
        text: "card 4111111111".into(),
    }]);
    assert!(json(&out).contains("card 411111••••"), "{}", json(&out));
    let div = s.id("div");
    assert_eq!(s.rw.restriction(div), Ok(Some(Restriction::Masked)));
    // mask-inputs covers contenteditable regions, also when switched on later
    let settings = SiteSettings {
        privacy: PrivacyLevel::MaskInputs,
        ..SiteSettings::default()
    };
    let mut s = Session::new(
        compiled(&[], settings),
        "<div contenteditable=true>DRAFT<span contenteditable=false>LABEL</span></div><p id=p>NOTE</p>",
        URL,
    );
    let agent = s.agent_json();
    assert!(
        !agent.contains("DRAFT") && agent.contains("LABEL") && agent.contains("NOTE"),
        "{agent}"
    );
    let p = s.id("#p");
    let out = s.batch(vec![Op::Attr {
        id: p,
        name: "contenteditable".into(),
        value: Some("".into()),
    }]);
    assert!(!json(&out).contains("NOTE"), "{}", json(&out));
}

#[test]
fn password_and_masked_select_values_have_a_fixed_length() {
    let rules = compiled(
        &[
            rule("select.m", Action::Mask),
            rule("input", Action::Unmask),
        ],
        SiteSettings::default(),
    );
    let html = "<input id=pw type=password><select class=m><option>Visa</option><option>American Express</option></select>";
    let mut s = Session::new(rules, html, URL);
    let (pw, sel) = (s.id("#pw"), s.id("select"));
    let mut seen = Vec::new();
    for v in ["a", "correct horse battery staple"] {
        for id in [pw, sel] {
            let out = s.batch(vec![Op::Value {
                id,
                value: v.into(),
                checked: None,
            }]);
            seen.push(json(&out));
        }
    }
    for m in &seen {
        assert!(m.contains("\"value\":\"••••••••\""), "{m}");
    }
    // `unmask` never lifts a password
    assert_eq!(s.rw.restriction(pw), Ok(Some(Restriction::Masked)));
    assert!(!s.agent_json().contains("American") && !s.agent_json().contains("Visa"));
}

#[test]
fn masked_subtree_keeps_only_layout_attributes_in_any_case() {
    let html = r#"<div class=m ID=box><a Href="mailto:ann@example.com" title=T1>mail</a>
        <a href="tel:+15551234">tel</a><img src="data:image/png;base64,QUJD" alt=A1 width=4>
        <time datetime="1990-02-03">bday</time><label for=ssn-field>L</label>
        <svg><use XLINK:HREF="/icons/user-ann.svg#i"></use></svg>
        <input VALUE="SECRETV" data-user="U1" aria-label="AL1" type=text size=8>
        <p style="width: 10px; --name: 'ann'; font-family: AnnFont; background: var(--x); content: attr(title); height: 2px">p</p>
        <table><tr><td colspan=2 Onclick="steal()" SRCDOC="x">c</td></tr></table></div>"#;
    let s = Session::new(mask(".m"), html, URL);
    let agent = s.agent_json();
    for secret in [
        "mailto",
        "ann@",
        "tel:",
        "data:",
        "QUJD",
        "1990",
        "ssn-field",
        "user-ann",
        "SECRETV",
        "U1",
        "AL1",
        "T1",
        "A1",
        "AnnFont",
        "var(",
        "attr(",
        "--name",
        "steal",
        "SRCDOC",
        "Href",
    ] {
        assert!(!agent.contains(secret), "{secret} leaked: {agent}");
    }
    for kept in [
        "\"id\":\"box\"",
        "\"width\":\"4\"",
        "\"size\":\"8\"",
        "\"colspan\":\"2\"",
        "width: 10px; height: 2px",
        "\"value\":\"•••••••\"",
    ] {
        assert!(agent.contains(kept), "{kept} missing: {agent}");
    }
    // names that were not lower-cased on the way in (wire nodes)
    let root = cobrowse::protocol::Node::Document {
        id: 100,
        children: vec![el(
            1,
            "div",
            &[("class", "m")],
            vec![
                el(
                    2,
                    "a",
                    &[("Href", "mailto:ann@example.com"), ("TITLE", "T2")],
                    vec![],
                ),
                el(
                    3,
                    "input",
                    &[
                        ("VALUE", "SECRETV"),
                        ("Data-User", "U2"),
                        ("ONCLICK", "x()"),
                    ],
                    vec![],
                ),
                el(4, "use", &[("XLINK:HREF", "/user-ann.svg")], vec![]),
            ],
        )],
    };
    let s = Session::from_node(mask(".m"), root, URL);
    let agent = s.agent_json();
    for secret in ["ann@", "T2", "SECRETV", "U2", "x()", "user-ann"] {
        assert!(!agent.contains(secret), "{secret} leaked: {agent}");
    }
    // attribute names are lower-cased on import, as browsers do
    assert!(agent.contains("\"value\":\"•••••••\""), "{agent}");
}

#[test]
fn agent_url_has_no_query_or_fragment_unless_the_site_allows_it() {
    let url = "https://shop.example/order?email=ann@example.com&token=T0K#card";
    let s = Session::new(compiled(&[], SiteSettings::default()), "<p>x</p>", url);
    let snap = s.rw.agent_snapshot().unwrap();
    assert_eq!(snap.url, "https://shop.example/order");
    let allow = SiteSettings {
        show_url_query: true,
        ..SiteSettings::default()
    };
    let s = Session::new(compiled(&[], allow), "<p>x</p>", url);
    assert_eq!(s.rw.agent_snapshot().unwrap().url, url);
    // old stored settings without the field still load
    let old: SiteSettings = serde_json::from_str(r#"{"privacy":"allow"}"#).unwrap();
    assert!(!old.show_url_query);
}

#[test]
fn mask_all_keeps_stylesheets_and_button_labels() {
    let settings = SiteSettings {
        privacy: PrivacyLevel::MaskAll,
        ..SiteSettings::default()
    };
    let html = r#"<head><style>.box { width: 10px }</style><link rel=stylesheet href="/app.css"></head>
        <body><p>PRIVATE</p><button><span>Pay now</span></button><input type=submit value="Send order">
        <input name=q value=QUERY></body>"#;
    let s = Session::new(compiled(&[], settings), html, URL);
    let agent = s.agent_json();
    assert!(
        agent.contains(".box { width: 10px }")
            && agent.contains("/app.css")
            && agent.contains("Pay now")
            && agent.contains("Send order"),
        "{agent}"
    );
    assert!(
        !agent.contains("PRIVATE") && !agent.contains("QUERY"),
        "{agent}"
    );
    // a rule still masks a label
    let rules = compiled(&[rule("button", Action::Mask)], settings);
    let s = Session::new(rules, html, URL);
    assert!(!s.agent_json().contains("Pay now"));
}

#[test]
fn mask_inputs_leaves_button_labels_alone() {
    let settings = SiteSettings {
        privacy: PrivacyLevel::MaskInputs,
        ..SiteSettings::default()
    };
    let html = r#"<button>Continue</button><input type=submit value="Send order"><input type=reset value=Clear><input value=TYPED>"#;
    let s = Session::new(compiled(&[], settings), html, URL);
    let agent = s.agent_json();
    assert!(
        agent.contains("Continue") && agent.contains("Send order") && agent.contains("Clear"),
        "{agent}"
    );
    assert!(!agent.contains("TYPED"), "{agent}");
}

#[test]
fn event_handlers_srcdoc_and_markers_in_any_case_never_reach_the_agent() {
    let rules = compiled(&[], SiteSettings::default());
    let s = Session::new(
        rules,
        r#"<div ONCLICK="a()" OnMouseOver="b()" DATA-COBROWSE-MASKED="fake"></div><iframe SrcDoc="<b>hi</b>"></iframe>"#,
        URL,
    );
    let agent = s.agent_json().to_ascii_lowercase();
    assert!(
        !agent.contains("onclick")
            && !agent.contains("onmouseover")
            && !agent.contains("fake")
            && !agent.contains("srcdoc"),
        "{agent}"
    );
}
