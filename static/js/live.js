// Live updates: one WebSocket per page to /ws/notifications/. Each event is re-dispatched on <body>
// as "mh:<kind>" (e.g. "mh:consultation"), so htmx elements refresh with hx-trigger="mh:consultation from:body".
(function () {
  "use strict";
  var SESSION_ENDED = 4408;
  var delay = 1000;

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
      if (event.kind) {
        document.body.dispatchEvent(new CustomEvent("mh:" + event.kind, { detail: event }));
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
