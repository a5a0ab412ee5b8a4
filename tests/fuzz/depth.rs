//! Item 7 of issue 8: every recursive walk is reached only with a bounded
//! depth. Deep input runs on a thread with a tokio worker's 2 MiB stack, in
//! a debug build (larger frames than release): a frame is refused as too
//! deep before serde builds it; a mirror at the depth limit renders,
//! masks (`render_visible`, `scrub_node`, `fix_node`) and serialises; HTML
//! import flattens nesting while it parses (about 256 open elements, never
//! deeper than 512 levels), in time linear in the input, so previews and
//! `rules apply` of 100,000 nested elements work.

use super::on_worker_stack;
use cobrowse::dom::html::{parse_document, to_html, MAX_PARSE_DEPTH};
use cobrowse::protocol::{
    check_customer_msg, check_tree, decode, CustomerMsg, Limits, Node, NodeId, Op, ProtocolError,
    Snapshot, Viewport,
};
use cobrowse::rewrite::Rewriter;
use cobrowse::rules::{
    tooling, Action, CompiledRules, PrivacyLevel, Rule, RulePack, SiteSettings, DEFAULT_PACK_YAML,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `<div class=a>` chain of `depth` elements with ids from `first`, a card
/// number as the innermost text.
fn chain(first: NodeId, depth: usize) -> Node {
    let mut node = Node::Text {
        id: first + depth as NodeId,
        text: "4111 1111 1111 1111".into(),
    };
    for i in (0..depth).rev() {
        let mut attrs = BTreeMap::new();
        attrs.insert("class".to_string(), "a".to_string());
        attrs.insert("title".to_string(), "secret".to_string());
        node = Node::Element {
            id: first + i as NodeId,
            tag: "div".into(),
            ns: None,
            attrs,
            children: vec![node],
            value: None,
            checked: None,
        };
    }
    node
}

fn rules() -> Arc<CompiledRules> {
    let rule = |s: &str, action| Rule {
        selector: s.into(),
        action,
        url: None,
        description: String::new(),
        enabled: true,
    };
    let settings = SiteSettings {
        privacy: PrivacyLevel::MaskAll,
        ..SiteSettings::default()
    };
    Arc::new(
        CompiledRules::compile(
            &[
                rule(".a", Action::Mask),
                rule(".b", Action::Unmask),
                rule("div:has(.z)", Action::Block),
            ],
            settings,
        )
        .expect("rules compile"),
    )
}

#[test]
fn frames_nested_a_hundred_thousand_deep_are_refused_before_decoding() {
    let r = on_worker_stack(|| {
        let l = Limits::default();
        let n = 100_000;
        let text = format!(
            r#"{{"t":"snapshot","url":"u","viewport":{{"w":1,"h":1}},"root":{}{}}}"#,
            r#"{"type":"document","id":1,"children":["#.repeat(n),
            "]}".repeat(n)
        );
        let snapshot = decode::<CustomerMsg>(&text, &l).err();
        let arrays = decode::<CustomerMsg>(&"[".repeat(1_000_000), &l).err();
        (snapshot, arrays)
    });
    assert!(matches!(r.0, Some(ProtocolError::TooDeep(_))), "{r:?}");
    assert!(matches!(r.1, Some(ProtocolError::TooDeep(_))), "{r:?}");
}

#[test]
fn a_mirror_at_the_depth_limit_renders_masks_and_serialises_on_a_worker_stack() {
    mirror_at_the_depth_limit(Limits::default());
}

/// The largest `limits.max_depth` the config accepts is safe too (it is
/// the default today; this keeps the cap honest if either moves).
#[test]
fn a_mirror_at_the_largest_configurable_depth_limit_survives_a_worker_stack() {
    mirror_at_the_depth_limit(Limits {
        max_depth: cobrowse::config::MAX_DEPTH_CAP,
        ..Limits::default()
    });
}

fn mirror_at_the_depth_limit(limits: Limits) {
    on_worker_stack(move || {
        let depth = limits.max_depth;
        // document (1) + html (2) + chain: the deepest node is at max_depth
        let root = Node::Document {
            id: 1,
            children: vec![Node::Element {
                id: 2,
                tag: "html".into(),
                ns: None,
                attrs: BTreeMap::new(),
                children: vec![chain(10, depth - 3)],
                value: None,
                checked: None,
            }],
        };
        assert_eq!(check_tree(&root, &limits).map(|_| ()), Ok(()));
        let snap = Snapshot {
            epoch: 0,
            url: "https://shop.example/".into(),
            title: String::new(),
            viewport: Viewport { w: 1.0, h: 1.0 },
            root,
        };
        // through the decoder, as a frame
        let text = serde_json::to_string(&CustomerMsg::Snapshot(snap)).expect("serialise");
        let msg: CustomerMsg = decode(&text, &limits).expect("frame at the limit decodes");
        check_customer_msg(&msg, &limits).expect("frame at the limit passes");
        let CustomerMsg::Snapshot(snap) = msg else {
            panic!("not a snapshot")
        };
        let mut rw = Rewriter::new(rules(), limits);
        let agent = rw.snapshot(snap).expect("snapshot at the limit");
        let out = serde_json::to_string(&agent).expect("agent snapshot serialises");
        assert!(
            !out.contains("secret") && !out.contains("4111"),
            "deep text leaked"
        );
        // a deep subtree inserted under the body (masked: scrub/settle walks)
        // and a deep text change (card detector walks)
        let ops = vec![
            Op::Insert {
                parent: 2,
                before: None,
                node: chain(10_000, depth - 3),
            },
            Op::Text {
                id: 10 + (depth - 3) as NodeId,
                text: "5500 0000 0000 0004".into(),
            },
            Op::Attr {
                id: 10,
                name: "class".into(),
                value: Some("b".into()),
            },
        ];
        let out = rw.apply(ops).expect("deep batch applies");
        let text = serde_json::to_string(&out).expect("ops serialise");
        assert!(
            !text.contains("4111") && !text.contains("5500"),
            "card leaked"
        );
        let _ = rw.set_rules(rules());
        let again = rw.agent_snapshot().expect("agent snapshot");
        let limits_plus = Limits {
            max_depth: limits.max_depth,
            ..limits
        };
        assert!(check_tree(&again.root, &limits_plus).is_ok());
        // one level deeper is refused before any walk
        let too_deep = rw.apply(vec![Op::Insert {
            parent: 10 + (depth - 4) as NodeId,
            before: None,
            node: chain(20_000, 2),
        }]);
        assert!(too_deep.is_err(), "{too_deep:?}");
    });
}

#[test]
fn html_nested_a_hundred_thousand_deep_is_flattened_and_previews_on_a_worker_stack() {
    on_worker_stack(|| {
        // a password field (masked by the default pack's first rule) at the
        // bottom: flattening must not take it out of the rules' reach
        let html = format!(
            "<!DOCTYPE html><body>{}<input type=password value=secret>{}",
            "<div class=x>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        let tree = parse_document(&html);
        let limits = Limits {
            max_depth: MAX_PARSE_DEPTH,
            max_nodes: usize::MAX,
            ..Limits::default()
        };
        assert!(
            check_tree(&tree, &limits).is_ok(),
            "import deeper than {MAX_PARSE_DEPTH}"
        );
        let _ = to_html(&tree, true);
        let pack = RulePack::from_yaml(DEFAULT_PACK_YAML).expect("default pack");
        let out = tooling::apply_to_html(&pack, &html, "https://shop.example/")
            .expect("rules apply on deep page");
        assert!(!out.contains("secret"), "input value leaked");
        let preview = tooling::preview(
            &pack.rules,
            pack.settings.unwrap_or_default(),
            &html,
            "https://shop.example/",
        );
        assert!(preview.is_ok());
        // svg and math foreign content nested just as deep
        for open in ["<svg><g>", "<math><mrow>", "<table><tr><td>", "<template>"] {
            let html = open.repeat(20_000);
            assert!(
                check_tree(&parse_document(&html), &limits).is_ok(),
                "{open}"
            );
            assert!(
                tooling::apply_to_html(&pack, &html, "https://shop.example/").is_ok(),
                "{open}"
            );
        }
    });
}
