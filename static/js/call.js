// The video call page: the signalling socket (/ws/consultations/<pk>/call/, consultations/consumers.py),
// one RTCPeerConnection to the other side with the perfect-negotiation pattern (the server says which side
// is polite), media controls, connection quality from getStats, and the in-call chat.
(function () {
  "use strict";
  var root = document.getElementById("call");
  if (!root) return;
  var T = JSON.parse(document.getElementById("call-texts").textContent);
  var statusLine = root.querySelector("[data-testid=call-status]");
  var notice = root.querySelector("[data-testid=call-notice]");
  var quality = root.querySelector("[data-testid=call-quality]");
  var localVideo = document.getElementById("local-video");
  var remoteVideo = document.getElementById("remote-video");
  var remoteName = root.querySelector("[data-testid=remote-name]");
  var chatLines = root.querySelector("[data-testid=call-chat-lines]");
  var chatForm = root.querySelector("[data-testid=call-chat-form]");
  var canCall = root.dataset.canCall === "true";
  var autoAnswer = new URLSearchParams(location.search).has("answer"); // "Answer" on the ringing panel
  var FAILED_CLOSE = { 4401: "signed out", 4403: "no access", 4409: "the room is full", 4410: "opened elsewhere" };

  var socket = null;
  var me = null;
  var iceServers = [];
  var call = null; // the server's view of the call: {id, state, started_by, ring_until, ...}
  var peer = null; // {id, name, polite}
  var pc = null;
  var local = null; // the camera and microphone stream
  var screen = null;
  var makingOffer = false;
  var ignoreOffer = false;
  var outbox = []; // signals waiting for the other side to be in the room
  var disconnectedTimer = null;
  var statsTimer = null;
  var ringTimer = null;
  var lowBandwidth = false;
  var heartbeat = null;

  function say(text) {
    statusLine.textContent = text;
  }
  function warn(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }
  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (_all, key) {
      return values[key] === undefined ? "" : String(values[key]);
    });
  }
  function button(action) {
    return root.querySelector("[data-action=" + action + "]");
  }
  function show(actions) {
    ["ring", "answer", "decline", "hangup"].forEach(function (action) {
      button(action).hidden = actions.indexOf(action) < 0;
    });
    var inCall = call && call.state === "active";
    root.querySelectorAll("[data-in-call]").forEach(function (control) {
      control.hidden = !inCall;
    });
  }
  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      message.v = 1;
      socket.send(JSON.stringify(message));
    }
  }

  // The call's state as the server tells it, and what the page offers to do about it.
  function callIs(view) {
    call = view;
    root.dataset.state = view ? view.state : "idle";
    clearInterval(ringTimer);
    if (!view || ["ended", "missed", "declined", "failed"].indexOf(view.state) >= 0) {
      show(canCall ? ["ring"] : []);
      if (!view) say(canCall ? T.idle : T.idle_waiting);
      return;
    }
    if (view.state === "ringing") {
      var mine = me && view.started_by && view.started_by.id === me.id;
      if (mine) {
        show(["hangup"]);
        var tick = function () {
          var left = Math.max(0, Math.round((Date.parse(view.ring_until) - Date.now()) / 1000));
          say(fill(T.ringing_out, { seconds: left }));
        };
        tick();
        ringTimer = setInterval(tick, 1000);
      } else {
        show(["answer", "decline"]);
        say(fill(T.ringing_in, { name: view.started_by ? view.started_by.name : "" }));
        if (autoAnswer) {
          autoAnswer = false;
          actions.answer();
        }
      }
      return;
    }
    if (view.state === "active") {
      show(["hangup"]);
      start();
    }
  }

  function ended(message) {
    var reason = message.reason || (message.call && message.call.end_reason);
    var state = message.call ? message.call.state : "ended";
    stop();
    if (state === "missed") say(T.missed);
    else if (state === "declined") say(fill(T.declined, { name: message.from ? message.from.name : "" }));
    else if (reason) say(fill(T.ended_reason, { reason: T.reasons[reason] || reason }));
    else say(T.ended);
    callIs(message.call || null);
    say(statusLine.textContent); // keep the ending in view, not the idle hint
    root.dataset.state = state;
  }

  // Media and the peer connection.
  function start() {
    if (pc) return;
    say(T.starting);
    pc = new RTCPeerConnection({ iceServers: iceServers });
    root.dataset.connection = "new";
    pc.ontrack = function (event) {
      if (remoteVideo.srcObject !== event.streams[0]) remoteVideo.srcObject = event.streams[0];
    };
    pc.onicecandidate = function (event) {
      if (event.candidate) signal({ candidate: event.candidate.toJSON() });
    };
    pc.onnegotiationneeded = function () {
      makingOffer = true;
      pc.setLocalDescription()
        .then(function () {
          signal({ description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
        })
        .catch(function (error) {
          warn(String(error));
        })
        .finally(function () {
          makingOffer = false;
        });
    };
    pc.onconnectionstatechange = connectionChanged;
    media().then(function (stream) {
      if (!pc) return;
      local = stream;
      if (stream) {
        localVideo.srcObject = stream;
        stream.getTracks().forEach(function (track) {
          pc.addTrack(track, stream);
        });
      }
      // Receive whatever the other side sends, even with nothing to send.
      if (!stream || !stream.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
      if (!stream || !stream.getAudioTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
      say(peer ? T.connecting_peer : T.waiting_peer);
      startStats();
    });
  }

  function media() {
    var video = lowBandwidth ? { width: 320, height: 240, frameRate: 10 } : { width: 1280, height: 720 };
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      warn(fill(T.no_media, { reason: "no media devices" }));
      return Promise.resolve(null);
    }
    return navigator.mediaDevices.getUserMedia({ audio: true, video: video }).catch(function () {
      return navigator.mediaDevices
        .getUserMedia({ audio: true })
        .then(function (stream) {
          warn(T.audio_only);
          return stream;
        })
        .catch(function (error) {
          warn(fill(T.no_media, { reason: error.name || String(error) }));
          return null;
        });
    });
  }

  function stop() {
    clearTimeout(disconnectedTimer);
    clearInterval(statsTimer);
    clearInterval(ringTimer);
    [local, screen].forEach(function (stream) {
      if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    });
    local = screen = null;
    if (pc) pc.close();
    pc = null;
    outbox = [];
    localVideo.srcObject = null;
    remoteVideo.srcObject = null;
    quality.textContent = "";
    root.dataset.connection = "closed";
  }

  function connectionChanged() {
    if (!pc) return;
    var state = pc.connectionState;
    root.dataset.connection = state;
    clearTimeout(disconnectedTimer);
    if (state === "connected") {
      say(fill(T.connected, { name: peer ? peer.name : "" }));
      root.dataset.connectedAt = String(Date.now());
    } else if (state === "disconnected") {
      say(T.reconnecting);
      // A few seconds to come back by itself, then a new ICE round.
      disconnectedTimer = setTimeout(function () {
        if (pc && pc.connectionState === "disconnected") pc.restartIce();
      }, 4000);
    } else if (state === "failed") {
      say(T.reconnecting);
      pc.restartIce();
    }
  }

  // Signals to the other side; held back until they are in the room.
  function signal(body) {
    body.type = "signal";
    if (!peer) {
      outbox.push(body);
      return;
    }
    send(body);
  }

  function signalled(message) {
    if (!call || call.state !== "active") return;
    start();
    if (message.description) {
      var description = message.description;
      var collision = description.type === "offer" && (makingOffer || pc.signalingState !== "stable");
      ignoreOffer = !(peer && peer.polite) && collision;
      if (ignoreOffer) return;
      pc.setRemoteDescription(description)
        .then(function () {
          if (description.type !== "offer") return null;
          return pc.setLocalDescription().then(function () {
            signal({ description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
          });
        })
        .catch(function (error) {
          warn(String(error));
        });
    } else if (message.candidate) {
      pc.addIceCandidate(message.candidate).catch(function (error) {
        if (!ignoreOffer) warn(String(error));
      });
    }
  }

  function peerIs(person, polite) {
    peer = { id: person.id, name: person.name, polite: !!polite };
    remoteName.textContent = person.name;
    var waiting = outbox;
    outbox = [];
    waiting.forEach(send);
    if (pc && pc.signalingState === "have-local-offer" && !waiting.length) {
      // An offer made before they came may never have reached them: make it again.
      pc.restartIce();
    }
  }

  // Connection quality, every two seconds.
  var lastBytes = 0;
  var lastAt = 0;
  function startStats() {
    clearInterval(statsTimer);
    statsTimer = setInterval(function () {
      if (!pc) return;
      pc.getStats().then(function (report) {
        var rtt = null, lost = 0, received = 0, bytes = 0, frames = 0;
        report.forEach(function (stat) {
          if (stat.type === "candidate-pair" && stat.state === "succeeded" && stat.currentRoundTripTime !== undefined) {
            rtt = Math.round(stat.currentRoundTripTime * 1000);
          }
          if (stat.type === "inbound-rtp") {
            lost += stat.packetsLost || 0;
            received += stat.packetsReceived || 0;
            bytes += stat.bytesReceived || 0;
            if (stat.kind === "video") frames += stat.framesDecoded || 0;
          }
        });
        var now = Date.now();
        var kbps = lastAt ? Math.round(((bytes - lastBytes) * 8) / (now - lastAt)) : 0;
        lastBytes = bytes;
        lastAt = now;
        root.dataset.framesDecoded = String(frames);
        var loss = received + lost ? ((100 * lost) / (received + lost)).toFixed(1) : "0.0";
        quality.textContent = fill(T.quality, { rtt: rtt === null ? "—" : rtt, loss: loss, kbps: kbps });
      });
    }, 2000);
  }

  // Controls.
  function toggle(action, on, labels) {
    var control = button(action);
    control.setAttribute("aria-pressed", on ? "true" : "false");
    control.textContent = on ? labels[1] : labels[0];
  }
  function videoSender() {
    return pc && pc.getSenders().find(function (sender) { return sender.track && sender.track.kind === "video"; });
  }
  function applyBandwidth() {
    var sender = videoSender();
    if (!sender) return;
    var parameters = sender.getParameters();
    if (!parameters.encodings || !parameters.encodings.length) parameters.encodings = [{}];
    parameters.encodings[0].maxBitrate = lowBandwidth ? 150000 : 1500000;
    parameters.encodings[0].scaleResolutionDownBy = lowBandwidth ? 4 : 1;
    sender.setParameters(parameters).catch(function () {});
    var track = sender.track;
    if (track && track.applyConstraints) {
      track.applyConstraints(lowBandwidth ? { frameRate: 10 } : { frameRate: 30 }).catch(function () {});
    }
  }
  var actions = {
    ring: function () {
      send({ type: "invite" });
    },
    answer: function () {
      root.dataset.answeredAt = String(Date.now());
      send({ type: "accept" });
    },
    decline: function () {
      send({ type: "decline" });
    },
    hangup: function () {
      send({ type: call && call.state === "ringing" ? "cancel" : "hangup" });
    },
    mute: function () {
      if (!local) return;
      var muted = button("mute").getAttribute("aria-pressed") !== "true";
      local.getAudioTracks().forEach(function (track) { track.enabled = !muted; });
      toggle("mute", muted, [T.mute, T.unmute]);
    },
    camera: function () {
      if (!local) return;
      var off = button("camera").getAttribute("aria-pressed") !== "true";
      local.getVideoTracks().forEach(function (track) { track.enabled = !off; });
      toggle("camera", off, [T.camera_off, T.camera_on]);
    },
    share: function () {
      var sender = videoSender();
      if (screen) {
        screen.getTracks().forEach(function (track) { track.stop(); });
        screen = null;
        if (sender && local && local.getVideoTracks()[0]) sender.replaceTrack(local.getVideoTracks()[0]);
        toggle("share", false, [T.share, T.stop_share]);
        return;
      }
      if (!navigator.mediaDevices.getDisplayMedia || !sender) return;
      navigator.mediaDevices.getDisplayMedia({ video: true }).then(function (stream) {
        screen = stream;
        var track = stream.getVideoTracks()[0];
        sender.replaceTrack(track);
        track.onended = function () {
          if (screen) actions.share();
        };
        toggle("share", true, [T.share, T.stop_share]);
      }).catch(function () {});
    },
    low: function () {
      lowBandwidth = !lowBandwidth;
      toggle("low", lowBandwidth, [T.low_off, T.low_on]);
      applyBandwidth();
    },
  };
  root.addEventListener("click", function (event) {
    var control = event.target.closest("[data-action]");
    if (control && actions[control.dataset.action]) actions[control.dataset.action]();
  });

  function chatLine(message) {
    var line = document.createElement("li");
    var who = document.createElement("strong");
    who.textContent = (message.from && me && message.from.id === me.id ? T.you : message.from.name) + ": ";
    line.appendChild(who);
    line.appendChild(document.createTextNode(message.text));
    line.dataset.testid = "call-chat-line";
    chatLines.appendChild(line);
  }
  chatForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var field = chatForm.elements.text;
    var text = field.value.trim();
    if (!text) return;
    send({ type: "chat", text: text });
    chatLine({ from: me, text: text });
    field.value = "";
  });

  // The socket.
  function onMessage(raw) {
    var message = JSON.parse(raw.data);
    switch (message.type) {
      case "welcome":
        me = message.you;
        iceServers = message.ice_servers || [];
        (message.peers || []).forEach(function (person) {
          if (!peer) peerIs(person, person.polite);
        });
        callIs(message.call);
        clearInterval(heartbeat);
        heartbeat = setInterval(function () {
          send({ type: "ping" });
        }, ((message.limits && message.limits.heartbeat_seconds) || 5) * 1000);
        break;
      case "presence":
        if (message.state === "joined") {
          var back = peer && peer.id === message.user.id && pc;
          if (!peer || peer.id === message.user.id) peerIs(message.user, message.polite);
          if (back && call && call.state === "active") {
            // The other side opened the call page again (a reload): a new connection from both ends.
            stop();
            start();
          }
        } else if (peer && peer.id === message.user.id && message.state !== "reconnecting") {
          peer = null;
        }
        break;
      case "invite":
      case "ringing":
      case "call":
      case "accept":
        callIs(message.call);
        break;
      case "decline":
      case "cancel":
      case "hangup":
        ended(message);
        break;
      case "signal":
        signalled(message);
        break;
      case "chat":
        chatLine(message);
        break;
      case "error":
        warn(fill(T.error, { message: message.message }));
        break;
    }
  }

  var retry = 1000;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.socket);
    socket.onopen = function () {
      retry = 1000;
      root.dataset.room = "open";
    };
    socket.onmessage = onMessage;
    socket.onclose = function (closed) {
      root.dataset.room = "closed";
      clearInterval(heartbeat);
      if (FAILED_CLOSE[closed.code]) {
        stop();
        say(fill(T.room_closed, { reason: FAILED_CLOSE[closed.code] }));
        return;
      }
      // A dropped link: come back to the same call (the server keeps our place for a while).
      say(T.reconnecting);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }
  window.addEventListener("pagehide", function () {
    if (socket) socket.close(1000);
  });
  say(T.connecting);
  connect();
})();
