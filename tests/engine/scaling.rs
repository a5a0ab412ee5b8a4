//! The incremental cost of a batch does not depend on the document size:
//! the same 10-op batch on a page and on a page 10× larger re-matches the
//! same number of elements and emits the same ops. (Counts work, not time,
//! so it holds on a loaded machine; the timing is in `benches/rewrite.rs`.)

use super::support::*;
use cobrowse::protocol::{Node, NodeId, Op, Snapshot, Viewport};
use cobrowse::rewrite::Rewriter;
use cobrowse::rules::{Action, SiteSettings};

fn page(sections: usize) -> Node {
    let mut id: NodeId = 10;
    let mut next = || {
        id += 1;
        id
    };
    let mut secs = Vec::new();
    for s in 0..sections {
        let mut rows = Vec::new();
        for r in 0..5 {
            let mut cells = Vec::new();
            for c in 0..6 {
                let t = text(next(), "customer text");
                let cls = format!("c{} cell", (s + r + c) % 7);
                cells.push(el(
                    next(),
                    if c == 0 { "input" } else { "span" },
                    &[("class", &cls)],
                    vec![t],
                ));
            }
            rows.push(el(
                next(),
                "div",
                &[("class", &format!("row row-{r}"))],
                cells,
            ));
        }
        secs.push(el(
            next(),
            "section",
            &[("class", &format!("s{}", s % 5))],
            rows,
        ));
    }
    let body = el(next(), "body", &[], secs);
    let html = el(next(), "html", &[], vec![body]);
    Node::Document {
        id: 1,
        children: vec![html],
    }
}

fn ops(root: &Node) -> Vec<Op> {
    let sec = &root.children()[0].children()[0].children()[3];
    let row = &sec.children()[2];
    let span = &row.children()[3];
    let input = row.children()[0].id();
    vec![
        Op::Attr {
            id: sec.id(),
            name: "class".into(),
            value: Some("s1 hot".into()),
        },
        Op::Text {
            id: span.children()[0].id(),
            text: "new text".into(),
        },
        Op::Value {
            id: input,
            value: "typed".into(),
            checked: None,
        },
        Op::Insert {
            parent: row.id(),
            before: Some(span.id()),
            node: el(9_000_000, "span", &[], vec![]),
        },
        Op::Attr {
            id: span.id(),
            name: "title".into(),
            value: Some("private".into()),
        },
        Op::Insert {
            parent: row.id(),
            before: None,
            node: text(9_000_001, "tail"),
        },
        Op::Attr {
            id: span.id(),
            name: "data-x".into(),
            value: Some("1".into()),
        },
        Op::Remove { id: 9_000_000 },
        Op::Value {
            id: input,
            value: "typed more".into(),
            checked: None,
        },
        Op::Attr {
            id: row.id(),
            name: "class".into(),
            value: Some("row row-1".into()),
        },
    ]
}

#[test]
fn batch_cost_does_not_grow_with_the_document() {
    let rules = compiled(
        &[
            rule("input, .c3", Action::Mask),
            rule("section.s1 .row-1 span", Action::Mask),
            rule(".row-1 + .row-2 span:first-child", Action::Disable),
            rule("span[title~=private]", Action::Block),
            rule("div:has(> input.secret)", Action::Mask),
            rule(".row > span:nth-child(3)", Action::Mask),
        ],
        SiteSettings::default(),
    );
    let run = |sections: usize| {
        let root = page(sections);
        let mut rw = Rewriter::new(rules.clone(), unlimited());
        rw.snapshot(Snapshot {
            epoch: 0,
            url: "/".into(),
            title: String::new(),
            viewport: Viewport { w: 1.0, h: 1.0 },
            root: root.clone(),
        })
        .unwrap();
        let before = rw.rematched();
        let out = rw.apply(ops(&root)).unwrap();
        (rw.rematched() - before, out)
    };
    let (small_work, small_out) = run(30);
    let (large_work, large_out) = run(300);
    assert!(
        small_work > 0 && small_work < 200,
        "re-matched {small_work} elements"
    );
    assert_eq!(
        small_work, large_work,
        "a batch on a 10x page re-matched more elements"
    );
    assert_eq!(small_out, large_out);
}
