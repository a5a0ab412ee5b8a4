//! Web components, frames, canvases and CSS-in-JS in real Chromium (protocol
//! v1.2, issue 9 item 1): an open shadow root whose input a light-tree rule
//! masks, a shadow root attached after the session started, a same-origin
//! frame with a masked field, a cross-origin frame and a canvas shown as
//! placeholders of the same size, and styles built with `insertRule` and
//! `adoptedStyleSheets` styling the replica as they style the page.
//!
//! Each page is built by script on the demo page (which carries the
//! snippet) before the session starts, so the first snapshot carries it;
//! later changes go through the snippet's observers and hooks.

use super::stage::{Stage, REPLICA};
use crate::wait_for;
use cobrowse::rules::Action;
use fantoccini::Locator;
use serde_json::Value;

/// Open the demo page, run `setup` on it, start a session and let the agent
/// join it (as `Stage::start_and_join`, without reloading the page).
async fn start_with(s: &Stage, setup: &str) {
    s.customer
        .client
        .goto(&format!("{}/demo/", s.base))
        .await
        .unwrap();
    wait_for!("the snippet on the customer's page", {
        let ok: bool = s
            .customer
            .try_eval("return !!(window.cobrowse && window.cobrowse.start);")
            .await?;
        if ok {
            Ok(())
        } else {
            Err("no window.cobrowse".into())
        }
    });
    let _: Value = s.customer.eval_async(setup).await;
    let started: Value = s
        .customer
        .eval_async(
            "var done = arguments[arguments.length - 1]; \
             window.cobrowse.start().then(done, function (e) { done({ error: String(e) }); });",
        )
        .await;
    let id = started["id"]
        .as_str()
        .unwrap_or_else(|| panic!("start() failed: {started}"))
        .to_string();
    let input = s
        .agent
        .client
        .find(Locator::Id("session-id"))
        .await
        .unwrap();
    input.send_keys(&id).await.unwrap();
    s.agent
        .client
        .find(Locator::Id("join-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for!("the replica of the customer's page", {
        let ok: bool = s
            .agent
            .try_eval(&format!(
                "{REPLICA} return !!(d && d.body && d.body.querySelector('#cb-test'));"
            ))
            .await?;
        if ok {
            Ok(())
        } else {
            Err("no test content in the replica yet".into())
        }
    });
}

/// Agent page: record every frame the viewer receives (before joining).
const RECORD_AGENT_FRAMES: &str = r#"
window.__frames = [];
window.__framesPending = 0;
var d = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'onmessage');
Object.defineProperty(WebSocket.prototype, 'onmessage', {
  configurable: true,
  get: d.get,
  set: function (fn) {
    d.set.call(this, function (e) {
      try {
        if (typeof e.data === 'string') {
          window.__frames.push(e.data);
        } else {
          // a compressed frame (deflate-raw negotiated): inflated in place
          var i = window.__frames.push('') - 1;
          window.__framesPending++;
          new Response(new Blob([e.data]).stream().pipeThrough(new DecompressionStream('deflate-raw')))
            .text()
            .then(function (t) { window.__frames[i] = t; }, function () { window.__frames[i] = '[uninflatable]'; })
            .then(function () { window.__framesPending--; });
        }
      } catch (_) {}
      return fn.apply(this, arguments);
    });
  }
});
return true;
"#;

async fn record_agent_frames(s: &Stage) {
    let _: bool = s.agent.eval(RECORD_AGENT_FRAMES).await;
}

async fn agent_frames(s: &Stage) -> String {
    s.agent
        .eval_async(
            "var done = arguments[arguments.length - 1]; \
             (function ready() { \
               if (window.__framesPending > 0) { setTimeout(ready, 10); return; } \
               done((window.__frames || []).join('\\n')); \
             })();",
        )
        .await
}

/// The replica's DOM including shadow roots, frame documents and the live
/// values of fields, as one string.
const DEEP_DUMP: &str = r#"
function dump(n) {
  var out = '';
  if (n.nodeType === 3) return n.data;
  if (n.nodeType === 1) {
    out += '<' + n.localName + ' ' + [].map.call(n.attributes, function (a) { return a.name + '=' + a.value; }).join(' ') + '>';
    if ('value' in n && (n.localName === 'input' || n.localName === 'textarea')) out += '[value=' + n.value + ']';
    if (n.shadowRoot) out += '#shadow(' + dump(n.shadowRoot) + ')';
    if (n.localName === 'iframe' && n.contentDocument) out += '#frame(' + dump(n.contentDocument) + ')';
  }
  for (var c = n.firstChild; c; c = c.nextSibling) out += dump(c);
  return out;
}
return dump(d);
"#;

async fn replica_dump(s: &Stage) -> Result<String, String> {
    s.agent.try_eval(&format!("{REPLICA} {DEEP_DUMP}")).await
}

/// Wait until the replica dump contains `needle`; returns the dump.
async fn replica_shows(s: &Stage, what: &str, needle: &str) -> String {
    wait_for!(what, {
        let dump = replica_dump(s).await?;
        if dump.contains(needle) {
            Ok(dump)
        } else {
            Err(dump)
        }
    })
}

const PAY_WIDGET: &str = r#"
var done = arguments[arguments.length - 1];
customElements.define('pay-widget', class extends HTMLElement {
  constructor() {
    super();
    var r = this.attachShadow({ mode: 'open' });
    r.innerHTML = '<label>Card holder</label><input id="holder"><input id="nick"><span id="status">idle</span>';
  }
});
var box = document.createElement('div');
box.id = 'cb-test';
box.innerHTML = '<form class="pay"><pay-widget id="w"></pay-widget></form>';
document.body.appendChild(box);
done(true);
"#;

/// An open shadow root is mirrored: its text shows, a mutation inside it
/// shows, and the input a light-tree rule (`form.pay #holder`, through the
/// shadow boundary) masks never carries the typed value to the agent,
/// while an unmasked input next to it does.
#[tokio::test]
async fn a_web_component_input_masked_by_a_light_tree_rule_never_reaches_the_viewer() {
    let s = Stage::new().await;
    s.app()
        .publish_demo_rules(
            &[("form.pay #holder", Action::Mask, None)],
            Default::default(),
        )
        .await;
    record_agent_frames(&s).await;
    start_with(&s, PAY_WIDGET).await;
    replica_shows(&s, "the shadow root's text in the replica", "Card holder").await;

    // real typing into the inputs inside the shadow root
    let host = s.customer.client.find(Locator::Id("w")).await.unwrap();
    let root = host.shadow_root().await.unwrap();
    const SECRET: &str = "Jane Secretname";
    root.find(Locator::Css("#holder"))
        .await
        .unwrap()
        .send_keys(SECRET)
        .await
        .unwrap();
    root.find(Locator::Css("#nick"))
        .await
        .unwrap()
        .send_keys("visible-nick")
        .await
        .unwrap();
    let _: Value = s
        .customer
        .eval(
            "document.getElementById('w').shadowRoot.getElementById('status').textContent = 'ready to pay'; return null;",
        )
        .await;
    replica_shows(
        &s,
        "typing in the unmasked shadow input",
        "[value=visible-nick]",
    )
    .await;
    let dump = replica_shows(&s, "a mutation inside the shadow root", "ready to pay").await;
    assert!(!dump.contains("Secretname"), "{dump}");
    assert!(
        dump.contains("[value=•"),
        "the masked input shows dots: {dump}"
    );
    let frames = agent_frames(&s).await;
    assert!(
        frames.contains("\"t\":\"snapshot\""),
        "the recorder missed the snapshot"
    );
    assert!(!frames.contains("Secretname"), "a frame carried the secret");
    s.finish().await;
}

/// A shadow root attached to an element already in the page after the
/// session started (the snippet's attachShadow hook), and an element that
/// arrives with a shadow root already attached (scan on insert).
#[tokio::test]
async fn shadow_roots_attached_after_the_session_started_are_mirrored() {
    let s = Stage::new().await;
    start_with(
        &s,
        "var done = arguments[arguments.length - 1]; \
         var b = document.createElement('div'); b.id = 'cb-test'; \
         b.innerHTML = '<div id=\"late\"></div>'; document.body.appendChild(b); done(true);",
    )
    .await;
    let _: Value = s
        .customer
        .eval(
            "var r = document.getElementById('late').attachShadow({ mode: 'open' }); \
             r.innerHTML = '<p>attached later</p>'; \
             var e = document.createElement('section'); \
             e.attachShadow({ mode: 'open' }).innerHTML = '<b>inserted with its root</b>'; \
             document.getElementById('cb-test').appendChild(e); return null;",
        )
        .await;
    replica_shows(&s, "the late shadow root", "#shadow(<p >attached later").await;
    replica_shows(&s, "the inserted host's root", "inserted with its root").await;
    // and a later change inside the late root
    let _: Value = s
        .customer
        .eval(
            "document.getElementById('late').shadowRoot.querySelector('p').textContent = 'changed inside'; return null;",
        )
        .await;
    replica_shows(&s, "a change inside the late root", "changed inside").await;
    s.finish().await;
}

/// A same-origin frame is mirrored as a nested document: its content
/// shows, a field a rule masks stays masked, and a reload of the frame
/// with other content reaches the replica.
#[tokio::test]
async fn a_same_origin_frame_shows_and_its_masked_field_stays_masked() {
    let s = Stage::new().await;
    s.app()
        .publish_demo_rules(&[("#card", Action::Mask, None)], Default::default())
        .await;
    record_agent_frames(&s).await;
    start_with(
        &s,
        r#"var done = arguments[arguments.length - 1];
        var b = document.createElement('div'); b.id = 'cb-test';
        var f = document.createElement('iframe');
        f.id = 'payframe'; f.style.width = '320px'; f.style.height = '160px';
        f.srcdoc = '<p>Pay here</p><input id="card" value="4000 1234 9999 0000">';
        f.onload = function () { done(true); };
        b.appendChild(f); document.body.appendChild(b);"#,
    )
    .await;
    let dump = replica_shows(&s, "the frame's content", "Pay here").await;
    assert!(!dump.contains("9999"), "{dump}");
    let _: Value = s
        .customer
        .eval(
            "var i = document.getElementById('payframe').contentDocument.getElementById('card'); \
             i.value = 'typed 5555 4444 3333'; i.dispatchEvent(new Event('input', { bubbles: true })); return null;",
        )
        .await;
    // a marker after the typing: once it shows, the value op was handled
    let _: Value = s
        .customer
        .eval(
            "var d = document.getElementById('payframe').contentDocument; \
             d.body.appendChild(d.createElement('i')).textContent = 'after typing'; return null;",
        )
        .await;
    let dump = replica_shows(&s, "a change inside the frame", "after typing").await;
    assert!(!dump.contains("3333"), "{dump}");
    // the frame loads another page
    let _: Value = s
        .customer
        .eval(
            "document.getElementById('payframe').srcdoc = '<h1>Receipt</h1><input id=\"card\" value=\"1111 2222 3333 4444\">'; return null;",
        )
        .await;
    let dump = replica_shows(&s, "the reloaded frame", "Receipt").await;
    assert!(!dump.contains("Pay here"), "{dump}");
    assert!(!dump.contains("2222"), "{dump}");
    let frames = agent_frames(&s).await;
    assert!(
        frames.contains("\"t\":\"snapshot\""),
        "the recorder missed the snapshot"
    );
    for secret in ["9999", "3333", "2222"] {
        assert!(!frames.contains(secret), "{secret} reached the agent");
    }
    s.finish().await;
}

/// A cross-origin frame, a canvas and a closed shadow root are shown as
/// neutral boxes of the same size as on the customer's page.
#[tokio::test]
async fn a_cross_origin_frame_a_canvas_and_a_closed_root_are_placeholders_of_the_same_size() {
    let s = Stage::new().await;
    start_with(
        &s,
        r#"var done = arguments[arguments.length - 1];
        var b = document.createElement('div'); b.id = 'cb-test';
        b.innerHTML = '<iframe id="ext" width="333" height="141" style="border: 3px solid #000" ' +
          'src="data:text/html,<p>elsewhere</p>"></iframe>' +
          '<canvas id="chart" width="210" height="97" style="width: 260px; height: 120px; padding: 2px"></canvas>' +
          '<div id="closed" style="width: 150px"><span>light child</span></div>';
        document.body.appendChild(b);
        var cr = document.getElementById('closed').attachShadow({ mode: 'closed' });
        cr.innerHTML = '<p style="height: 77px; margin: 0">closed secret</p>';
        var c = document.getElementById('chart').getContext('2d');
        c.fillStyle = 'red'; c.fillRect(0, 0, 50, 50);
        document.getElementById('ext').onload = function () { done(true); };"#,
    )
    .await;
    const RECTS: &str = "return ['ext', 'chart', 'closed'].map(function (id) { \
         var r = d.getElementById(id).getBoundingClientRect(); return [r.width, r.height]; });";
    let customer: Vec<Vec<f64>> = s.customer.eval(&format!("var d = document; {RECTS}")).await;
    wait_for!("placeholders of the customer's sizes", {
        let replica: Vec<Vec<f64>> = s
            .agent
            .try_eval(&format!(
                "{REPLICA} if (!d.querySelector('[data-cobrowse-placeholder=frame]') || \
                 !d.querySelector('[data-cobrowse-placeholder=canvas]') || \
                 !d.querySelector('[data-cobrowse-placeholder=shadow]')) return [[0,0],[0,0],[0,0]]; {RECTS}"
            ))
            .await?;
        let close = customer
            .iter()
            .zip(&replica)
            .all(|(c, r)| (c[0] - r[0]).abs() < 1.0 && (c[1] - r[1]).abs() < 1.0);
        if close {
            Ok(())
        } else {
            Err(format!("customer {customer:?}, replica {replica:?}"))
        }
    });
    let dump = replica_dump(&s).await.unwrap();
    assert!(!dump.contains("elsewhere"), "{dump}");
    assert!(!dump.contains("closed secret"), "{dump}");
    assert!(dump.contains("not shared"), "a label: {dump}");
    s.finish().await;
}

/// The computed style of `#id`'s property in the customer's page and in
/// the replica, once they agree (or the last pair seen).
async fn same_style(s: &Stage, what: &str, find: &str, prop: &str) {
    let script = |doc: &str| {
        format!(
            "{doc} var e = {find}; return e ? d.defaultView.getComputedStyle(e).getPropertyValue('{prop}') : '<missing>';"
        )
    };
    let customer: String = s.customer.eval(&script("var d = document;")).await;
    wait_for!(what, {
        let replica: String = s.agent.try_eval(&script(REPLICA)).await?;
        if replica == customer {
            Ok(())
        } else {
            Err(format!("customer {customer:?}, replica {replica:?}"))
        }
    });
}

/// A styled-components-like page in production ("speedy") mode: an empty
/// `<style>` whose rules are only in its sheet (`insertRule`), before and
/// after the session started, and a `deleteRule`.
#[tokio::test]
async fn rules_inserted_with_insert_rule_style_the_replica() {
    let s = Stage::new().await;
    start_with(
        &s,
        r#"var done = arguments[arguments.length - 1];
        var st = document.createElement('style'); st.id = 'sc'; document.head.appendChild(st);
        st.sheet.insertRule('.sc-a { color: rgb(1, 2, 3); padding-left: 17px; }', 0);
        st.sheet.insertRule('.sc-gone { margin-top: 40px; }', 1);
        var b = document.createElement('div'); b.id = 'cb-test';
        b.innerHTML = '<p class="sc-a sc-gone" id="styled">styled</p><p class="sc-b" id="later">later</p>';
        document.body.appendChild(b); done(true);"#,
    )
    .await;
    same_style(
        &s,
        "the inserted rule's colour",
        "d.getElementById('styled')",
        "color",
    )
    .await;
    same_style(
        &s,
        "the inserted rule's padding",
        "d.getElementById('styled')",
        "padding-left",
    )
    .await;
    let _: Value = s
        .customer
        .eval(
            "var sh = document.getElementById('sc').sheet; \
             sh.insertRule('.sc-b { border-left: 9px solid rgb(4, 5, 6); }', sh.cssRules.length); \
             sh.deleteRule(1); return null;",
        )
        .await;
    same_style(
        &s,
        "a rule inserted during the session",
        "d.getElementById('later')",
        "border-left-width",
    )
    .await;
    same_style(
        &s,
        "a deleted rule",
        "d.getElementById('styled')",
        "margin-top",
    )
    .await;
    s.finish().await;
}

/// Constructable stylesheets adopted by the document and by a shadow root
/// style the replica; a `replaceSync` during the session follows.
#[tokio::test]
async fn adopted_stylesheets_style_the_replica() {
    let s = Stage::new().await;
    start_with(
        &s,
        r#"var done = arguments[arguments.length - 1];
        window.__docSheet = new CSSStyleSheet();
        __docSheet.replaceSync('.adopted { margin-left: 23px; color: rgb(7, 8, 9); }');
        document.adoptedStyleSheets = [__docSheet];
        var b = document.createElement('div'); b.id = 'cb-test';
        b.innerHTML = '<p class="adopted" id="ad">adopted</p><div id="host"></div>';
        document.body.appendChild(b);
        var r = document.getElementById('host').attachShadow({ mode: 'open' });
        window.__shadowSheet = new CSSStyleSheet();
        __shadowSheet.replaceSync('p { letter-spacing: 3px; }');
        r.adoptedStyleSheets = [__shadowSheet];
        r.innerHTML = '<p>in shadow</p>';
        done(true);"#,
    )
    .await;
    same_style(
        &s,
        "the document's adopted sheet",
        "d.getElementById('ad')",
        "margin-left",
    )
    .await;
    same_style(
        &s,
        "the shadow root's adopted sheet",
        "d.getElementById('host').shadowRoot.querySelector('p')",
        "letter-spacing",
    )
    .await;
    let _: Value = s
        .customer
        .eval("__docSheet.replaceSync('.adopted { margin-left: 31px; }'); return null;")
        .await;
    same_style(
        &s,
        "replaceSync during the session",
        "d.getElementById('ad')",
        "margin-left",
    )
    .await;
    let m: String = s
        .customer
        .eval("return getComputedStyle(document.getElementById('ad')).marginLeft;")
        .await;
    assert_eq!(m, "31px");
    s.finish().await;
}
