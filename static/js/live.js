// Live updates: one WebSocket per page to /ws/notifications/. Each event is re-dispatched on <body>
// as "mh:<kind>" (e.g. "mh:consultation"), so htmx elements refresh with hx-trigger="mh:consultation from:body",
// and as "mh:<kind>:<id>" and "mh:<kind>:patient-<id>" when the event names its object or its patient.
(function () {
  "use strict";
  var SESSION_ENDED = 4408;
  var delay = 1000;

  // A call ringing for this user, on whatever page is open: a panel to answer (the call page) or decline.
  function ring(event) {
    var panelId = "ring-" + event.call;
    var shown = document.getElementById(panelId);
    if (event.state !== "ringing" || location.pathname === event.url) {
      if (shown) shown.remove();
      return;
    }
    var template = document.getElementById("ring-panel");
    if (shown || !template) return;
    var panel = template.content.firstElementChild.cloneNode(true);
    panel.id = panelId;
    panel.querySelector("[data-field=caller]").textContent = event.caller;
    panel.querySelector("[data-field=consultation]").textContent = event.consultation;
    panel.querySelector("[data-field=answer]").href = event.url + "?answer=1";
    panel.querySelector("[data-field=decline]").addEventListener("click", function () {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      headers.Accept = "application/json";
      fetch(event.url + "decline/", { method: "POST", headers: headers, credentials: "same-origin" });
      panel.remove();
    });
    document.body.appendChild(panel);
  }

  function announce(name, event) {
    document.body.dispatchEvent(new CustomEvent(name, { detail: event }));
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/notifications/");
    socket.onopen = function () {
      delay = 1000;
      document.body.dataset.live = "connected";
    };
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (event.kind === "notification") {
        var badge = document.getElementById("unread-count");
        if (badge) {
          badge.textContent = event.unread;
          badge.classList.toggle("bad", event.unread > 0);
        }
      }
      if (event.kind === "call") ring(event);
      if (event.kind) {
        announce("mh:" + event.kind, event);
        // Names for one object's events, for elements that refresh on one consultation's or one patient's
        // news (hx-trigger="mh:lab:patient-7 from:body"): htmx's trigger filters would need eval, which the
        // page's CSP refuses.
        if (event.id != null) announce("mh:" + event.kind + ":" + event.id, event);
        if (event.patient != null) announce("mh:" + event.kind + ":patient-" + event.patient, event);
      }
    };
    socket.onclose = function (closed) {
      document.body.dataset.live = "disconnected";
      if (closed.code === SESSION_ENDED) {
        location.reload(); // the account was signed out everywhere: the server shows the sign-in page
        return;
      }
      // Links in regional hospitals and trains drop: come back with a growing pause, at most a minute.
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 60000);
    };
  }

  // Open critical results (the banner of templates/diagnostics/_lab_alerts.html) also mark the tab's title,
  // for a clinician working in another tab.
  var title = document.title;
  function markTitle() {
    var banner = document.getElementById("lab-alerts");
    var open = banner && !banner.hidden ? Number(banner.dataset.open || 0) : 0;
    document.title = open ? "(" + open + ") \u26a0 " + title : title;
  }
  markTitle();
  document.body.addEventListener("htmx:afterSettle", markTitle);

  if (document.body.dataset.user) {
    connect();
  }
})();
