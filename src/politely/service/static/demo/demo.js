// The demo shop's own script: a stand-in chat widget, and a back-office box that
// sets agent status through the admin API. A real site does the latter from its
// servers; the page never decides agent status and never holds the token for long:
// here it stays in this tab's sessionStorage.
(function () {
  "use strict";
  var SITE = "default";
  var store = window.sessionStorage;

  function make(parent, tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    parent.appendChild(e);
    return e;
  }

  // --- the shop's own chat widget (a stand-in) ---
  var launcher = make(document.body, "button", { type: "button", class: "launcher" }, "Chat with us");
  var chat = make(document.body, "aside", { class: "chat", hidden: "", "aria-label": "Chat" });
  var head = make(chat, "header");
  make(head, "strong", {}, "Sam from Lumen & Co.");
  var close = make(head, "button", { type: "button" }, "Close");
  var line = make(chat, "p");
  make(chat, "p", { class: "note" }, "This panel stands in for your own chat widget.");

  function openChat(message) {
    line.textContent = message || "Hi! How can I help?";
    chat.hidden = false;
    launcher.hidden = true;
    window.politely.track("chat_started");
  }
  launcher.onclick = function () { openChat(); };
  close.onclick = function () {
    chat.hidden = true;
    launcher.hidden = false;
    window.politely.track("chat_ended");
  };
  // The hand-over: politely reports invitation_accepted, the site opens its chat.
  document.addEventListener("politely:accept", function (event) {
    openChat(event.detail.message);
  });

  // --- the product page adds to the cart; the cart tells politely its value ---
  var buy = document.querySelector("[data-add]");
  if (buy) {
    buy.onclick = function () {
      var value = Number(store.getItem("demo-cart") || 0) + Number(buy.getAttribute("data-add"));
      store.setItem("demo-cart", String(value));
      window.politely.identify({ cart_value: value });
      document.querySelector(".added").hidden = false;
    };
  }
  var cartLine = document.querySelector(".cart-line");
  var value = Number(store.getItem("demo-cart") || 0);
  if (cartLine && value) cartLine.textContent = "1 desk lamp: \u20ac" + value;

  // --- the back office: agent status through the admin API ---
  var office = make(document.body, "aside", { class: "office", "aria-label": "Back office" });
  make(office, "h2", {}, "Back office (demo)");
  var tokenLabel = make(office, "label", {}, "Admin token ");
  var token = make(tokenLabel, "input", { type: "password", autocomplete: "off" });
  token.value = store.getItem("demo-token") || "";
  var switchLabel = make(office, "label");
  var agent = make(switchLabel, "input", { type: "checkbox" });
  switchLabel.appendChild(document.createTextNode(" An agent is available"));
  agent.checked = store.getItem("demo-agent") === "on";
  var status = make(office, "output", { "aria-live": "polite" });
  var why = make(office, "button", { type: "button" }, "Why no invitation?");
  var answer = make(office, "pre");
  var renew = 0;
  var reports = 0; // only the latest report's answer is shown (a blur and a click race)
  var sent = Promise.resolve(); // reports go one after another, so the last one wins

  function admin(method, path, body) {
    return fetch("/v1/sites/" + SITE + path, {
      method: method,
      headers: { authorization: "Bearer " + token.value.trim(), "content-type": "application/json" },
      body: body && JSON.stringify(body)
    }).then(function (r) {
      if (r.status === 401) throw new Error("wrong token: use the one politely serve printed");
      if (!r.ok) throw new Error("the service answered " + r.status);
      return r.json();
    });
  }

  function report() {
    store.setItem("demo-token", token.value.trim());
    store.setItem("demo-agent", agent.checked ? "on" : "off");
    clearInterval(renew);
    if (!token.value.trim()) {
      status.textContent = "Paste the admin token first.";
      return;
    }
    var on = agent.checked;
    var body = { online: 1, available: on ? 1 : 0, queue_length: 0, queue_wait_seconds: on ? 20 : 0 };
    var mine = ++reports;
    sent = sent.then(function () {
      return admin("PUT", "/agents", body);
    }).then(function () {
      if (mine !== reports) return;
      status.textContent = on
        ? "Sam is available: invitations may show."
        : "No agent available: politely invites nobody.";
      // Agent status is stale two minutes after a report: renew it while the page is open.
      if (on) renew = setInterval(report, 60000);
    }, function (error) {
      if (mine === reports) status.textContent = error.message;
    });
  }
  token.onchange = report;
  agent.onchange = report;
  if (token.value) report();

  why.onclick = function () {
    var event = { visitor: window.politely.visitor(), event: "tick" };
    admin("POST", "/explain", event).then(function (explanation) {
      answer.textContent = explanation.rules.map(function (rule) {
        return rule.rule + ": " + rule.detail;
      }).join("\n");
    }, function (error) {
      answer.textContent = error.message;
    });
  };
})();
