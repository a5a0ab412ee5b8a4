//! Fuzzing the frame decoder: `protocol::decode` for customer and agent
//! messages on arbitrary text, JSON-ish token soup, generated JSON values over
//! the protocol's vocabulary, nesting beyond the limits and mutated valid
//! frames; every decoded customer message then goes through
//! `check_customer_msg`.

use super::config;
use cobrowse::protocol::{
    check_customer_msg, decode, AgentMsg, CustomerMsg, Limits, ProtocolError,
};
use proptest::prelude::*;

fn small_limits() -> Limits {
    Limits {
        max_message_bytes: 64 * 1024,
        max_nodes: 50,
        max_depth: 6,
        max_ops: 8,
        ..Limits::default()
    }
}

/// Decode as both message kinds under both limit sets; check what decodes.
fn exercise(text: &str) {
    for limits in [Limits::default(), small_limits()] {
        if let Ok(msg) = decode::<CustomerMsg>(text, &limits) {
            let _ = check_customer_msg(&msg, &limits);
        }
        let _ = decode::<AgentMsg>(text, &limits);
        let _ = cobrowse::protocol::may_be_document_frame(text);
    }
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1",
    "-1",
    "1e999999",
    "-1e-999999",
    "18446744073709551616",
    "-9223372036854775809",
    "1.5",
    "0x10",
    "NaN",
    "Infinity",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"\\uZZZZ\"",
    "\"\\x41\"",
    " ",
    "\n",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{10ffff}",
];

/// Message tags (both directions), as JSON strings.
const TAGS: &[&str] = &[
    "\"snapshot\"",
    "\"mutations\"",
    "\"navigate\"",
    "\"pointer\"",
    "\"scroll\"",
    "\"viewport\"",
    "\"control\"",
    "\"end\"",
    "\"click\"",
    "\"input\"",
    "\"key\"",
    "\"fly\"",
];

/// Field names and node/op tags, as JSON strings.
const KEYS: &[&str] = &[
    "\"t\"",
    "\"root\"",
    "\"type\"",
    "\"document\"",
    "\"element\"",
    "\"text\"",
    "\"comment\"",
    "\"doctype\"",
    "\"id\"",
    "\"tag\"",
    "\"ns\"",
    "\"svg\"",
    "\"attrs\"",
    "\"children\"",
    "\"value\"",
    "\"checked\"",
    "\"ops\"",
    "\"op\"",
    "\"insert\"",
    "\"remove\"",
    "\"attr\"",
    "\"parent\"",
    "\"before\"",
    "\"node\"",
    "\"url\"",
    "\"title\"",
    "\"epoch\"",
    "\"x\"",
    "\"y\"",
    "\"w\"",
    "\"h\"",
    "\"grant\"",
    "\"request\"",
    "\"viewport\"",
    "\"name\"",
];

fn any_token() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        3 => prop::sample::select(TOKENS),
        2 => prop::sample::select(KEYS),
        1 => prop::sample::select(TAGS),
    ]
}

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(any_token(), 0..120).prop_map(|t| t.concat())
}

/// JSON values over the protocol's keys and tags, nested a few levels.
fn json_value() -> impl Strategy<Value = String> {
    let key = prop::sample::select(KEYS);
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        any_token().prop_map(str::to_string),
        ".{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| {
                let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn tagged_message() -> impl Strategy<Value = String> {
    let tag = prop::sample::select(TAGS);
    (
        tag,
        prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..5),
    )
        .prop_map(|(tag, kv)| {
            let mut s = format!("{{\"t\":{tag}");
            for (k, v) in kv {
                s.push_str(&format!(",{k}:{v}"));
            }
            s.push('}');
            s
        })
}

/// Valid frames to mutate.
const VALID: &[&str] = &[
    r#"{"t":"snapshot","epoch":3,"url":"https://shop.example/a?b=1","title":"T","viewport":{"w":1280,"h":800},"root":{"type":"document","id":1,"children":[{"type":"doctype","id":2,"name":"html"},{"type":"element","id":3,"tag":"html","children":[{"type":"element","id":4,"tag":"body","attrs":{"class":"a"},"children":[{"type":"element","id":5,"tag":"input","attrs":{"type":"password"},"value":"s3cret","checked":true},{"type":"text","id":6,"text":"4111 1111 1111 1111"},{"type":"element","id":7,"tag":"svg","ns":"svg","children":[]},{"type":"comment","id":8,"text":"c"}]}]}]}}"#,
    r#"{"t":"mutations","epoch":3,"ops":[{"op":"insert","parent":4,"before":5,"node":{"type":"element","id":9,"tag":"p","children":[{"type":"text","id":10,"text":"x"}]}},{"op":"remove","id":6},{"op":"attr","id":5,"name":"value","value":null},{"op":"text","id":10,"text":"y"},{"op":"value","id":5,"value":"v","checked":false}]}"#,
    r#"{"t":"navigate","epoch":3,"url":"https://shop.example/b#frag","title":"B"}"#,
    r#"{"t":"pointer","x":1.5,"y":-2}"#,
    r#"{"t":"scroll","id":4,"x":0,"y":100}"#,
    r#"{"t":"viewport","w":375,"h":812}"#,
    r#"{"t":"control","grant":true}"#,
    r#"{"t":"end"}"#,
    r#"{"t":"click","id":5}"#,
    r#"{"t":"input","id":5,"value":"hello"}"#,
    r#"{"t":"key","id":5,"key":"Enter"}"#,
    r#"{"t":"control","request":true}"#,
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Duplicate(usize, usize),
    Truncate(usize),
    Flip(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..8usize).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), any_token()).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), 1..64usize).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
    ]
}

fn mutate(base: &str, muts: &[Mutation]) -> String {
    let mut b = base.as_bytes().to_vec();
    for m in muts {
        let len = b.len().max(1);
        match *m {
            Mutation::Delete(a, n) => {
                let a = a % len;
                let e = (a + n).min(b.len());
                if a < e {
                    b.drain(a..e);
                }
            }
            Mutation::Insert(a, t) => {
                let a = a % (b.len() + 1);
                b.splice(a..a, t.bytes());
            }
            Mutation::Duplicate(a, n) => {
                let a = a % len;
                let e = (a + n).min(b.len());
                if a < e {
                    let part = b[a..e].to_vec();
                    b.splice(e..e, part);
                }
            }
            Mutation::Truncate(a) => b.truncate(a % len),
            Mutation::Flip(a, v) => {
                if !b.is_empty() {
                    let a = a % b.len();
                    b[a] = v;
                }
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// A snapshot whose root element chain nests `depth` levels.
fn nested_snapshot(depth: usize) -> String {
    let mut s = String::from(
        r#"{"t":"snapshot","url":"u","viewport":{"w":1,"h":1},"root":{"type":"document","id":1,"children":["#,
    );
    for i in 0..depth {
        s.push_str(&format!(
            r#"{{"type":"element","id":{},"tag":"div","children":["#,
            i + 2
        ));
    }
    s.push_str(&"]}".repeat(depth));
    s.push_str("]}}");
    s
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn decoder_survives_arbitrary_text(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn decoder_survives_json_token_soup(text in token_soup()) {
        exercise(&text);
    }

    #[test]
    fn decoder_survives_generated_json_messages(text in tagged_message()) {
        exercise(&text);
    }

    #[test]
    fn decoder_survives_mutated_valid_frames(
        base in prop::sample::select(VALID),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        exercise(&mutate(base, &muts));
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// Nesting around and far beyond `max_depth`: refused as `too_deep`
    /// (by the decoder or the tree check) whenever it is over the limit,
    /// accepted when within it.
    #[test]
    fn frames_nested_beyond_the_depth_limit_are_refused_as_too_deep(depth in 0usize..3000) {
        let limits = Limits { max_depth: 64, ..Limits::default() };
        let text = nested_snapshot(depth);
        let checked = decode::<CustomerMsg>(&text, &limits)
            .and_then(|m| check_customer_msg(&m, &limits));
        // the document node is level 1, its element chain levels 2..=depth+1
        if depth < 64 {
            prop_assert_eq!(checked, Ok(()));
        } else {
            prop_assert!(matches!(checked, Err(ProtocolError::TooDeep(_))), "{:?}", checked);
        }
    }
}

#[test]
fn valid_frames_decode_and_pass_the_checks() {
    let l = Limits::default();
    for (i, text) in VALID.iter().enumerate() {
        if i < 8 {
            let m = decode::<CustomerMsg>(text, &l);
            assert!(
                m.as_ref().is_ok_and(|m| check_customer_msg(m, &l).is_ok()),
                "{text}: {m:?}"
            );
        } else {
            assert!(decode::<AgentMsg>(text, &l).is_ok(), "{text}");
        }
    }
}
