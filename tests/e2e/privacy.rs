//! Fail-closed privacy in two real Chromium browsers (issue 7, protocol
//! v1.1): the demo checkout under the DEFAULT configuration, a card number,
//! expiry, CVC and password typed key by key, the agent typing into a hidden
//! field in write mode, a show-password toggle across a reconnect, SPA
//! navigation switching URL-scoped rules, and a server-requested resync.
//! Every frame the agent's viewer receives is recorded (a hook on
//! `WebSocket.prototype.onmessage`) so a secret that flashed by and was
//! overwritten still fails the test.

use super::stage::{Stage, REPLICA};
use crate::wait_for;
use cobrowse::rules::{Action, Rule, RulePack};
use fantoccini::Locator;
use serde_json::Value;

/// A Luhn-valid test card number, typed as a customer would (with spaces).
const CARD: &str = "5454 5454 5454 5454";
const EXPIRY: &str = "12 / 29";
const CVC: &str = "8317";
const PASSWORD: &str = "hunter2-secret";

/// Agent page: record the data of every frame the viewer's sockets receive.
/// Must run before the viewer opens its socket (before joining).
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

/// Agent page (an async script): every string value in every recorded
/// frame, one per line, once every compressed frame is inflated.
const AGENT_STRINGS: &str = r#"
var done = arguments[arguments.length - 1];
(function ready() {
  if (window.__framesPending > 0) { setTimeout(ready, 10); return; }
  var out = [];
  var walk = function (v) {
    if (typeof v === 'string') out.push(v);
    else if (v && typeof v === 'object') for (var k in v) walk(v[k]);
  };
  (window.__frames || []).forEach(function (f) {
    try { walk(JSON.parse(f)); } catch (_) { out.push(f); }
  });
  done(out.join('\n'));
})();
"#;

/// The recorder saw the agent's traffic, snapshot included (compressed
/// frames too): a frame check over nothing would prove nothing.
fn assert_recorded_a_snapshot(frames: &str) {
    assert!(
        frames.lines().any(|l| l == "snapshot") && !frames.contains("[uninflatable]"),
        "the frame recorder missed the agent's snapshot"
    );
}

/// Customer page: wrap `WebSocket.prototype.send` to see (and, while
/// `__cb.hold`, hold back) what the snippet sends; `__cbRelease()` sends the
/// held frames in order.
const HOOK_CUSTOMER_SOCKET: &str = r#"
if (!window.__cb) {
  var orig = WebSocket.prototype.send;
  window.__cb = { sock: null, sent: [], hold: false, held: [], heldParsed: [], orig: orig };
  // Text frames are JSON; binary ones are deflate-raw JSON (compression
  // negotiated): inflated asynchronously into the same list.
  var record = function (list, data) {
    if (typeof data === 'string') {
      try { list.push(JSON.parse(data)); } catch (_) {}
      return;
    }
    try {
      new Response(new Blob([data]).stream().pipeThrough(new DecompressionStream('deflate-raw')))
        .text().then(function (t) { list.push(JSON.parse(t)); }).catch(function () {});
    } catch (_) {}
  };
  WebSocket.prototype.send = function (data) {
    var cb = window.__cb;
    if (String(this.url).indexOf('/ws/customer/') >= 0) {
      cb.sock = this;
      record(cb.sent, data);
      if (cb.hold) { cb.held.push(data); record(cb.heldParsed, data); return; }
    }
    return orig.call(this, data);
  };
  window.__cbRelease = function () {
    var cb = window.__cb;
    cb.hold = false;
    var held = cb.held;
    cb.held = [];
    held.forEach(function (d) { cb.orig.call(cb.sock, d); });
    return held.length;
  };
}
return true;
"#;

/// The replica's whole DOM plus the live values of its fields.
async fn replica_dump(s: &Stage) -> Result<String, String> {
    s.agent
        .try_eval(&format!(
            "{REPLICA} return d.documentElement.outerHTML + '\\n' + \
             [].map.call(d.querySelectorAll('input,textarea,select'), function (e) {{ return e.id + '=' + e.value; }}).join('\\n');"
        ))
        .await
}

async fn replica_value(s: &Stage, id: &str) -> Result<String, String> {
    s.agent
        .try_eval(&format!(
            "{REPLICA} var e = d.getElementById('{id}'); return e ? e.value : '<missing>';"
        ))
        .await
}

/// Every way the card's 7th and later digits could show: the typed prefix
/// of 7..=16 digits, with and without its separators.
fn card_leaks(card: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut digits = 0;
    for (i, c) in card.char_indices() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= 7 {
                let typed = &card[..i + 1];
                out.push(typed.to_string());
                out.push(typed.chars().filter(|c| c.is_ascii_digit()).collect());
            }
        }
    }
    out
}

/// No card digit after the 6th, nor the expiry, CVC or password, in `text`.
fn assert_no_card_secrets(text: &str, where_: &str) {
    for leak in card_leaks(CARD) {
        assert!(
            !text.contains(&leak),
            "more than six card digits ({leak:?}) reached the agent ({where_})"
        );
    }
    for secret in [EXPIRY, CVC, "hunter2"] {
        assert!(
            !text.contains(secret),
            "{secret:?} reached the agent ({where_})"
        );
    }
}

fn has_alnum(v: &str) -> bool {
    v.chars().any(|c| c.is_ascii_alphanumeric())
}

async fn cue_of(s: &Stage, id: &str) -> Option<String> {
    s.customer
        .eval(&format!(
            "return document.getElementById('{id}').getAttribute('data-cobrowse-cue');"
        ))
        .await
}

/// Type `text` into the customer's field one key at a time; every `every`
/// keys, wait until the replica's field shows as many characters as typed and
/// check the replica's DOM for secrets.
async fn type_key_by_key(s: &Stage, id: &str, text: &str, every: usize) {
    let el = s.customer_click(&format!("#{id}")).await;
    let mut typed = 0;
    for c in text.chars() {
        el.send_keys(&c.to_string()).await.unwrap();
        typed += 1;
        if typed % every == 0 || typed == text.chars().count() {
            let want = typed;
            wait_for!(format!("{typed} keys of #{id} in the replica"), {
                let v = replica_value(s, id).await?;
                if v.chars().count() == want {
                    Ok(())
                } else {
                    Err(v)
                }
            });
            let dump = replica_dump(s).await.unwrap();
            assert_no_card_secrets(&dump, &format!("replica after {typed} keys of #{id}"));
            let v = replica_value(s, id).await.unwrap();
            let digits = v.chars().filter(|c| c.is_ascii_digit()).count();
            if id == "card-number" {
                assert!(digits <= 6, "#{id} shows {v:?} to the agent");
            } else {
                assert!(!has_alnum(&v), "#{id} shows {v:?} to the agent");
            }
        }
    }
}

/// Issue 7 items 3, 4 and 8: on the demo checkout under the default rules,
/// nothing typed into card number, expiry, CVC or password reaches the agent
/// (no card digit after the 6th, in the replica or in any frame), the name
/// stays visible, and the customer's cue marks the hidden fields.
#[tokio::test]
async fn card_expiry_cvc_and_password_typed_key_by_key_never_reach_the_agent() {
    let s = Stage::new().await;
    assert!(s.agent.eval::<bool>(RECORD_AGENT_FRAMES).await);
    s.start_and_join("/demo/checkout").await;

    type_key_by_key(&s, "card-number", CARD, 3).await;
    type_key_by_key(&s, "card-expiry", EXPIRY, 2).await;
    type_key_by_key(&s, "card-cvc", CVC, 2).await;
    let pw = s.customer_click("#password").await;
    for c in PASSWORD.chars() {
        pw.send_keys(&c.to_string()).await.unwrap();
    }
    // Ordinary fields stay visible; typing after the secrets is the barrier.
    s.customer_types("#name", "Kari Nordmann").await;
    wait_for!("the name typed after the secrets", {
        let v = replica_value(&s, "name").await?;
        if v == "Kari Nordmann" {
            Ok(())
        } else {
            Err(v)
        }
    });

    let dump = replica_dump(&s).await.unwrap();
    assert_no_card_secrets(&dump, "replica at the end");
    let pw_shown = replica_value(&s, "password").await.unwrap();
    assert!(
        !pw_shown.is_empty() && !has_alnum(&pw_shown),
        "password shown as {pw_shown:?}"
    );
    let frames: String = s.agent.eval_async(AGENT_STRINGS).await;
    assert_recorded_a_snapshot(&frames);
    assert!(
        frames.contains("Kari Nordmann"),
        "the frame recorder saw the agent's traffic"
    );
    assert_no_card_secrets(&frames, "a frame to the agent");

    // The customer sees all four as hidden from the agent; the name is not.
    for id in ["card-number", "card-expiry", "card-cvc", "password"] {
        assert_eq!(
            cue_of(&s, id).await.as_deref(),
            Some("mask"),
            "cue on #{id}"
        );
    }
    assert_eq!(cue_of(&s, "name").await, None);
    s.finish().await;
}

/// Issue 7 item 3: in write mode the agent cannot type into the card field
/// (the viewer refuses locally, the server denies a forwarded attempt) and
/// the customer's card number is unchanged.
#[tokio::test]
async fn agent_typing_into_the_card_field_is_denied_and_the_customer_value_is_unchanged() {
    let s = Stage::new().await;
    s.start_and_join("/demo/checkout").await;
    s.customer_types("#card-number", CARD).await;
    wait_for!("the masked card number in the replica", {
        let v = replica_value(&s, "card-number").await?;
        if v.chars().count() == CARD.len() {
            Ok(())
        } else {
            Err(v)
        }
    });

    s.agent
        .client
        .find(Locator::Id("control-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    s.customer_answers_consent("allow").await;
    wait_for!("write mode in the viewer", {
        let m = s.agent_mode_try().await?;
        if m == "write" {
            Ok(())
        } else {
            Err(m)
        }
    });

    // Real keys into the replica's card field.
    let frame = s.agent.client.find(Locator::Id("replica")).await.unwrap();
    frame.clone().enter_frame().await.unwrap();
    let card = s
        .agent
        .client
        .find(Locator::Id("card-number"))
        .await
        .unwrap();
    card.click().await.unwrap();
    card.send_keys("4000").await.unwrap();
    s.agent.client.enter_parent_frame().await.unwrap();
    // An attempt that gets past the viewer (a script changing the replica's
    // field): it reaches the server, which must deny it.
    s.agent
        .eval::<Value>(&format!(
            "{REPLICA} var e = d.getElementById('card-number'); e.value = '4000 0000 0000 0002'; \
             e.dispatchEvent(new Event('input', {{ bubbles: true }}));"
        ))
        .await;
    wait_for!("the server's denial of typing into the card field", {
        let t: String = s
            .agent
            .try_eval("return document.getElementById('toasts').textContent;")
            .await?;
        if t.contains("That typing was not performed") && t.contains("hidden from you") {
            Ok(())
        } else {
            Err(t)
        }
    });
    // The agent may still type into an ordinary field; once that arrived, the
    // card attempt (sent before it) has been handled.
    s.agent
        .eval::<Value>(&format!(
            "{REPLICA} var e = d.getElementById('city'); e.value = 'Tromsø'; \
             e.dispatchEvent(new Event('input', {{ bubbles: true }}));"
        ))
        .await;
    wait_for!("the agent's typing into the city field", {
        let v: String = s
            .customer
            .try_eval("return document.getElementById('city').value;")
            .await?;
        if v == "Tromsø" {
            Ok(())
        } else {
            Err(v)
        }
    });
    let value: String = s
        .customer
        .eval("return document.getElementById('card-number').value;")
        .await;
    assert_eq!(value, CARD, "the agent changed the customer's card number");
    s.finish().await;
}

/// Issue 7 item 4: a password revealed by a show-password toggle stays
/// masked, also in the fresh snapshot after a reconnect (the snippet marks
/// the field `data-cobrowse-password` and sends a fixed-length value).
#[tokio::test]
async fn password_revealed_by_a_show_password_toggle_stays_masked_after_a_reconnect() {
    let s = Stage::new().await;
    assert!(s.agent.eval::<bool>(RECORD_AGENT_FRAMES).await);
    s.start_and_join("/demo/checkout").await;
    assert!(s.customer.eval::<bool>(HOOK_CUSTOMER_SOCKET).await);
    s.customer_types("#password", PASSWORD).await;
    s.customer
        .eval::<Value>("document.getElementById('password').type = 'text';")
        .await;
    s.customer_types("#password", "-shown").await;
    s.customer_types("#city", "Oslo").await;
    wait_for!("the city typed after the password", {
        let v = replica_value(&s, "city").await?;
        if v == "Oslo" {
            Ok(())
        } else {
            Err(v)
        }
    });
    let shown = replica_value(&s, "password").await.unwrap();
    assert!(!has_alnum(&shown), "revealed password shown as {shown:?}");
    // The toggle's `type` change went out with the mark, and no value in clear.
    let (marked, values): (bool, String) = s
        .customer
        .eval(
            "var ops = [].concat.apply([], window.__cb.sent.filter(function (f) { return f.t === 'mutations'; })                .map(function (f) { return f.ops; }));              return [ops.some(function (o) { return o.op === 'attr' && o.name === 'data-cobrowse-password' && o.value === '1'; }),                      ops.filter(function (o) { return o.op === 'value'; }).map(function (o) { return o.value; }).join('|')];",
        )
        .await;
    assert!(
        marked,
        "no password mark sent with the show-password toggle"
    );
    assert!(
        !values.contains("hunter2") && !values.contains("shown"),
        "values sent: {values}"
    );

    // Drop the customer's socket: the snippet reconnects and re-snapshots.
    let before: u64 = s
        .customer
        .eval("return window.__cb.sent.filter(function (f) { return f.t === 'snapshot'; }).length;")
        .await;
    s.customer.eval::<Value>("window.__cb.sock.close();").await;
    let snap: Value = wait_for!("a fresh snapshot after the reconnect", {
        let v: Value = s
            .customer
            .try_eval(&format!(
                "var l = window.__cb.sent.filter(function (f) {{ return f.t === 'snapshot'; }}); \
                 return l.length > {before} ? l[l.length - 1] : null;"
            ))
            .await?;
        if v.is_null() {
            Err("no new snapshot".into())
        } else {
            Ok(v)
        }
    });
    let field = find_node(&snap["root"], "password").expect("password field in the snapshot");
    assert_eq!(field["attrs"]["type"], "text");
    assert_eq!(field["attrs"]["data-cobrowse-password"], "1");
    let sent = field["value"].as_str().unwrap_or_default();
    assert!(!has_alnum(sent), "snippet sent {sent:?}");

    s.customer_types("#city", " Bergen").await;
    wait_for!("typing after the reconnect", {
        let v = replica_value(&s, "city").await?;
        if v == "Oslo Bergen" {
            Ok(())
        } else {
            Err(v)
        }
    });
    let shown = replica_value(&s, "password").await.unwrap();
    assert!(
        !shown.is_empty() && !has_alnum(&shown),
        "password after the reconnect shown as {shown:?}"
    );
    let frames: String = s.agent.eval_async(AGENT_STRINGS).await;
    assert_recorded_a_snapshot(&frames);
    assert!(
        !frames.contains("hunter2"),
        "the password reached the agent"
    );
    assert!(
        !frames.contains("shown"),
        "the revealed password reached the agent"
    );
    assert_eq!(cue_of(&s, "password").await.as_deref(), Some("mask"));
    s.finish().await;
}

/// The element node with attribute id=`id` in a serialised tree.
fn find_node<'a>(node: &'a Value, id: &str) -> Option<&'a Value> {
    if node["attrs"]["id"] == id {
        return Some(node);
    }
    node["children"]
        .as_array()?
        .iter()
        .find_map(|c| find_node(c, id))
}

/// Issue 7 item 6: `history.pushState` to a page with a URL-scoped rule
/// masks what that rule covers at once, the customer's cue follows, and the
/// agent's bar shows the new path without its query string.
#[tokio::test]
async fn push_state_switches_url_scoped_rules_and_the_bar_shows_the_path_without_query() {
    let s = Stage::new().await;
    let store = &s.app().state.store;
    let site = store.site_by_key("demo").await.unwrap().unwrap();
    let current = store.published(site.id).await.unwrap().unwrap();
    let mut rules = current.rules.clone();
    rules.push(Rule {
        selector: "h1".into(),
        action: Action::Mask,
        url: Some("/demo/account".into()),
        description: "the heading is private on the account page".into(),
        enabled: true,
    });
    let pack = RulePack {
        version: 1,
        settings: Some(current.settings),
        rules,
    };
    store
        .import_pack(site.id, &pack, "test", true)
        .await
        .unwrap();

    s.start_and_join("/demo/").await;
    const HEADING: &str = "Gear that keeps up with the long way round.";
    let h1 = format!("{REPLICA} return d.querySelector('h1').textContent;");
    let shown: String = s.agent.eval(&h1).await;
    assert_eq!(shown, HEADING, "not masked on /demo/");
    assert_eq!(cue_of_css(&s, "h1").await, None);

    s.customer
        .eval::<Value>("history.pushState({}, '', '/demo/account?order=12345#top');")
        .await;
    wait_for!("the URL-scoped rule on the agent's copy", {
        let t: String = s.agent.try_eval(&h1).await?;
        if !t.contains("Gear") && !t.is_empty() {
            Ok(())
        } else {
            Err(t)
        }
    });
    let url: String = wait_for!("the new path in the agent's bar", {
        let t: String = s
            .agent
            .try_eval("return document.getElementById('page-url').textContent;")
            .await?;
        if t.contains("/demo/account") {
            Ok(t)
        } else {
            Err(t)
        }
    });
    assert!(
        !url.contains("12345") && !url.contains('?') && !url.contains("#top"),
        "query or fragment in the bar: {url:?}"
    );
    wait_for!("the customer's cue on the heading", {
        let c = cue_of_css(&s, "h1").await;
        if c.as_deref() == Some("mask") {
            Ok(())
        } else {
            Err(format!("{c:?}"))
        }
    });
    let dump = replica_dump(&s).await.unwrap();
    assert!(
        !dump.contains("long way round"),
        "heading text in the replica"
    );

    // Back (popstate): the rule no longer applies.
    s.customer.eval::<Value>("history.back();").await;
    wait_for!("the heading back in clear on /demo/", {
        let t: String = s.agent.try_eval(&h1).await?;
        if t == HEADING {
            Ok(())
        } else {
            Err(t)
        }
    });
    s.finish().await;
}

async fn cue_of_css(s: &Stage, css: &str) -> Option<String> {
    s.customer
        .eval(&format!(
            "return document.querySelector({}).getAttribute('data-cobrowse-cue');",
            serde_json::to_string(css).unwrap()
        ))
        .await
}

/// Issue 7 item 1: a customer frame the server cannot apply puts the session
/// in resync: the agent's replica is frozen behind a "Resynchronising…"
/// veil, the snippet answers with a fresh snapshot under a new epoch, and
/// once the server has it the veil goes and the replica matches the page.
#[tokio::test]
async fn a_refused_frame_veils_the_replica_until_a_fresh_snapshot_matches_the_page() {
    let s = Stage::new().await;
    s.start_and_join("/demo/").await;
    assert!(s.customer.eval::<bool>(HOOK_CUSTOMER_SOCKET).await);
    s.customer
        .eval::<Value>("document.querySelector('h1').textContent = 'Before the fault';")
        .await;
    let h1 = format!("{REPLICA} return d.querySelector('h1').textContent;");
    wait_for!("the change before the fault", {
        let t: String = s.agent.try_eval(&h1).await?;
        if t == "Before the fault" {
            Ok(())
        } else {
            Err(t)
        }
    });
    let epoch: u64 = s
        .customer
        .eval(
            "var l = window.__cb.sent.filter(function (f) { return f.t === 'mutations'; }); \
             return l[l.length - 1].epoch;",
        )
        .await;
    assert!(epoch > 0, "mutations carry the document epoch");

    // Hold back what the snippet sends from now on, then send a batch that
    // cannot be applied (an insert under a node that does not exist).
    s.customer
        .eval::<Value>(&format!(
            "window.__cb.hold = true; window.__cb.orig.call(window.__cb.sock, JSON.stringify({{ \
               t: 'mutations', epoch: {epoch}, ops: [{{ op: 'insert', parent: 987654321, before: null, \
               node: {{ id: 987654320, type: 'text', text: 'stray' }} }}] }}));"
        ))
        .await;
    wait_for!("the resynchronising veil in the viewer", {
        let (hidden, text, frozen): (bool, String, bool) = s
            .agent
            .try_eval(
                "var v = document.getElementById('resync-veil'); \
                 return [v.hidden, v.textContent, window.cobrowseViewer.state().frozen];",
            )
            .await?;
        if !hidden && frozen {
            Ok(text)
        } else {
            Err(format!("hidden={hidden} frozen={frozen}"))
        }
    });
    // The veil covers the replica: the agent's clicks land on it.
    let on_veil: bool = s
        .agent
        .eval(
            "var r = document.getElementById('frame-box').getBoundingClientRect(); \
             var e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); \
             return !!(e && e.closest('#resync-veil'));",
        )
        .await;
    assert!(on_veil, "the veil does not cover the replica");
    // The snippet answered at once with a snapshot under a new epoch.
    let new_epoch: u64 = wait_for!("the snippet's resync snapshot", {
        let e: Option<u64> = s
            .customer
            .try_eval(
                "var l = window.__cb.heldParsed.filter(function (f) { return f.t === 'snapshot'; }); \
                 return l.length ? l[0].epoch : null;",
            )
            .await?;
        e.ok_or_else(|| "no snapshot yet".to_string())
    });
    assert_ne!(new_epoch, epoch, "the resync snapshot has a new epoch");
    // The page goes on changing while the server waits for the snapshot.
    s.customer
        .eval::<Value>("document.querySelector('h1').textContent = 'After the resync';")
        .await;
    let still: String = s.agent.eval(&h1).await;
    assert_eq!(still, "Before the fault", "the frozen replica changed");

    let released: u64 = s.customer.eval("return window.__cbRelease();").await;
    assert!(released >= 1);
    wait_for!("the veil to go", {
        let (hidden, frozen): (bool, bool) = s
            .agent
            .try_eval(
                "return [document.getElementById('resync-veil').hidden, window.cobrowseViewer.state().frozen];",
            )
            .await?;
        if hidden && !frozen {
            Ok(())
        } else {
            Err(format!("hidden={hidden} frozen={frozen}"))
        }
    });
    let text_of_main = "var c = MAIN.querySelector('main').cloneNode(true); \
         [].forEach.call(c.querySelectorAll('script,noscript,[data-cobrowse-ignore]'), function (e) { e.remove(); }); \
         return c.textContent.replace(/\\s+/g, ' ').trim();";
    let customer_text: String = s
        .customer
        .eval(&text_of_main.replace("MAIN", "document"))
        .await;
    assert!(customer_text.contains("After the resync"));
    wait_for!("the replica to match the customer's page", {
        let t: String = s
            .agent
            .try_eval(&format!("{REPLICA} {}", text_of_main.replace("MAIN", "d")))
            .await?;
        if t == customer_text {
            Ok(())
        } else {
            Err(t)
        }
    });
    let pill: String = s
        .agent
        .eval("return document.getElementById('state-pill').dataset.state;")
        .await;
    assert_eq!(pill, "active");
    s.finish().await;
}

/// Issue 7 item 3: the card rule also covers text typed into a
/// contenteditable region: at most the first six digits reach the agent,
/// and the customer's cue marks the region as hidden from the agent.
#[tokio::test]
async fn card_number_typed_into_a_contenteditable_region_keeps_at_most_six_digits() {
    let s = Stage::new().await;
    assert!(s.agent.eval::<bool>(RECORD_AGENT_FRAMES).await);
    s.start_and_join("/demo/checkout").await;
    s.customer
        .eval::<Value>(
            "var n = document.createElement('div'); n.id = 'note'; n.contentEditable = 'true'; \
             n.style.minHeight = '40px'; n.style.border = '1px solid #999'; \
             document.getElementById('notes').after(n);",
        )
        .await;
    wait_for!("the editable region in the replica", {
        let ok: bool = s
            .agent
            .try_eval(&format!("{REPLICA} return !!d.getElementById('note');"))
            .await?;
        if ok {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    s.customer_types("#note", &format!("Card {CARD} thanks"))
        .await;
    let shown: String = wait_for!("the typed note in the replica", {
        let t: String = s
            .agent
            .try_eval(&format!(
                "{REPLICA} return d.getElementById('note').textContent;"
            ))
            .await?;
        if t.ends_with("thanks") {
            Ok(t)
        } else {
            Err(t)
        }
    });
    let digits = shown.chars().filter(|c| c.is_ascii_digit()).count();
    assert!(digits <= 6, "the agent sees {shown:?}");
    let frames: String = s.agent.eval_async(AGENT_STRINGS).await;
    assert_recorded_a_snapshot(&frames);
    assert_no_card_secrets(&frames, "a frame to the agent");
    wait_for!("the cue on the editable region", {
        let c = cue_of(&s, "note").await;
        if c.as_deref() == Some("mask") {
            Ok(())
        } else {
            Err(format!("{c:?}"))
        }
    });
    s.finish().await;
}
