// The image viewer: one series at a time on a <canvas>.
// Frames come in two kinds (the series JSON says which): "raw" — a monochrome image with more than 8 bits,
// sent as its values after the modality LUT, so window/level is the true one; "jpeg" — 8-bit and colour
// images (ultrasound, cine), the pipeline's display-ready frames, windowed on their 0–255 values.
// On a slow link the frame shown is fetched first, then its neighbours outward (a cine loop in playing
// order), a few at a time; nothing waits for the whole series.
(function () {
  "use strict";
  var root = document.getElementById("viewer");
  if (!root) {
    return;
  }
  var T = JSON.parse(document.getElementById("viewer-texts").textContent);
  var canvas = document.getElementById("viewer-canvas");
  var ctx = canvas.getContext("2d");
  var work = document.createElement("canvas"); // the windowed image, at its own size
  var wctx = work.getContext("2d", { willReadFrequently: true });
  var statusLine = root.querySelector("[data-testid=viewer-status]");
  var slider = document.getElementById("viewer-slider");
  var positionLabel = root.querySelector("[data-testid=position]");
  var windowOut = root.querySelector("[data-testid=window]");
  var lengthOut = root.querySelector("[data-testid=measurement]");
  var measureNote = root.querySelector("[data-testid=measure-note]");
  var measureButton = root.querySelector("[data-tool=measure]");
  var playButton = root.querySelector("[data-testid=play]");
  var fpsInput = document.getElementById("viewer-fps");
  var heatToggle = document.getElementById("ai-heatmap"); // present when an AI reading gave a heat map

  var CONCURRENCY = 3; // parallel frame requests: enough to fill a slow link, few enough to keep order
  var AHEAD = 30; // a stack of single images: how far ahead and behind to fetch
  var BEHIND = 6;
  var BUDGET = 192 * 1024 * 1024; // bytes of decoded frames kept in memory

  var series = null; // the series JSON
  var stack = []; // every position: {inst, frame}
  var pos = 0;
  var frames = new Map(); // "instance:frame" -> {state, kind, width, height, bitmap | values, min, max, error}
  var queue = [];
  var loading = 0;
  var decodedBytes = 0;
  var generation = 0; // bumped when the series changes: frames arriving for the old one are dropped
  var fetches = 0; // the latest series request wins
  var view = { zoom: 1, panX: 0, panY: 0 };
  var win = null; // {center, width, kind}
  var tool = "window";
  var measure = null; // {inst, x1, y1, x2, y2} in image pixels
  var drag = null;
  var drawn = ""; // what `work` holds: frame and window
  var drawPending = false;
  var playing = false;
  var lastTick = 0;
  var wheelSum = 0;
  var pollTimer = null;
  var heatmaps = new Map(); // heat map URL -> "loading" | "error" | ImageBitmap

  function fmt(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (whole, name) {
      return values[name] !== undefined ? values[name] : whole;
    });
  }

  function number(value) {
    return Math.abs(value) >= 10 ? String(Math.round(value)) : String(Math.round(value * 100) / 100);
  }

  function setStatus(text) {
    statusLine.textContent = text;
    statusLine.hidden = !text;
  }

  function keyOf(at) {
    return at.inst.id + ":" + at.frame;
  }

  function field(name, value) {
    var element = root.querySelector("[data-field=" + name + "]");
    if (element) {
      element.textContent = value === null || value === undefined || value === "" ? "—" : value;
    }
  }

  // Series.

  function loadSeries(url, keepPlace) {
    var mine = ++fetches;
    if (!keepPlace) {
      setStatus(T.loading_series);
    }
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(response.status + " " + response.statusText);
        }
        return response.json();
      })
      .then(function (data) {
        if (mine === fetches) {
          showSeries(data, url, keepPlace);
        }
      })
      .catch(function (error) {
        if (mine === fetches) {
          setStatus(fmt(T.series_error, { reason: error.message }));
        }
      });
  }

  function showSeries(data, url, keepPlace) {
    clearTimeout(pollTimer);
    var same = keepPlace && series && series.id === data.id;
    var was = same ? stack[pos] : null;
    series = data;
    series.url = url;
    stack = [];
    data.instances.forEach(function (inst) {
      var count = inst.kind ? Math.max(inst.frames || 1, 1) : 1;
      for (var frame = 1; frame <= count; frame++) {
        stack.push({ inst: inst, frame: frame });
      }
    });
    pos = 0;
    if (was) {
      stack.forEach(function (at, index) {
        if (at.inst.id === was.inst.id && at.frame === was.frame) {
          pos = index;
        }
      });
    } else {
      generation++;
      decodedBytes = 0;
      root.dataset.state = "loading";
      delete root.dataset.position;
      frames.forEach(function (entry) {
        if (entry.bitmap) {
          entry.bitmap.close();
        }
      });
      frames.clear();
      queue = [];
      win = null;
      measure = null;
      drawn = "";
      view = { zoom: 1, panX: 0, panY: 0 };
      stop();
      lengthOut.textContent = "—";
    }
    root.dataset.current = String(data.id);
    root.querySelectorAll("[data-series]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.dataset.series === String(data.id) ? "true" : "false");
    });
    field("modality", data.modality);
    field("body_part", data.body_part);
    field("series", data.description);
    slider.max = String(Math.max(stack.length - 1, 0));
    playButton.disabled = stack.length < 2;
    if (!stack.length) {
      clear();
      setStatus(T.empty);
      return;
    }
    thumbnailRefresh(data);
    show(pos, !was);
    pollWhilePending();
  }

  function thumbnailRefresh(data) {
    var button = root.querySelector("[data-series='" + data.id + "']");
    var placeholder = button && button.querySelector(".thumb-placeholder");
    var ready = data.instances.some(function (inst) {
      return inst.kind;
    });
    if (placeholder && ready) {
      var image = document.createElement("img");
      image.alt = "";
      image.width = 96;
      image.height = 96;
      image.src = data.url + "thumbnail.jpg";
      placeholder.replaceWith(image);
    }
  }

  function pollWhilePending() {
    clearTimeout(pollTimer);
    var pending = series.instances.some(function (inst) {
      return inst.status === "queued" || inst.status === "processing";
    });
    // Live updates ("mh:study") refresh the series; this is the fallback while the socket is down.
    if (pending) {
      pollTimer = setTimeout(function () {
        if (document.body.dataset.live !== "connected") {
          loadSeries(series.url, true);
        } else {
          pollWhilePending();
        }
      }, 15000);
    }
  }

  // Frames.

  function schedule() {
    var wanted = [];
    var at = stack[pos];
    if (!at) {
      return;
    }
    if (at.inst.kind && at.inst.frames > 1) {
      // A loop: the rest of it in playing order, then from its start.
      var start = pos - (at.frame - 1);
      for (var step = 0; step < at.inst.frames; step++) {
        wanted.push(start + ((at.frame - 1 + step) % at.inst.frames));
      }
    } else {
      wanted.push(pos);
      for (var i = 1; i <= AHEAD; i++) {
        wanted.push(pos + i);
        if (i <= BEHIND) {
          wanted.push(pos - i);
        }
      }
    }
    // As many frames as the memory budget holds are decoded, nearest first; of a longer JPEG loop the rest
    // is fetched all the same and kept compressed, to be decoded as playing comes near it.
    var fit = Math.max(2, Math.floor(BUDGET / frameBytes(at.inst)));
    queue = [];
    wanted.forEach(function (index, order) {
      var candidate = stack[index];
      if (!candidate || !candidate.inst.kind) {
        return;
      }
      var entry = frames.get(keyOf(candidate));
      var decode = order < fit;
      if ((!entry && (decode || candidate.inst.kind === "jpeg")) || (entry && entry.state === "packed" && decode)) {
        queue.push({ at: candidate, decode: decode });
      }
    });
    pump();
  }

  function frameBytes(inst) {
    return Math.max((inst.rows || 512) * (inst.columns || 512) * 4, 1);
  }

  function pump() {
    // Until the frame shown has arrived it has the link to itself; then neighbours load a few at a time.
    var at = stack[pos];
    var entry = at && at.inst.kind ? frames.get(keyOf(at)) : null;
    var limit = at && at.inst.kind && !(entry && entry.state === "ready") ? 1 : CONCURRENCY;
    while (loading < limit && queue.length) {
      var next = queue.shift();
      load(next.at, next.decode);
    }
  }

  function load(at, decode) {
    var key = keyOf(at);
    var entry = frames.get(key);
    if (entry && entry.state !== "packed") {
      return;
    }
    if (!entry) {
      entry = { state: "loading" };
      frames.set(key, entry);
    }
    entry.state = "loading";
    var mine = generation;
    loading++;
    var url = at.inst.frames_url + at.frame + (at.inst.kind === "raw" ? ".bin" : ".jpg");
    var fetched = at.inst.kind === "raw" ? loadRaw(url) : loadJpeg(url, entry, decode);
    fetched
      .then(function (data) {
        if (data) {
          Object.assign(entry, data, { state: "ready" });
          entry.bytes = data.values ? data.values.byteLength : data.width * data.height * 4;
          if (mine === generation) {
            decodedBytes += entry.bytes;
          }
        } else {
          entry.state = "packed";
        }
      })
      .catch(function (error) {
        entry.state = "error";
        entry.error = error.message;
      })
      .then(function () {
        loading--;
        if (mine === generation) {
          forget();
          var current = stack[pos];
          if (current && keyOf(current) === key) {
            show(pos);
          } else {
            positionShow();
          }
        }
        pump();
      });
  }

  // The JPEG is kept as it came (small); decoded only when `decode`, else resolved with nothing.
  function loadJpeg(url, entry, decode) {
    var blob = entry.blob
      ? Promise.resolve(entry.blob)
      : fetch(url, { credentials: "same-origin" }).then(function (response) {
          if (!response.ok) {
            throw new Error(response.status + " " + response.statusText);
          }
          return response.blob();
        });
    return blob.then(function (data) {
      entry.blob = data;
      if (!decode) {
        return null;
      }
      return createImageBitmap(data).then(function (bitmap) {
        return { kind: "jpeg", bitmap: bitmap, width: bitmap.width, height: bitmap.height, min: 0, max: 255 };
      });
    });
  }

  function loadRaw(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        throw new Error(response.status + " " + response.statusText);
      }
      var type = response.headers.get("X-Pixel-Type");
      var filter = response.headers.get("X-Pixel-Filter");
      var rows = Number(response.headers.get("X-Rows"));
      var columns = Number(response.headers.get("X-Columns"));
      return response.arrayBuffer().then(function (buffer) {
        var values =
          type === "int16" ? new Int16Array(buffer) : type === "int32" ? new Int32Array(buffer) : new Float32Array(buffer);
        if (filter === "sub") {
          // Each value was sent as the difference from its left neighbour; typed arrays wrap as the server did.
          for (var row = 0; row < rows; row++) {
            for (var i = row * columns + 1, end = (row + 1) * columns; i < end; i++) {
              values[i] = values[i] + values[i - 1];
            }
          }
        }
        var min = Infinity;
        var max = -Infinity;
        for (var j = 0; j < values.length; j++) {
          var value = values[j];
          if (value < min) {
            min = value;
          }
          if (value > max) {
            max = value;
          }
        }
        return { kind: "raw", values: values, width: columns, height: rows, min: min, max: max };
      });
    });
  }

  // Over the budget, the decoded frames farthest ahead of the one shown (in playing order) are let go: a JPEG
  // goes back to its compressed bytes, raw values are fetched again if needed.
  function forget() {
    if (decodedBytes <= BUDGET) {
      return;
    }
    var at = stack[pos];
    var current = at ? keyOf(at) : "";
    var loop = at && at.inst.kind && at.inst.frames > 1 ? at.inst : null;
    var ready = [];
    stack.forEach(function (candidate, index) {
      var key = keyOf(candidate);
      var entry = frames.get(key);
      if (entry && entry.state === "ready" && key !== current) {
        var distance =
          loop && candidate.inst === loop
            ? (candidate.frame - at.frame + loop.frames) % loop.frames
            : Math.abs(index - pos) + (loop ? loop.frames : 0);
        ready.push({ key: key, entry: entry, distance: distance });
      }
    });
    ready.sort(function (a, b) {
      return b.distance - a.distance;
    });
    for (var i = 0; i < ready.length && decodedBytes > BUDGET; i++) {
      var entry = ready[i].entry;
      decodedBytes -= entry.bytes || 0;
      if (entry.bitmap) {
        entry.bitmap.close();
        entry.bitmap = null;
        entry.state = "packed";
      } else {
        frames.delete(ready[i].key);
      }
    }
  }

  // Showing.

  function show(index, fresh) {
    pos = Math.max(0, Math.min(index, stack.length - 1));
    var at = stack[pos];
    slider.value = String(pos);
    instanceShow(at.inst, fresh);
    positionShow();
    if (!at.inst.kind) {
      clear();
      root.dataset.state = at.inst.status;
      if (at.inst.status === "failed") {
        setStatus(fmt(T.failed, { reason: at.inst.error }));
      } else if (at.inst.status === "ready") {
        setStatus(T.no_pixels);
      } else {
        setStatus(at.inst.status === "queued" ? T.queued : T.processing);
      }
      return;
    }
    var key = keyOf(at);
    var entry = frames.get(key);
    if (entry && entry.state === "error") {
      frames.delete(key); // tried again when the user comes back to it
      setStatus(fmt(T.load_error, { reason: entry.error }));
      return;
    }
    schedule();
    if (!entry || entry.state !== "ready") {
      setStatus(T.loading); // the previous image stays until this one arrives
      return;
    }
    if (!win || win.kind !== entry.kind) {
      win = defaultWindow(at.inst, entry);
    }
    setStatus("");
    paint();
    windowShow();
    root.dataset.state = "shown";
    root.dataset.position = String(pos);
  }

  var shownInstance = null;

  function instanceShow(inst, fresh) {
    if (shownInstance === inst && !fresh) {
      return;
    }
    var changed = !shownInstance || shownInstance.id !== inst.id;
    shownInstance = inst;
    field("size", inst.rows ? inst.rows + " × " + inst.columns : "");
    field("frames", inst.frames);
    field("syntax", inst.transfer_syntax || "");
    field("spacing", inst.spacing ? inst.spacing.join(" × ") + " mm" : null);
    var measurable = Boolean(inst.spacing && inst.kind);
    measureButton.disabled = !measurable;
    measureButton.title = measurable ? T.measure_hint : T.no_spacing;
    measureNote.hidden = measurable || !inst.kind;
    if (!measurable && tool === "measure") {
      toolSelect("window");
    }
    root.querySelectorAll("[data-preset]").forEach(function (button) {
      if (button.dataset.preset !== "default") {
        button.disabled = !(inst.hounsfield && inst.kind === "raw");
        button.title = button.disabled ? T.no_presets : "";
      }
    });
    if (changed && inst.frame_rate) {
      fpsInput.value = String(Math.round(inst.frame_rate));
    }
  }

  function positionShow() {
    var at = stack[pos];
    if (!at) {
      positionLabel.textContent = "";
      return;
    }
    var index = series.instances.indexOf(at.inst);
    var text = fmt(T.position, { image: index + 1, images: series.instances.length });
    if (at.inst.kind && at.inst.frames > 1) {
      text += " · " + fmt(T.frame, { frame: at.frame, frames: at.inst.frames });
      var loaded = 0;
      for (var frame = 1; frame <= at.inst.frames; frame++) {
        var entry = frames.get(at.inst.id + ":" + frame);
        if (entry && (entry.state === "ready" || entry.state === "packed")) {
          loaded++;
        }
      }
      if (loaded < at.inst.frames) {
        text += " · " + fmt(T.buffering, { loaded: loaded, frames: at.inst.frames });
      }
    }
    positionLabel.textContent = text;
  }

  function defaultWindow(inst, entry) {
    if (entry.kind === "jpeg") {
      return { kind: "jpeg", center: 127.5, width: 255 };
    }
    if (inst.window) {
      return { kind: "raw", center: inst.window.center, width: inst.window.width };
    }
    return { kind: "raw", center: (entry.min + entry.max) / 2, width: Math.max(entry.max - entry.min, 1) };
  }

  function windowShow() {
    if (!win) {
      return;
    }
    windowOut.textContent =
      "C " + number(win.center) + " / W " + number(win.width) + (win.kind === "jpeg" ? " " + T.jpeg_window : "");
  }

  function current() {
    var at = stack[pos];
    var entry = at && at.inst.kind ? frames.get(keyOf(at)) : null;
    return entry && entry.state === "ready" ? { at: at, entry: entry } : null;
  }

  function paint() {
    var shown = current();
    if (!shown || !win) {
      return;
    }
    var entry = shown.entry;
    var key = keyOf(shown.at) + "|" + win.center + "|" + win.width;
    if (drawn !== key) {
      if (work.width !== entry.width || work.height !== entry.height) {
        work.width = entry.width;
        work.height = entry.height;
      }
      if (entry.kind === "raw") {
        paintRaw(entry, shown.at.inst.invert);
      } else {
        paintJpeg(entry);
      }
      drawn = key;
    }
    compose();
  }

  function paintRaw(entry, invert) {
    var image = wctx.createImageData(entry.width, entry.height);
    var data = image.data;
    var values = entry.values;
    var low = win.center - win.width / 2;
    var scale = 255 / win.width;
    for (var i = 0, j = 0; i < values.length; i++, j += 4) {
      var grey = (values[i] - low) * scale;
      grey = grey < 0 ? 0 : grey > 255 ? 255 : grey;
      if (invert) {
        grey = 255 - grey;
      }
      data[j] = data[j + 1] = data[j + 2] = grey;
      data[j + 3] = 255;
    }
    wctx.putImageData(image, 0, 0);
  }

  function paintJpeg(entry) {
    wctx.drawImage(entry.bitmap, 0, 0);
    if (win.center === 127.5 && win.width === 255) {
      return; // as rendered
    }
    var lut = new Uint8ClampedArray(256);
    var low = win.center - win.width / 2;
    for (var v = 0; v < 256; v++) {
      lut[v] = ((v - low) * 255) / win.width;
    }
    var image = wctx.getImageData(0, 0, entry.width, entry.height);
    var data = image.data;
    for (var j = 0; j < data.length; j += 4) {
      data[j] = lut[data[j]];
      data[j + 1] = lut[data[j + 1]];
      data[j + 2] = lut[data[j + 2]];
    }
    wctx.putImageData(image, 0, 0);
  }

  function requestPaint() {
    if (!drawPending) {
      drawPending = true;
      requestAnimationFrame(function () {
        drawPending = false;
        paint();
      });
    }
  }

  function fitCanvas() {
    var ratio = window.devicePixelRatio || 1;
    var box = canvas.getBoundingClientRect();
    var width = Math.max(1, Math.round(box.width * ratio));
    var height = Math.max(1, Math.round(box.height * ratio));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    return ratio;
  }

  function geometry() {
    var ratio = fitCanvas();
    var scale = Math.min(canvas.width / work.width, canvas.height / work.height) * view.zoom;
    return {
      ratio: ratio,
      scale: scale,
      x: (canvas.width - work.width * scale) / 2 + view.panX * ratio,
      y: (canvas.height - work.height * scale) / 2 + view.panY * ratio,
    };
  }

  function clear() {
    fitCanvas();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    drawn = "";
  }

  function compose() {
    var g = geometry();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingEnabled = g.scale < 4;
    ctx.drawImage(work, g.x, g.y, work.width * g.scale, work.height * g.scale);
    var at = stack[pos];
    var heat = at ? heatmapFor(at.inst) : null;
    if (heat) {
      // The model's heat map is at its input size: stretched over the image, smoothed, half transparent.
      ctx.imageSmoothingEnabled = true;
      ctx.globalAlpha = 0.6;
      ctx.drawImage(heat, g.x, g.y, work.width * g.scale, work.height * g.scale);
      ctx.globalAlpha = 1;
    }
    root.dataset.heatmap = heat ? "shown" : "hidden";
    if (measure && at && measure.inst === at.inst.id) {
      var x1 = g.x + measure.x1 * g.scale;
      var y1 = g.y + measure.y1 * g.scale;
      var x2 = g.x + measure.x2 * g.scale;
      var y2 = g.y + measure.y2 * g.scale;
      ctx.strokeStyle = "#ffd400";
      ctx.lineWidth = 2 * g.ratio;
      ctx.beginPath();
      ctx.moveTo(x1, y1);
      ctx.lineTo(x2, y2);
      ctx.stroke();
      ctx.fillStyle = "#ffd400";
      ctx.font = 14 * g.ratio + "px system-ui, sans-serif";
      ctx.fillText(lengthText(at.inst), x2 + 6 * g.ratio, y2 - 6 * g.ratio);
    }
  }

  function heatmapFor(inst) {
    if (!heatToggle || !heatToggle.checked || !inst.heatmaps || !inst.heatmaps.length) {
      return null;
    }
    var url = inst.heatmaps[0].url;
    var got = heatmaps.get(url);
    if (got === undefined) {
      heatmaps.set(url, "loading");
      fetch(url, { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) {
            throw new Error(response.status + " " + response.statusText);
          }
          return response.blob();
        })
        .then(function (blob) {
          return createImageBitmap(blob);
        })
        .then(function (bitmap) {
          heatmaps.set(url, bitmap);
          requestPaint();
        })
        .catch(function () {
          heatmaps.set(url, "error");
        });
      return null;
    }
    return typeof got === "object" ? got : null;
  }

  function lengthText(inst) {
    if (!measure || !inst.spacing) {
      return "—";
    }
    var dy = (measure.y2 - measure.y1) * inst.spacing[0]; // row spacing: between rows, along y
    var dx = (measure.x2 - measure.x1) * inst.spacing[1];
    return fmt(T.length, { mm: (Math.round(Math.sqrt(dx * dx + dy * dy) * 10) / 10).toFixed(1) });
  }

  function toImage(event) {
    var g = geometry();
    var box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * g.ratio - g.x) / g.scale,
      y: ((event.clientY - box.top) * g.ratio - g.y) / g.scale,
    };
  }

  // Moving through the stack, and cine.

  function step(delta) {
    if (stack.length) {
      show(Math.max(0, Math.min(pos + delta, stack.length - 1)));
    }
  }

  function nextInLoop() {
    var at = stack[pos];
    if (at.inst.kind && at.inst.frames > 1) {
      var start = pos - (at.frame - 1);
      return start + (at.frame % at.inst.frames);
    }
    return (pos + 1) % stack.length;
  }

  function start() {
    if (stack.length < 2 || playing) {
      return;
    }
    playing = true;
    playButton.textContent = T.pause;
    playButton.setAttribute("aria-pressed", "true");
    lastTick = 0;
    requestAnimationFrame(tick);
  }

  function stop() {
    playing = false;
    playButton.textContent = T.play;
    playButton.setAttribute("aria-pressed", "false");
  }

  function tick(now) {
    if (!playing) {
      return;
    }
    var rate = Math.min(Math.max(Number(fpsInput.value) || 10, 1), 60);
    if (!lastTick || now - lastTick >= 1000 / rate) {
      var next = nextInLoop();
      var at = stack[next];
      var entry = at.inst.kind ? frames.get(keyOf(at)) : null;
      // Wait for a frame still on its way rather than skip it; a failed one is passed over.
      if (!at.inst.kind || (entry && (entry.state === "ready" || entry.state === "error"))) {
        show(next);
        lastTick = now;
      } else if (!entry || entry.state === "packed") {
        schedule();
      }
    }
    requestAnimationFrame(tick);
  }

  // Tools.

  function toolSelect(name) {
    tool = name;
    root.querySelectorAll("[data-tool]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.dataset.tool === name ? "true" : "false");
    });
    canvas.dataset.tool = name;
  }

  function zoomBy(factor, event) {
    if (!current()) {
      return;
    }
    var g = geometry();
    var box = canvas.getBoundingClientRect();
    var cx = event ? (event.clientX - box.left) * g.ratio : canvas.width / 2;
    var cy = event ? (event.clientY - box.top) * g.ratio : canvas.height / 2;
    var ix = (cx - g.x) / g.scale;
    var iy = (cy - g.y) / g.scale;
    view.zoom = Math.min(Math.max(view.zoom * factor, 0.1), 40);
    var scale = Math.min(canvas.width / work.width, canvas.height / work.height) * view.zoom;
    // Keep the point under the cursor where it is.
    view.panX = (cx - ix * scale - (canvas.width - work.width * scale) / 2) / g.ratio;
    view.panY = (cy - iy * scale - (canvas.height - work.height * scale) / 2) / g.ratio;
    compose();
  }

  canvas.addEventListener("pointerdown", function (event) {
    if (event.button !== 0 && event.button !== 1) {
      return;
    }
    canvas.focus();
    var mode = event.shiftKey || event.button === 1 || tool === "pan" ? "pan" : tool;
    if (!current()) {
      return;
    }
    canvas.setPointerCapture(event.pointerId);
    drag = { mode: mode, x: event.clientX, y: event.clientY, win: win, panX: view.panX, panY: view.panY };
    if (mode === "measure") {
      var point = toImage(event);
      measure = { inst: stack[pos].inst.id, x1: point.x, y1: point.y, x2: point.x, y2: point.y };
    }
    event.preventDefault();
  });

  canvas.addEventListener("pointermove", function (event) {
    if (!drag) {
      return;
    }
    var dx = event.clientX - drag.x;
    var dy = event.clientY - drag.y;
    if (drag.mode === "window" && drag.win) {
      var shown = current();
      var span = shown ? Math.max(shown.entry.max - shown.entry.min, 1) : 256;
      var unit = shown && shown.entry.kind === "raw" ? span / 400 : 1;
      win = {
        kind: drag.win.kind,
        width: Math.max(1, drag.win.width + dx * unit),
        center: drag.win.center + dy * unit,
      };
      windowShow();
      requestPaint();
    } else if (drag.mode === "pan") {
      view.panX = drag.panX + dx;
      view.panY = drag.panY + dy;
      compose();
    } else if (drag.mode === "measure" && measure) {
      var point = toImage(event);
      measure.x2 = point.x;
      measure.y2 = point.y;
      lengthOut.textContent = lengthText(stack[pos].inst);
      compose();
    }
  });

  function dragEnd() {
    drag = null;
  }
  canvas.addEventListener("pointerup", dragEnd);
  canvas.addEventListener("pointercancel", dragEnd);

  canvas.addEventListener(
    "wheel",
    function (event) {
      event.preventDefault();
      if (event.ctrlKey || event.metaKey || stack.length < 2) {
        zoomBy(event.deltaY < 0 ? 1.15 : 1 / 1.15, event);
        return;
      }
      wheelSum += event.deltaMode === 1 ? event.deltaY * 40 : event.deltaY;
      if (Math.abs(wheelSum) >= 60) {
        step(wheelSum > 0 ? 1 : -1);
        wheelSum = 0;
      }
    },
    { passive: false }
  );

  root.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target.matches("input, select, textarea") || (target.matches("button") && (event.key === " " || event.key === "Enter"))) {
      return;
    }
    switch (event.key) {
      case "ArrowDown":
      case "ArrowRight":
      case "PageDown":
        step(1);
        break;
      case "ArrowUp":
      case "ArrowLeft":
      case "PageUp":
        step(-1);
        break;
      case "Home":
        show(0);
        break;
      case "End":
        show(stack.length - 1);
        break;
      case " ":
        if (playing) {
          stop();
        } else {
          start();
        }
        break;
      case "+":
      case "=":
        zoomBy(1.25);
        break;
      case "-":
        zoomBy(1 / 1.25);
        break;
      case "0":
        view = { zoom: 1, panX: 0, panY: 0 };
        compose();
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  slider.addEventListener("input", function () {
    show(Number(slider.value));
  });

  playButton.addEventListener("click", function () {
    if (playing) {
      stop();
    } else {
      start();
    }
  });

  root.querySelectorAll("[data-tool]").forEach(function (button) {
    button.addEventListener("click", function () {
      toolSelect(button.dataset.tool);
    });
  });

  root.querySelectorAll("[data-preset]").forEach(function (button) {
    button.addEventListener("click", function () {
      var shown = current();
      if (!shown) {
        return;
      }
      win =
        button.dataset.preset === "default"
          ? defaultWindow(shown.at.inst, shown.entry)
          : { kind: "raw", center: Number(button.dataset.center), width: Number(button.dataset.width) };
      windowShow();
      requestPaint();
    });
  });

  root.querySelectorAll("[data-zoom]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (button.dataset.zoom === "fit") {
        view = { zoom: 1, panX: 0, panY: 0 };
        if (current()) {
          compose();
        }
      } else {
        zoomBy(button.dataset.zoom === "in" ? 1.25 : 1 / 1.25);
      }
    });
  });

  root.querySelectorAll("[data-series]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (series && String(series.id) === button.dataset.series) {
        return;
      }
      var address = new URL(location.href);
      address.searchParams.set("series", button.dataset.series);
      history.replaceState(null, "", address);
      loadSeries(button.dataset.url, false);
    });
  });

  // Images still being processed appear when the pipeline announces them (static/js/live.js).
  document.body.addEventListener("mh:study", function (event) {
    if (series && event.detail && String(event.detail.id) === root.dataset.study) {
      loadSeries(series.url, true);
    }
  });

  window.addEventListener("resize", function () {
    if (current()) {
      compose();
    }
  });

  if (heatToggle) {
    heatToggle.addEventListener("change", function () {
      if (current()) {
        compose();
      }
    });
  }

  toolSelect("window");
  var first = root.querySelector("[data-series='" + root.dataset.current + "']");
  if (first) {
    loadSeries(first.dataset.url, false);
  }
})();
