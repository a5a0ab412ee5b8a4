//! Big pages stay live (issue 9 item 3): the corpus's 30,000-element page
//! (`tests/fixtures/corpus/big.html`) co-browsed in Chromium, with the
//! figures docs/performance.md ("Browser side") records: keystroke → agent
//! screen latency (the page's `input` event to the viewer having applied the
//! frame, and to the next animation frame), re-filtering 4,000 rows, and the
//! first replica (the snippet starting its snapshot → the viewer's replica
//! built). Both sides stamp times as `performance.timeOrigin +
//! performance.now()`; the two Chromium processes run on the same machine and
//! the test measures and prints how far their clocks disagree.
//!
//! The test only *records* figures (stdout and `target/bigpage-perf.json`); it
//! asserts correctness: every keystroke and re-filter reaches the replica,
//! and at the end the replica's body equals the page's. Timing is noisy on a
//! shared machine and belongs in the document, not in an assertion.
//! `BIGPAGE_KEYS=N` sets the number of keystrokes (default 30); the ignored
//! `big_page_long_measurement` types 300 and re-filters 40 times.

use super::corpus::{replica_shows, Corpus};
use super::stage::{Stage, REPLICA};
use crate::wait_for;
use fantoccini::Locator;
use serde::Deserialize;
use serde_json::{json, Value};

/// One `input` event as the fixture page logged it.
#[derive(Deserialize, Debug, Clone)]
struct Input {
    id: String,
    v: String,
    t: f64,
    /// The page's own next animation frame after the event.
    frame: Option<f64>,
}

/// One frame as the viewer's performance log has it.
#[derive(Deserialize, Debug, Clone)]
struct Frame {
    t: String,
    recv: f64,
    ms: f64,
    frame: Option<f64>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    n: u64,
}

/// One snippet performance mark.
#[derive(Deserialize, Debug, Clone)]
struct Mark {
    name: String,
    t: f64,
    ms: f64,
    #[serde(default)]
    n: u64,
}

/// A structural digest of a document's body: element count, a hash over
/// every element's tag, `hidden`, form value and own text, in document
/// order (the co-browse widget and scripts left out: the replica has
/// neither), and the number of visible rows.
const DIGEST: &str = "function digest(doc) { \
    var h = 2166136261, n = 0; \
    function mix(s) { for (var i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619) >>> 0; } } \
    var w = doc.createTreeWalker(doc.body, 1, { acceptNode: function (e) { \
      return e.hasAttribute('data-cobrowse-widget') || e.localName === 'script' ? 2 : 1; } }); \
    for (var e = w.currentNode; e; e = w.nextNode()) { \
      n++; mix(e.localName + (e.hidden ? '!' : '') + '|'); \
      if (e.localName === 'input') mix('=' + e.value); \
      for (var c = e.firstChild; c; c = c.nextSibling) if (c.nodeType === 3) mix(c.data); } \
    var rows = doc.getElementById('rows').children, vis = 0; \
    for (var r = 0; r < rows.length; r++) if (!rows[r].hidden) vis++; \
    return [n, h, vis]; }";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    let s = json!({
        "n": v.len(),
        "p50": percentile(&v, 0.5),
        "p90": percentile(&v, 0.9),
        "max": v.last().copied().unwrap_or(f64::NAN),
    });
    let unit = if name.contains("count") { "" } else { " ms" };
    println!(
        "bigpage {name}: n={} p50={:.1}{unit} p90={:.1}{unit} max={:.1}{unit}",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.9),
        v.last().copied().unwrap_or(f64::NAN)
    );
    s
}

async fn customer_inputs(s: &Stage) -> Vec<Input> {
    let v: Value = s.customer.eval("return window.__inputLog;").await;
    serde_json::from_value(v).unwrap()
}

async fn viewer_frames(s: &Stage) -> Vec<Frame> {
    let v: Value = s
        .agent
        .eval("return window.cobrowseViewer.perfLog();")
        .await;
    serde_json::from_value(v).unwrap()
}

async fn snippet_marks(s: &Stage) -> Vec<Mark> {
    let v: Value = s.customer.eval("return window.__cobrowsePerf || [];").await;
    serde_json::from_value(v).unwrap()
}

/// How far the agent's clock (timeOrigin + now) is ahead of the customer's,
/// each measured against the shared system clock (`Date.now()`, 1 ms).
async fn clock_skew(s: &Stage) -> f64 {
    let probe = "var a = Date.now(), b = performance.timeOrigin + performance.now(); return b - a;";
    let c: f64 = s.customer.eval(probe).await;
    let a: f64 = s.agent.eval(probe).await;
    a - c
}

/// The first viewer frame that arrived after `input` and set `value` (the
/// viewer's log keeps the last 200 characters of each value).
fn frame_for<'a>(frames: &'a [Frame], input: &Input, value: &str) -> Option<&'a Frame> {
    let cut = value.char_indices().rev().nth(199).map_or(0, |(i, _)| i);
    let value = &value[cut..];
    frames
        .iter()
        .find(|f| f.recv >= input.t - 5.0 && f.values.iter().any(|v| v == value))
}

async fn run(keys: usize, filters: usize) {
    let c = Corpus::new().await;
    let s = &c.stage;
    c.open("/big.html").await;
    let elements: u64 = s
        .customer
        .eval("return document.getElementsByTagName('*').length;")
        .await;
    assert!(elements >= 30_000, "the big page has {elements} elements");
    replica_shows(
        s,
        "every row in the replica",
        "return d.getElementById('rows').children.length;",
        json!(4000),
    )
    .await;
    s.agent
        .eval::<Value>("window.cobrowseViewer.perf(true); return null;")
        .await;
    let skew = clock_skew(s).await;

    // Keystrokes into a field: each must reach the replica before the next.
    let note = s.customer.client.find(Locator::Id("note")).await.unwrap();
    note.click().await.unwrap();
    let mut typed = String::new();
    for i in 0..keys {
        let ch = char::from(b'a' + (i % 26) as u8);
        note.send_keys(&ch.to_string()).await.unwrap();
        typed.push(ch);
        replica_shows(
            s,
            "the keystroke in the replica",
            "return d.getElementById('note').value;",
            json!(typed),
        )
        .await;
    }

    // Re-filtering the 4,000-row grid: "p" shows 400 rows, Backspace all.
    let filter = s.customer.client.find(Locator::Id("filter")).await.unwrap();
    filter.click().await.unwrap();
    let mut expected_texts = Vec::new();
    for i in 0..filters {
        let key = if i % 2 == 0 { "p" } else { "\u{E003}" }; // Backspace
        filter.send_keys(key).await.unwrap();
        let shown: String = s
            .customer
            .eval("return document.getElementById('shown').textContent;")
            .await;
        replica_shows(
            s,
            "the re-filtered grid in the replica",
            "return d.getElementById('shown').textContent;",
            json!(shown),
        )
        .await;
        expected_texts.push(shown);
    }

    let inputs = customer_inputs(s).await;
    let frames = viewer_frames(s).await;
    let marks = snippet_marks(s).await;

    let mut applied = Vec::new();
    let mut screen = Vec::new();
    let mut viewer_ms = Vec::new();
    let mut page_frame = Vec::new();
    for inp in inputs.iter().filter(|i| i.id == "note") {
        let f = frame_for(&frames, inp, &inp.v)
            .unwrap_or_else(|| panic!("no replica frame for keystroke {inp:?}"));
        applied.push(f.recv + f.ms - inp.t);
        viewer_ms.push(f.ms);
        if let Some(fr) = f.frame {
            screen.push(fr - inp.t);
        }
        if let Some(fr) = inp.frame {
            page_frame.push(fr - inp.t);
        }
    }
    let mut refilter = Vec::new();
    let mut refilter_viewer = Vec::new();
    let mut refilter_transit = Vec::new();
    let mut refilter_ops = Vec::new();
    let mut refilter_page = Vec::new();
    let filter_inputs: Vec<&Input> = inputs.iter().filter(|i| i.id == "filter").collect();
    assert_eq!(
        filter_inputs.len(),
        filters,
        "one input event per filter key"
    );
    for (inp, text) in filter_inputs.iter().zip(&expected_texts) {
        let f = frame_for(&frames, inp, text)
            .unwrap_or_else(|| panic!("no replica frame for re-filter {inp:?} -> {text}"));
        refilter.push(f.frame.unwrap_or(f.recv + f.ms) - inp.t);
        refilter_viewer.push(f.ms);
        refilter_transit.push(f.recv - inp.t);
        refilter_ops.push(f.n as f64);
        if let Some(fr) = inp.frame {
            refilter_page.push(fr - inp.t);
        }
    }
    let snippet = |name: &str| -> Vec<f64> {
        marks
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.ms)
            .collect()
    };
    let value_events = snippet("value-event");
    let batches: Vec<f64> = marks
        .iter()
        .filter(|m| m.name == "batch" && m.n >= 1000)
        .map(|m| m.ms)
        .collect();
    let cues = snippet("cues");
    let polls = snippet("poll");

    // First replica: the customer's page loads again (the session resumes
    // on the new page): the snippet's snapshot start -> the viewer's replica.
    s.customer.client.refresh().await.unwrap();
    let snap_frame = wait_for!("the new page's replica", {
        let frames = viewer_frames(s).await;
        match frames
            .iter()
            .rev()
            .find(|f| f.t == "snapshot" && f.frame.is_some())
        {
            Some(f) => Ok(f.clone()),
            None => Err("no snapshot yet".to_string()),
        }
    });
    let marks = wait_for!("the snippet's snapshot mark", {
        let m = snippet_marks(s).await;
        if m.iter().any(|m| m.name == "snapshot") {
            Ok(m)
        } else {
            Err("none yet".to_string())
        }
    });
    let serialise = marks
        .iter()
        .find(|m| m.name == "serialise")
        .unwrap()
        .clone();
    let snapshot = marks.iter().find(|m| m.name == "snapshot").unwrap().clone();
    let first_replica = snap_frame.frame.unwrap() - serialise.t;
    let page_build: Value = s.customer.eval("return window.__pageBuild;").await;
    println!("bigpage the page's own build: {page_build}");
    println!(
        "bigpage first replica: {first_replica:.0} ms (snippet serialise {:.0} ms, + JSON and send {:.0} ms; \
         server + network {:.0} ms; viewer build {:.0} ms; to the next frame {:.0} ms); clock skew {skew:.1} ms",
        serialise.ms,
        snapshot.ms - serialise.ms,
        snap_frame.recv - (snapshot.t + snapshot.ms),
        snap_frame.ms,
        snap_frame.frame.unwrap() - (snap_frame.recv + snap_frame.ms),
    );

    // Correctness: after all that, the replica's body equals the page's.
    s.customer
        .eval::<Value>(
            "document.getElementById('note').value = 'final'; \
             document.getElementById('f9').value = 'nine'; return null;",
        )
        .await;
    let want: Value = s
        .customer
        .eval(&format!("{DIGEST} return digest(document);"))
        .await;
    wait_for!("the replica to equal the page", {
        let got: Value = s
            .agent
            .try_eval(&format!("{REPLICA} {DIGEST} return digest(d);"))
            .await?;
        if got == want {
            Ok(())
        } else {
            Err(format!("replica {got}, page {want}"))
        }
    });

    let report = json!({
        "elements": elements,
        "keys": keys,
        "clock_skew_ms": skew,
        "keystroke_to_replica_applied_ms": summary("keystroke -> replica applied", applied),
        "keystroke_to_next_frame_ms": summary("keystroke -> agent screen (next frame)", screen),
        "page_keystroke_to_own_next_frame_ms": summary("keystroke -> the page's own next frame", page_frame),
        "viewer_apply_keystroke_ms": summary("viewer apply, keystroke frame", viewer_ms),
        "snippet_value_event_ms": summary("snippet value event", value_events),
        "snippet_refilter_batch_ms": summary("snippet re-filter batch (>= 1000 ops)", batches),
        "snippet_cues_ms": summary("snippet cues", cues),
        "snippet_field_poll_ms": summary("snippet field poll (no change)", polls),
        "refilter_to_agent_screen_ms": summary("re-filter 4,000 rows -> agent screen", refilter),
        "viewer_apply_refilter_ms": summary("viewer apply, re-filter frame", refilter_viewer),
        "page_refilter_to_own_next_frame_ms": summary("re-filter -> the page's own next frame", refilter_page),
        "refilter_ops_per_frame": summary("re-filter frame ops (count)", refilter_ops),
        "refilter_to_viewer_receipt_ms": summary("re-filter -> viewer receipt (snippet + server + network)", refilter_transit),
        "first_replica_ms": first_replica,
        "page_own_build": page_build,
        "snippet_serialise_ms": serialise.ms,
        "snippet_snapshot_send_ms": snapshot.ms,
        "viewer_build_ms": snap_frame.ms,
    });
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bigpage-perf.json");
    let _ = std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap());
    println!("bigpage figures written to {}", path.display());
    c.finish().await;
}

/// The 30,000-element page: keystrokes, re-filters and a page load reach the
/// agent's replica, which ends equal to the page; the figures are recorded.
#[tokio::test]
async fn a_30000_element_page_stays_live_and_its_replica_equals_the_page() {
    let keys = std::env::var("BIGPAGE_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    run(keys, 6).await;
}

/// The longer measurement for docs/performance.md:
/// `cargo test --test main big_page_long_measurement -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement run (a few minutes), see docs/performance.md"]
async fn big_page_long_measurement() {
    run(300, 40).await;
}
