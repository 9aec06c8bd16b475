// Live progress for /setup/: polls /setup/status.json and updates the page in place,
// so the person watches setup finish without reloading. Without JavaScript the page
// refreshes itself (a <noscript> meta refresh). Every word comes from the server
// (the JSON's "message" and "said", chosen from the account's facts and pluralised
// there), so this file holds no words and cannot make a claim of its own.
(function () {
  "use strict";
  var card = document.getElementById("status");
  if (!card || !window.fetch) return;
  var url = card.getAttribute("data-status-url");
  // Whether anything is left to wait for is the server's call (said.updating), like
  // every word: this file keeps no list of states of its own.
  function updating(data) {
    return !data || !data.said || data.said.updating !== false;
  }

  function text(id, value) {
    var el = document.getElementById(id);
    if (el && typeof value === "string" && el.textContent !== value) el.textContent = value;
  }

  function show(id, visible) {
    var el = document.getElementById(id);
    if (el) el.hidden = !visible;
  }

  function stepClass(id, status, done) {
    var el = document.getElementById(id);
    if (el) el.className = "step step-" + status + (done ? " done" : "");
  }

  function apply(data) {
    var said = data.said || {};
    var state = data.state;
    if (state !== card.getAttribute("data-state")) {
      card.className = card.className.replace(/state-[a-z_]+/, "state-" + state);
      card.setAttribute("data-state", state);
    }
    text("status-title", said.title);
    text("status-message", data.message);
    var ws = data.workspace;
    text("workspace-words", said.workspace);
    text("workspace-meta", said.tries || "");
    stepClass("step-workspace", ws.status, ws.status === "ready");
    var email = data.email;
    // Another tab may have corrected the address: show the one the account has now.
    text("email-address", email.address);
    text("email-words", said.email);
    stepClass("step-email", email.delivery, email.verified);
    show("ready-action", ws.status === "ready");
    // Once nothing is left to wait for, polling stops (poll below): so does saying it goes on.
    show("refresh-hint", updating(data));
    var offer = said.offer || {};
    var correct = document.getElementById("correct-form");
    // A form the person is typing in, or that shows an error, stays open.
    var keepCorrect = correct && (correct.contains(document.activeElement) || correct.querySelector(".has-error"));
    var resend = said.resend || {};
    text("resend-prompt", resend.prompt || "");
    show("resend-prompt", !!resend.prompt);
    text("resend-button", resend.button || "");
    show("resend-form", !email.verified && offer.resend);
    show("correct-form", !email.verified && (offer.correct_email || keepCorrect));
    show("email-actions", !email.verified && (offer.resend || offer.correct_email || keepCorrect));
    var call = document.getElementById("callback");
    // Once asked, the promise stays in view; so does a form being filled in.
    var keepCall = call && (call.contains(document.activeElement) || call.querySelector(".has-error") ||
                            document.getElementById("callback-waiting"));
    show("callback", offer.call || keepCall);
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
        if (updating(data)) window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 10000); });
  }
  window.setTimeout(poll, 2000);
})();
