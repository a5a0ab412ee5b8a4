//! Criterion benchmarks of the rewrite engine next to its references, in
//! the same run on the same input (issue 10): the snapshot rewrite of a
//! generated 10,102-element page under 55 rules against lol_html rewriting
//! the same page's HTML with the rules it can express, and against
//! `serde_json` decoding the snapshot alone (the parse floor); HTML import
//! (our html5ever tree sink into the mirror's wire nodes) against scraper
//! and markup5ever_rcdom; and a 10-op mutation batch on that page and on a
//! page 10× larger (the batch cost must not grow with the document).
//!
//! Wall time (criterion's default): run it on a quiet machine, see
//! docs/performance.md for the command and the recorded ratios.

use cobrowse::dom::html::{parse_document, to_html};
use cobrowse::protocol::{Limits, Node, NodeId, Op, Snapshot, Viewport};
use cobrowse::rewrite::Rewriter;
use cobrowse::rules::{Action, CompiledRules, Rule, SiteSettings};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

/// The allocator the server binary uses (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn el(id: &mut NodeId, tag: &str, attrs: &[(&str, String)], children: Vec<Node>) -> Node {
    *id += 1;
    Node::Element {
        id: *id,
        tag: tag.into(),
        ns: None,
        attrs: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        children,
        value: None,
        checked: None,
    }
}

fn text(id: &mut NodeId, t: &str) -> Node {
    *id += 1;
    Node::Text {
        id: *id,
        text: t.into(),
    }
}

/// A page of `sections` sections, each 10 rows of 10 elements (~101
/// elements per section plus text).
fn page(sections: usize) -> Node {
    let mut id: NodeId = 10;
    let mut secs = Vec::new();
    for s in 0..sections {
        let mut rows = Vec::new();
        for r in 0..10 {
            let mut cells = Vec::new();
            for c in 0..9 {
                let n = s * 100 + r * 10 + c;
                let cell = match c {
                    0 => el(
                        &mut id,
                        "input",
                        &[("name", format!("field-{n}")), ("class", "in".into())],
                        vec![],
                    ),
                    1 => {
                        let t = text(&mut id, "label text");
                        el(&mut id, "label", &[("for", format!("f{n}"))], vec![t])
                    }
                    2 => {
                        let t = text(&mut id, "a link");
                        el(&mut id, "a", &[("href", format!("/p/{n}?q=1"))], vec![t])
                    }
                    3 => el(&mut id, "input", &[("type", "password".into())], vec![]),
                    _ => {
                        let t = text(&mut id, "some visible customer text");
                        el(
                            &mut id,
                            "span",
                            &[
                                ("class", format!("c{} cell", n % 97)),
                                ("title", "tip".into()),
                            ],
                            vec![t],
                        )
                    }
                };
                cells.push(cell);
            }
            rows.push(el(
                &mut id,
                "div",
                &[("class", format!("row row-{r}"))],
                cells,
            ));
        }
        secs.push(el(
            &mut id,
            "section",
            &[
                ("class", format!("s{}", s % 50)),
                ("id", format!("sec-{s}")),
            ],
            rows,
        ));
    }
    let body = el(&mut id, "body", &[], secs);
    let html = el(&mut id, "html", &[], vec![body]);
    Node::Document {
        id: 1,
        children: vec![html],
    }
}

fn count_elements(n: &Node) -> usize {
    usize::from(matches!(n, Node::Element { .. }))
        + n.children().iter().map(count_elements).sum::<usize>()
}

fn rule_list() -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut add = |s: String, a: Action| {
        rules.push(Rule {
            selector: s,
            action: a,
            url: None,
            description: String::new(),
            enabled: true,
        })
    };
    add("input[type=password]".into(), Action::Mask);
    add(
        "[type=submit], input[type=image], form button:not([type])".into(),
        Action::Disable,
    );
    for i in 0..20 {
        add(format!(".c{}", i * 3), Action::Mask);
    }
    for i in 0..10 {
        add(format!("section.s{i} .row-{} span", i % 10), Action::Mask);
    }
    for i in 0..10 {
        add(format!("input[name=field-{}]", i * 7), Action::Mask);
    }
    for i in 0..5 {
        add(format!("#sec-{} a", i * 11), Action::Block);
    }
    add(".row-3 > span:nth-child(5)".into(), Action::Mask);
    add(".row-1 + .row-2 span:first-child".into(), Action::Disable);
    add("label ~ a[href^='/p/1']".into(), Action::Disable);
    add("div:has(> input.secret)".into(), Action::Mask);
    add(":is(.c5, .c7):not(.public)".into(), Action::Mask);
    add("span[title~=private i]".into(), Action::Mask);
    add("section:empty".into(), Action::Block);
    add("a:any-link[href$='.pdf']".into(), Action::Block);
    rules
}

fn rules() -> Arc<CompiledRules> {
    Arc::new(CompiledRules::compile(&rule_list(), SiteSettings::default()).unwrap())
}

/// Text-bearing attributes a mask rewrites (the lol_html reference does the
/// same work on them).
const MASKED_ATTRS: [&str; 4] = ["value", "placeholder", "title", "aria-label"];

/// The reference: lol_html streaming over the page's HTML with every rule
/// of [`rule_list`] its selector engine can parse (it has no `+`, `~`,
/// `:has`, `:is`, `:empty`, `:any-link`…): mask replaces text and
/// text-bearing attributes, block empties the element and drops its
/// attributes, disable marks it disabled. Returns the output and how many
/// rules it could express.
fn lol_html_rewrite(html: &str, rules: &[Rule]) -> (String, usize) {
    use lol_html::html_content::{ContentType, Element, TextChunk};
    use lol_html::{ElementContentHandlers, RewriteStrSettings, Selector};
    let mut handlers = Vec::new();
    let mut n = 0;
    for r in rules {
        let Ok(sel) = r.selector.parse::<Selector>() else {
            continue;
        };
        n += 1;
        let h = match r.action {
            Action::Mask => ElementContentHandlers::default()
                .element(|el: &mut Element<'_, '_>| {
                    for a in MASKED_ATTRS {
                        if let Some(v) = el.get_attribute(a) {
                            el.set_attribute(a, &"•".repeat(v.chars().count()))?;
                        }
                    }
                    el.set_attribute("data-cobrowse-masked", "")?;
                    Ok(())
                })
                .text(|t: &mut TextChunk<'_>| {
                    let masked: String = t
                        .as_str()
                        .chars()
                        .map(|c| if c.is_whitespace() { c } else { '•' })
                        .collect();
                    t.replace(&masked, ContentType::Text);
                    Ok(())
                }),
            Action::Block => {
                ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                    let names: Vec<String> = el.attributes().iter().map(|a| a.name()).collect();
                    for name in names {
                        if name != "class" && name != "id" {
                            el.remove_attribute(&name);
                        }
                    }
                    el.set_inner_content("", ContentType::Text);
                    el.set_attribute("data-cobrowse-blocked", "")?;
                    Ok(())
                })
            }
            _ => ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                el.set_attribute("disabled", "")?;
                el.set_attribute("data-cobrowse-disabled", "")?;
                Ok(())
            }),
        };
        handlers.push((Cow::Owned(sel), h));
    }
    let settings = handlers
        .into_iter()
        .fold(RewriteStrSettings::new(), |s, h| {
            s.append_element_content_handler(h)
        });
    let out = lol_html::rewrite_str(html, settings).unwrap_or_default();
    (out, n)
}

fn snap(root: Node) -> Snapshot {
    Snapshot {
        epoch: 0,
        url: "https://shop.example/page".into(),
        title: "t".into(),
        viewport: Viewport { w: 1.0, h: 1.0 },
        root,
    }
}

fn limits() -> Limits {
    Limits {
        max_nodes: 10_000_000,
        ..Limits::default()
    }
}

/// Ids of a few nodes in section `s` of a page built by [`page`].
fn ids_in_section(root: &Node, s: usize) -> (NodeId, NodeId, NodeId, NodeId, NodeId) {
    let body = &root.children()[0].children()[0];
    let sec = &body.children()[s];
    let row = &sec.children()[4];
    let input = row.children()[0].id();
    let span = &row.children()[5];
    let span_text = span.children()[0].id();
    (sec.id(), row.id(), input, span.id(), span_text)
}

/// Two 10-op batches (do, undo) on section `s`.
fn batches(root: &Node, s: usize) -> (Vec<Op>, Vec<Op>) {
    let (sec, row, input, span, span_text) = ids_in_section(root, s);
    let new = 90_000_000;
    let doit = vec![
        Op::Attr {
            id: sec,
            name: "class".into(),
            value: Some("s1 hot".into()),
        },
        Op::Text {
            id: span_text,
            text: "changed text".into(),
        },
        Op::Value {
            id: input,
            value: "typed".into(),
            checked: None,
        },
        Op::Insert {
            parent: row,
            before: Some(span),
            node: Node::Element {
                id: new,
                tag: "span".into(),
                ns: None,
                attrs: BTreeMap::new(),
                children: vec![Node::Text {
                    id: new + 1,
                    text: "new".into(),
                }],
                value: None,
                checked: None,
            },
        },
        Op::Attr {
            id: span,
            name: "title".into(),
            value: Some("private note".into()),
        },
        Op::Insert {
            parent: row,
            before: None,
            node: Node::Text {
                id: new + 2,
                text: "tail".into(),
            },
        },
        Op::Attr {
            id: span,
            name: "data-x".into(),
            value: Some("1".into()),
        },
        Op::Value {
            id: input,
            value: "typed more".into(),
            checked: None,
        },
        Op::Text {
            id: span_text,
            text: "changed again".into(),
        },
        Op::Attr {
            id: row,
            name: "class".into(),
            value: Some("row row-3".into()),
        },
    ];
    let undo = vec![
        Op::Attr {
            id: sec,
            name: "class".into(),
            value: Some(format!("s{}", s % 50)),
        },
        Op::Text {
            id: span_text,
            text: "some visible customer text".into(),
        },
        Op::Value {
            id: input,
            value: String::new(),
            checked: None,
        },
        Op::Remove { id: new },
        Op::Attr {
            id: span,
            name: "title".into(),
            value: Some("tip".into()),
        },
        Op::Remove { id: new + 2 },
        Op::Attr {
            id: span,
            name: "data-x".into(),
            value: None,
        },
        Op::Value {
            id: input,
            value: String::new(),
            checked: None,
        },
        Op::Text {
            id: span_text,
            text: "some visible customer text".into(),
        },
        Op::Attr {
            id: row,
            name: "class".into(),
            value: Some("row row-4".into()),
        },
    ];
    (doit, undo)
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let list = rule_list();
    let small = page(100);
    let large = page(1000);
    let html = to_html(&small, false);
    let snap_json = serde_json::to_string(&snap(small.clone())).unwrap();
    let (_, expressible) = lol_html_rewrite(&html, &list);
    eprintln!(
        "pages: {} and {} elements, {} rules ({} expressible in lol_html); \
         snapshot JSON {} bytes, HTML {} bytes",
        count_elements(&small),
        count_elements(&large),
        rules.compiled().len(),
        expressible,
        snap_json.len(),
        html.len()
    );

    // JSON in -> JSON out, as the relay does it, next to lol_html on the
    // same page's HTML and the serde decode floor.
    let mut g = c.benchmark_group("snapshot");
    g.sample_size(20);
    g.bench_function("cobrowse_json_in_json_out", |b| {
        b.iter(|| {
            let s: Snapshot = serde_json::from_str(&snap_json).unwrap();
            let mut rw = Rewriter::new(rules.clone(), limits());
            let out = rw.snapshot(s).unwrap();
            black_box(serde_json::to_string(&out).unwrap())
        })
    });
    g.bench_function("cobrowse_rewrite_only", |b| {
        b.iter_batched(
            || snap(small.clone()),
            |s| {
                let mut rw = Rewriter::new(rules.clone(), limits());
                black_box(rw.snapshot(s).unwrap())
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("reference_lol_html_rewrite", |b| {
        b.iter(|| black_box(lol_html_rewrite(&html, &list)))
    });
    g.bench_function("reference_serde_decode_only", |b| {
        b.iter(|| black_box(serde_json::from_str::<Snapshot>(&snap_json).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("batch");
    for (name, root) in [("10k", &small), ("100k", &large)] {
        let mut rw = Rewriter::new(rules.clone(), limits());
        rw.snapshot(snap(root.clone())).unwrap();
        let n_sections = root.children()[0].children()[0].children().len();
        let (doit, undo) = batches(root, n_sections / 2);
        g.bench_with_input(
            BenchmarkId::new("do_undo_two_10op_batches", name),
            &(),
            |b, _| {
                b.iter(|| {
                    black_box(rw.apply(doit.clone()).unwrap());
                    black_box(rw.apply(undo.clone()).unwrap());
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("html_import");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(html.len() as u64));
    g.bench_function("cobrowse_parse_document", |b| {
        b.iter(|| black_box(parse_document(&html)))
    });
    g.bench_function("reference_scraper", |b| {
        b.iter(|| black_box(scraper::Html::parse_document(&html)))
    });
    g.bench_function("reference_rcdom", |b| {
        use html5ever::tendril::TendrilSink;
        b.iter(|| {
            black_box(
                html5ever::parse_document(markup5ever_rcdom::RcDom::default(), Default::default())
                    .one(html.as_str()),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
