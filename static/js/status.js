// Live progress for /setup/: polls /setup/status.json and updates the page in place,
// so the person watches setup finish without reloading. Without JavaScript the page
// refreshes itself (a <noscript> meta refresh). Words come from the server
// (#status-words), so this file holds no copy of its own.
(function () {
  "use strict";
  var card = document.getElementById("status");
  var wordsEl = document.getElementById("status-words");
  if (!card || !wordsEl || !window.fetch) return;
  var words = JSON.parse(wordsEl.textContent);
  var url = card.getAttribute("data-status-url");
  var settled = { active: true, disabled: true };

  function text(id, value) {
    var el = document.getElementById(id);
    if (el && typeof value === "string" && el.textContent !== value) el.textContent = value;
  }

  function stepClass(id, status, done) {
    var el = document.getElementById(id);
    if (el) el.className = "step step-" + status + (done ? " done" : "");
  }

  function apply(data) {
    var state = data.state;
    if (state !== card.getAttribute("data-state")) {
      // The server's title stays until the state changes (it knows, for instance,
      // whether "delayed" is an outage, which the JSON does not say).
      card.className = card.className.replace(/state-[a-z_]+/, "state-" + state);
      card.setAttribute("data-state", state);
      text("status-title", words.titles[state]);
    }
    text("status-message", data.message);
    var ws = data.workspace;
    text("workspace-words", words.workspace[ws.status]);
    text("workspace-meta", ws.status === "pending" && ws.attempts > 0 ? ws.attempts + " " + words.tries : "");
    stepClass("step-workspace", ws.status, ws.status === "ready");
    var email = data.email;
    text("email-words", email.verified ? words.email.verified : words.email[email.delivery]);
    stepClass("step-email", email.delivery, email.verified);
    var ready = document.getElementById("ready-action");
    if (ready) ready.hidden = ws.status !== "ready";
    var ticket = document.getElementById("status-ticket-line");
    if (ticket) {
      ticket.hidden = !data.ticket;
      text("status-ticket", data.ticket || "");
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) apply(data);
        if (!data || !settled[data.state]) window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 10000); });
  }
  window.setTimeout(poll, 2000);
})();
