/*
 * viewer.js — the agent viewer (served at /static/viewer.js, loaded by /agent).
 *
 * Owns: the join form (nine-digit ID), the agent WebSocket (with compressed
 * frames where the browser can inflate them, read in arrival order), the replica of the
 * customer's page in a sandboxed iframe (built with DOM APIs only, never with
 * innerHTML of customer strings; no customer script ever runs), applying
 * snapshots/mutations/scroll/viewport, both pointers, write-mode forwarding
 * (click/input/key/scroll), status, toasts and the end reason, the page's
 * title/URL in the bar (also on SPA navigation, `page`) and the
 * "Resynchronising…" veil that freezes the replica after a `resync`, and the
 * agent's day: `away` when the viewer closes, the offer to resume or end a
 * session left behind, a bar reset when a session ends.
 * It does not decide what the agent may do: the server's policy check does, and
 * answers refused actions with `denied`.
 */
(function () {
  'use strict';

  var NS = { svg: 'http://www.w3.org/2000/svg', math: 'http://www.w3.org/1998/Math/MathML' };
  var XLINK = 'http://www.w3.org/1999/xlink';
  var XML_NS = 'http://www.w3.org/XML/1998/namespace';
  var STORE_KEY = 'cobrowse.agent.session';

  var REASONS = {
    customer_exit: 'The customer ended the session.',
    agent_exit: 'You ended the session.',
    waiting_timeout: 'The session expired before an agent joined.',
    inactivity_timeout: 'The session ended after a period of inactivity.',
    agent_away_timeout: 'Your viewer was disconnected for too long.',
    customer_away_timeout: "The customer's page was disconnected for too long.",
    interaction_ended: 'The chat or call with the customer ended.',
    api_ended: 'The session was ended by the contact-centre system.',
    server_shutdown: 'The co-browse server shut down.',
    agent_left: 'You ended the session you had left, to take the next customer.',
    connection_lost: 'The connection to the co-browse server was lost.'
  };

  function reasonText(r) {
    return REASONS[r] || 'The session has ended' + (r ? ' (' + r + ').' : '.');
  }

  function log() {
    try {
      console.warn.apply(console, ['[viewer]'].concat([].slice.call(arguments)));
    } catch (_) { /* no console */ }
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

  function $(id) {
    return document.getElementById(id);
  }

  function formatId(id) {
    var s = String(id || '');
    return s.length === 9 ? s.slice(0, 3) + ' ' + s.slice(3, 6) + ' ' + s.slice(6) : s;
  }

  // ------------------------------------------------------------------ state

  var el = {};
  var ws = null;
  var sessionId = null;
  var joined = false; // received `session` on this socket at least once
  var ended = false;
  var failures = 0;
  var reconnectTimer = null;
  var exitTimer = null;
  var state = null;
  var mode = 'pointer';
  var controlPending = false;
  var controlTimer = null;
  var customerPresent = true;
  var viewport = { w: 1280, h: 800 };
  var customerPointer = null;
  var frameReady = false;
  var queue = [];
  var doc = null; // the replica's document
  var idToNode = new Map();
  var nodeToId = new WeakMap();
  var ours = new WeakSet(); // nodes the viewer injected into the replica
  var appliedScroll = null; // last scroll position set from the customer
  var lastLocalInput = new Map(); // id -> time the agent typed into it
  var frozen = false; // resync: the replica is stale behind the veil until the next snapshot

  function send(msg) {
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(JSON.stringify(msg));
      return true;
    } catch (e) {
      log('send failed', e);
      return false;
    }
  }

  // ----------------------------------------------------------------- toasts

  function toast(text, kind) {
    var t = document.createElement('div');
    t.className = 'cbv-toast' + (kind ? ' ' + kind : '');
    t.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    t.textContent = text;
    el.toasts.appendChild(t);
    setTimeout(function () { t.classList.add('out'); }, 4500);
    setTimeout(function () { t.remove(); }, 5000);
    while (el.toasts.children.length > 4) el.toasts.firstChild.remove();
  }

  // ------------------------------------------------------------- join form

  function showJoin(error) {
    el.join.hidden = false;
    el.session.hidden = true;
    el.joinError.hidden = !error;
    el.joinError.textContent = error || '';
    el.idInput.disabled = false;
    el.joinButton.disabled = false;
    if (!error) el.idInput.value = '';
    el.idInput.focus();
  }

  var onJoin = guard(function (e) {
    e.preventDefault();
    var digits = el.idInput.value.replace(/[\s-]/g, '');
    if (!/^\d{9}$/.test(digits)) {
      el.joinError.hidden = false;
      el.joinError.textContent = 'Enter the nine-digit session ID the customer reads to you.';
      el.idInput.setAttribute('aria-invalid', 'true');
      el.idInput.focus();
      return;
    }
    el.idInput.removeAttribute('aria-invalid');
    join(digits);
  });

  function join(id) {
    hideLeft();
    sessionId = id;
    ended = false;
    joined = false;
    failures = 0;
    state = null;
    mode = 'pointer';
    controlPending = false;
    customerPresent = true;
    customerPointer = null;
    try {
      sessionStorage.setItem(STORE_KEY, id);
    } catch (_) { /* no resume */ }
    el.join.hidden = true;
    el.session.hidden = false;
    el.sessionLabel.textContent = 'Session ' + formatId(id);
    showPage('', '');
    unfreeze();
    setStage('Connecting to the customer\u2026');
    clearReplica();
    renderStatus();
    connect();
  }

  // ------------------------------------------------ debug: performance log
  //
  // Off unless a test or a developer calls cobrowseViewer.perf(true): then
  // every snapshot and mutations frame is logged with when it arrived (ms
  // since the epoch: timeOrigin + now, comparable with the customer page's
  // clock on the same machine), how long it took to apply, when the next
  // animation frame started (the replica's screen update), and the values
  // and texts it set (to match a customer keystroke with its replica).

  var perf = false;
  var perfLog = [];

  function perfRecord(m, t0) {
    var entry = { t: m.t, recv: performance.timeOrigin + t0, ms: performance.now() - t0, frame: null, values: [] };
    if (m.t === 'mutations' && Array.isArray(m.ops)) {
      entry.n = m.ops.length;
      for (var i = 0; i < m.ops.length && entry.values.length < 20; i++) {
        var op = m.ops[i];
        if (op && op.op === 'value') entry.values.push(String(op.value).slice(-200));
        else if (op && op.op === 'text') entry.values.push(String(op.text).slice(-200));
      }
    }
    if (perfLog.length < 20000) perfLog.push(entry);
    requestAnimationFrame(function () { entry.frame = performance.timeOrigin + performance.now(); });
  }

  // ------------------------------------------------------------ connection

  // Compression (protocol v1.4): where the browser has
  // DecompressionStream('deflate-raw') the join URL says `z=deflate-raw`, and
  // the server sends large frames (snapshots, big batches) as binary raw
  // DEFLATE. Inflating is asynchronous, so every frame of a socket goes
  // through its inbox in arrival order: a later small text frame (or the
  // socket's close) never overtakes an earlier compressed one.
  var Z_IN = (function () {
    try {
      if (typeof DecompressionStream !== 'function' || typeof Response !== 'function' ||
          typeof Blob !== 'function' || typeof Blob.prototype.stream !== 'function') return false;
      new DecompressionStream('deflate-raw'); // throws where the format is unknown
      return true;
    } catch (_) {
      return false;
    }
  })();

  function inflate(data) {
    return new Promise(function (resolve) {
      var blob = data instanceof Blob ? data : new Blob([data]);
      resolve(new Response(blob.stream().pipeThrough(new DecompressionStream('deflate-raw'))).text());
    });
  }

  // Queue `fn(value)` behind what is already in `inbox`; `pending` (a
  // promise of the value) makes the slot wait for it. A slot whose promise
  // fails runs `fn(null)`.
  function inOrder(inbox, pending, value, fn) {
    if (!pending && !inbox.length) {
      fn(value);
      return;
    }
    var slot = { ready: !pending, value: value, fn: fn };
    inbox.push(slot);
    if (!pending) return;
    pending.then(function (v) {
      slot.value = v;
    }, function (err) {
      log('could not inflate a frame', err);
      slot.value = null;
    }).then(function () {
      slot.ready = true;
      while (inbox.length && inbox[0].ready) {
        var next = inbox.shift();
        next.fn(next.value);
      }
    }).catch(function (err) {
      log('internal error', err);
    });
  }

  function connect() {
    if (reconnectTimer) clearTimeout(reconnectTimer);
    reconnectTimer = null;
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var sock;
    try {
      sock = new WebSocket(proto + '//' + location.host + '/ws/agent/' + encodeURIComponent(sessionId) +
        (Z_IN ? '?z=deflate-raw' : ''));
      sock.binaryType = 'blob';
    } catch (e) {
      leave('Could not connect to the co-browse server.');
      return;
    }
    ws = sock;
    var heard = false;
    var lastError = null;
    var inbox = [];
    var onFrame = guard(function (data) {
      if (ws !== sock) return;
      if (data === null) {
        // A compressed frame that cannot be read: its content is lost, so
        // the replica would drift. Reconnect: a returning agent gets a
        // fresh snapshot.
        try {
          sock.close();
        } catch (_) { /* closed */ }
        return;
      }
      var m;
      try {
        m = JSON.parse(data);
      } catch (_) {
        log('unreadable frame');
        return;
      }
      heard = true;
      var t0 = perf ? performance.now() : 0;
      if (m.t === 'error') lastError = m;
      if (!frameReady && (m.t === 'snapshot' || m.t === 'mutations' || m.t === 'scroll' ||
          m.t === 'resync' || m.t === 'page')) {
        queue.push(m);
        return;
      }
      handle(m);
      if (perf && (m.t === 'snapshot' || m.t === 'mutations')) perfRecord(m, t0);
    });
    sock.onmessage = guard(function (e) {
      if (ws !== sock) return;
      if (typeof e.data === 'string') inOrder(inbox, null, e.data, onFrame);
      else inOrder(inbox, inflate(e.data), null, onFrame);
    });
    var onClose = guard(function () {
      if (ws !== sock) return;
      ws = null;
      if (ended) return;
      if (!joined) {
        // Refused before the session started: unknown ID, ended, busy, logged out…
        var msg = lastError ? JOIN_ERRORS[lastError.code] || lastError.message || lastError.code
          : heard ? 'The server closed the connection.'
            : 'Could not join this session. Check the ID, and that you are still logged in.';
        var wanted = sessionId;
        leave(msg);
        if (lastError && lastError.code === 'agent_busy') offerLeft(lastError.session, wanted);
        return;
      }
      failures++;
      if (failures > 6) {
        finish('connection_lost');
        return;
      }
      renderStatus('Reconnecting\u2026');
      reconnectTimer = setTimeout(guard(connect), Math.min(5000, 300 * Math.pow(2, failures)));
    });
    // The close waits for the frames before it (an `ended` after a
    // compressed batch is still read first).
    sock.onclose = guard(function () {
      inOrder(inbox, null, null, onClose);
    });
  }

  var JOIN_ERRORS = {
    not_found: 'There is no live co-browse session with this ID. Check the number with the customer.',
    session_ended: 'This session has ended. Ask the customer to start a new one.',
    session_taken: 'Another agent has already joined this session.',
    agent_busy: 'You are already in another co-browse session. Exit it first.',
    shutting_down: 'The co-browse server is shutting down. Try again in a moment.',
    rules_invalid: 'The privacy rules of this site cannot be applied, so the session cannot be shown.'
  };

  function leave(error) {
    sessionId = null;
    try {
      sessionStorage.removeItem(STORE_KEY);
    } catch (_) { /* ignore */ }
    if (ws) {
      var s = ws;
      ws = null;
      try {
        s.close();
      } catch (_) { /* closed */ }
    }
    showJoin(error);
  }

  function handle(m) {
    switch (m.t) {
      case 'session':
        joined = true;
        failures = 0;
        if (m.state === 'ended') {
          finish(null);
          return;
        }
        state = m.state;
        setMode(m.mode);
        renderStatus();
        break;
      case 'snapshot':
        applySnapshot(m);
        break;
      case 'mutations':
        // Frozen: the replica no longer matches the customer's page until the next snapshot.
        if (!frozen) applyOps(Array.isArray(m.ops) ? m.ops : []);
        break;
      case 'resync':
        freeze();
        break;
      case 'page':
        showPage(m.url, m.title);
        break;
      case 'pointer':
        customerPointer = { x: Number(m.x) || 0, y: Number(m.y) || 0 };
        schedulePointer();
        break;
      case 'scroll':
        if (!frozen) applyScroll(m);
        break;
      case 'viewport':
        setViewport(m.w, m.h);
        break;
      case 'mode': {
        var wasPending = controlPending;
        var before = mode;
        setMode(m.mode);
        if (wasPending && before === 'pointer' && mode === 'pointer') {
          toast(DENIED.control, 'warn');
        }
        controlPending = false;
        if (controlTimer) clearTimeout(controlTimer);
        renderStatus();
        break;
      }
      case 'denied':
        onDenied(m);
        break;
      case 'presence':
        customerPresent = m.customer !== 'away';
        renderStatus();
        break;
      case 'ended':
        finish(m.reason);
        break;
      case 'error':
        if (joined) toast(m.message || m.code || 'Error', 'error');
        break;
      default:
        log('unknown message', m.t);
    }
  }

  function setMode(next) {
    var was = mode;
    mode = next === 'write' ? 'write' : 'pointer';
    if (was !== mode) {
      toast(mode === 'write' ? 'The customer gave you control. You can click, type and scroll.'
        : 'Control ended: you are back in pointer mode.', mode === 'write' ? 'ok' : '');
      controlPending = false;
      if (controlTimer) clearTimeout(controlTimer);
    }
    el.session.classList.toggle('write', mode === 'write');
    updateModeStyle();
  }

  var DENIED = {
    control: 'The customer refused to give you control.',
    click: 'That click was not performed.',
    input: 'That typing was not performed.',
    key: 'That key was not performed.',
    scroll: 'That scroll was not performed.'
  };

  function onDenied(m) {
    if (m.action === 'control') {
      // A refusal may also arrive as `mode: pointer`; tell the agent once.
      if (!controlPending) return;
      controlPending = false;
      if (controlTimer) clearTimeout(controlTimer);
      renderStatus();
    }
    var head = DENIED[m.action] || 'Action refused.';
    var code = typeof m.reason === 'string' ? m.reason : '';
    var reason = code ? ' ' + (DENY_REASONS[code] || sentence(code)) : '';
    toast(head + reason, 'warn');
  }

  var DENY_REASONS = {
    disabled: 'This control is disabled for agents: only the customer can use it.',
    blocked: 'This part of the page is hidden from you.',
    masked: 'This field is hidden from you, so you cannot type in it.',
    pointer_mode: 'You are in pointer mode: request control first.',
    session_not_active: 'The session is not active.',
    unknown_target: 'That element is no longer on the customer\u2019s page.'
  };

  function sentence(s) {
    var t = String(s).replace(/_/g, ' ').trim();
    if (!t) return '';
    t = t.charAt(0).toUpperCase() + t.slice(1);
    return /[.!?]$/.test(t) ? t : t + '.';
  }

  function finish(reason) {
    if (ended) return;
    ended = true;
    state = 'ended';
    if (exitTimer) clearTimeout(exitTimer);
    if (reconnectTimer) clearTimeout(reconnectTimer);
    if (controlTimer) clearTimeout(controlTimer);
    try {
      sessionStorage.removeItem(STORE_KEY);
    } catch (_) { /* ignore */ }
    var s = ws;
    ws = null;
    if (s) {
      try {
        s.close(1000);
      } catch (_) { /* closed */ }
    }
    unfreeze();
    el.endReason.textContent = reasonText(reason);
    el.endReason.setAttribute('data-reason', reason || '');
    el.ended.hidden = false;
    el.customerPointer.hidden = true;
    resetBar();
    renderStatus();
  }

  // ---------------------------------------------------------------- status

  function renderStatus(override) {
    var pill = el.statePill;
    var text;
    var cls;
    if (override) {
      text = override;
      cls = 'wait';
    } else if (state === 'ended') {
      text = 'Ended';
      cls = 'off';
    } else if (state === 'active') {
      text = customerPresent ? 'Live' : 'Customer page loading\u2026';
      cls = customerPresent ? 'on' : 'wait';
    } else if (state === 'waiting') {
      text = 'Waiting';
      cls = 'wait';
    } else {
      text = 'Connecting\u2026';
      cls = 'wait';
    }
    pill.textContent = text;
    pill.className = 'cbv-pill ' + cls;
    pill.setAttribute('data-state', state || 'connecting');
    el.modePill.hidden = state === 'ended';
    el.modePill.textContent = mode === 'write' ? 'Write mode' : 'Pointer mode';
    el.modePill.className = 'cbv-pill ' + (mode === 'write' ? 'write' : 'mode');
    el.modePill.setAttribute('data-mode', mode);
    el.modePill.title = mode === 'write' ? 'You can click, type and scroll on the customer\u2019s page'
      : 'You can point; the customer sees your pointer';
    var live = state === 'active' && !ended;
    el.controlButton.disabled = !live || controlPending;
    el.controlButton.textContent = mode === 'write' ? 'Release control'
      : controlPending ? 'Waiting for the customer\u2026' : 'Request control';
    el.exitButton.disabled = ended;
    el.presence.textContent = !live ? '' : customerPresent ? '' : 'The customer is changing page or reconnecting.';
  }

  var onControl = guard(function () {
    if (mode === 'write') {
      send({ t: 'control', request: false });
      return;
    }
    if (send({ t: 'control', request: true })) {
      controlPending = true;
      toast('Asked the customer for control\u2026');
      if (controlTimer) clearTimeout(controlTimer);
      controlTimer = setTimeout(guard(function () {
        controlPending = false;
        renderStatus();
      }), 30000);
      renderStatus();
    }
  });

  var onExit = guard(function () {
    if (ended) return;
    if (!send({ t: 'end' })) {
      finish('agent_exit');
      return;
    }
    el.exitButton.disabled = true;
    // The server answers with `ended`; do not leave the agent hanging if it does not.
    exitTimer = setTimeout(guard(function () { finish('agent_exit'); }), 3000);
  });

  var onNewSession = guard(function () {
    el.ended.hidden = true;
    clearReplica();
    sessionId = null;
    showJoin(null);
  });

  // ------------------------------------------------------- the agent's day
  //
  // Closing the viewer (tab closed, navigated away, reloaded) sends `away`
  // on `pagehide`: the server marks the agent away at once. Opening the
  // viewer again with a session still live (the page renders its id in
  // `data-current-session`, or a join is refused `agent_busy`) offers to
  // resume it, or to end it (`/ws/agent/ID?leave=1`, reason `agent_left`)
  // and join the next customer. When a session ends the bar resets.

  var leftId = null; // the session offered for resume / end
  var leftNext = null; // the id to join once it has ended
  var leaving = null; // the socket ending it

  function initDay() {
    ['left-session', 'left-text', 'resume-button', 'leave-button'].forEach(function (id) {
      var key = id.replace(/-([a-z])/g, function (_, c) { return c.toUpperCase(); });
      el[key] = $(id);
    });
    if (el.resumeButton) el.resumeButton.addEventListener('click', onResumeLeft);
    if (el.leaveButton) el.leaveButton.addEventListener('click', onEndLeft);
    window.addEventListener('pagehide', guard(onPageHide));
    window.addEventListener('pageshow', guard(onPageShow));
  }

  /** The viewer is going away: tell the server now, not when the socket dies. */
  function onPageHide() {
    if (!ws || ended) return;
    var s = ws;
    send({ t: 'away' });
    ws = null;
    try {
      s.close(1000);
    } catch (_) { /* closed */ }
  }

  /** Back from the back/forward cache: return to the session. */
  function onPageShow(e) {
    if (e.persisted && sessionId && !ended && !ws) connect();
  }

  /** Offer to resume session `id` or end it (then join `next`, if given). */
  function offerLeft(id, next) {
    if (!el.leftSession || !/^\d{9}$/.test(String(id || ''))) return;
    leftId = String(id);
    leftNext = next && /^\d{9}$/.test(next) && next !== leftId ? next : null;
    el.leftText.textContent = 'Session ' + formatId(leftId) + ' is still live: you closed the viewer ' +
      'without ending it. Resume it, or end it (the customer is told you left)' +
      (leftNext ? ' and join session ' + formatId(leftNext) + '.' : ' and take the next customer.');
    el.leaveButton.textContent = leftNext ? 'End it and join ' + formatId(leftNext) : 'End it and take the next customer';
    el.leaveButton.disabled = false;
    el.resumeButton.disabled = false;
    el.leftSession.hidden = false;
  }

  function hideLeft() {
    leftId = null;
    leftNext = null;
    if (el.leftSession) el.leftSession.hidden = true;
  }

  var onResumeLeft = guard(function () {
    if (leftId) join(leftId);
  });

  var onEndLeft = guard(function () {
    if (!leftId || leaving) return;
    var id = leftId;
    var next = leftNext;
    el.leaveButton.disabled = true;
    el.resumeButton.disabled = true;
    var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var sock;
    try {
      sock = new WebSocket(proto + '//' + location.host + '/ws/agent/' + encodeURIComponent(id) + '?leave=1');
    } catch (e) {
      showJoin('Could not reach the co-browse server.');
      return;
    }
    leaving = sock;
    var answer = null;
    sock.onmessage = guard(function (e) {
      try {
        answer = JSON.parse(e.data);
      } catch (_) { /* unreadable */ }
    });
    sock.onclose = guard(function () {
      leaving = null;
      hideLeft();
      var done = answer && answer.t === 'ended';
      var gone = answer && (answer.code === 'not_found' || answer.code === 'session_ended');
      if (!done && !gone) {
        showJoin(answer && answer.message ? answer.message : 'Could not end session ' + formatId(id) + '.');
        return;
      }
      toast('Session ' + formatId(id) + ' ended. You can take the next customer.', 'ok');
      if (next) join(next);
      else showJoin(null);
    });
  });

  /** A session ended: no stale mode, page or pointer in the bar. */
  function resetBar() {
    mode = 'pointer';
    controlPending = false;
    if (controlTimer) clearTimeout(controlTimer);
    el.session.classList.remove('write');
    updateModeStyle();
    showPage('', '');
  }

  // ----------------------------------------------------------- the replica

  var REPLICA_CSS =
    '[data-cobrowse-masked]{outline:2px dashed rgba(217,119,6,.9) !important;outline-offset:1px !important}' +
    '[data-cobrowse-blocked]{background:repeating-linear-gradient(135deg,#cbd5e1 0 7px,#e2e8f0 7px 14px) !important;' +
    'min-height:14px !important;min-width:14px !important;border-radius:3px !important}' +
    '[data-cobrowse-disabled],[data-cobrowse-disabled] *{cursor:not-allowed !important}' +
    '[data-cobrowse-disabled]{opacity:.6 !important;outline:2px dashed rgba(220,38,38,.75) !important;outline-offset:1px !important}' +
    // the replica follows the customer's scroll at once, never animated
    'html,*{scroll-behavior:auto !important}' +
    '';
  // Only while in pointer mode: the agent cannot type, so do not show a caret.
  var POINTER_MODE_CSS = 'input,textarea,select{caret-color:transparent !important}';
  var ourStyle = null;
  // The replica's own policy (it also inherits the viewer page's): nothing
  // but this server, no script.
  var REPLICA_CSP = "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self'";


  // Clobber-proof DOM access (issue 8): the replica holds customer markup, and
  // `<img name=createElement>`, `<form id=body>` or `<input name=setAttribute>`
  // shadow properties of the document and of forms. The viewer only calls the
  // prototype methods and getters it saved here, never a property looked up by
  // name on a replica node.
  var P = (function () {
    var D = Document.prototype, N = Node.prototype, E = Element.prototype;
    function getter(proto, name) {
      var d = Object.getOwnPropertyDescriptor(proto, name);
      return d && d.get;
    }
    var g = {
      head: getter(D, 'head'), documentElement: getter(D, 'documentElement'),
      implementation: getter(D, 'implementation'), activeElement: getter(D, 'activeElement'),
      firstChild: getter(N, 'firstChild'), nextSibling: getter(N, 'nextSibling'), parentNode: getter(N, 'parentNode'), nodeType: getter(N, 'nodeType')
    };
    var createDT = DOMImplementation.prototype.createDocumentType;
    return {
      el: function (d, tag) { return D.createElement.call(d, tag); },
      elNS: function (d, ns, tag) { return D.createElementNS.call(d, ns, tag); },
      text: function (d, t) { return D.createTextNode.call(d, t); },
      comment: function (d, t) { return D.createComment.call(d, t); },
      doctype: function (d, name) { return createDT.call(g.implementation.call(d), name, '', ''); },
      head: function (d) { return g.head.call(d); },
      root: function (d) { return g.documentElement.call(d); },
      active: function (d) { return g.activeElement.call(d); },
      first: function (n) { return g.firstChild.call(n); },
      next: function (n) { return g.nextSibling.call(n); },
      parent: function (n) { return g.parentNode.call(n); },
      type: function (n) { return g.nodeType.call(n); },
      append: function (p, c) { return N.appendChild.call(p, c); },
      before: function (p, c, b) { return N.insertBefore.call(p, c, b); },
      remove: function (p, c) { return N.removeChild.call(p, c); },
      set: function (n, k, v) { return E.setAttribute.call(n, k, v); },
      setNS: function (n, ns, k, v) { return E.setAttributeNS.call(n, ns, k, v); },
      unset: function (n, k) { return E.removeAttribute.call(n, k); }
    };
  })();

  function clearReplica() {
    idToNode = new Map();
    nodeToId = new WeakMap();
    sheets = new Map();
    sheetIds = new Map();
    pendingFrames = [];
    pendingStyles = [];
    pendingBoxes = [];
    if (!doc) return;
    while (P.first(doc)) P.remove(doc, P.first(doc));
  }

  function setStage(msg) {
    el.stageMsg.hidden = !msg;
    el.stageMsg.textContent = msg || '';
  }

  /** The customer's page title and URL in the bar (already sanitised by the server). */
  function showPage(url, title) {
    var u = typeof url === 'string' ? url : '';
    var t = typeof title === 'string' ? title : '';
    el.pageTitle.textContent = t;
    el.pageTitle.hidden = !t;
    el.pageUrl.textContent = u;
    el.pageUrl.title = u;
  }

  /**
   * The server could not apply a customer frame (protocol v1.1 `resync`): the
   * replica is frozen behind a veil, nothing the agent does is forwarded, and
   * the next snapshot replaces the document and lifts the veil.
   */
  function freeze() {
    frozen = true;
    el.resyncVeil.hidden = false;
    el.frameBox.setAttribute('aria-busy', 'true');
    try {
      var a = doc && P.active(doc);
      if (a && a !== P.root(doc)) HTMLElement.prototype.blur.call(a);
    } catch (_) { /* nothing focused */ }
  }

  function unfreeze() {
    frozen = false;
    el.resyncVeil.hidden = true;
    el.frameBox.removeAttribute('aria-busy');
  }

  function isScriptUrl(v) {
    var s = String(v).replace(/[\u0000-\u0020]/g, '').toLowerCase();
    return s.indexOf('javascript:') === 0 || s.indexOf('vbscript:') === 0 || s.indexOf('data:text/html') === 0;
  }

  var URL_ATTRS = { href: 1, src: 1, action: 1, formaction: 1, poster: 1, background: 1, 'xlink:href': 1, data: 1, cite: 1 };

  /** Set one attribute defensively (no handlers, no script URLs, nothing that navigates). */
  function setAttr(node, name, value, tag) {
    var lower = String(name).toLowerCase();
    if (lower.indexOf('on') === 0 || lower === 'srcdoc') return;
    if (URL_ATTRS[lower] && isScriptUrl(value)) {
      P.unset(node, name);
      return;
    }
    if (tag === 'meta' && lower === 'http-equiv') return;
    if ((tag === 'a' || tag === 'area' || tag === 'form' || tag === 'base') && lower === 'target') return;
    if ((tag === 'iframe' || tag === 'frame') && (lower === 'sandbox' || lower === 'src')) return;
    if ((tag === 'object' || tag === 'embed') && (lower === 'data' || lower === 'src')) return;
    if (tag === 'link' && lower === 'rel' && !/^\s*(stylesheet|icon|shortcut icon)\s*$/i.test(value)) return;
    try {
      if (lower.indexOf('xlink:') === 0) P.setNS(node, XLINK, name, value);
      else if (lower.indexOf('xml:') === 0) P.setNS(node, XML_NS, name, value);
      else P.set(node, name, value);
    } catch (_) { /* invalid attribute name from the page: skip it */ }
  }

  function register(node, id) {
    if (typeof id !== 'number') return;
    idToNode.set(id, node);
    nodeToId.set(node, id);
  }

  function forget(node) {
    var stack = [node];
    while (stack.length) {
      var n = stack.pop();
      var id = nodeToId.get(n);
      if (id !== undefined && idToNode.get(id) === n) idToNode.delete(id);
      for (var c = P.first(n); c; c = P.next(c)) stack.push(c);
      var sr = P.type(n) === 1 ? SHADOW_ROOT.call(n) : null;
      if (sr) stack.push(sr);
      var sh = sheetIds.get(n);
      if (sh) sh.forEach(function (sid) { dropSheet(sid); });
    }
  }

  function setFormState(node, spec) {
    var tag = node.localName;
    if (tag !== 'input' && tag !== 'textarea' && tag !== 'select') return;
    if (typeof spec.checked === 'boolean' && tag === 'input') node.checked = spec.checked;
    if (typeof spec.value === 'string' && !(tag === 'input' && node.type === 'file')) {
      try {
        node.value = spec.value;
      } catch (_) { /* e.g. a value not allowed for this input type */ }
    }
  }

  /** Build a replica node from a wire node; returns null for kinds we never build. */
  function build(spec) {
    if (!spec || typeof spec !== 'object') return null;
    var node;
    switch (spec.type) {
      case 'text':
        node = P.text(doc, String(spec.text || ''));
        break;
      case 'comment':
        node = P.comment(doc, String(spec.text || ''));
        break;
      case 'doctype':
        node = P.doctype(doc, String(spec.name || 'html') || 'html');
        break;
      case 'element': {
        var tag = String(spec.tag || 'div');
        var ns = spec.ns && NS[spec.ns] ? NS[spec.ns] : null;
        var lower = tag.toLowerCase();
        if (!ns && (lower === 'script' || lower === 'noscript')) return null;
        try {
          node = ns ? P.elNS(doc, ns, tag) : P.el(doc, lower);
        } catch (_) {
          node = P.el(doc, 'span');
        }
        var attrs = spec.attrs && typeof spec.attrs === 'object' ? spec.attrs : null;
        // A plain loop: this runs once per element of a snapshot (30,000 on a big page).
        for (var name in attrs) {
          if (Object.prototype.hasOwnProperty.call(attrs, name)) setAttr(node, name, String(attrs[name]), lower);
        }
        // v1.2: still script-less, but same-origin with the replica so the
        // viewer itself can build a frame's document (or a placeholder) in it
        if (lower === 'iframe' || lower === 'frame') P.set(node, 'sandbox', 'allow-same-origin');
        register(node, spec.id);
        appendChildren(node, spec.children);
        setFormState(node, spec);
        return node;
      }
      default:
        return null;
    }
    register(node, spec.id);
    return node;
  }

  function appendChildren(parent, children) {
    if (!Array.isArray(children)) return;
    for (var i = 0; i < children.length; i++) {
      if (buildSpecial(parent, children[i])) continue;
      var c = build(children[i]);
      if (!c) continue;
      try {
        P.append(parent, c);
      } catch (_) { /* a node kind this parent cannot hold */ }
    }
  }

  /** Our own style element in the replica (never part of the customer's document). */
  // ------------------- replica: shadow roots, frames, CSSOM, placeholders (v1.2)
  //
  // A `shadow` node becomes an open shadow root of the replica's host; a
  // `document` under a frame element is built inside that (script-less)
  // frame; a `sheet` under a <style> replaces that style's rules, under a
  // document or shadow root it is an adopted constructable stylesheet; a
  // `placeholder` makes its element a neutral labelled box of the sent size.

  var ATTACH_SHADOW = Element.prototype.attachShadow;
  var SHADOW_ROOT = (function () {
    var d = Object.getOwnPropertyDescriptor(Element.prototype, 'shadowRoot');
    return d && d.get ? d.get : function () { return null; };
  })();
  var GET_ATTR = Element.prototype.getAttribute;
  var CONTENT_DOC = Object.getOwnPropertyDescriptor(HTMLIFrameElement.prototype, 'contentDocument').get;
  var DEFAULT_VIEW = Object.getOwnPropertyDescriptor(Document.prototype, 'defaultView').get;
  var OWNER_DOC = Object.getOwnPropertyDescriptor(Node.prototype, 'ownerDocument').get;
  var STYLE_SHEET = Object.getOwnPropertyDescriptor(HTMLStyleElement.prototype, 'sheet').get;
  var IS_CONNECTED = Object.getOwnPropertyDescriptor(Node.prototype, 'isConnected').get;
  var ADOPT = {
    doc: Object.getOwnPropertyDescriptor(Document.prototype, 'adoptedStyleSheets'),
    shadow: Object.getOwnPropertyDescriptor(ShadowRoot.prototype, 'adoptedStyleSheets')
  };
  var sheets = new Map(); // sheet id -> { id, owner, css, obj }
  var sheetIds = new Map(); // owner node -> Set of sheet ids
  var pendingFrames = []; // { frame, spec } to build once the frame is connected
  var pendingStyles = []; // sheet records of <style> elements
  var pendingBoxes = []; // { node, spec } placeholders to finish once connected
  var PLACEHOLDER_LABEL = {
    frame: 'Embedded content from another site (not shared)',
    shadow: 'Component not shared',
    canvas: 'Canvas (not shared)'
  };

  function isFrameEl(n) {
    if (!n || P.type(n) !== 1) return false;
    var t = n.localName;
    return t === 'iframe' || t === 'frame';
  }

  /** Build a v1.2 node kind under `parent`; false for the kinds build() handles. */
  function buildSpecial(parent, spec) {
    if (!spec || typeof spec !== 'object' || !parent) return false;
    switch (spec.type) {
      case 'shadow':
        buildShadow(parent, spec);
        return true;
      case 'sheet':
        addSheet(parent, spec);
        return true;
      case 'placeholder':
        if (P.type(parent) === 1) {
          boxStyle(parent, spec);
          pendingBoxes.push({ node: parent, spec: spec });
        }
        return true;
      case 'document':
        if (isFrameEl(parent)) pendingFrames.push({ frame: parent, spec: spec });
        return true; // a document anywhere else is never built
      default:
        return false;
    }
  }

  function emptyNode(n) {
    while (P.first(n)) P.remove(n, P.first(n));
  }

  function buildShadow(hostEl, spec) {
    if (P.type(hostEl) !== 1) return;
    var sr = SHADOW_ROOT.call(hostEl);
    if (!sr) {
      try {
        sr = ATTACH_SHADOW.call(hostEl, { mode: 'open' });
      } catch (_) {
        return; // this element cannot host a shadow root: its content is not shown
      }
    } else {
      emptyNode(sr);
    }
    register(sr, spec.id);
    appendChildren(sr, spec.children);
  }

  function windowOf(n) {
    var d = P.type(n) === 9 ? n : OWNER_DOC.call(n);
    return d ? DEFAULT_VIEW.call(d) : null;
  }

  function addSheet(owner, spec) {
    if (typeof spec.id !== 'number') return;
    var t = P.type(owner);
    if (t === 1 && owner.localName !== 'style') return;
    var rec = { id: spec.id, owner: owner, css: String(spec.css || ''), obj: null };
    sheets.set(spec.id, rec);
    var set = sheetIds.get(owner);
    if (!set) sheetIds.set(owner, set = new Set());
    set.add(spec.id);
    if (t === 1) pendingStyles.push(rec);
    else adoptedChanged(owner);
  }

  function dropSheet(id) {
    var rec = sheets.get(id);
    if (!rec) return;
    sheets.delete(id);
    var set = sheetIds.get(rec.owner);
    if (set) set.delete(id);
    if (P.type(rec.owner) !== 1) adoptedChanged(rec.owner);
  }

  function updateSheet(id, css) {
    var rec = sheets.get(id);
    if (!rec) return;
    rec.css = css;
    rec.obj = null;
    if (P.type(rec.owner) === 1) styleRules(rec);
    else adoptedChanged(rec.owner);
  }

  /** Set the adopted stylesheets of a replica document or shadow root. */
  function adoptedChanged(owner) {
    var win = windowOf(owner);
    if (!win) return;
    var list = [];
    var set = sheetIds.get(owner);
    if (set) {
      set.forEach(function (id) {
        var rec = sheets.get(id);
        if (!rec) return;
        try {
          if (!rec.obj) {
            rec.obj = new win.CSSStyleSheet();
            rec.obj.replaceSync(rec.css);
          }
          list.push(rec.obj);
        } catch (e) {
          log('adopted stylesheet not applied', e);
        }
      });
    }
    var d = P.type(owner) === 9 ? ADOPT.doc : ADOPT.shadow;
    try {
      if (d && d.set) d.set.call(owner, list);
    } catch (e) {
      log('adopted stylesheets not applied', e);
    }
  }

  /** Replace the rules of a replica <style> by the customer's CSSOM rules. */
  function styleRules(rec) {
    var sheet = STYLE_SHEET.call(rec.owner);
    var win = windowOf(rec.owner);
    if (!sheet || !win) return false;
    try {
      var tmp = new win.CSSStyleSheet();
      tmp.replaceSync(rec.css);
      while (sheet.cssRules.length) sheet.deleteRule(0);
      for (var i = 0; i < tmp.cssRules.length; i++) {
        try {
          sheet.insertRule(tmp.cssRules[i].cssText, sheet.cssRules.length);
        } catch (_) { /* a rule this sheet does not take */ }
      }
    } catch (e) {
      log('stylesheet rules not applied', e);
    }
    return true;
  }

  function boxStyle(node, spec) {
    var w = Math.max(0, Math.min(100000, Number(spec.w) || 0));
    var h = Math.max(0, Math.min(100000, Number(spec.h) || 0));
    var old = GET_ATTR.call(node, 'style');
    P.set(node, 'style', (old ? old + ';' : '') + 'box-sizing:border-box;width:' + w + 'px;height:' + h +
      'px;background:#eef0f3;outline:1px dashed #9aa3af;outline-offset:-1px');
    P.set(node, 'data-cobrowse-placeholder', String(spec.kind || ''));
  }

  function label(d, text) {
    var div = P.el(d, 'div');
    P.set(div, 'style', 'box-sizing:border-box;width:100%;height:100%;display:flex;align-items:center;' +
      'justify-content:center;font:13px system-ui,sans-serif;color:#4b5563;background:#eef0f3;overflow:hidden');
    div.textContent = text;
    return div;
  }

  function finishBox(node, spec) {
    var kind = PLACEHOLDER_LABEL[spec.kind] ? spec.kind : 'shadow';
    var text = PLACEHOLDER_LABEL[kind];
    var win = windowOf(node);
    try {
      if (win && win.getComputedStyle(node).display === 'inline') {
        P.set(node, 'style', GET_ATTR.call(node, 'style') + ';display:inline-block');
      }
    } catch (_) { /* not rendered */ }
    if (isFrameEl(node)) {
      var fd = CONTENT_DOC.call(node);
      if (!fd) return;
      emptyNode(fd);
      var html = P.el(fd, 'html');
      var body = P.el(fd, 'body');
      P.set(body, 'style', 'margin:0;height:100vh');
      P.append(html, body);
      P.append(body, label(fd, text));
      P.append(fd, html);
    } else if (node.localName === 'canvas') {
      var ctx = HTMLCanvasElement.prototype.getContext.call(node, '2d');
      if (!ctx) return;
      ctx.fillStyle = '#eef0f3';
      ctx.fillRect(0, 0, node.width, node.height);
      ctx.fillStyle = '#4b5563';
      ctx.font = '13px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText(text, node.width / 2, node.height / 2);
    } else {
      var sr = SHADOW_ROOT.call(node);
      try {
        if (!sr) sr = ATTACH_SHADOW.call(node, { mode: 'open' });
        emptyNode(sr);
        P.append(sr, label(doc, text));
      } catch (_) { /* the box alone */ }
    }
  }

  /** Build a frame's document inside the replica's (connected) frame element. */
  function fillFrame(frame, spec) {
    var fd = CONTENT_DOC.call(frame);
    if (!fd) return;
    emptyNode(fd);
    register(fd, spec.id);
    var saved = doc;
    doc = fd; // nodes are created in the frame's own document
    try {
      appendChildren(fd, spec.children);
    } finally {
      doc = saved;
    }
  }

  /** After nodes were inserted: the work that needs them connected. */
  function settleV12() {
    for (var round = 0; round < 16 && (pendingFrames.length || pendingStyles.length || pendingBoxes.length); round++) {
      var frames = pendingFrames;
      pendingFrames = [];
      frames.forEach(function (f) {
        if (IS_CONNECTED.call(f.frame)) fillFrame(f.frame, f.spec);
      });
      var styles = pendingStyles;
      pendingStyles = [];
      styles.forEach(function (rec) {
        if (sheets.get(rec.id) === rec && IS_CONNECTED.call(rec.owner)) styleRules(rec);
      });
      var boxes = pendingBoxes;
      pendingBoxes = [];
      boxes.forEach(function (b) {
        if (IS_CONNECTED.call(b.node)) finishBox(b.node, b.spec);
      });
    }
  }

  function injectStyle() {
    if (!doc || !P.root(doc)) return;
    ourStyle = P.el(doc, 'style');
    ours.add(ourStyle);
    updateModeStyle();
    var head = P.head(doc) || P.root(doc);
    var csp = P.el(doc, 'meta');
    ours.add(csp);
    P.set(csp, 'http-equiv', 'Content-Security-Policy');
    P.set(csp, 'content', REPLICA_CSP);
    P.before(head, csp, P.first(head));
    P.append(head, ourStyle);
  }

  function updateModeStyle() {
    if (ourStyle) ourStyle.textContent = REPLICA_CSS + (mode === 'write' ? '' : POINTER_MODE_CSS);
  }

  function applySnapshot(m) {
    clearReplica();
    if (!m.root || !Array.isArray(m.root.children)) {
      setStage('The customer\u2019s page could not be shown.');
      return;
    }
    register(doc, m.root.id);
    appendChildren(doc, m.root.children);
    if (!P.root(doc)) P.append(doc, P.el(doc, 'html'));
    settleV12();
    injectStyle();
    if (m.viewport) setViewport(m.viewport.w, m.viewport.h);
    appliedScroll = { x: 0, y: 0 };
    resetScroll();
    setStage(null);
    unfreeze();
    showPage(m.url, m.title);
    schedulePointer();
  }

  function applyOps(ops) {
    for (var i = 0; i < ops.length; i++) {
      try {
        applyOp(ops[i]);
      } catch (e) {
        log('op failed', ops[i] && ops[i].op, e);
      }
    }
    if (doc && P.root(doc) && (!ourStyle || !ourStyle.isConnected)) injectStyle();
    schedulePointer();
    scheduleRescroll();
  }

  function applyOp(op) {
    var node;
    switch (op.op) {
      case 'insert': {
        var parent = idToNode.get(op.parent);
        if (!parent) return;
        var before = op.before === null || op.before === undefined ? null : idToNode.get(op.before) || null;
        if (before && P.parent(before) !== parent) before = null;
        if (!buildSpecial(parent, op.node)) {
          var built = build(op.node);
          if (built) P.before(parent, built, before);
        }
        settleV12();
        return;
      }
      case 'remove':
        if (sheets.has(op.id)) {
          dropSheet(op.id);
          return;
        }
        node = idToNode.get(op.id);
        if (!node) return;
        forget(node);
        if (P.parent(node)) P.remove(P.parent(node), node);
        else if (node !== doc) emptyNode(node); // a shadow root or a frame's document
        return;
      case 'attr':
        node = idToNode.get(op.id);
        if (!node || P.type(node) !== 1) return;
        if (op.value === null || op.value === undefined) P.unset(node, op.name);
        else setAttr(node, op.name, String(op.value), node.localName);
        return;
      case 'text':
        if (sheets.has(op.id)) {
          updateSheet(op.id, String(op.text));
          return;
        }
        node = idToNode.get(op.id);
        if (node && (P.type(node) === 3 || P.type(node) === 8)) node.data = String(op.text);
        return;
      case 'value':
        node = idToNode.get(op.id);
        if (!node || P.type(node) !== 1) return;
        if (node === P.active(doc) && Date.now() - (lastLocalInput.get(op.id) || 0) < 1500) return;
        setFormState(node, op);
        return;
      default:
        log('unknown op', op.op);
    }
  }

  // ------------------------------------ replica: scroll and viewport (v1.3)
  //
  // The replica's viewport is the customer's (size and scroll), so fixed and
  // sticky elements sit where the customer sees them. Scroll positions are
  // set instantly (`behavior: 'instant'`, and `scroll-behavior:auto` in the
  // replica's own style), never animated, even on `scroll-behavior: smooth`
  // pages. The last position the customer sent, for the page and for each
  // scrolled element, is kept and set again when the replica's content
  // grows (a stylesheet or image loaded, nodes inserted) and had clamped it.

  var wantScroll = null; // {x, y}: the customer's page scroll
  var wantElScroll = new Map(); // id -> {x, y}: elements the customer scrolled
  var rescrollFrame = 0;

  function toNumber(v) {
    var n = Number(v);
    return isFinite(n) ? Math.max(0, Math.min(n, 1e7)) : 0;
  }

  // Clobber-proof: `<form>` with `<input name=scrollTo>` shadows the method.
  var EL_SCROLL_TO = Element.prototype.scrollTo;
  var EL_SCROLL_LEFT = Object.getOwnPropertyDescriptor(Element.prototype, 'scrollLeft').get;
  var EL_SCROLL_TOP = Object.getOwnPropertyDescriptor(Element.prototype, 'scrollTop').get;

  function scrollInstant(target, x, y) {
    var to = target === el.frame.contentWindow ? target.scrollTo : EL_SCROLL_TO;
    try {
      to.call(target, { left: x, top: y, behavior: 'instant' });
    } catch (_) {
      try {
        to.call(target, x, y); // an engine without the options form
      } catch (e) {
        log('scroll not applied', e);
      }
    }
  }

  function applyScroll(m) {
    var x = toNumber(m.x);
    var y = toNumber(m.y);
    if (m.id !== undefined && m.id !== null) {
      var n = idToNode.get(m.id);
      if (n && P.type(n) === 1) {
        wantElScroll.set(m.id, { x: x, y: y });
        scrollInstant(n, x, y);
      }
      return;
    }
    var win = el.frame.contentWindow;
    if (!win) return;
    // While the agent is scrolling in write mode, echoes of their own earlier
    // positions would make the view jump back: follow only the latest one.
    if (Date.now() - agentScrollAt < 800 && agentScroll &&
        (Math.abs(agentScroll.x - x) > 1 || Math.abs(agentScroll.y - y) > 1)) return;
    appliedScroll = { x: x, y: y };
    wantScroll = { x: x, y: y };
    scrollInstant(win, x, y);
    placePointer();
  }

  /** A new replica starts at the top; element positions are the new document's. */
  function resetScroll() {
    wantScroll = null;
    wantElScroll = new Map();
  }

  /** At the next frame: set again the positions the replica could not take yet (content was shorter). */
  function scheduleRescroll() {
    if (rescrollFrame || (!wantScroll && !wantElScroll.size)) return;
    rescrollFrame = requestAnimationFrame(guard(function () {
      rescrollFrame = 0;
      rescroll();
    }));
  }

  function rescroll() {
    var win = el.frame.contentWindow;
    if (!win || frozen) return;
    var w = wantScroll;
    if (w && Date.now() - agentScrollAt >= 800 &&
        (Math.abs(win.scrollX - w.x) > 1 || Math.abs(win.scrollY - w.y) > 1)) {
      appliedScroll = { x: w.x, y: w.y };
      scrollInstant(win, w.x, w.y);
      placePointer();
    }
    wantElScroll.forEach(function (p, id) {
      var n = idToNode.get(id);
      if (!n || P.type(n) !== 1) {
        wantElScroll.delete(id);
        return;
      }
      if (Math.abs(EL_SCROLL_LEFT.call(n) - p.x) > 1 || Math.abs(EL_SCROLL_TOP.call(n) - p.y) > 1) {
        scrollInstant(n, p.x, p.y);
      }
    });
  }

  function setViewport(w, h) {
    w = Number(w);
    h = Number(h);
    if (!(w > 0) || !(h > 0)) return;
    viewport = { w: Math.min(w, 10000), h: Math.min(h, 10000) };
    layout();
  }

  function layout() {
    var box = el.stage.getBoundingClientRect();
    var availW = Math.max(100, box.width - 32);
    var availH = Math.max(100, box.height - 32);
    var s = Math.min(1, availW / viewport.w, availH / viewport.h);
    el.frameScale.style.width = viewport.w + 'px';
    el.frameScale.style.height = viewport.h + 'px';
    el.frameScale.style.transform = 'scale(' + s + ')';
    el.frameBox.style.width = Math.round(viewport.w * s) + 'px';
    el.frameBox.style.height = Math.round(viewport.h * s) + 'px';
    el.scaleLabel.textContent = viewport.w + ' \u00d7 ' + viewport.h + (s < 1 ? ' \u00b7 ' + Math.round(s * 100) + '%' : '');
  }

  var pointerFrame = 0;

  /**
   * Place the customer's pointer at the next animation frame. Frames that
   * change the replica must not read its layout (the pointer needs the
   * replica's scroll position) right after their DOM writes: that would
   * force a synchronous layout of the whole replica per frame, which on a
   * big page costs more than the change itself.
   */
  function schedulePointer() {
    if (pointerFrame) return;
    pointerFrame = requestAnimationFrame(guard(function () {
      pointerFrame = 0;
      placePointer();
    }));
  }

  function placePointer() {
    var p = customerPointer;
    var win = el.frame.contentWindow;
    if (!p || !win || ended) {
      el.customerPointer.hidden = true;
      return;
    }
    var x = p.x - win.scrollX;
    var y = p.y - win.scrollY;
    var inside = x >= 0 && y >= 0 && x <= viewport.w && y <= viewport.h;
    el.customerPointer.hidden = !inside;
    el.customerPointer.style.transform = 'translate(' + x + 'px,' + y + 'px)';
  }

  // ------------------------------------------- agent input in the replica

  /** The node an event happened on, inside shadow roots too (not retargeted to the host). */
  function realTarget(e) {
    var path = e.composedPath ? e.composedPath() : null;
    return path && path.length ? path[0] : e.target;
  }

  function idFor(target) {
    for (var n = target; n; n = n.parentNode || (n.nodeType === 11 ? n.host : null)) {
      if (ours.has(n)) return undefined;
      var id = nodeToId.get(n);
      if (id !== undefined && n.nodeType === 1) return id;
    }
    return undefined;
  }

  var lastPointerSent = 0;
  var pointerTimer = null;
  var agentPointer = null;

  function sendPointer() {
    pointerTimer = null;
    if (!agentPointer) return;
    lastPointerSent = Date.now();
    send({ t: 'pointer', x: agentPointer.x, y: agentPointer.y });
  }

  var onMove = guard(function (e) {
    if (state !== 'active' || ended || frozen) return;
    agentPointer = { x: Math.round(e.pageX), y: Math.round(e.pageY) };
    var now = Date.now();
    if (now - lastPointerSent >= 33) sendPointer();
    else if (!pointerTimer) pointerTimer = setTimeout(guard(sendPointer), 33 - (now - lastPointerSent));
  });

  var hinted = 0;
  function hintPointerMode() {
    var now = Date.now();
    if (now - hinted > 4000) {
      hinted = now;
      toast('You are in pointer mode. Request control to click or type on the customer\u2019s page.');
    }
  }

  var onClick = guard(function (e) {
    // Nothing in the replica may act locally (links, checkboxes, buttons).
    e.preventDefault();
    if (state !== 'active' || ended || frozen) return;
    if (mode !== 'write') {
      hintPointerMode();
      return;
    }
    var id = idFor(realTarget(e));
    if (id !== undefined) send({ t: 'click', id: id });
  });

  // Disabled controls (the rewrite sets `disabled`) never get `click`, but do
  // get `pointerdown`: forward the attempt so the server answers with a reason.
  var onPointerDown = guard(function (e) {
    if (state !== 'active' || ended || frozen || mode !== 'write' || e.button !== 0) return;
    var t = realTarget(e);
    if (!t || !t.closest || !t.closest(':disabled')) return;
    var id = idFor(t);
    if (id !== undefined) send({ t: 'click', id: id });
  });

  var onBeforeInput = guard(function (e) {
    var t = realTarget(e);
    if (frozen) {
      e.preventDefault();
      return;
    }
    if (mode !== 'write' || state !== 'active') {
      e.preventDefault();
      hintPointerMode();
      return;
    }
    if (t && t.closest && (t.closest('[data-cobrowse-masked]') || t.closest('[data-cobrowse-disabled]') || t.closest('[data-cobrowse-blocked]'))) {
      e.preventDefault();
      toast('This field is hidden from you, so you cannot type in it.', 'warn');
    }
  });

  var onInput = guard(function (e) {
    if (mode !== 'write' || state !== 'active' || frozen) return;
    var t = realTarget(e);
    if (!t || !/^(input|textarea|select)$/.test(t.localName)) return;
    if (t.localName === 'input' && /^(checkbox|radio|file)$/.test(t.type)) return;
    var id = idFor(t);
    if (id === undefined) return;
    lastLocalInput.set(id, Date.now());
    send({ t: 'input', id: id, value: String(t.value) });
  });

  var onKey = guard(function (e) {
    if (frozen) {
      e.preventDefault();
      return;
    }
    if (e.key !== 'Enter' && e.key !== 'Tab' && e.key !== 'Escape') return;
    if (mode !== 'write' || state !== 'active') return;
    // Focus and submission happen on the customer's page, not in the replica.
    if (e.key !== 'Escape') e.preventDefault();
    var id = idFor(realTarget(e));
    if (id !== undefined) send({ t: 'key', id: id, key: e.key });
  });

  var scrollTimer = null;
  var pendingScroll = new Map();
  var agentScrollAt = 0;
  var agentScroll = null;
  var onScroll = guard(function (e) {
    placePointer();
    if (mode !== 'write' || state !== 'active' || frozen) return;
    var t = e.target;
    var win = el.frame.contentWindow;
    if (t === doc || t === doc.documentElement || t === doc.scrollingElement) {
      if (appliedScroll && Math.abs(win.scrollX - appliedScroll.x) < 2 && Math.abs(win.scrollY - appliedScroll.y) < 2) return;
      pendingScroll.set('window', true);
      agentScrollAt = Date.now();
      agentScroll = { x: win.scrollX, y: win.scrollY };
    } else if (t && t.nodeType === 1) {
      pendingScroll.set(t, true);
    }
    if (!scrollTimer) {
      scrollTimer = setTimeout(guard(function () {
        scrollTimer = null;
        pendingScroll.forEach(function (_, key) {
          if (key === 'window') {
            appliedScroll = { x: win.scrollX, y: win.scrollY };
            agentScroll = appliedScroll;
            agentScrollAt = Date.now();
            send({ t: 'scroll', x: win.scrollX, y: win.scrollY });
          } else {
            var id = idFor(key);
            if (id !== undefined) send({ t: 'scroll', id: id, x: key.scrollLeft, y: key.scrollTop });
          }
        });
        pendingScroll.clear();
      }), 60);
    }
  });

  function prevent(e) {
    e.preventDefault();
  }

  function onFrameReady() {
    if (frameReady) return;
    doc = el.frame.contentDocument;
    if (!doc) return;
    frameReady = true;
    doc.addEventListener('mousemove', onMove, true);
    doc.addEventListener('click', onClick, true);
    doc.addEventListener('auxclick', onClick, true);
    doc.addEventListener('pointerdown', onPointerDown, true);
    doc.addEventListener('beforeinput', onBeforeInput, true);
    doc.addEventListener('input', onInput, true);
    doc.addEventListener('change', onInput, true);
    doc.addEventListener('keydown', onKey, true);
    doc.addEventListener('scroll', onScroll, { capture: true, passive: true });
    doc.addEventListener('load', guard(scheduleRescroll), true);
    doc.addEventListener('submit', prevent, true);
    doc.addEventListener('dragstart', prevent, true);
    doc.addEventListener('mousedown', guard(function (e) {
      if (mode !== 'write' || frozen) e.preventDefault();
    }), true);
    var pending = queue;
    queue = [];
    pending.forEach(handle);
  }

  // ------------------------------------------------------------------ init

  function init() {
    ['join', 'join-form', 'session-id', 'join-button', 'join-error', 'session', 'session-label',
      'page-title', 'page-url', 'resync-veil', 'state-pill', 'mode-pill', 'presence', 'control-button', 'exit-button', 'stage',
      'frame-box', 'frame-scale', 'replica', 'customer-pointer', 'stage-msg', 'ended', 'end-reason',
      'new-session', 'toasts', 'scale-label'].forEach(function (id) {
      var key = id.replace(/-([a-z])/g, function (_, c) { return c.toUpperCase(); });
      el[key] = $(id);
    });
    el.idInput = el.sessionId;
    initDay();
    var name = $('agent-name');
    var avatar = $('agent-avatar');
    if (name && avatar) avatar.textContent = (name.textContent.trim().charAt(0) || '?').toUpperCase();
    el.frame = el.replica;
    if (!el.joinForm || !el.frame) return;
    el.joinForm.addEventListener('submit', onJoin);
    el.idInput.addEventListener('input', guard(function () {
      el.joinError.hidden = true;
      el.idInput.removeAttribute('aria-invalid');
    }));
    el.controlButton.addEventListener('click', onControl);
    el.exitButton.addEventListener('click', onExit);
    el.newSession.addEventListener('click', onNewSession);
    window.addEventListener('resize', guard(layout));
    el.frame.addEventListener('load', guard(onFrameReady));
    var d = el.frame.contentDocument;
    if (d && d.readyState === 'complete' && d.location && d.location.href === 'about:srcdoc') onFrameReady();
    layout();
    var saved = null;
    try {
      saved = sessionStorage.getItem(STORE_KEY);
    } catch (_) { /* ignore */ }
    if (saved && /^\d{9}$/.test(saved)) {
      join(saved);
    } else {
      showJoin(null);
      offerLeft(document.body.getAttribute('data-current-session'), null);
    }
  }

  window.cobrowseViewer = {
    /** For tests and debugging: the current view state. */
    state: function () {
      return {
        id: sessionId, state: state, mode: mode, customerPresent: customerPresent, ended: ended, frozen: frozen
      };
    },
    /** Debug: turn the performance log on or off (see "debug: performance log"). */
    perf: function (on) {
      perf = !!on;
      perfLog = [];
    },
    /** Debug: the performance log so far. */
    perfLog: function () {
      return perfLog.slice();
    }
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', guard(init));
  else guard(init)();
})();
