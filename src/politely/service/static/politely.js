/*! politely.js: proactive chat invitations that never pester. See docs/website.md. */
try { (function (w, d) {
  "use strict";
  if (w.politely) return; // loaded twice: keep the first

  var me = d.currentScript || d.querySelector("script[data-site][src*='politely']") || {};
  var data = me.dataset || {};
  var cfg = w.politelyConfig || {};
  var url = data.endpoint;
  try { url = url || new URL(me.src).origin; } catch (e) {}
  url = (url || "").replace(/\/+$/, "") + "/v1/sites/" + (data.site || "default") + "/events";
  var base = (data.basePath || "").replace(/\/+$/, "");
  var KEY = "politely_visitor";
  var ID = /^[A-Za-z0-9_.:-]{1,200}$/;

  var visitor, page = "", deepest = 0, sentScroll = -1, quarter = 0, exited = false;
  var queue = [], busy = false, failures = 0, resumeAt = 0;
  var timer = 0, scrollTimer = 0, tickDue = false;
  var blocked = false, shown = null, accepters = [cfg.onAccept]; // safe() skips a non-function

  function safe(fn) {
    return function () {
      try { return fn.apply(this, arguments); } catch (e) {} // nothing reaches the host page
    };
  }

  function random(bytes) {
    var a = new Uint8Array(bytes), s = "", i;
    crypto.getRandomValues(a);
    for (i = 0; i < bytes; i++) s += (a[i] + 256).toString(16).slice(1);
    return s;
  }

  // The visitor id: in localStorage, else a cookie, else in memory
  function keep(id) {
    if (!ID.test(id)) return;
    visitor = id;
    try { return localStorage.setItem(KEY, id); } catch (e) {}
    try {
      d.cookie = KEY + "=" + id + "; max-age=31536000; path=/; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    } catch (e) {}
  }
  var stored;
  try { stored = localStorage.getItem(KEY); } catch (e) {}
  try { stored = stored || (d.cookie.match(/(?:^|; )politely_visitor=([^;]+)/) || [])[1]; } catch (e) {}
  keep(ID.test(stored || "") ? stored : random(16));

  function here() {
    var path = location.pathname;
    if (base && (path === base || path.indexOf(base + "/") === 0)) path = path.slice(base.length) || "/";
    return (path + location.search).slice(0, 2000);
  }

  function measure() { // deepest scroll: % of the page seen
    var h = d.documentElement.scrollHeight;
    deepest = Math.max(deepest, h ? Math.min(100, Math.round((scrollY + innerHeight) / h * 100)) : 100);
  }

  // --- sending: one request at a time; on failure, back off with jitter ---

  function send(name, extra) {
    measure();
    var event = { visitor: visitor, event: name, id: random(8) };
    for (var k in extra) if (extra[k] !== undefined) event[k] = extra[k];
    if (name === "tick") {
      if (queue.length || busy) return pump();
    } else {
      queue = queue.filter(function (q) { return q.e.event !== "tick"; });
    }
    if (queue.length > 19) queue.shift();
    queue.push({ e: event, tries: 0 });
    pump();
  }

  function pump() {
    if (busy || !queue.length) return;
    if (Date.now() < resumeAt) return schedule(resumeAt - Date.now());
    var item = queue.shift();
    item.e.visitor = visitor;
    item.e.scroll = sentScroll = deepest;
    busy = true;
    post(item.e).then(function (decision) {
      busy = false;
      failures = 0;
      decide(decision);
      pump();
    }, function (why) {
      busy = false;
      var delay = Math.min(300, Math.pow(2, ++failures)) * (0.5 + Math.random() / 2);
      resumeAt = Date.now() + 1000 * Math.max(delay, +why || 0);
      // an event id makes a resend safe; a refused (4xx) event is dropped
      if (item.e.event !== "tick" && why !== false && ++item.tries < 3) queue.unshift(item);
      if (!queue.length) queue.push({ e: { event: "tick" }, tries: 0 });
      pump();
    });
  }

  function post(event) { // rejects with Retry-After, or false if refused
    var abort = new AbortController();
    setTimeout(function () { abort.abort(); }, 10000);
    return fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
      credentials: "omit",
      keepalive: d.hidden,
      signal: abort.signal
    }).then(function (r) {
      if (r.status === 429) throw parseInt(r.headers.get("Retry-After"), 10) || 1;
      if (r.status < 500 && !r.ok) throw false;
      return r.json().then(function (answer) {
        if (!r.ok || !("recheck_in" in Object(answer))) throw 0; // not a decision
        return answer;
      });
    });
  }

  function decide(decision) {
    if (typeof decision.visitor === "string") keep(decision.visitor);
    if (decision.chat === "blocked") blocked = true;
    if (decision.chat !== "available") hide();
    var inv = decision.invitation, r = decision.recheck_in;
    if (inv && typeof inv.message === "string" && typeof inv.id === "string" && !blocked) show(inv);
    clearTimeout(timer);
    tickDue = false;
    if (typeof r === "number" && r >= 0) schedule(Math.min(Math.max(r, 1), 86400) * 1000);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(safe(function () {
      if (d.hidden) tickDue = true; // one tick when it shows again
      else if (queue.length) pump();
      else send("tick");
    }), ms);
  }

  function pageView(referrer, attributes) {
    var now = here();
    if (now === page) return;
    page = now;
    deepest = 0;
    exited = false;
    measure();
    quarter = Math.floor(deepest / 25);
    send("page_view", {
      url: now,
      title: d.title.slice(0, 2000) || undefined,
      referrer: (referrer || "").slice(0, 2000) || undefined,
      attributes: attributes
    });
  }

  // --- the invitation: text only, in a shadow root, styled by --politely-* ---

  var CSS = ":host{all:initial}[part=bubble]{position:fixed;z-index:2147483000;right:var(--politely-right,20px);" +
    "bottom:var(--politely-bottom,20px);max-width:320px;padding:16px;border-radius:var(--politely-radius,12px);" +
    "background:var(--politely-background,#fff);color:var(--politely-color,#222);" +
    "font:var(--politely-font,15px/1.4 system-ui,sans-serif);box-shadow:0 6px 24px #0003}" +
    "p{margin:0 0 12px}div div{text-align:right}button{font:inherit;cursor:pointer;margin-left:8px;" +
    "padding:6px 12px;border:1px solid var(--politely-accent,#1f6feb);border-radius:6px;" +
    "background:none;color:inherit}[part=accept]{background:var(--politely-accent,#1f6feb);color:#fff}" +
    "@media (prefers-reduced-motion:no-preference){[part=bubble]{animation:i .3s}}" +
    "@keyframes i{from{opacity:0;transform:translateY(12px)}}";

  function el(parent, tag, part, text) {
    var e = parent.appendChild(d.createElement(tag));
    e.setAttribute("part", part);
    e.textContent = text || ""; // never HTML
    return e;
  }

  function show(inv) {
    hide();
    var host = d.createElement("div");
    host.setAttribute("data-politely", "");
    var root = host.attachShadow({ mode: "open" });
    el(root, "style", "", CSS);
    var box = el(root, "div", "bubble");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", data.label || "Chat invitation");
    var text = el(box, "p", "message");
    text.setAttribute("aria-live", "polite");
    var row = el(box, "div", "buttons");
    el(row, "button", "dismiss", data.dismissText || "No thanks").onclick = safe(function () { answer(0); });
    el(row, "button", "accept", data.acceptText || "Chat now").onclick = safe(function () { answer(1); });
    d.body.appendChild(host); // focus is not moved
    shown = { host: host, inv: inv };
    setTimeout(function () { text.textContent = inv.message; }, 50);
  }

  function hide() {
    if (shown) shown.host.remove();
    shown = null;
  }

  function answer(accepted) {
    var inv = shown.inv;
    hide();
    send(accepted ? "invitation_accepted" : "invitation_dismissed", { invitation: inv.id });
    if (!accepted) return;
    accepters.forEach(function (fn) { safe(fn)(inv); });
    d.dispatchEvent(new CustomEvent("politely:accept", { detail: inv }));
  }

  // --- the page ---

  function on(target, name, fn, options) {
    target.addEventListener(name, safe(fn), options || false);
  }

  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    history[name] = function () {
      var before = location.href, result = original.apply(this, arguments);
      setTimeout(safe(function () { pageView(before); }), 0); // after the app sets its title
      return result;
    };
  });
  on(w, "popstate", function () { pageView(); });

  on(w, "scroll", function () {
    measure();
    if (Math.floor(deepest / 25) <= quarter) return;
    clearTimeout(scrollTimer); // each new quarter, once still
    scrollTimer = setTimeout(safe(function () {
      quarter = Math.floor(deepest / 25);
      send("scroll");
    }), 1000);
  }, { passive: true });

  on(d, "visibilitychange", function () {
    measure();
    if (d.hidden && deepest > sentScroll) send("scroll");
    if (!d.hidden && tickDue) send("tick");
  });

  var desktop = matchMedia("(hover: hover) and (pointer: fine)").matches;
  on(d, "mouseout", function (e) { // out through the top
    if (!desktop || exited || e.relatedTarget || e.clientY > 0) return;
    exited = true;
    send("exit_intent");
  });

  on(d, "keydown", function (e) {
    var active = d.activeElement; // Esc dismisses, unless the visitor is busy elsewhere
    if (shown && /^Esc/.test(e.key) && (!active || active === d.body || active === shown.host)) answer(0);
  });

  function object(value) {
    return value && typeof value === "object" ? value : undefined;
  }

  w.politely = {
    track: safe(function (name, props) { send(String(name), { props: object(props) }); }),
    identify: safe(function (attributes) { send("identify", { attributes: object(attributes) }); }),
    onAccept: function (fn) { accepters.push(fn); },
    visitor: function () { return visitor; }
  };

  function start() {
    pageView(d.referrer, object(cfg.attributes));
    d.dispatchEvent(new CustomEvent("politely:ready"));
  }
  if (d.readyState === "loading") on(d, "DOMContentLoaded", start);
  else safe(start)();
})(window, document); } catch (e) {} // a guest in the page: it never throws there
