/*
 * cobrowse.js — the co-browse snippet that a site embeds with
 *   <script src="https://COBROWSE/cobrowse.js" data-site="KEY" async></script>
 *
 * Owns, on the customer's page: the widget (start, session ID, consent dialog,
 * banner, end message), the JS API (window.cobrowse), DOM serialisation with node
 * ids, mutation batching under a document epoch, SPA navigation (`navigate`),
 * answering the server's `resync` with a fresh snapshot, form/scroll/viewport/
 * pointer capture, the customer-side privacy cue for masked/blocked/disabled
 * elements, performing the agent actions the server approved, and the
 * customer's tabs (every tab of the site joins the session; only the tab in
 * front, which the server confirms with `tab`, sends its page), and large
 * frames sent compressed where the browser can (`z=deflate-raw`). It does NOT
 * enforce privacy: the server's rewrite engine does. Masking here is defence in
 * depth, but secrets it recognises (password fields, ever; card digits after
 * the 6th, by the protocol's card rule) never leave the page in clear.
 *
 * Sections: utilities, state, rules/cue (selectors, sensitive fields, the
 * card rule), serialise, observe (mutations, SPA navigation), capture,
 * actions, rules/cue (the cue), widget, transport, the API, boot.
 *
 * Plain ES2017, one IIFE, no dependencies. Every callback is guarded so that
 * nothing ever throws into the host page; errors go to the console only.
 */
(function () {
  'use strict';

  var W = window;
  var D = document;
  if (W.cobrowse && W.cobrowse.__cobrowse) return;

  // ---------------------------------------------------------------- utilities

  function log() {
    try {
      if (W.console && W.console.warn) {
        W.console.warn.apply(W.console, ['[cobrowse]'].concat([].slice.call(arguments)));
      }
    } catch (_) { /* nothing left to do */ }
  }

  function guard(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        log('internal error', e);
        return undefined;
      }
    };
  }

  function findScript() {
    var s = D.currentScript;
    if (s && s.src && /cobrowse\.js(\?|#|$)/.test(s.src)) return s;
    var list = D.querySelectorAll('script[src*="cobrowse.js"][data-site]');
    if (!list.length) list = D.querySelectorAll('script[src*="cobrowse.js"]');
    return list.length ? list[list.length - 1] : null;
  }

  var script = findScript();
  var SITE = script ? script.getAttribute('data-site') || '' : '';
  var WIDGET = !script || script.getAttribute('data-widget') !== 'false';
  var ORIGIN = (function () {
    try {
      return new URL(script.src, D.baseURI).origin;
    } catch (_) {
      return W.location.origin;
    }
  })();
  var WS_ORIGIN = ORIGIN.replace(/^http/, 'ws');

  // Debug, performance marks: with data-debug="perf" on the script tag the
  // snippet records how long its own work takes (snapshot, mutation batch,
  // value event, field poll, cues) in window.__cobrowsePerf as
  // {name, t: start in ms since the epoch (timeOrigin + now), ms, n: ops}.
  // Off by default: then each mark is one boolean test.
  var PERF = !!(script && /(^|\s)perf(\s|$)/.test(script.getAttribute('data-debug') || ''));
  function perfNow() {
    return PERF ? W.performance.now() : 0;
  }
  function perfMark(name, start, n) {
    if (!PERF) return;
    var list = W.__cobrowsePerf || (W.__cobrowsePerf = []);
    if (list.length < 20000) {
      list.push({ name: name, t: W.performance.timeOrigin + start, ms: W.performance.now() - start, n: n || 0 });
    }
  }
  // --- admin editor hook (issue 4, element picker) ---------------------------
  // A signed link from the rules editor opens the page with
  // #cobrowse-pick=TOKEN: load the self-contained picker from the server.
  try {
    if (W.location.hash.indexOf('#cobrowse-pick=') === 0) {
      var picker = D.createElement('script');
      picker.src = ORIGIN + '/static/picker.js';
      picker.async = true;
      (D.head || D.documentElement).appendChild(picker);
    }
  } catch (e) {
    log('picker', e);
  }
  // --- end of admin editor hook ----------------------------------------------
  var STORE_KEY = 'cobrowse.session';
  var MASK_CHAR = '\u2022';
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var MATH_NS = 'http://www.w3.org/1998/Math/MathML';

  var REASONS = {
    customer_exit: 'You ended the co-browse session.',
    agent_exit: 'The agent ended the co-browse session.',
    agent_left: 'The agent left the co-browse session.',
    waiting_timeout: 'No agent joined in time, so the session was closed.',
    inactivity_timeout: 'The session was closed after a period of inactivity.',
    agent_away_timeout: "The agent's viewer was disconnected for too long.",
    customer_away_timeout: 'This page was disconnected for too long.',
    interaction_ended: 'Your conversation with the agent has ended, so co-browsing stopped.',
    api_ended: 'The support team closed the co-browse session.',
    server_shutdown: 'The co-browse service is restarting. Please start a new session if you still need help.',
    connection_lost: 'The connection to the co-browse service was lost.',
    unavailable: 'This co-browse session is no longer available.'
  };

  // `error` codes that mean this session can never be resumed.
  var FATAL = {
    not_found: 1, session_ended: 1, bad_token: 1, origin_not_allowed: 1,
    shutting_down: 1, rules_invalid: 1
  };

  function refusalReason(err) {
    if (err.code === 'session_ended') {
      var msg = String(err.message || '');
      for (var k in REASONS) {
        if (Object.prototype.hasOwnProperty.call(REASONS, k) && msg.indexOf(k) >= 0) return k;
      }
    }
    if (err.code === 'shutting_down') return 'server_shutdown';
    return 'unavailable';
  }

  function reasonText(r) {
    return REASONS[r] || 'The co-browse session has ended.';
  }

  function formatId(id) {
    var s = String(id || '');
    return s.length === 9 ? s.slice(0, 3) + ' ' + s.slice(3, 6) + ' ' + s.slice(6) : s;
  }

  // The session record is kept in localStorage (every tab of the site joins
  // the session) and in sessionStorage (this tab, if localStorage is off).
  function storages() {
    var out = [];
    ['localStorage', 'sessionStorage'].forEach(function (k) {
      try {
        if (W[k]) out.push(W[k]);
      } catch (_) { /* storage disabled */ }
    });
    return out;
  }

  function store(v) {
    storages().forEach(function (st) {
      try {
        if (v) st.setItem(STORE_KEY, JSON.stringify(v));
        else st.removeItem(STORE_KEY);
      } catch (_) { /* storage full or disabled: no resume */ }
    });
  }

  function parseRecord(raw) {
    try {
      var v = raw ? JSON.parse(raw) : null;
      if (v && typeof v.id === 'string' && typeof v.token === 'string' && v.origin === ORIGIN) return v;
    } catch (_) { /* ignore bad storage */ }
    return null;
  }

  function load() {
    var found = null;
    storages().some(function (st) {
      try {
        found = parseRecord(st.getItem(STORE_KEY));
      } catch (_) { /* ignore */ }
      return !!found;
    });
    return found;
  }

  // ------------------------------------------------------------------- state

  var S = {
    id: null,
    token: null,
    state: null, // waiting | active | ended
    mode: 'pointer',
    agent: null,
    agentPresent: true,
    reason: null
  };
  var ws = null;
  var live = false; // snapshot sent on the current socket
  var tabFront = true; // this tab is the one shown to the agent (server's `tab`)
  var adopted = false; // joined a session another tab started (`storage` event)
  var unloading = false;
  var failures = 0;
  var reconnectTimer = null;
  var snapshotTimer = null;
  var startPromise = null;
  var listeners = { started: [], agentJoined: [], modeChanged: [], ended: [] };

  function emit(ev, arg) {
    (listeners[ev] || []).slice().forEach(function (fn) {
      try {
        fn(arg);
      } catch (e) {
        log('listener for "' + ev + '" threw', e);
      }
    });
  }

  // What a tab in the back may send (the server drops anything else from it).
  var TAB_ANY = { front: 1, control: 1, end: 1 };

  function send(msg) {
    if (!ws || ws.readyState !== 1) return false;
    if (!tabFront && !TAB_ANY[msg.t]) return false;
    try {
      wire(ws, JSON.stringify(msg));
      return true;
    } catch (e) {
      log('send failed', e);
      return false;
    }
  }

  // ------------------------------------------- rules/cue: selectors in force

  var rules = { mask: '', block: '', disable: '' };
  var everMasked = new WeakSet();

  function validSelectors(list) {
    var frag = D.createDocumentFragment();
    return (Array.isArray(list) ? list : []).filter(function (sel) {
      if (typeof sel !== 'string' || !sel.trim()) return false;
      try {
        frag.querySelector(sel);
        return true;
      } catch (_) {
        log('selector not supported by this browser, cue skipped:', sel);
        return false;
      }
    }).join(', ');
  }

  function closestRule(el, kind) {
    var sel = rules[kind];
    if (!sel || !el || el.nodeType !== 1) return null;
    try {
      // v1.2: rules see through shadow roots and frames (fail closed): a
      // host or frame element matched by a rule restricts what is inside it
      for (var cur = el; cur; cur = boundaryHost(cur)) {
        var hit = cur.closest(sel);
        if (hit) return hit;
      }
      return null;
    } catch (_) {
      return null;
    }
  }

  function isMasked(el) {
    if (!el || el.nodeType !== 1) return false;
    if (everMasked.has(el)) return true;
    if (closestRule(el, 'mask') || closestRule(el, 'block')) {
      everMasked.add(el);
      return true;
    }
    return false;
  }

  /**
   * After a new `rules` cue: the form fields that were masked at the source
   * (sent as dots) and that no rule masks or blocks any more (a publish or
   * rollback lifted the mask). They leave `everMasked`, so the server gets
   * their clear value again and can show it if its rules allow. Password and
   * detector-masked (card) fields are not touched: their own memory keeps
   * them masked for the page's life.
   */
  function liftedMasks() {
    var out = [];
    var list = D.querySelectorAll('input, textarea, select');
    for (var i = 0; i < list.length; i++) {
      var el = list[i];
      if (!everMasked.has(el)) continue;
      if (closestRule(el, 'mask') || closestRule(el, 'block')) continue;
      everMasked.delete(el);
      out.push(el);
    }
    return out;
  }

  function isDisabled(el) {
    return !!(closestRule(el, 'disable') || closestRule(el, 'block'));
  }

  function maskText(v) {
    return String(v).replace(/\S/g, MASK_CHAR);
  }

  // ------------------------------------ rules/cue: sensitive fields (v1.1)
  //
  // Three kinds of field are hidden from the agent besides the rule-masked
  // ones, and the snippet sends none of their secrets in clear:
  // - every element that was EVER type=password during this page's life
  //   (show-password toggles included): serialised with the mark
  //   data-cobrowse-password="1" and a fixed-length value;
  // - free-text fields and contenteditable regions once a digit run of 7 or
  //   more digits was typed into them ("detector-masked", sticky): the card
  //   rule below keeps the first 6 digits of every such run and sends "•"
  //   for every later digit.

  var PASSWORD_MARK = 'data-cobrowse-password';
  var FIXED_MASK = '\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022';
  var everPassword = new WeakSet();
  var cardMasked = new WeakSet();
  // Free-text input types the card rule covers (el.type is '' -> 'text' for missing/unknown types).
  var FREE_TEXT = { text: 1, search: 1, number: 1, email: 1, url: 1, password: 1 };
  // The card rule's separators: space, -, ., NBSP, thin, narrow NBSP, figure space.
  var CARD_SEP = ' -.\u00a0\u2009\u202f\u2007';
  var CARD_KEEP = 6;
  var CARD_MIN_RUN = 7;
  var CARD_MAX_GAP = 3;

  /** Remember a password field for the rest of the page's life; true if it is one. */
  function notePassword(el) {
    if (!el || el.nodeType !== 1 || el.localName !== 'input') return false;
    if (everPassword.has(el)) return true;
    if (String(el.getAttribute('type') || '').trim().toLowerCase() === 'password' || el.type === 'password') {
      everPassword.add(el);
      return true;
    }
    return false;
  }

  /** Whether the card rule applies to this field's value. */
  function cardField(el) {
    if (!el || el.nodeType !== 1) return false;
    var ac = String(el.getAttribute('autocomplete') || '').trim().toLowerCase();
    if (ac.indexOf('tel') === 0) return false;
    if (el.localName === 'textarea') return true;
    if (el.localName !== 'input') return false;
    var t = String(el.type || 'text').toLowerCase();
    return FREE_TEXT[t] === 1;
  }

  function isCardDigit(c) {
    return (c >= '0' && c <= '9') || c === MASK_CHAR;
  }

  /**
   * The card rule (protocol v1.1, the same rule as the server's): in every
   * digit run of 7+ digits (digits and "•", at most 3 separators between two
   * digits) keep the first 6 digits and the separators, replace later digits
   * by "•". Returns {text, hit} where hit says a run of 7+ digits was seen.
   */
  function cardRule(v) {
    var s = String(v);
    var out = null;
    var hit = false;
    var run = []; // positions of the digits of the current run
    var gap = 0;
    function close() {
      if (run.length >= CARD_MIN_RUN) {
        hit = true;
        if (!out) out = s.split('');
        for (var k = CARD_KEEP; k < run.length; k++) out[run[k]] = MASK_CHAR;
      }
      run = [];
      gap = 0;
    }
    for (var i = 0; i < s.length; i++) {
      var c = s.charAt(i);
      if (isCardDigit(c)) {
        run.push(i);
        gap = 0;
      } else if (run.length && CARD_SEP.indexOf(c) >= 0) {
        gap++;
        if (gap > CARD_MAX_GAP) close();
      } else {
        close();
      }
    }
    close();
    return { text: out ? out.join('') : s, hit: hit };
  }

  /** The card rule on one value; marks `holder` detector-masked when it fires. */
  function cardText(v, holder) {
    var r = cardRule(v);
    if (r.hit && holder && !cardMasked.has(holder)) {
      cardMasked.add(holder);
      scheduleCues(true);
    }
    return r.text;
  }

  /** The contenteditable region (its outermost editable element) a node is in, or null. */
  function editableRoot(n) {
    var el = n && n.nodeType === 1 ? n : n ? n.parentElement : null;
    if (!el || !el.isContentEditable) return null;
    while (el.parentElement && el.parentElement.isContentEditable) el = el.parentElement;
    return el;
  }

  /** Hidden from the agent in any way: rule-masked, ever a password, or detector-masked. */
  function hiddenFromAgent(el) {
    if (!el || el.nodeType !== 1) return false;
    if (notePassword(el) || cardMasked.has(el) || isMasked(el)) return true;
    var root = editableRoot(el);
    return !!(root && cardMasked.has(root));
  }

  /** What to send as the value of a form field: never a secret in clear. */
  function fieldValue(el, raw) {
    var v = raw === undefined ? el.value : raw;
    if (notePassword(el)) return FIXED_MASK;
    if (isMasked(el)) return maskText(v);
    if (cardField(el)) return cardText(v, el);
    return String(v);
  }

  // --------------------------------------------------------------- serialise

  var nodeIds = new WeakMap();
  var idToNode = new Map();
  var sentKids = new Map(); // id -> [child ids] as the server knows them
  var nextId = 1;
  var host = null; // the widget's shadow host, never serialised
  // Form controls the server knows, and the live state (fieldState) each had
  // when its value was last sent: the field poll diffs against it.
  var controls = new Set();
  var lastSent = new WeakMap();

  /**
   * The node's id: a node keeps its id across re-snapshots of this page
   * (reconnect, resync), so the server's per-id memory (e.g. "was a password
   * field") holds; a node removed and inserted again gets a new one.
   */
  function assign(n) {
    var id = nodeIds.get(n);
    if (id === undefined || idToNode.has(id)) {
      id = nextId++;
      nodeIds.set(n, id);
    }
    idToNode.set(id, n);
    return id;
  }

  function known(n) {
    var id = nodeIds.get(n);
    return id !== undefined && idToNode.get(id) === n ? id : undefined;
  }

  function forget(id) {
    var stack = [id];
    while (stack.length) {
      var cur = stack.pop();
      var n = idToNode.get(cur);
      if (n && nodeIds.get(n) === cur) {
        nodeIds.delete(n);
        controls.delete(n);
      }
      idToNode.delete(cur);
      var kids = sentKids.get(cur);
      if (kids) {
        sentKids.delete(cur);
        for (var i = 0; i < kids.length; i++) stack.push(kids[i]);
      }
      var extra = extraKids.get(cur);
      if (extra) {
        extraKids.delete(cur);
        for (var j = 0; j < extra.length; j++) stack.push(extra[j]);
      }
    }
  }

  /** Before a snapshot: the server will know exactly the nodes serialised now. */
  function resetIds() {
    idToNode = new Map();
    sentKids = new Map();
    controls = new Set();
    resetV12();
  }

  function skipNode(n) {
    var t = n.nodeType;
    if (t === 1) {
      var tag = n.localName;
      if (tag === 'script' || tag === 'noscript') return true;
      if (n === host) return true;
      return n.hasAttribute('data-cobrowse-ignore');
    }
    return !(t === 3 || t === 8 || t === 10);
  }

  var URL_ATTRS = {
    href: 1, src: 1, action: 1, formaction: 1, poster: 1, background: 1,
    cite: 1, data: 1, 'xlink:href': 1, longdesc: 1, manifest: 1
  };

  function isScriptUrl(v) {
    // Browsers ignore ASCII whitespace and control characters in the scheme.
    var s = String(v).replace(/[\u0000-\u0020]/g, '').toLowerCase();
    return s.indexOf('javascript:') === 0 || s.indexOf('vbscript:') === 0;
  }

  function absolute(v) {
    var s = String(v).trim();
    if (!s || s.charAt(0) === '#') return v;
    try {
      return new URL(s, D.baseURI).href;
    } catch (_) {
      return v;
    }
  }

  function absoluteSrcset(v) {
    return String(v).split(',').map(function (part) {
      var p = part.trim();
      if (!p) return p;
      var sp = p.search(/\s/);
      return sp < 0 ? absolute(p) : absolute(p.slice(0, sp)) + p.slice(sp);
    }).join(', ');
  }

  function absoluteCssUrls(css, base) {
    return String(css).replace(/url\(\s*(['"]?)([^'")]*)\1\s*\)/gi, function (m, q, u) {
      if (!u || /^(data:|#|[a-z][a-z0-9+.-]*:)/i.test(u)) return m;
      try {
        return 'url("' + new URL(u, base).href.replace(/"/g, '%22') + '")';
      } catch (_) {
        return m;
      }
    });
  }

  /** The value to send for an attribute, or null to leave it out. */
  function attrValue(el, name, value) {
    var lower = name.toLowerCase();
    if (lower.indexOf('on') === 0) return null;
    if (lower.indexOf('data-cobrowse-') === 0) return null;
    if (URL_ATTRS[lower]) {
      if (isScriptUrl(value)) return null;
      if (el.namespaceURI === SVG_NS && String(value).trim().charAt(0) === '#') return value;
      return absolute(value);
    }
    if (lower === 'srcset' || lower === 'imagesrcset') return absoluteSrcset(value);
    if (lower === 'style') return absoluteCssUrls(value, D.baseURI);
    if (lower === 'srcdoc') return null;
    if (lower === 'value' && isField(el)) return fieldValue(el, value);
    return value;
  }

  function isField(el) {
    var t = el.localName;
    return t === 'input' || t === 'textarea' || t === 'select';
  }

  function nsOf(el) {
    if (el.namespaceURI === SVG_NS) return 'svg';
    if (el.namespaceURI === MATH_NS) return 'math';
    return null;
  }

  function sheetText(sheet, base) {
    if (!sheet) return null;
    var rulesList;
    try {
      rulesList = sheet.cssRules;
    } catch (_) {
      return null; // cross-origin: keep the <link>
    }
    if (!rulesList) return null;
    var out = [];
    for (var i = 0; i < rulesList.length; i++) out.push(rulesList[i].cssText);
    return absoluteCssUrls(out.join('\n'), base || D.baseURI);
  }

  function isStylesheetLink(el) {
    return el.localName === 'link' && /(^|\s)stylesheet(\s|$)/i.test(el.getAttribute('rel') || '');
  }

  function formState(el, node) {
    var tag = el.localName;
    if (tag === 'input') {
      var type = (el.type || '').toLowerCase();
      if (type === 'checkbox' || type === 'radio') node.checked = !!el.checked;
      if (type !== 'file') {
        node.value = fieldValue(el);
        noteSent(el);
      }
    } else if (tag === 'textarea' || tag === 'select') {
      node.value = fieldValue(el);
      noteSent(el);
    }
  }

  /** A form control's live state as the page sees it (value, checked, selection). */
  function fieldState(el) {
    if (el.localName === 'select') return el.selectedIndex + ':' + el.value;
    return (el.checked ? '1:' : '0:') + el.value;
  }

  /** The server now has this control's current state. */
  function noteSent(el) {
    controls.add(el);
    lastSent.set(el, fieldState(el));
  }

  function serKids(n, id) {
    var out = [];
    var ids = [];
    for (var c = n.firstChild; c; c = c.nextSibling) {
      if (skipNode(c)) continue;
      var s = ser(c);
      out.push(s);
      ids.push(s.id);
    }
    sentKids.set(id, ids);
    return out;
  }

  function serEl(el, id) {
    var tag = el.localName;
    if (isStylesheetLink(el)) {
      var css = sheetText(el.sheet, el.href);
      if (css !== null) {
        sentKids.set(id, []);
        var sattrs = {};
        var media = el.getAttribute('media');
        if (media) sattrs.media = media;
        return {
          id: id, type: 'element', tag: 'style', attrs: sattrs,
          children: [{ id: nextId++, type: 'text', text: css }]
        };
      }
    }
    var attrs = {};
    for (var i = 0; i < el.attributes.length; i++) {
      var a = el.attributes[i];
      var v = attrValue(el, a.name, a.value);
      if (v !== null) attrs[a.name] = v;
    }
    if (notePassword(el)) attrs[PASSWORD_MARK] = '1';
    if (rules.block) blockedBox(el, attrs);
    if (scrolledEls.size && scrolledEls.has(el)) rescroll(el);
    var node = { id: id, type: 'element', tag: tag, attrs: attrs, children: [] };
    var ns = nsOf(el);
    if (ns) node.ns = ns;
    formState(el, node);
    // v1.2: shadow root, frame document, CSSOM rules, placeholders first
    node.children = extraChildren(el, id).concat(serKids(el, id));
    return node;
  }

  function ser(n) {
    var id = assign(n);
    switch (n.nodeType) {
      case 9:
        return { id: id, type: 'document', children: serKids(n, id).concat(rootSheets(n, id)) };
      case 10:
        return { id: id, type: 'doctype', name: n.name || 'html' };
      case 3:
        return { id: id, type: 'text', text: textFor(n) };
      case 8:
        return { id: id, type: 'comment', text: n.data };
      default:
        return serEl(n, id);
    }
  }

  /** The text to send for a text node: masked in masked textareas, the card rule in editable text. */
  function textFor(n) {
    var p = n.parentNode;
    if (p && p.localName === 'textarea') return fieldValue(p, n.data);
    var root = editableRoot(p);
    if (root) return cardText(n.data, root);
    return n.data;
  }

  // ------------- capture: shadow roots, frames, CSSOM, placeholders (v1.2)
  //
  // Open shadow roots are sent as a `shadow` child of their host and
  // observed by the same MutationObserver (roots attached later are seen
  // through a wrapped Element.prototype.attachShadow, and every serialised
  // element is checked for one). Same-origin frames are sent as a nested
  // `document` child of the frame element and re-sent when the frame
  // loads another page. Cross-origin frames, closed shadow roots and
  // canvases are `placeholder` children with the element's box size. CSS
  // built through the CSSOM (insertRule, replaceSync, adoptedStyleSheets)
  // is sent as `sheet` nodes, updated in batches.

  var extraKids = new Map(); // id -> ids of the v1.2 nodes sent under it
  var observedRoots = new Set(); // shadow roots and frame documents watched
  var closedHosts = new WeakSet();
  var cssomSheets = new WeakSet(); // sheets changed through the CSSOM
  var adoptedSent = new WeakMap(); // document/shadow root -> sheets sent
  var adopters = new Set();
  var pendingHosts = new Set();
  var dirtySheets = new Set();
  var dirtyRoots = new Set();
  var frameDocs = new WeakMap(); // frame element -> document sent for it
  var hookedFrames = new WeakSet();
  var v12Timer = null;
  var adoptedTimer = null;
  var OBSERVE = { childList: true, subtree: true, attributes: true, characterData: true };

  function resetV12() {
    extraKids = new Map();
    observedRoots = new Set();
    adopters = new Set();
  }

  /** The element a node's tree hangs from: a shadow host or a frame element. */
  function boundaryHost(el) {
    var root = el.getRootNode ? el.getRootNode() : null;
    if (!root) return null;
    if (root.host && root.host.nodeType === 1) return root.host;
    if (root.nodeType === 9 && root !== D) {
      try {
        return root.defaultView && root.defaultView.frameElement;
      } catch (_) {
        return null;
      }
    }
    return null;
  }

  function watchRoot(root) {
    if (observedRoots.has(root)) return;
    observedRoots.add(root);
    if (observer) {
      try {
        observer.observe(root, OBSERVE);
      } catch (e) {
        log('cannot observe a shadow root or frame', e);
      }
    }
  }

  function placeholderNode(kind, el) {
    var r = el.getBoundingClientRect();
    return { id: nextId++, type: 'placeholder', kind: kind, w: r.width, h: r.height };
  }

  function sheetNode(sheet, base) {
    return { id: nextId++, type: 'sheet', css: sheetText(sheet, base) || '' };
  }

  /** The adopted stylesheets of a document or shadow root, as `sheet` nodes. */
  function rootSheets(root, id) {
    var list;
    try {
      list = root.adoptedStyleSheets;
    } catch (_) {
      list = null;
    }
    if (!list || !list.length) {
      adoptedSent.set(root, []);
      return [];
    }
    adopters.add(root);
    var sent = [];
    var base = (root.ownerDocument || root).baseURI;
    var out = [];
    for (var i = 0; i < list.length; i++) {
      sent.push(list[i]);
      out.push(sheetNode(list[i], base));
    }
    adoptedSent.set(root, sent);
    var ids = out.map(function (n) { return n.id; });
    extraKids.set(id, (extraKids.get(id) || []).concat(ids));
    return out;
  }

  function serShadow(sr) {
    var sid = assign(sr);
    watchRoot(sr);
    var sheets = rootSheets(sr, sid);
    return { id: sid, type: 'shadow', children: sheets.concat(serKids(sr, sid)) };
  }

  function frameChild(el) {
    var fd = null;
    try {
      fd = el.contentDocument;
    } catch (_) {
      fd = null;
    }
    if (!fd || !fd.documentElement) return placeholderNode('frame', el);
    frameDocs.set(el, fd);
    if (fd.defaultView) installHooks(fd.defaultView);
    watchRoot(fd);
    return ser(fd);
  }

  function hookFrame(el) {
    if (hookedFrames.has(el)) return;
    hookedFrames.add(el);
    el.addEventListener('load', guard(function () { frameLoaded(el); }));
  }

  /** A frame loaded a (new) page: send its document again. */
  function frameLoaded(el) {
    var fd = null;
    try {
      fd = el.contentDocument;
    } catch (_) {
      fd = null;
    }
    if (fd && fd.defaultView) installHooks(fd.defaultView);
    if (!live) return;
    var id = known(el);
    if (id === undefined) return;
    if (fd && frameDocs.get(el) === fd && known(fd) !== undefined) return;
    flushRecords();
    var ops = [];
    resendExtras(el, id, ops);
    if (ops.length) sendOps(ops);
  }

  /** The v1.2 children of element `el`: shadow root, frame document, CSSOM rules, placeholders. */
  function extraChildren(el, id) {
    var out = [];
    var tag = el.localName;
    var html = !nsOf(el);
    var sr = el.shadowRoot;
    if (sr && sr.nodeType === 11) out.push(serShadow(sr));
    else if (closedHosts.has(el)) out.push(placeholderNode('shadow', el));
    if (html && (tag === 'iframe' || tag === 'frame')) {
      hookFrame(el);
      out.push(frameChild(el));
    } else if (html && tag === 'canvas') {
      out.push(placeholderNode('canvas', el));
    } else if (html && tag === 'style' && el.sheet) {
      var sheet = el.sheet;
      var rulesCount = 0;
      try {
        rulesCount = sheet.cssRules.length;
      } catch (_) { /* not readable */ }
      // rules built through the CSSOM have no text in the DOM
      if (cssomSheets.has(sheet) || (rulesCount && !el.textContent.trim())) out.push(sheetNode(sheet, D.baseURI));
    }
    if (out.length) extraKids.set(id, out.map(function (n) { return n.id; }));
    return out;
  }

  function firstKnownChild(el) {
    for (var c = el.firstChild; c; c = c.nextSibling) {
      if (skipNode(c)) continue;
      var k = known(c);
      if (k !== undefined) return k;
    }
    return null;
  }

  /** Replace the v1.2 children of a known element by fresh ones. */
  function resendExtras(el, id, ops) {
    var old = extraKids.get(id) || [];
    old.forEach(function (x) {
      ops.push({ op: 'remove', id: x });
      forget(x);
    });
    extraKids.delete(id);
    var before = firstKnownChild(el);
    extraChildren(el, id).forEach(function (k) {
      ops.push({ op: 'insert', parent: id, before: before, node: k });
    });
  }

  function scheduleV12() {
    if (!v12Timer) v12Timer = setTimeout(guard(flushV12), 0);
  }

  /** Send what the hooks saw since the last flush, in one batch. */
  function flushV12() {
    v12Timer = null;
    if (!live) {
      pendingHosts.clear();
      dirtySheets.clear();
      dirtyRoots.clear();
      return;
    }
    flushRecords();
    var ops = [];
    pendingHosts.forEach(function (h) {
      var id = known(h);
      if (id === undefined) return;
      var sr = h.shadowRoot;
      if (sr && known(sr) !== undefined) return;
      resendExtras(h, id, ops);
    });
    pendingHosts.clear();
    dirtySheets.forEach(function (sheet) {
      var owner = sheet.ownerNode;
      if (owner && owner.localName === 'style') {
        var id = known(owner);
        if (id !== undefined) styleSheetOps(owner, id, sheet, ops);
      } else if (!owner) {
        adopters.forEach(function (root) {
          if ((adoptedSent.get(root) || []).indexOf(sheet) >= 0) dirtyRoots.add(root);
        });
      }
    });
    dirtySheets.clear();
    dirtyRoots.forEach(function (root) {
      var id = known(root);
      if (id === undefined) return;
      var old = extraKids.get(id) || [];
      if (root.nodeType === 11) {
        // a shadow root's only v1.2 children are its sheets
        old.forEach(function (x) { ops.push({ op: 'remove', id: x }); });
        extraKids.delete(id);
      } else {
        old.forEach(function (x) { ops.push({ op: 'remove', id: x }); });
        extraKids.delete(id);
      }
      rootSheets(root, id).forEach(function (n) {
        ops.push({ op: 'insert', parent: id, before: null, node: n });
      });
    });
    dirtyRoots.clear();
    if (ops.length) sendOps(ops);
  }

  function styleSheetOps(style, id, sheet, ops) {
    var css = sheetText(sheet, D.baseURI) || '';
    var old = extraKids.get(id);
    if (old && old.length === 1) {
      ops.push({ op: 'text', id: old[0], text: css });
      return;
    }
    var node = { id: nextId++, type: 'sheet', css: css };
    extraKids.set(id, [node.id]);
    ops.push({ op: 'insert', parent: id, before: firstKnownChild(style), node: node });
  }

  /** adoptedStyleSheets changed in place (push/splice bypass the setter). */
  function pollAdopted() {
    if (!live) return;
    var roots = [D];
    observedRoots.forEach(function (r) { roots.push(r); });
    roots.forEach(function (root) {
      var list;
      try {
        list = root.adoptedStyleSheets;
      } catch (_) {
        return;
      }
      var sent = adoptedSent.get(root) || [];
      var same = list && list.length === sent.length;
      for (var i = 0; same && i < list.length; i++) same = list[i] === sent[i];
      if (!same && list) {
        dirtyRoots.add(root);
        scheduleV12();
      }
    });
  }

  function onShadowAttached(hostEl, init) {
    if (init && init.mode === 'closed') closedHosts.add(hostEl);
    pendingHosts.add(hostEl);
    scheduleV12();
  }

  function onSheetChanged(sheet) {
    cssomSheets.add(sheet);
    dirtySheets.add(sheet);
    scheduleV12();
  }

  /** Wrap attachShadow, the CSSOM writers and the adoptedStyleSheets setters of a window. */
  function installHooks(win) {
    try {
      var EP = win.Element && win.Element.prototype;
      var attach = EP && EP.attachShadow;
      if (typeof attach === 'function' && !attach.__cobrowse) {
        var wrappedAttach = function (init) {
          var root = attach.apply(this, arguments); // the page's own errors stay the page's
          try {
            onShadowAttached(this, init);
          } catch (e) {
            log('shadow root not followed', e);
          }
          return root;
        };
        wrappedAttach.__cobrowse = true;
        EP.attachShadow = wrappedAttach;
      }
      var SP = win.CSSStyleSheet && win.CSSStyleSheet.prototype;
      ['insertRule', 'deleteRule', 'addRule', 'removeRule', 'replace', 'replaceSync'].forEach(function (name) {
        var f = SP && SP[name];
        if (typeof f !== 'function' || f.__cobrowse) return;
        var w = function () {
          var sheet = this;
          var r = f.apply(sheet, arguments);
          try {
            onSheetChanged(sheet);
            if (r && typeof r.then === 'function') r.then(guard(function () { onSheetChanged(sheet); }), function () {});
          } catch (e) {
            log('stylesheet change not followed', e);
          }
          return r;
        };
        w.__cobrowse = true;
        SP[name] = w;
      });
      [win.Document, win.ShadowRoot].forEach(function (C) {
        var proto = C && C.prototype;
        var d = proto && Object.getOwnPropertyDescriptor(proto, 'adoptedStyleSheets');
        if (!d || !d.set || d.set.__cobrowse) return;
        var origSet = d.set;
        var set = function (v) {
          origSet.call(this, v);
          try {
            dirtyRoots.add(this);
            scheduleV12();
          } catch (e) {
            log('adopted stylesheets not followed', e);
          }
        };
        set.__cobrowse = true;
        Object.defineProperty(proto, 'adoptedStyleSheets', {
          configurable: true, enumerable: d.enumerable, get: d.get, set: set
        });
      });
    } catch (e) {
      log('cannot follow shadow roots and stylesheets', e);
    }
  }

  // The document epoch (protocol v1.1): random at page load, a new value for
  // every later snapshot (reconnect, resync). Every `mutations` and
  // `navigate` frame names the epoch of the snapshot it applies to.
  var EPOCH_MAX = 0x7fffffff;
  var epoch = 1 + Math.floor(Math.random() * (EPOCH_MAX - 1));
  var snapshotsTaken = 0;
  var lastPage = { url: null, title: null }; // as the server last heard it

  function takeSnapshot() {
    resetIds();
    if (snapshotsTaken++ > 0) epoch = epoch >= EPOCH_MAX ? 1 : epoch + 1;
    lastPage = { url: W.location.href, title: D.title || '' };
    return {
      t: 'snapshot',
      epoch: epoch,
      url: lastPage.url,
      title: lastPage.title,
      viewport: { w: W.innerWidth, h: W.innerHeight },
      root: ser(D)
    };
  }

  // ------------------------------------------- observe: mutations and values

  var observer = null;

  function reconcile(p, ops) {
    var pid = known(p);
    if (pid === undefined) return;
    if (p.nodeType === 1 && (isStylesheetLink(p) || p.localName === 'textarea')) {
      // Rebuild the whole (small) element so inlining and masking apply again.
      replaceNode(p, ops);
      return;
    }
    var old = sentKids.get(pid) || [];
    var cur = [];
    for (var c = p.firstChild; c; c = c.nextSibling) if (!skipNode(c)) cur.push(c);
    var index = new Map();
    cur.forEach(function (n, i) { index.set(n, i); });
    var kept = new Set();
    var last = -1;
    old.forEach(function (cid) {
      var n = idToNode.get(cid);
      if (!n) return; // moved elsewhere in this batch and already removed
      var i = index.get(n);
      if (i === undefined || i < last) {
        ops.push({ op: 'remove', id: cid });
        forget(cid);
        return;
      }
      last = i;
      kept.add(n);
    });
    var ids = new Array(cur.length);
    var before = null;
    for (var j = cur.length - 1; j >= 0; j--) {
      var n = cur[j];
      if (kept.has(n)) {
        before = nodeIds.get(n);
        ids[j] = before;
        continue;
      }
      var existing = known(n);
      if (existing !== undefined) {
        ops.push({ op: 'remove', id: existing });
        forget(existing);
      }
      var node = ser(n);
      ops.push({ op: 'insert', parent: pid, before: before, node: node });
      before = node.id;
      ids[j] = node.id;
    }
    sentKids.set(pid, ids);
  }

  function replaceNode(n, ops) {
    var id = known(n);
    var parent = n.parentNode;
    var pid = parent ? known(parent) : undefined;
    if (id === undefined || pid === undefined) return;
    var next = n.nextSibling;
    while (next && (skipNode(next) || known(next) === undefined)) next = next.nextSibling;
    ops.push({ op: 'remove', id: id });
    forget(id);
    var node = ser(n);
    ops.push({ op: 'insert', parent: pid, before: next ? known(next) : null, node: node });
    var kids = sentKids.get(pid);
    if (kids) {
      var at = kids.indexOf(id);
      if (at >= 0) kids[at] = node.id;
    }
  }

  function processRecords(records) {
    if (!live || !records.length) return;
    var t0 = perfNow();
    var dirty = [];
    var dirtySet = new Set();
    var attrs = [];
    var texts = [];
    var relevant = false;
    records.forEach(function (r) {
      if (r.type === 'childList') {
        if (!dirtySet.has(r.target)) {
          dirtySet.add(r.target);
          dirty.push(r.target);
        }
        relevant = true;
      } else if (r.type === 'attributes') {
        if (r.attributeName && r.attributeName.indexOf('data-cobrowse-cue') === 0) return;
        attrs.push(r);
        relevant = true;
      } else if (r.type === 'characterData') {
        texts.push(r.target);
        relevant = true;
      }
    });
    if (!relevant) return;
    var ops = [];
    dirty.forEach(function (p) { reconcile(p, ops); });
    var seenAttr = new Set();
    attrs.forEach(function (r) {
      var el = r.target;
      var id = known(el);
      if (id === undefined) return;
      var key = id + ' ' + r.attributeName;
      if (seenAttr.has(key)) return;
      seenAttr.add(key);
      var name = r.attributeName;
      if (name.toLowerCase().indexOf('on') === 0) return;
      if (isStylesheetLink(el) || (el.localName === 'link' && name === 'rel')) {
        replaceNode(el, ops);
        return;
      }
      var raw = el.getAttribute(name);
      var v = raw === null ? null : attrValue(el, name, raw);
      if (v !== null || name.toLowerCase().indexOf('data-cobrowse-') !== 0) {
        ops.push({ op: 'attr', id: id, name: name, value: v });
      }
      if (name.toLowerCase() === 'type' && notePassword(el)) {
        // A password field, now or before (show-password toggle): (re)send the mark.
        ops.push({ op: 'attr', id: id, name: PASSWORD_MARK, value: '1' });
      }
      if (isField(el) && hiddenFromAgent(el) && name !== 'value') {
        // A rule may have started matching (e.g. type=password): resend a masked value.
        ops.push(valueOp(el, id));
      }
    });
    var seenText = new Set();
    texts.forEach(function (n) {
      var id = known(n);
      if (id === undefined || seenText.has(id)) return;
      seenText.add(id);
      ops.push({ op: 'text', id: id, text: textFor(n) });
    });
    if (ops.length) sendOps(ops);
    scheduleCues();
    checkPage();
    perfMark('batch', t0, ops.length);
  }

  function flushRecords() {
    if (observer) processRecords(observer.takeRecords());
  }

  function sendOps(ops) {
    return send({ t: 'mutations', epoch: epoch, ops: ops });
  }

  // ------------------------------------------- observe: SPA navigation (v1.1)
  //
  // Same document, new URL or title: history.pushState/replaceState (wrapped),
  // popstate, hashchange, and <title> changes (seen by the mutation observer).

  /** Send `navigate` if the URL or title changed since the server last heard them. */
  function checkPage() {
    if (!live) return;
    var url = W.location.href;
    var title = D.title || '';
    if (url === lastPage.url && title === lastPage.title) return;
    lastPage = { url: url, title: title };
    send({ t: 'navigate', epoch: epoch, url: url, title: title });
  }

  var onHistory = guard(function () {
    // DOM changes made before the URL changed go first, under the old URL.
    flushRecords();
    checkPage();
  });

  function wrapHistory(name) {
    var H = W.history;
    var orig = H && H[name];
    if (typeof orig !== 'function' || orig.__cobrowse) return;
    var wrapped = function () {
      var result = orig.apply(this, arguments); // the page's own errors stay the page's
      onHistory();
      return result;
    };
    wrapped.__cobrowse = true;
    try {
      H[name] = wrapped;
    } catch (e) {
      log('cannot follow history.' + name, e);
    }
  }

  function startObserving() {
    stopObserving();
    observer = new MutationObserver(guard(processRecords));
    observer.observe(D, {
      childList: true, subtree: true, attributes: true, characterData: true
    });
    observedRoots.forEach(function (r) { observer.observe(r, OBSERVE); });
    pollTimer = setInterval(guard(pollFields), POLL_MS);
    adoptedTimer = setInterval(guard(pollAdopted), 250);
  }

  function stopObserving() {
    if (observer) {
      observer.disconnect();
      observer = null;
    }
    if (pollTimer) {
      clearInterval(pollTimer);
      pollTimer = null;
    }
    if (adoptedTimer) {
      clearInterval(adoptedTimer);
      adoptedTimer = null;
    }
  }

  // ------------------------------------ observe: values set by page script
  //
  // `input.value = ''`, `.checked = …`, `select.selectedIndex = …` fire no
  // event and change no attribute. While a session is live, every POLL_MS the
  // snippet compares the live state of the form controls the server knows
  // with what it last sent, and sends `value` ops for the ones that differ.
  // The cost is one property read per control, not a walk of the document.

  var POLL_MS = 120;
  var pollTimer = null;

  function pollFields() {
    if (!live) return;
    var t0 = perfNow();
    var changed = [];
    controls.forEach(function (el) {
      if (lastSent.get(el) !== fieldState(el)) changed.push(el);
    });
    if (!changed.length) {
      perfMark('poll', t0);
      return;
    }
    flushRecords(); // DOM changes first: a control may have been removed or replaced
    var ops = [];
    changed.forEach(function (el) {
      var id = known(el);
      if (id === undefined || lastSent.get(el) === fieldState(el)) return;
      ops.push(valueOp(el, id));
    });
    if (ops.length) {
      sendOps(ops);
      scheduleCues();
    }
  }

  function valueOp(el, id) {
    var op = { op: 'value', id: id, value: fieldValue(el) };
    noteSent(el);
    if (el.localName === 'input' && (el.type === 'checkbox' || el.type === 'radio')) op.checked = !!el.checked;
    return op;
  }

  /** Send the current (clear unless still hidden) values of fields whose mask was lifted. */
  function resendLifted(fields) {
    if (!live) return;
    flushRecords();
    var ops = [];
    fields.forEach(function (el) {
      var id = known(el);
      if (id === undefined) return;
      if (el.localName === 'textarea') {
        replaceNode(el, ops); // its text children were sent masked too
        return;
      }
      if (el.hasAttribute('value')) {
        ops.push({ op: 'attr', id: id, name: 'value', value: attrValue(el, 'value', el.getAttribute('value')) });
      }
      ops.push(valueOp(el, id));
    });
    if (ops.length) sendOps(ops);
  }

  var onValueEvent = guard(function (e) {
    if (!live) return;
    // inside a shadow root the event is retargeted to the host
    var el = (e.composedPath && e.composedPath()[0]) || e.target;
    if (!el || el.nodeType !== 1 || !isField(el)) return;
    var t0 = perfNow();
    flushRecords();
    var id = known(el);
    if (id === undefined) return;
    var ops = [valueOp(el, id)];
    if (el.type === 'radio' && el.name) {
      var scope = el.form || D;
      var group = scope.querySelectorAll('input[type=radio]');
      for (var i = 0; i < group.length; i++) {
        var g = group[i];
        var gid = known(g);
        if (g !== el && g.name === el.name && gid !== undefined) ops.push(valueOp(g, gid));
      }
    }
    sendOps(ops);
    scheduleCues();
    perfMark('value-event', t0, ops.length);
  });

  // -------------------------------------- capture: scroll, viewport, pointer

  var pendingScroll = new Map();
  var scrollTimer = null;

  var onScroll = guard(function (e) {
    if (!live) return;
    var t = e.target;
    var key = t === D || t === D.documentElement || t === D.scrollingElement ? 'window' : t;
    if (key !== 'window') noteScrolled(key);
    pendingScroll.set(key, true);
    if (!scrollTimer) scrollTimer = setTimeout(guard(flushScroll), 50);
  });

  function flushScroll() {
    scrollTimer = null;
    if (!live) return;
    flushRecords();
    pendingScroll.forEach(function (_, key) {
      if (key === 'window') {
        send({ t: 'scroll', x: W.scrollX, y: W.scrollY });
      } else {
        var id = known(key);
        if (id !== undefined) send({ t: 'scroll', id: id, x: key.scrollLeft, y: key.scrollTop });
      }
    });
    pendingScroll.clear();
  }

  var resizeTimer = null;
  var onResize = guard(function () {
    if (!live || resizeTimer) return;
    resizeTimer = setTimeout(guard(function () {
      resizeTimer = null;
      if (live) send({ t: 'viewport', w: W.innerWidth, h: W.innerHeight });
    }), 100);
  });

  // ------------------------- capture: layout of blocked elements, element scroll (v1.3)
  //
  // A blocked element reaches the agent as an empty box, so the snippet sends
  // its border-box size (`data-cobrowse-box="W H"`, CSS px, a virtual
  // attribute that is never set on the page) when it is serialised and,
  // through a ResizeObserver, whenever it changes; the server turns the two
  // numbers into an inline size. Elements the customer scrolled are
  // remembered, so a snapshot (or re-insert) of one is followed by its scroll
  // position.

  var BOX_MARK = 'data-cobrowse-box';
  var boxSent = new WeakMap(); // blocked element -> measure last sent
  var boxObserver = null;
  var scrolledEls = new Set(); // elements the customer scrolled (pruned when gone)

  /** One side of a measure: a finite non-negative number, hundredths of a px. */
  function boxSide(v) {
    v = Number(v);
    if (!isFinite(v) || v < 0) v = 0;
    return String(Math.round(Math.min(v, 1e6) * 100) / 100);
  }

  /** The element's layout border-box ("W H"): its bounding rectangle unless a transform scales it. */
  function measureBox(el) {
    var r = el.getBoundingClientRect();
    var w = r.width;
    var h = r.height;
    if (typeof el.offsetWidth === 'number' && Math.abs(el.offsetWidth - w) >= 1) w = el.offsetWidth;
    if (typeof el.offsetHeight === 'number' && Math.abs(el.offsetHeight - h) >= 1) h = el.offsetHeight;
    return boxSide(w) + ' ' + boxSide(h);
  }

  function matchesBlock(el) {
    try {
      return !!rules.block && el.nodeType === 1 && el.matches(rules.block);
    } catch (_) {
      return false;
    }
  }

  /** While serialising: a blocked element carries its measure and is watched. */
  function blockedBox(el, attrs) {
    if (!matchesBlock(el)) return;
    var b = measureBox(el);
    attrs[BOX_MARK] = b;
    boxSent.set(el, b);
    watchBox(el);
  }

  function watchBox(el) {
    if (typeof W.ResizeObserver !== 'function') return;
    if (!boxObserver) boxObserver = new W.ResizeObserver(guard(onBoxResize));
    boxObserver.observe(el);
  }

  function onBoxResize(entries) {
    if (!live) return;
    var els = [];
    for (var i = 0; i < entries.length; i++) els.push(entries[i].target);
    sendBoxes(els);
  }

  /** Send the measure of each blocked element the server knows whose size changed. */
  function sendBoxes(els) {
    if (!live) return;
    var ops = [];
    var flushed = false;
    els.forEach(function (el) {
      if (!el.isConnected) {
        if (boxObserver) boxObserver.unobserve(el);
        return;
      }
      if (!matchesBlock(el)) return;
      var b = measureBox(el);
      if (boxSent.get(el) === b) return;
      if (!flushed) {
        flushRecords(); // the element's insert goes first
        flushed = true;
      }
      var id = known(el);
      if (id === undefined) return;
      boxSent.set(el, b);
      ops.push({ op: 'attr', id: id, name: BOX_MARK, value: b });
    });
    if (ops.length) sendOps(ops);
  }

  /** After a cue pass: elements that started to be blocked (new rules, a class change) get measured and watched. */
  function watchBlocked(want) {
    if (!live) return;
    var fresh = [];
    want.forEach(function (kind, el) {
      if (kind !== 'block' || boxSent.has(el)) return;
      watchBox(el);
      fresh.push(el);
    });
    if (fresh.length) sendBoxes(fresh);
  }

  function noteScrolled(el) {
    if (scrolledEls.size > 200) {
      scrolledEls.forEach(function (x) { if (!x.isConnected) scrolledEls.delete(x); });
    }
    scrolledEls.add(el);
  }

  /** A scrolled element was (re)serialised: its position follows the snapshot or insert. */
  function rescroll(el) {
    if (!el.scrollTop && !el.scrollLeft) return;
    pendingScroll.set(el, true);
    if (!scrollTimer) scrollTimer = setTimeout(guard(flushScroll), 50);
  }

  var lastPointerSent = 0;
  var pointerTimer = null;
  var pointerPos = null;
  var onPointer = guard(function (e) {
    if (!live) return;
    pointerPos = { x: Math.round(e.pageX), y: Math.round(e.pageY) };
    var now = Date.now();
    if (now - lastPointerSent >= 33) {
      sendPointer();
    } else if (!pointerTimer) {
      pointerTimer = setTimeout(guard(sendPointer), 33 - (now - lastPointerSent));
    }
  });

  function sendPointer() {
    pointerTimer = null;
    if (!pointerPos || !live) return;
    lastPointerSent = Date.now();
    send({ t: 'pointer', x: pointerPos.x, y: pointerPos.y });
  }

  // ----------------------------------------- actions: approved agent actions

  function targetFor(id, action) {
    var el = idToNode.get(id);
    if (!el || el.nodeType !== 1 || !el.isConnected) {
      log('agent ' + action + ' ignored: unknown element', id);
      return null;
    }
    if (S.mode !== 'write') {
      log('agent ' + action + ' refused: not in write mode');
      return null;
    }
    if (isDisabled(el)) {
      log('agent ' + action + ' refused: element is disabled for the agent');
      return null;
    }
    return el;
  }

  function setNativeValue(el, value) {
    var proto = el.localName === 'textarea' ? W.HTMLTextAreaElement.prototype
      : el.localName === 'select' ? W.HTMLSelectElement.prototype
        : W.HTMLInputElement.prototype;
    var desc = Object.getOwnPropertyDescriptor(proto, 'value');
    if (desc && desc.set) desc.set.call(el, value);
    else el.value = value;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }

  function focusables() {
    var sel = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"]), [contenteditable=""], [contenteditable="true"]';
    return [].slice.call(D.querySelectorAll(sel)).filter(function (el) {
      return !el.disabled && el.tabIndex >= 0 && el.getClientRects().length > 0 && !isDisabled(el);
    });
  }

  function doClick(m) {
    var el = targetFor(m.id, 'click');
    if (!el) return;
    if (typeof el.focus === 'function') el.focus({ preventScroll: true });
    flashElement(el);
    if (typeof el.click === 'function') el.click();
    else el.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, view: W }));
  }

  function doInput(m) {
    var el = targetFor(m.id, 'input');
    if (!el) return;
    if (hiddenFromAgent(el)) {
      log('agent input refused: field is hidden from the agent');
      return;
    }
    if (!isField(el) || el.disabled || el.readOnly) return;
    if (el.localName === 'input' && /^(checkbox|radio|file)$/.test(el.type)) return;
    if (D.activeElement !== el && typeof el.focus === 'function') el.focus({ preventScroll: true });
    setNativeValue(el, String(m.value));
  }

  function doKey(m) {
    var el = targetFor(m.id, 'key');
    if (!el) return;
    var key = String(m.key);
    if (key !== 'Enter' && key !== 'Tab' && key !== 'Escape') return;
    if (hiddenFromAgent(el)) {
      log('agent key refused: field is hidden from the agent');
      return;
    }
    var init = { key: key, code: key, bubbles: true, cancelable: true };
    var go = el.dispatchEvent(new KeyboardEvent('keydown', init));
    el.dispatchEvent(new KeyboardEvent('keyup', init));
    if (!go) return;
    if (key === 'Tab') {
      var list = focusables();
      var at = list.indexOf(el);
      var next = list[at + 1] || list[0];
      if (next) next.focus();
    } else if (key === 'Enter') {
      var form = el.form;
      if (!form || el.localName === 'textarea') return;
      var submitter = null;
      for (var i = 0; i < form.elements.length && !submitter; i++) {
        var c = form.elements[i];
        if (c.type === 'submit' || c.type === 'image') submitter = c;
      }
      if (isDisabled(form) || (submitter && isDisabled(submitter))) {
        log('agent Enter refused: submitting is disabled for the agent');
        return;
      }
      if (typeof form.requestSubmit === 'function') form.requestSubmit();
    }
  }

  function doScroll(m) {
    if (S.mode !== 'write') return;
    var x = Number(m.x) || 0;
    var y = Number(m.y) || 0;
    if (m.id !== undefined && m.id !== null) {
      var el = idToNode.get(m.id);
      if (el && el.nodeType === 1 && !isDisabled(el)) el.scrollTo(x, y);
    } else {
      W.scrollTo(x, y);
    }
  }

  // ------------------------------------------- rules/cue: the customer's cue

  var cueTimer = null;
  var cueSheetInstalled = false;
  var extraCues = false; // some element on the page is shown as hidden from the agent
  var CUE_CSS =
    '[data-cobrowse-cue="mask"]{outline:2px dashed #d97706 !important;outline-offset:2px !important}' +
    '[data-cobrowse-cue="block"]{outline:2px dashed #64748b !important;outline-offset:2px !important}' +
    '[data-cobrowse-cue="disable"]{outline:2px dashed #dc2626 !important;outline-offset:2px !important}';

  function installCueSheet() {
    if (cueSheetInstalled) return;
    cueSheetInstalled = true;
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CUE_CSS);
      D.adoptedStyleSheets = D.adoptedStyleSheets.concat([sheet]);
    } catch (_) {
      var st = D.createElement('style');
      st.setAttribute('data-cobrowse-ignore', '');
      st.textContent = CUE_CSS;
      (D.head || D.documentElement).appendChild(st);
    }
  }

  // A cue pass scans the whole document (querySelectorAll per rule kind), so
  // it must not run per mutation batch or keystroke on a big page: after a
  // page change it runs at most once per CUE_GAP_MS (trailing), and soon
  // (30 ms) only when what is hidden may have changed at once: new rules, a
  // field the card rule just masked, the session's state.
  var CUE_GAP_MS = 1000;
  var lastCuePass = -CUE_GAP_MS;
  var cueDue = 0; // when the scheduled pass runs (Date.now() ms)

  function scheduleCues(urgent) {
    var now = Date.now();
    var due = urgent ? now + 30 : Math.max(now + 30, lastCuePass + CUE_GAP_MS);
    if (cueTimer && cueDue <= due) return;
    if (cueTimer) clearTimeout(cueTimer);
    cueDue = due;
    cueTimer = setTimeout(guard(function () {
      cueTimer = null;
      applyCues();
    }), due - now);
  }

  function applyCues() {
    var t0 = perfNow();
    lastCuePass = Date.now();
    if (cueTimer) {
      clearTimeout(cueTimer);
      cueTimer = null;
    }
    var want = new Map();
    if (S.id && S.state !== 'ended') {
      ['disable', 'mask', 'block'].forEach(function (kind) {
        if (!rules[kind]) return;
        var list;
        try {
          list = D.querySelectorAll(rules[kind]);
        } catch (_) {
          return;
        }
        for (var i = 0; i < list.length; i++) {
          if (host && host.contains(list[i])) continue;
          want.set(list[i], kind);
        }
      });
      // Fields hidden by the snippet's own memory: ever a password, detector-masked.
      var fields = D.querySelectorAll('input, textarea, [contenteditable]');
      for (var f = 0; f < fields.length; f++) {
        var x = fields[f];
        if (want.has(x) || (host && host.contains(x))) continue;
        if (everPassword.has(x) || cardMasked.has(x)) want.set(x, 'mask');
      }
    }
    watchBlocked(want);
    extraCues = false;
    want.forEach(function (kind) { if (kind !== 'disable') extraCues = true; });
    if (want.size) installCueSheet();
    var have = D.querySelectorAll('[data-cobrowse-cue]');
    for (var i = 0; i < have.length; i++) {
      if (!want.has(have[i])) have[i].removeAttribute('data-cobrowse-cue');
    }
    want.forEach(function (kind, el) {
      if (el.getAttribute('data-cobrowse-cue') !== kind) el.setAttribute('data-cobrowse-cue', kind);
    });
    render();
    perfMark('cues', t0, want.size);
  }

  var CUE_TEXT = {
    mask: 'Hidden from the agent',
    block: 'Hidden from the agent',
    disable: 'The agent cannot use this'
  };

  var onCueHover = guard(function (e) {
    if (!ui || !S.id || S.state === 'ended') return;
    var t = e.target;
    var el = t && t.nodeType === 1 && t.closest ? t.closest('[data-cobrowse-cue]') : null;
    if (!el || (host && host.contains(el))) {
      if (e.type === 'focusout' || e.type === 'mouseout') ui.hideTip();
      return;
    }
    if (e.type === 'mouseout' || e.type === 'focusout') {
      ui.hideTip();
      return;
    }
    ui.showTip(el, CUE_TEXT[el.getAttribute('data-cobrowse-cue')] || CUE_TEXT.mask);
  });

  // ------------------------------------------------------------------ widget

  var ui = null;

  var WIDGET_CSS = [
    ':host{all:initial}',
    '*{box-sizing:border-box;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}',
    '[hidden]{display:none !important}',
    '.launch{position:fixed;right:20px;bottom:20px;z-index:2147483646;display:flex;align-items:center;gap:8px;',
    'padding:11px 18px 11px 14px;border:0;border-radius:999px;background:#1d4ed8;color:#fff;font-size:14px;font-weight:600;',
    'box-shadow:0 6px 20px rgba(29,78,216,.35);cursor:pointer;letter-spacing:.01em}',
    '.launch:hover{background:#1e40af}.launch:focus-visible{outline:3px solid #93c5fd;outline-offset:2px}',
    '.launch svg{width:18px;height:18px}',
    '.panel{position:fixed;right:20px;bottom:20px;z-index:2147483646;width:300px;background:#fff;color:#0f172a;',
    'border-radius:14px;box-shadow:0 12px 40px rgba(15,23,42,.22),0 0 0 1px rgba(15,23,42,.06);overflow:hidden;font-size:14px;line-height:1.45}',
    '.head{display:flex;width:100%;align-items:center;gap:8px;padding:12px 16px;border:0;background:#0f172a;color:#fff;font-weight:600;font-size:13px;cursor:pointer;text-align:left}',
    '.head .title{flex:1}.chev{width:8px;height:8px;border-right:2px solid #94a3b8;border-bottom:2px solid #94a3b8;transform:rotate(45deg);margin-top:-4px}',
    '.panel.min .chev{transform:rotate(-135deg);margin-top:4px}.panel.min .body{display:none}.panel.min{width:auto;min-width:220px}',
    '.dot{width:8px;height:8px;border-radius:50%;background:#f59e0b}.dot.on{background:#22c55e}.dot.off{background:#94a3b8}',
    '.body{padding:16px}',
    '.label{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:#64748b;margin:0 0 4px}',
    '.code{font:700 30px/1.1 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.06em;color:#1d4ed8;margin:0 0 6px;user-select:all}',
    '.hint{margin:0 0 14px;color:#334155}',
    '.msg{margin:0 0 14px;color:#334155}',
    '.row{display:flex;gap:8px}',
    'button.btn{flex:1;padding:9px 12px;border-radius:8px;border:1px solid #cbd5e1;background:#fff;color:#0f172a;font-size:14px;font-weight:600;cursor:pointer}',
    'button.btn:hover{background:#f1f5f9}',
    'button.primary{background:#1d4ed8;border-color:#1d4ed8;color:#fff}button.primary:hover{background:#1e40af}',
    'button.danger{color:#b91c1c;border-color:#fecaca}button.danger:hover{background:#fef2f2}',
    '.banner{position:fixed;top:10px;left:50%;transform:translateX(-50%);z-index:2147483646;display:flex;align-items:center;gap:10px;',
    'max-width:calc(100vw - 24px);padding:5px 6px 5px 14px;border-radius:999px;background:#0f172a;color:#fff;font-size:13px;font-weight:500;',
    'line-height:1.3;box-shadow:0 6px 20px rgba(15,23,42,.25);white-space:nowrap}',
    '.banner.write{background:#9a3412}',
    '.legend{display:flex;align-items:center;gap:5px;color:#cbd5e1;font-size:12px}',
    '.legend i{display:inline-block;width:14px;height:10px;border:2px dashed #f59e0b;border-radius:2px}',
    '.bbtn{padding:5px 12px;border:0;border-radius:999px;background:rgba(255,255,255,.14);color:#fff;font-size:12.5px;font-weight:600;cursor:pointer}',
    '.bbtn:hover{background:rgba(255,255,255,.26)}.bbtn:focus-visible{outline:2px solid #93c5fd;outline-offset:1px}',
    '@media (max-width:560px){.legend{display:none}}',
    '.veil{position:fixed;inset:0;z-index:2147483647;background:rgba(15,23,42,.45);display:flex;align-items:center;justify-content:center}',
    '.dialog{width:min(420px,calc(100vw - 32px));background:#fff;color:#0f172a;border-radius:14px;padding:22px;box-shadow:0 20px 60px rgba(15,23,42,.35)}',
    '.dialog h2{margin:0 0 8px;font-size:18px}.dialog p{margin:0 0 18px;color:#334155;font-size:14px;line-height:1.5}',
    '.pointer{position:fixed;left:0;top:0;z-index:2147483647;pointer-events:none;transition:transform .06s linear;will-change:transform}',
    '.pointer svg{width:22px;height:22px;display:block;filter:drop-shadow(0 1px 2px rgba(0,0,0,.35))}',
    '.pointer span{position:absolute;left:16px;top:18px;white-space:nowrap;padding:2px 8px;border-radius:6px;background:#7c3aed;color:#fff;font-size:12px;font-weight:600}',
    '.tip{position:fixed;z-index:2147483647;padding:5px 9px;border-radius:6px;background:#0f172a;color:#fff;font-size:12px;font-weight:500;pointer-events:none;white-space:nowrap}',
    '.flash{position:fixed;z-index:2147483646;pointer-events:none;border:2px solid #7c3aed;border-radius:6px;transition:opacity .6s;opacity:1}'
  ].join('');

  var ICON = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><rect x="2" y="4" width="20" height="14" rx="2"/><path d="M8 22h8M12 18v4"/><path d="M10 9l4 2-4 2z" fill="currentColor"/></svg>';

  var WIDGET_HTML =
    '<button class="launch" data-role="launch" type="button" hidden>' + ICON + '<span>Co-browse</span></button>' +
    '<section class="panel" data-role="panel" hidden aria-live="polite">' +
    '<button class="head" type="button" data-role="head" aria-expanded="true"><span class="dot" data-role="dot"></span>' +
    '<span class="title" data-role="title">Co-browse</span><span class="chev" aria-hidden="true"></span></button>' +
    '<div class="body" data-role="body">' +
    '<div data-role="waiting" hidden>' +
    '<p class="label">Your session ID</p><p class="code" data-role="session-id"></p>' +
    '<p class="hint">Read this number to your agent.</p></div>' +
    '<div data-role="active" hidden><p class="msg" data-role="active-msg"></p></div>' +
    '<div data-role="ended" hidden><p class="msg" data-role="end-reason"></p></div>' +
    '<p class="msg" data-role="error" hidden></p>' +
    '<div class="row">' +
    '<button class="btn danger" type="button" data-role="exit" hidden>Exit</button>' +
    '<button class="btn" type="button" data-role="close" hidden>Close</button>' +
    '</div></div></section>' +
    '<div class="banner" data-role="banner" hidden role="status"><span class="dot on"></span><span data-role="banner-text"></span>' +
    '<span class="legend" data-role="legend" title="Fields outlined like this on the page are hidden from the agent"><i></i>hidden from the agent</span>' +
    '<button type="button" class="bbtn" data-role="stop-control" hidden>Stop control</button>' +
    '<button type="button" class="bbtn" data-role="banner-exit">Exit</button></div>' +
    '<div class="veil" data-role="consent" hidden><div class="dialog" role="dialog" aria-modal="true" aria-labelledby="cbc-title">' +
    '<h2 id="cbc-title" data-role="consent-title">Allow the agent to control this page?</h2>' +
    '<p>They will be able to click, type and scroll for you. Fields hidden from the agent stay hidden, ' +
    'and only you can submit forms. You can stop this at any time.</p>' +
    '<div class="row"><button class="btn" type="button" data-role="refuse">Refuse</button>' +
    '<button class="btn primary" type="button" data-role="allow">Allow</button></div></div></div>' +
    '<div class="pointer" data-role="pointer" hidden><svg viewBox="0 0 24 24"><path d="M4 2l16 9-7 2-3 7z" fill="#7c3aed" stroke="#fff" stroke-width="1.5" stroke-linejoin="round"/></svg>' +
    '<span data-role="pointer-label">Agent</span></div>' +
    '<div class="tip" data-role="tip" hidden></div>';

  function buildUi() {
    host = D.createElement('div');
    host.setAttribute('data-cobrowse-ignore', '');
    host.setAttribute('data-cobrowse-widget', '');
    var root = host.attachShadow({ mode: 'open' });
    var style = D.createElement('style');
    style.textContent = WIDGET_CSS;
    root.appendChild(style);
    var wrap = D.createElement('div');
    wrap.innerHTML = WIDGET_HTML; // constant markup, no customer or server strings
    while (wrap.firstChild) root.appendChild(wrap.firstChild);
    (D.body || D.documentElement).appendChild(host);

    function $(role) {
      return root.querySelector('[data-role="' + role + '"]');
    }
    var el = {};
    ['launch', 'panel', 'head', 'body', 'dot', 'title', 'waiting', 'session-id', 'active', 'active-msg', 'ended',
      'end-reason', 'error', 'stop-control', 'exit', 'banner-exit', 'legend', 'close', 'banner', 'banner-text', 'consent',
      'consent-title', 'refuse', 'allow', 'pointer', 'pointer-label', 'tip'].forEach(function (r) {
      el[r] = $(r);
    });

    var shown = false; // the customer closed the ended panel
    var errorText = null;
    var pointer = null;

    el.launch.addEventListener('click', guard(function () {
      errorText = null;
      el.launch.disabled = true;
      api.start().then(null, function (e) {
        errorText = 'Could not start co-browsing: ' + (e && e.message ? e.message : 'network error');
        render();
      }).then(function () {
        el.launch.disabled = false;
      });
      render();
    }));
    el.exit.addEventListener('click', guard(function () { api.end(); }));
    el['banner-exit'].addEventListener('click', guard(function () { api.end(); }));
    el.head.addEventListener('click', guard(function () {
      var min = !el.panel.classList.contains('min');
      el.panel.classList.toggle('min', min);
      el.head.setAttribute('aria-expanded', String(!min));
    }));
    el.close.addEventListener('click', guard(function () {
      shown = false;
      errorText = null;
      render();
    }));
    el['stop-control'].addEventListener('click', guard(function () {
      send({ t: 'control', grant: false });
    }));
    el.allow.addEventListener('click', guard(function () {
      el.consent.hidden = true;
      send({ t: 'control', grant: true });
    }));
    el.refuse.addEventListener('click', guard(function () {
      el.consent.hidden = true;
      send({ t: 'control', grant: false });
    }));

    function placePointer() {
      if (!pointer || el.pointer.hidden) return;
      el.pointer.style.transform = 'translate(' + (pointer.x - W.scrollX) + 'px,' + (pointer.y - W.scrollY) + 'px)';
    }
    W.addEventListener('scroll', guard(placePointer), { passive: true });

    function render() {
      var st = S.state;
      var livePanel = S.id && st !== 'ended';
      var endedPanel = st === 'ended' && shown;
      el.launch.hidden = !WIDGET || livePanel || endedPanel || !!errorText;
      // data-widget="false" hides the launcher and panel; the banner, consent
      // dialog and agent pointer stay, as the customer must always see them.
      // While an agent is connected the top banner carries status and controls,
      // so nothing covers the page's own buttons.
      var agentOn = livePanel && st === 'active';
      el.panel.hidden = !WIDGET || !(livePanel || endedPanel || errorText) || agentOn;
      el.waiting.hidden = !(livePanel && st === 'waiting');
      el.active.hidden = !(livePanel && st === 'active');
      el.ended.hidden = !endedPanel;
      el.error.hidden = !errorText || livePanel;
      el.error.textContent = errorText || '';
      el['session-id'].textContent = formatId(S.id);
      var name = S.agent || 'The agent';
      var writeMode = livePanel && st === 'active' && S.mode === 'write';
      el['active-msg'].textContent = name + ' can see this page and your pointer.';
      el['stop-control'].hidden = !writeMode;
      el.legend.hidden = !(rules.mask || rules.block || extraCues);
      el.exit.hidden = !livePanel;
      el.close.hidden = livePanel || !(endedPanel || errorText);
      el['end-reason'].textContent = reasonText(S.reason);
      el.title.textContent = livePanel ? (st === 'waiting' ? 'Waiting for your agent' : 'Co-browsing with ' + name)
        : endedPanel ? 'Session ended' : 'Co-browse';
      el.dot.className = 'dot' + (st === 'active' && S.agentPresent ? ' on' : st === 'ended' || !livePanel ? ' off' : '');
      el.banner.hidden = !(livePanel && st === 'active');
      el.banner.className = 'banner' + (writeMode ? ' write' : '');
      el['banner-text'].textContent = !S.agentPresent ? name + '\u2019s viewer is reconnecting\u2026'
        : writeMode ? name + ' is controlling this page' : name + ' is viewing this page';
      if (!livePanel) {
        el.consent.hidden = true;
        el.pointer.hidden = true;
        el.tip.hidden = true;
      }
      el['pointer-label'].textContent = S.agent || 'Agent';
      el['consent-title'].textContent = 'Allow ' + (S.agent || 'the agent') + ' to control this page?';
    }

    return {
      render: render,
      ended: function () {
        shown = true;
        el.panel.classList.remove('min');
        render();
      },
      consent: function (show) {
        el.consent.hidden = !show;
        if (show) el.allow.focus();
      },
      pointer: function (x, y) {
        pointer = { x: x, y: y };
        el.pointer.hidden = false;
        placePointer();
      },
      showTip: function (target, text) {
        var r = target.getBoundingClientRect();
        el.tip.textContent = text;
        el.tip.hidden = false;
        el.tip.style.left = Math.max(4, r.left) + 'px';
        el.tip.style.top = Math.max(4, r.top - 30) + 'px';
      },
      hideTip: function () {
        el.tip.hidden = true;
      },
      flash: function (target) {
        var r = target.getBoundingClientRect();
        var f = D.createElement('div');
        f.className = 'flash';
        f.style.left = r.left - 3 + 'px';
        f.style.top = r.top - 3 + 'px';
        f.style.width = r.width + 6 + 'px';
        f.style.height = r.height + 6 + 'px';
        root.appendChild(f);
        setTimeout(guard(function () { f.style.opacity = '0'; }), 250);
        setTimeout(guard(function () { f.remove(); }), 900);
      }
    };
  }

  function flashElement(el) {
    if (ui) ui.flash(el);
  }

  function render() {
    if (ui) ui.render();
  }

  // ------------------------------------ transport: socket, snapshots, resync

  // Compression (protocol v1.4): where the browser has
  // CompressionStream('deflate-raw') the socket URL says `z=deflate-raw` and
  // frames of at least Z_MIN characters (snapshots, big batches) go as binary
  // raw DEFLATE; small ones stay text. Compressing is asynchronous, so every
  // frame waits behind earlier ones still being compressed: frames leave in
  // the order they were sent. A frame that cannot be compressed goes as text.
  var Z_MIN = 8192;
  var Z_OUT = (function () {
    try {
      if (typeof W.CompressionStream !== 'function' || typeof W.Response !== 'function' ||
          typeof W.Blob !== 'function' || typeof W.Blob.prototype.stream !== 'function') return false;
      new W.CompressionStream('deflate-raw'); // throws where the format is unknown
      return true;
    } catch (_) {
      return false;
    }
  })();
  var outbox = []; // frames waiting behind a compression: {sock, data, ready}

  function compress(str) {
    return new Promise(function (resolve) {
      var stream = new W.Blob([str]).stream().pipeThrough(new W.CompressionStream('deflate-raw'));
      resolve(new W.Response(stream).arrayBuffer());
    });
  }

  function wire(sock, str) {
    if (!Z_OUT || str.length < Z_MIN) {
      if (!outbox.length) sock.send(str);
      else outbox.push({ sock: sock, data: str, ready: true });
      return;
    }
    var slot = { sock: sock, data: str, ready: false };
    outbox.push(slot);
    compress(str).then(function (buf) {
      slot.data = buf;
    }, function (e) {
      log('compression failed; sending text', e);
    }).then(guard(function () {
      slot.ready = true;
      flushOutbox();
    })).catch(function () { /* guarded */ });
  }

  function flushOutbox() {
    while (outbox.length && outbox[0].ready) {
      var f = outbox.shift();
      // Frames of a socket that closed meanwhile are dropped, like any frame
      // sent on a closed socket (the next socket starts with a snapshot).
      if (f.sock !== ws || f.sock.readyState !== 1) continue;
      try {
        f.sock.send(f.data);
      } catch (e) {
        log('send failed', e);
      }
    }
  }

  function sendSnapshot() {
    if (snapshotTimer) {
      clearTimeout(snapshotTimer);
      snapshotTimer = null;
    }
    if (live || !tabFront || !ws || ws.readyState !== 1) return;
    stopObserving();
    var t0 = perfNow();
    var snap = takeSnapshot();
    perfMark('serialise', t0);
    if (!send(snap)) return;
    perfMark('snapshot', t0);
    live = true;
    startObserving();
    if (W.scrollX || W.scrollY) send({ t: 'scroll', x: W.scrollX, y: W.scrollY });
    scheduleCues();
  }

  function connect() {
    if (reconnectTimer) {
      clearTimeout(reconnectTimer);
      reconnectTimer = null;
    }
    if (!S.id || !S.token) return;
    var sock;
    try {
      sock = new WebSocket(WS_ORIGIN + '/ws/customer/' + encodeURIComponent(S.id) +
        '?token=' + encodeURIComponent(S.token) + '&tabs=1' + (Z_OUT ? '&z=deflate-raw' : ''));
    } catch (e) {
      log('cannot open the co-browse socket', e);
      finish('connection_lost');
      return;
    }
    ws = sock;
    outbox = []; // what waited for the old socket is dropped with it
    live = false;
    tabFront = true;
    var heard = false;
    var refused = null; // an `error` frame before `session`: the server refused us
    sock.onopen = guard(function () {
      if (ws !== sock) return;
      // A page that just loaded in sight is the one the customer looks at
      // (a tab that joins a session started elsewhere only if it has focus).
      if (D.visibilityState === 'visible' && (!adopted || D.hasFocus())) claimFront();
      // Wait briefly for the `rules` message so the first snapshot is already
      // masked client-side; send it anyway if the rules are slow.
      snapshotTimer = setTimeout(guard(sendSnapshot), 800);
    });
    sock.onmessage = guard(function (e) {
      if (ws !== sock) return;
      var m;
      try {
        m = JSON.parse(e.data);
      } catch (_) {
        log('unreadable message from the server');
        return;
      }
      if (m && m.t === 'error' && !heard && FATAL[m.code]) {
        refused = m;
        log('the server refused this session:', m.code, m.message);
        return;
      }
      heard = true;
      failures = 0;
      handle(m);
    });
    sock.onclose = guard(function () {
      if (ws !== sock) return;
      ws = null;
      live = false;
      stopObserving();
      if (snapshotTimer) clearTimeout(snapshotTimer);
      if (resyncTimer) clearTimeout(resyncTimer);
      snapshotTimer = resyncTimer = null;
      if (unloading || !S.id || S.state === 'ended') return;
      if (refused) {
        finish(refusalReason(refused));
        return;
      }
      if (!heard) failures++;
      if (failures >= 4) {
        finish('connection_lost');
        return;
      }
      var delay = Math.min(8000, 400 * Math.pow(2, failures));
      reconnectTimer = setTimeout(guard(connect), delay);
    });
  }

  function handle(m) {
    switch (m && m.t) {
      case 'session':
        if (m.state === 'ended') {
          finish(S.reason || 'api_ended');
          return;
        }
        S.state = m.state;
        setMode(m.mode);
        render();
        break;
      case 'resync':
        onResync(m);
        break;
      case 'rules':
        resyncStreak = 0; // the server answers every snapshot it took with `rules`
        rules.mask = validSelectors(m.mask);
        rules.block = validSelectors(m.block);
        rules.disable = validSelectors(m.disable);
        var wasLive = live;
        var lifted = liftedMasks();
        sendSnapshot();
        if (wasLive && lifted.length) resendLifted(lifted);
        scheduleCues(true);
        render();
        break;
      case 'agent':
        S.agent = typeof m.name === 'string' && m.name ? m.name : 'Agent';
        S.state = 'active';
        S.agentPresent = true;
        render();
        emit('agentJoined', { name: S.agent });
        break;
      case 'presence':
        S.agentPresent = m.agent !== 'away';
        render();
        break;
      case 'tab':
        onTab(m);
        break;
      case 'pointer':
        if (ui && isFinite(m.x) && isFinite(m.y)) ui.pointer(Number(m.x), Number(m.y));
        break;
      case 'control':
        if (ui) ui.consent(!!m.request && S.mode !== 'write');
        break;
      case 'mode':
        setMode(m.mode);
        if (ui && S.mode === 'write') ui.consent(false);
        render();
        break;
      case 'click':
        doClick(m);
        break;
      case 'input':
        doInput(m);
        break;
      case 'key':
        doKey(m);
        break;
      case 'scroll':
        doScroll(m);
        break;
      case 'ended':
        finish(m.reason);
        break;
      case 'error':
        log('server error:', m.code, m.message);
        break;
      default:
        log('unknown message from the server', m && m.t);
    }
  }

  // The server refused or could not apply a frame: it ignores this document's
  // frames until it has a fresh snapshot with a new epoch. Answer at once,
  // dropping whatever was queued for the old epoch; one snapshot per request,
  // and if the server keeps asking without taking one, back off.
  var resyncStreak = 0;
  var resyncTimer = null;
  var lastResyncAt = 0;

  function onResync(m) {
    log('the server asked for a fresh snapshot:', m && m.reason);
    if (!ws || ws.readyState !== 1 || S.state === 'ended') return; // a new socket sends one anyway
    if (resyncTimer) return; // one is already on its way
    var now = Date.now();
    if (now - lastResyncAt > 10000) resyncStreak = 0;
    lastResyncAt = now;
    resyncStreak++;
    var delay = resyncStreak <= 3 ? 0 : Math.min(30000, 500 * Math.pow(2, resyncStreak - 4));
    if (!delay) {
      resyncNow();
      return;
    }
    resyncTimer = setTimeout(guard(function () {
      resyncTimer = null;
      resyncNow();
    }), delay);
  }

  function resyncNow() {
    if (!ws || ws.readyState !== 1) return;
    stopObserving(); // queued records belong to the old epoch: dropped
    live = false;
    sendSnapshot();
  }

  // ------------------------------------------- transport: the customer's tabs
  //
  // Every tab of the site with the session record connects (`tabs=1`); the
  // server shows the agent one of them, the front tab, and tells each tab
  // (`tab {front}`). A tab in the back sends no document, pointer, scroll or
  // viewport frames; it claims the front (`front`) when it becomes visible
  // or gets focus, and then sends a fresh snapshot (new epoch) when the
  // server confirms. A session started in another tab is joined at once.

  function onTab(m) {
    var front = m.front !== false;
    // Told on connect (the snapshot follows the rules cue, as usual), or no change.
    if (front === tabFront) return;
    tabFront = front;
    if (!front) {
      stopObserving(); // queued records are not sent: this tab is not shown
      live = false;
      if (snapshotTimer) clearTimeout(snapshotTimer);
      if (resyncTimer) clearTimeout(resyncTimer);
      snapshotTimer = resyncTimer = null;
      return;
    }
    live = false;
    sendSnapshot();
  }

  function claimFront() {
    if (tabFront && live) return;
    if (!S.id || S.state === 'ended') return;
    send({ t: 'front' });
  }

  var onTabShown = guard(function () {
    if (D.visibilityState !== 'visible' || tabFront) return;
    claimFront();
  });

  var onStorage = guard(function (e) {
    if (e.key !== STORE_KEY || !e.newValue) return;
    if (S.id && S.state !== 'ended') return;
    var v = parseRecord(e.newValue);
    if (!v) return;
    S.id = v.id;
    S.token = v.token;
    S.state = 'waiting';
    S.mode = 'pointer';
    S.agent = v.agent || null;
    S.agentPresent = true;
    S.reason = null;
    failures = 0;
    adopted = true;
    connect();
    render();
  });

  function watchTabs() {
    D.addEventListener('visibilitychange', onTabShown);
    W.addEventListener('focus', onTabShown);
    W.addEventListener('storage', onStorage);
  }

  function setMode(mode) {
    var next = mode === 'write' ? 'write' : 'pointer';
    if (next === S.mode) return;
    S.mode = next;
    emit('modeChanged', { mode: next });
  }

  function finish(reason) {
    if (!S.id || S.state === 'ended') return;
    S.state = 'ended';
    S.reason = reason || null;
    store(null);
    stopObserving();
    live = false;
    if (reconnectTimer) clearTimeout(reconnectTimer);
    if (snapshotTimer) clearTimeout(snapshotTimer);
    if (resyncTimer) clearTimeout(resyncTimer);
    reconnectTimer = snapshotTimer = resyncTimer = null;
    var sock = ws;
    ws = null;
    if (sock) {
      try {
        sock.close(1000);
      } catch (_) { /* already closed */ }
    }
    applyCues();
    if (ui) ui.ended();
    emit('ended', { reason: S.reason });
  }

  /**
   * Remember, for the page's whole life, every input that is or was
   * type=password, including while no session runs (a show-password toggle
   * before the session starts or during a reconnect).
   */
  function watchPasswords() {
    var list = D.querySelectorAll('input');
    for (var i = 0; i < list.length; i++) notePassword(list[i]);
    var mo = new MutationObserver(guard(function (records) {
      records.forEach(function (r) {
        var t = r.target;
        if (t.localName === 'input' && String(r.oldValue || '').trim().toLowerCase() === 'password') {
          everPassword.add(t);
        }
        notePassword(t);
      });
    }));
    mo.observe(D, { subtree: true, attributes: true, attributeFilter: ['type'], attributeOldValue: true });
  }

  // ---------------------------------------------------------------- the API

  var api = {
    __cobrowse: true,
    /** Start a session (or return the live one): Promise of {id}. */
    start: function () {
      if (S.id && S.state !== 'ended') return Promise.resolve({ id: S.id });
      if (startPromise) return startPromise;
      if (!SITE) return Promise.reject(new Error('the script tag has no data-site attribute'));
      startPromise = W.fetch(ORIGIN + '/api/v1/sessions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ site: SITE, url: W.location.href }),
        credentials: 'omit'
      }).then(function (res) {
        return res.text().then(function (body) {
          var data = null;
          try {
            data = JSON.parse(body);
          } catch (_) { /* not JSON */ }
          if (!res.ok) {
            var msg = data && (data.message || data.error) ? data.message || data.error : body || res.statusText;
            throw new Error(String(msg).slice(0, 200) || 'HTTP ' + res.status);
          }
          if (!data || typeof data.id !== 'string' || typeof data.token !== 'string') {
            throw new Error('unexpected answer from the co-browse server');
          }
          return data;
        });
      }).then(function (data) {
        startPromise = null;
        S.id = data.id;
        S.token = data.token;
        S.state = 'waiting';
        S.mode = 'pointer';
        S.agent = null;
        S.agentPresent = true;
        S.reason = null;
        failures = 0;
        store({ id: S.id, token: S.token, origin: ORIGIN, agent: null });
        connect();
        render();
        emit('started', { id: S.id });
        return { id: S.id };
      }, function (e) {
        startPromise = null;
        throw e;
      });
      return startPromise;
    },
    /** End the live session (customer exit). */
    end: function () {
      try {
        if (!S.id || S.state === 'ended') return Promise.resolve();
        send({ t: 'end' });
        finish('customer_exit');
      } catch (e) {
        log('end failed', e);
      }
      return Promise.resolve();
    },
    /** {id, state, mode} of the current (or last) session, or null. */
    session: function () {
      return S.id ? { id: S.id, state: S.state, mode: S.mode } : null;
    },
    /** Subscribe to started, agentJoined, modeChanged, ended; returns an unsubscribe function. */
    on: function (event, fn) {
      if (!listeners[event] || typeof fn !== 'function') return function () {};
      listeners[event].push(fn);
      return function () {
        var i = listeners[event].indexOf(fn);
        if (i >= 0) listeners[event].splice(i, 1);
      };
    }
  };
  ['start', 'end', 'session', 'on'].forEach(function (k) {
    var f = api[k];
    api[k] = function () {
      try {
        return f.apply(api, arguments);
      } catch (e) {
        log(k + '() failed', e);
        return k === 'start' ? Promise.reject(e) : k === 'end' ? Promise.resolve() : null;
      }
    };
  });
  W.cobrowse = api;

  // ------------------------------------------------------------------ boot

  var boot = guard(function () {
    watchPasswords();
    wrapHistory('pushState');
    wrapHistory('replaceState');
    W.addEventListener('popstate', onHistory);
    W.addEventListener('hashchange', onHistory);
    ui = buildUi();
    D.addEventListener('input', onValueEvent, true);
    D.addEventListener('change', onValueEvent, true);
    D.addEventListener('scroll', onScroll, { capture: true, passive: true });
    D.addEventListener('mousemove', onPointer, { capture: true, passive: true });
    D.addEventListener('mouseover', onCueHover, true);
    D.addEventListener('mouseout', onCueHover, true);
    D.addEventListener('focusin', onCueHover, true);
    D.addEventListener('focusout', onCueHover, true);
    W.addEventListener('resize', onResize, { passive: true });
    watchTabs();
    W.addEventListener('pagehide', guard(function () { unloading = true; }));
    W.addEventListener('pageshow', guard(function (e) {
      unloading = false;
      if (e.persisted && S.id && S.state !== 'ended' && !ws) connect();
    }));
    var saved = load();
    if (saved) {
      S.id = saved.id;
      S.token = saved.token;
      S.state = 'waiting';
      S.agent = saved.agent || null;
      connect();
    }
    render();
  });

  // Remember the agent's name across pages so the banner is right at once.
  api.on('agentJoined', function (a) {
    var saved = load();
    if (saved) {
      saved.agent = a.name;
      store(saved);
    }
  });

  installHooks(W); // as early as possible: shadow roots and CSSOM rules made before boot
  if (D.readyState === 'loading') D.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
