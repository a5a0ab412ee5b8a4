//! Issue 8 item 2: the rewrite's output is inert by itself. A hostile-markup
//! corpus (tests/fixtures/hostile-corpus.html plus a few hundred payloads generated from
//! the tables below: attributes, SVG, MathML, CSS, mixed case, entity and
//! control-character tricks) goes through the rewrite as a snapshot, as
//! inserted subtrees and as attribute ops, and nothing forbidden may come out;
//! then one hostile page goes through the real server to the agent's socket.

use crate::common::{sample_snapshot, spawn_app};
use cobrowse::dom::html::parse_document;
use cobrowse::protocol::{Limits, Node, NodeId, Op, Snapshot, Viewport};
use cobrowse::rewrite::Rewriter;
use cobrowse::rules::{CompiledRules, SiteSettings};
use std::sync::Arc;

const HOSTILE: &str = include_str!("../fixtures/hostile-corpus.html");

/// Scheme spellings that must never reach the agent in a URL attribute.
const BAD_URLS: &[&str] = &[
    "javascript:SCRIPTTEXT()",
    "JAVASCRIPT:SCRIPTTEXT()",
    "JaVaScRiPt:SCRIPTTEXT()",
    " javascript:SCRIPTTEXT()",
    "java&#x09;script:SCRIPTTEXT()",
    "java&#9;script:SCRIPTTEXT()",
    "java&Tab;script:SCRIPTTEXT()",
    "java&NewLine;script:SCRIPTTEXT()",
    "javascript&colon;SCRIPTTEXT()",
    "&#x6A;avascript:SCRIPTTEXT()",
    "&#0000106avascript:SCRIPTTEXT()",
    "&#1;javascript:SCRIPTTEXT()",
    "vbscript:SCRIPTTEXT()",
    "VBScript:SCRIPTTEXT()",
    "data:text/html,<script>SCRIPTTEXT()</script>",
    "DATA:text/html;base64,U0NSSVBUVEVYVA==",
    " data:image/svg+xml,<svg onload=SCRIPTTEXT()>",
    "data:application/javascript,SCRIPTTEXT()",
    "data:,SCRIPTTEXT()",
];

/// (markup before the attribute, attribute name, markup after).
const URL_SLOTS: &[(&str, &str, &str)] = &[
    ("<a ", "href", ">a</a>"),
    ("<A ", "HREF", ">a</A>"),
    ("<area ", "href", ">"),
    ("<img ", "src", ">"),
    ("<IMG ", "SRC", ">"),
    ("<img ", "srcset", ">"),
    ("<input type=image ", "src", ">"),
    ("<form ", "action", "></form>"),
    ("<button ", "formaction", ">b</button>"),
    ("<video ", "poster", "></video>"),
    ("<audio ", "src", "></audio>"),
    ("<table ", "background", "><tr><td>x</td></tr></table>"),
    ("<blockquote ", "cite", ">q</blockquote>"),
    ("<link rel=stylesheet ", "href", ">"),
    ("<svg><a ", "href", "><rect width=9 height=9 /></a></svg>"),
    (
        "<svg><a ",
        "xlink:href",
        "><rect width=9 height=9 /></a></svg>",
    ),
    ("<svg><image ", "href", "/></svg>"),
    ("<svg><use ", "href", "/></svg>"),
    ("<math ", "href", "><mi>x</mi></math>"),
    ("<math><mi ", "xlink:href", ">x</mi></math>"),
];

/// Event-handler spellings.
const HANDLERS: &[&str] = &[
    "onclick",
    "ONCLICK",
    "OnClIcK",
    "onerror",
    "ONERROR",
    "onload",
    "onmouseover",
    "onfocus",
    "onanimationstart",
    "onpointerenter",
    "onbegin",
    "onbeforetoggle",
];

/// Elements to hang handlers on.
const HANDLER_HOSTS: &[(&str, &str)] = &[
    ("<div ", ">d</div>"),
    ("<img src=/i.png ", ">"),
    ("<svg ", "><rect width=1 height=1 /></svg>"),
    ("<svg><rect width=1 height=1 ", "/></svg>"),
    ("<math ", "><mi>x</mi></math>"),
    ("<input autofocus ", ">"),
    ("<details open ", "><summary>s</summary></details>"),
    ("<video ", "></video>"),
];

/// Script-ish CSS in `style` attributes.
const BAD_STYLES: &[&str] = &[
    "background:url(javascript:SCRIPTTEXT())",
    "background-image: URL( 'JavaScript:SCRIPTTEXT()' )",
    "width: expression(SCRIPTTEXT())",
    "width: EXPRESSION(SCRIPTTEXT())",
    "behavior: url(#default#x)",
    "-moz-binding: url(x.xml#SCRIPTTEXT)",
    "color: red; background: url(vbscript:SCRIPTTEXT())",
    "background:url(java\\9script:SCRIPTTEXT())",
];

/// Every payload of the corpus: the fixture lines and the generated ones.
fn corpus() -> Vec<String> {
    let mut out: Vec<String> = HOSTILE
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    for (pre, attr, post) in URL_SLOTS {
        for url in BAD_URLS {
            out.push(format!("{pre}{attr}=\"{url}\"{post}"));
        }
    }
    for (pre, post) in HANDLER_HOSTS {
        for h in HANDLERS {
            out.push(format!("{pre}{h}=\"SCRIPTTEXT()\"{post}"));
        }
    }
    for s in BAD_STYLES {
        out.push(format!("<div style=\"{s}\">s</div>"));
        out.push(format!(
            "<svg><rect style=\"{s}\" width=1 height=1 /></svg>"
        ));
    }
    out
}

const RASTER: &[&str] = &[
    "image/png",
    "image/gif",
    "image/jpeg",
    "image/jpg",
    "image/webp",
    "image/avif",
    "image/bmp",
    "image/x-icon",
    "image/vnd.microsoft.icon",
];

fn squash(v: &str) -> String {
    v.chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What is wrong with one attribute as the agent gets it.
fn attr_violation(tag: &str, name: &str, value: Option<&str>) -> Option<String> {
    let n = name.to_ascii_lowercase();
    let t = tag.to_ascii_lowercase();
    if (t == "iframe" || t == "frame") && n == "sandbox" {
        return (value != Some("")).then(|| format!("{t} sandbox changed to {value:?}"));
    }
    let v = value?;
    if n.starts_with("on") && n != "open" {
        return Some(format!("handler {name}={v:?} on <{tag}>"));
    }
    if matches!(n.as_str(), "srcdoc" | "http-equiv" | "ping" | "target") {
        return Some(format!("{name}={v:?} on <{tag}>"));
    }
    if (t == "iframe" || t == "frame") && n == "src" {
        return Some(format!("{t} with src {v:?}"));
    }
    let s = squash(v);
    if s.contains("javascript:") || s.contains("vbscript:") || s.contains("&colon;") {
        return Some(format!("script URL {name}={v:?} on <{tag}>"));
    }
    if n == "style"
        && (s.contains("expression(") || s.contains("behavior:") || s.contains("-moz-binding"))
    {
        return Some(format!("script CSS {v:?} on <{tag}>"));
    }
    for part in s.split(',') {
        if let Some(rest) = part
            .split_ascii_whitespace()
            .next()
            .unwrap_or(part)
            .strip_prefix("data:")
        {
            let mime = rest.split([';', ',']).next().unwrap_or("");
            if !RASTER.contains(&mime) {
                return Some(format!("non-image data: URL {name}={v:?} on <{tag}>"));
            }
        }
    }
    None
}

const DROPPED: &[&str] = &[
    "script",
    "object",
    "embed",
    "applet",
    "base",
    "portal",
    "param",
    "set",
    "animate",
    "animatemotion",
    "animatetransform",
    "discard",
    "handler",
    "listener",
];

/// Raw-text containers: their text is characters, never markup or script.
const RAW_TEXT: &[&str] = &[
    "style", "xmp", "noscript", "noembed", "noframes", "iframe", "textarea", "title",
];

/// Everything forbidden in an agent-side tree.
fn violations(node: &Node, parent_tag: &str, out: &mut Vec<String>) {
    match node {
        Node::Document { children, .. } => {
            for c in children {
                violations(c, "", out);
            }
        }
        Node::Element {
            tag,
            attrs,
            children,
            ..
        } => {
            let t = tag.to_ascii_lowercase();
            if DROPPED.contains(&t.as_str()) {
                out.push(format!("<{tag}> element"));
            }
            if t == "cobrowse-dropped" && (!children.is_empty() || attrs.len() != 1) {
                out.push("dropped element with content".into());
            }
            if t == "meta" && attrs.keys().any(|k| k.eq_ignore_ascii_case("http-equiv")) {
                out.push("meta http-equiv".into());
            }
            if (t == "iframe" || t == "frame")
                && attrs.get("sandbox").map(String::as_str) != Some("")
            {
                out.push(format!("{t} without an empty sandbox: {attrs:?}"));
            }
            for (k, v) in attrs {
                if let Some(e) = attr_violation(tag, k, Some(v)) {
                    out.push(e);
                }
            }
            for c in children {
                violations(c, &t, out);
            }
        }
        Node::Text { text, .. }
            if text.contains("SCRIPTTEXT") && !RAW_TEXT.contains(&parent_tag) =>
        {
            out.push(format!("script text {text:?} under <{parent_tag}>"));
        }
        _ => {}
    }
}

fn limits() -> Limits {
    Limits {
        max_nodes: usize::MAX,
        max_depth: usize::MAX,
        max_ops: usize::MAX,
        ..Limits::default()
    }
}

fn snapshot(root: Node) -> Snapshot {
    Snapshot {
        epoch: 0,
        url: "https://shop.example/p".into(),
        title: String::new(),
        viewport: Viewport { w: 800.0, h: 600.0 },
        root,
    }
}

fn rewriter() -> Rewriter {
    let rules = Arc::new(CompiledRules::compile(&[], SiteSettings::default()).unwrap());
    Rewriter::new(rules, limits())
}

fn shift_ids(n: &mut Node, by: NodeId) {
    match n {
        Node::Document { id, children }
        | Node::Element { id, children, .. }
        | Node::Shadow { id, children } => {
            *id += by;
            for c in children {
                shift_ids(c, by);
            }
        }
        Node::Text { id, .. }
        | Node::Comment { id, .. }
        | Node::Doctype { id, .. }
        | Node::Sheet { id, .. }
        | Node::Placeholder { id, .. } => *id += by,
    }
}

/// The `<head>` and `<body>` children of a parsed document.
fn head_and_body(doc: &Node) -> (Vec<Node>, Vec<Node>) {
    let Node::Document { children, .. } = doc else {
        return (vec![], vec![]);
    };
    for c in children {
        if let Node::Element { tag, children, .. } = c {
            if tag == "html" {
                let pick = |want: &str| {
                    children
                        .iter()
                        .find_map(|e| match e {
                            Node::Element { tag, children, .. } if tag == want => {
                                Some(children.clone())
                            }
                            _ => None,
                        })
                        .unwrap_or_default()
                };
                return (pick("head"), pick("body"));
            }
        }
    }
    (vec![], vec![])
}

fn check_ops(ops: &[Op], payload: &str, how: &str) {
    let mut bad = Vec::new();
    for op in ops {
        match op {
            Op::Insert { node, .. } => violations(node, "body", &mut bad),
            Op::Attr { name, value, .. } => {
                bad.extend(attr_violation("?", name, value.as_deref()));
            }
            Op::Text { text, .. } if text.contains("SCRIPTTEXT") => {
                bad.push(format!("script text op {text:?}"))
            }
            _ => {}
        }
    }
    assert!(bad.is_empty(), "{how} of {payload:?} let through: {bad:?}");
}

#[test]
fn hostile_corpus_snapshot_output_has_no_script_handlers_script_urls_or_plugins() {
    let corpus = corpus();
    assert!(corpus.len() >= 300, "corpus has {} payloads", corpus.len());
    for payload in &corpus {
        let doc = parse_document(&format!(
            "<!DOCTYPE html><html><head></head><body>{payload}"
        ));
        let out = rewriter().snapshot(snapshot(doc)).unwrap();
        let mut bad = Vec::new();
        violations(&out.root, "", &mut bad);
        assert!(
            bad.is_empty(),
            "snapshot of {payload:?} let through: {bad:?}"
        );
    }
}

#[test]
fn hostile_corpus_inserted_by_mutations_is_as_inert_as_in_a_snapshot() {
    for payload in corpus() {
        let mut rw = rewriter();
        // document 1, html 2, head 3, body 4
        rw.snapshot(snapshot(parse_document(
            "<html><head></head><body></body></html>",
        )))
        .unwrap();
        let (head, body) = head_and_body(&parse_document(&format!(
            "<!DOCTYPE html><html><head></head><body>{payload}"
        )));
        let mut ops = Vec::new();
        for (parent, kids) in [(3, head), (4, body)] {
            for mut k in kids {
                shift_ids(&mut k, 1000);
                ops.push(Op::Insert {
                    parent,
                    before: None,
                    node: k,
                });
            }
        }
        let out = rw.apply(ops).unwrap();
        check_ops(&out, &payload, "insert");
    }
}

/// Attribute ops that try to arm an element after it was sent inert.
#[test]
fn attr_ops_cannot_add_handlers_script_urls_srcdoc_or_change_a_frames_sandbox() {
    let page = "<html><head><meta name=x></head><body><a id=a>a</a><img id=i>\
                <iframe id=f></iframe><div id=d>d</div><svg><a id=s></a><script id=sc></script></svg>\
                <form id=fo><button id=b>b</button></form><link id=l rel=stylesheet></body></html>";
    let doc = parse_document(page);
    let mut ids = Vec::new();
    fn walk(n: &Node, out: &mut Vec<(NodeId, String)>) {
        match n {
            Node::Document { children, .. } => children.iter().for_each(|c| walk(c, out)),
            Node::Element {
                id, tag, children, ..
            } => {
                out.push((*id, tag.clone()));
                children.iter().for_each(|c| walk(c, out));
            }
            _ => {}
        }
    }
    walk(&doc, &mut ids);
    let mut attempts: Vec<(String, Option<String>)> = vec![
        (
            "srcdoc".into(),
            Some("<script>SCRIPTTEXT()</script>".into()),
        ),
        ("SRCDOC".into(), Some("<b>x</b>".into())),
        ("sandbox".into(), None),
        (
            "SANDBOX".into(),
            Some("allow-scripts allow-same-origin".into()),
        ),
        ("src".into(), Some("http://127.0.0.1:9/frame".into())),
        ("http-equiv".into(), Some("refresh".into())),
        ("ping".into(), Some("http://127.0.0.1:9/".into())),
        ("target".into(), Some("_top".into())),
    ];
    for h in HANDLERS {
        attempts.push((h.to_string(), Some("SCRIPTTEXT()".into())));
    }
    for attr in [
        "href",
        "HREF",
        "src",
        "action",
        "formaction",
        "xlink:href",
        "poster",
    ] {
        for url in BAD_URLS {
            attempts.push((attr.into(), Some(url.replace("&#x09;", "\t"))));
        }
    }
    for s in BAD_STYLES {
        attempts.push(("style".into(), Some(s.to_string())));
    }
    let mut rw = rewriter();
    rw.snapshot(snapshot(doc)).unwrap();
    for (id, tag) in &ids {
        for (name, value) in &attempts {
            let out = rw
                .apply(vec![Op::Attr {
                    id: *id,
                    name: name.clone(),
                    value: value.clone(),
                }])
                .unwrap();
            let mut bad = Vec::new();
            for op in &out {
                match op {
                    Op::Attr { name, value, .. } => {
                        bad.extend(attr_violation(tag, name, value.as_deref()))
                    }
                    Op::Insert { node, .. } => violations(node, tag, &mut bad),
                    _ => {}
                }
            }
            assert!(bad.is_empty(), "attr {name}={value:?} on <{tag}>: {bad:?}");
        }
    }
    // and the whole agent copy is still inert at the end
    let mut bad = Vec::new();
    violations(&rw.agent_snapshot().unwrap().root, "", &mut bad);
    assert!(bad.is_empty(), "{bad:?}");
}

/// Over the real server: a hostile page reaches the agent's socket inert.
#[tokio::test]
async fn hostile_page_reaches_the_agents_socket_inert() {
    let app = spawn_app().await;
    let (id, token) = app.create_session().await;
    let mut c = app.customer(&id, &token).await;
    c.recv_type("session").await;
    c.recv_type("rules").await;
    let mut snap = sample_snapshot("x");
    let doc = parse_document(&format!(
        "<!DOCTYPE html><html><head></head><body>{HOSTILE}"
    ));
    snap["root"] = serde_json::to_value(&doc).unwrap();
    c.send(snap).await;
    c.recv_type("rules").await;
    let mut a = app.agent(&id).await;
    let s = a.recv_type("snapshot").await;
    let root: Node = serde_json::from_value(s["root"].clone()).unwrap();
    let mut bad = Vec::new();
    violations(&root, "", &mut bad);
    assert!(bad.is_empty(), "{bad:?}");
    let text = s.to_string();
    assert!(text.contains("cobrowse-dropped"), "{text}");
}
