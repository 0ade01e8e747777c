// Resumable imaging uploads: the drop zone of templates/diagnostics/_imaging.html.
// Files, whole folders (dragged, or chosen with the folder button) and ZIP archives go up in chunks by the
// protocol of diagnostics/uploads.py: create the upload (the same key finds it again), send chunks at the
// server's offset, and after a dropped connection wait, ask the server's offset and go on from there.
// When a file is stored, the study list refreshes ("mh:study" on <body>, as live.js does), and on a
// consultation page its studies are attached to the consultation.
(function () {
  "use strict";

  var KIB = 1024;
  var MIB = 1024 * KIB;
  var FIRST_CHUNK = 1 * MIB; // grown or shrunk so that a chunk takes about TARGET_MS on this link
  var MIN_CHUNK = 256 * KIB;
  var TARGET_MS = 8000;
  var STALL_MS = 45000; // no byte moved for this long: the link is gone even if the browser has not said so
  var LANES = 3; // files in flight at once: hides the latency of a slow link for folders of small files
  var NOT_IMAGES = ["dicomdir", ".ds_store", "thumbs.db", "desktop.ini"];

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function format(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return key in values ? values[key] : whole;
    });
  }

  function NetworkError() {}
  function SessionEnded() {}
  function Refused(message) {
    this.message = message;
  }

  // One request; resolves with {status, data} (data: the JSON answer or null), rejects with NetworkError.
  function send(method, url, options) {
    options = options || {};
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      var lastMove = Date.now();
      var watchdog = null;
      xhr.open(method, url);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      Object.keys(options.headers || {}).forEach(function (name) {
        xhr.setRequestHeader(name, options.headers[name]);
      });
      if (options.onProgress) {
        xhr.upload.onprogress = function (event) {
          lastMove = Date.now();
          options.onProgress(event.loaded);
        };
        xhr.upload.onload = function () {
          clearInterval(watchdog); // all sent: the server may take its time to answer
        };
        watchdog = setInterval(function () {
          if (Date.now() - lastMove > STALL_MS) {
            xhr.abort();
          }
        }, 5000);
      }
      function failed() {
        clearInterval(watchdog);
        reject(new NetworkError());
      }
      xhr.onerror = failed;
      xhr.onabort = failed;
      xhr.ontimeout = failed;
      xhr.onload = function () {
        clearInterval(watchdog);
        var data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch (error) {
          data = null;
        }
        // A signed-out session is sent to the sign-in page, which answers in HTML.
        if (xhr.responseURL.indexOf("/accounts/login/") >= 0 || (xhr.status === 200 && data === null)) {
          reject(new SessionEnded());
          return;
        }
        resolve({ status: xhr.status, data: data });
      };
      xhr.send(options.body === undefined ? null : options.body);
    });
  }

  function Uploader(root) {
    this.root = root;
    this.text = root.dataset;
    this.createUrl = root.dataset.createUrl;
    this.attachUrl = root.dataset.attachUrl || "";
    this.patient = Number(root.dataset.patient);
    this.list = root.querySelector("[data-upload-list]");
    this.overall = root.querySelector("[data-upload-overall]");
    this.bar = this.overall.querySelector("progress");
    this.percent = root.querySelector("[data-upload-percent]");
    this.queue = [];
    this.items = [];
    this.running = 0;
    this.failures = 0; // consecutive network failures, for the backoff
    this.wake = null; // resolves a backoff early when the browser says it is online again
    this.bind();
  }

  Uploader.prototype.bind = function () {
    var self = this;
    var zone = this.root.querySelector("[data-dropzone]");
    this.root.querySelectorAll("input[type=file]").forEach(function (input) {
      input.addEventListener("change", function () {
        self.add(
          Array.prototype.map.call(input.files, function (file) {
            return { file: file, path: file.webkitRelativePath || file.name };
          })
        );
        input.value = "";
      });
    });
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", function () {
      zone.classList.remove("over");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      self.dropped(event.dataTransfer);
    });
    // A file dropped beside the zone must not make the browser open it and leave the page.
    ["dragover", "drop"].forEach(function (name) {
      window.addEventListener(name, function (event) {
        if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
          event.preventDefault();
        }
      });
    });
    window.addEventListener("online", function () {
      if (self.wake) {
        self.wake();
      }
    });
    window.addEventListener("beforeunload", function (event) {
      if (self.running > 0) {
        event.preventDefault();
        event.returnValue = self.text.textBusy;
      }
    });
  };

  // Folders dropped are walked (the entries must be taken during the drop event itself).
  Uploader.prototype.dropped = function (transfer) {
    var self = this;
    var entries = [];
    if (transfer.items && transfer.items.length && transfer.items[0].webkitGetAsEntry) {
      Array.prototype.forEach.call(transfer.items, function (item) {
        var entry = item.kind === "file" ? item.webkitGetAsEntry() : null;
        if (entry) {
          entries.push(entry);
        }
      });
    }
    if (!entries.length) {
      this.add(
        Array.prototype.map.call(transfer.files, function (file) {
          return { file: file, path: file.name };
        })
      );
      return;
    }
    Promise.all(
      entries.map(function (entry) {
        return walk(entry, "");
      })
    ).then(function (lists) {
      self.add([].concat.apply([], lists));
    });
  };

  function walk(entry, prefix) {
    if (entry.isFile) {
      return new Promise(function (resolve) {
        entry.file(
          function (file) {
            resolve([{ file: file, path: prefix + file.name }]);
          },
          function () {
            resolve([]);
          }
        );
      });
    }
    if (!entry.isDirectory) {
      return Promise.resolve([]);
    }
    var reader = entry.createReader();
    var children = [];
    return new Promise(function (resolve) {
      // readEntries hands out a folder in batches (of 100 in Chromium) until it gives an empty one.
      function next() {
        reader.readEntries(
          function (batch) {
            if (!batch.length) {
              Promise.all(
                children.map(function (child) {
                  return walk(child, prefix + entry.name + "/");
                })
              ).then(function (lists) {
                resolve([].concat.apply([], lists));
              });
              return;
            }
            children = children.concat(Array.prototype.slice.call(batch));
            next();
          },
          function () {
            resolve([]);
          }
        );
      }
      next();
    });
  }

  Uploader.prototype.add = function (picked) {
    var self = this;
    picked.forEach(function (entry) {
      var item = self.row(entry);
      var base = entry.file.name.toLowerCase();
      if (NOT_IMAGES.indexOf(base) >= 0 || base.indexOf("._") === 0) {
        item.sent = item.size;
        self.show(item, "skipped", self.text.textNotImage);
        return;
      }
      self.queue.push(item);
    });
    this.overall.hidden = false;
    this.progress();
    while (this.running < LANES && this.queue.length) {
      this.running += 1;
      this.lane();
    }
  };

  Uploader.prototype.row = function (entry) {
    var li = document.createElement("li");
    li.setAttribute("data-testid", "upload-item");
    var name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = entry.path;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    var state = document.createElement("span");
    state.className = "upload-state";
    state.setAttribute("data-testid", "upload-state");
    state.textContent = this.text.textWaiting;
    var details = document.createElement("ul");
    li.append(name, document.createElement("br"), bar, " ", state, details);
    this.list.append(li);
    var item = {
      file: entry.file,
      path: entry.path,
      size: entry.file.size,
      sent: 0,
      chunk: FIRST_CHUNK,
      li: li,
      bar: bar,
      state: state,
      details: details,
    };
    this.items.push(item);
    return item;
  };

  Uploader.prototype.lane = function () {
    var self = this;
    var item = this.queue.shift();
    if (!item) {
      this.running -= 1;
      return;
    }
    this.upload(item)
      .catch(function (error) {
        if (error instanceof SessionEnded) {
          self.stopAll();
          return;
        }
        self.show(item, "failed", error instanceof Refused ? error.message : String(error));
      })
      .then(function () {
        self.lane();
      });
  };

  Uploader.prototype.stopAll = function () {
    var self = this;
    this.queue.splice(0).forEach(function (item) {
      self.show(item, "failed", self.text.textSession);
    });
    this.items.forEach(function (item) {
      if (!item.li.dataset.outcome) {
        self.show(item, "failed", self.text.textSession);
      }
    });
  };

  // A request that is retried, with a growing pause, while the link is down or the server is unwell.
  Uploader.prototype.patiently = async function (item, attempt) {
    for (;;) {
      try {
        var answer = await attempt();
        if (answer.status < 500 && answer.status !== 429 && answer.status !== 0) {
          this.failures = 0;
          return answer;
        }
      } catch (error) {
        if (!(error instanceof NetworkError)) {
          throw error;
        }
      }
      await this.backoff(item);
    }
  };

  Uploader.prototype.backoff = function (item) {
    var self = this;
    this.failures += 1;
    var seconds = Math.min(60, Math.pow(2, Math.min(this.failures, 6) - 1));
    item.state.textContent = format(this.text.textRetry, { seconds: seconds });
    return new Promise(function (resolve) {
      var timer = setTimeout(done, seconds * 1000 + Math.random() * 500);
      function done() {
        clearTimeout(timer);
        self.wake = null;
        resolve();
      }
      self.wake = done;
    });
  };

  Uploader.prototype.upload = async function (item) {
    var self = this;
    var key = [item.path, item.size, item.file.lastModified].join("|");
    var created = await this.patiently(item, function () {
      return send("POST", self.createUrl, {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: item.path, size: item.size, key: key }),
      });
    });
    if (created.status !== 200 && created.status !== 201) {
      throw new Refused((created.data && created.data.detail) || created.status);
    }
    var state = created.data;
    var ceiling = state.chunk || 8 * MIB;
    for (;;) {
      item.sent = state.offset;
      this.progress(item);
      if (state.status === "done") {
        return this.finish(item, state);
      }
      if (state.status === "storing") {
        item.state.textContent = this.text.textStoring;
        await sleep(1500);
        state = await this.ask(item, state.url);
        continue;
      }
      item.state.textContent = this.text.textSending;
      var end = Math.min(state.offset + item.chunk, state.size);
      var started = Date.now();
      var answer;
      try {
        answer = await send("PATCH", state.url, {
          headers: { "Upload-Offset": String(state.offset), "Content-Type": "application/offset+octet-stream" },
          body: item.file.slice(state.offset, end),
          onProgress: (function (offset) {
            return function (loaded) {
              item.sent = offset + loaded;
              self.progress(item);
            };
          })(state.offset),
        });
      } catch (error) {
        if (!(error instanceof NetworkError)) {
          throw error;
        }
        answer = { status: 0, data: null };
      }
      if (answer.status === 200) {
        this.failures = 0;
        this.adapt(item, end - state.offset, Date.now() - started, ceiling);
        state = answer.data;
      } else if (answer.status === 409 && answer.data && "offset" in answer.data) {
        state = answer.data; // the server's offset: go on from there
      } else if (answer.status === 0 || answer.status >= 500 || answer.status === 429) {
        item.chunk = Math.max(MIN_CHUNK, Math.floor(item.chunk / 2));
        await this.backoff(item);
        state = await this.ask(item, state.url);
      } else {
        throw new Refused((answer.data && answer.data.detail) || answer.status);
      }
    }
  };

  // After a drop: how far the server got.
  Uploader.prototype.ask = async function (item, url) {
    var answer = await this.patiently(item, function () {
      return send("GET", url);
    });
    if (answer.status !== 200) {
      throw new Refused((answer.data && answer.data.detail) || answer.status);
    }
    return answer.data;
  };

  Uploader.prototype.adapt = function (item, bytes, elapsed, ceiling) {
    var fitting = Math.floor((bytes / Math.max(elapsed, 1)) * TARGET_MS);
    item.chunk = Math.max(MIN_CHUNK, Math.min(ceiling, fitting, item.chunk * 4));
  };

  Uploader.prototype.finish = async function (item, state) {
    var self = this;
    var results = state.results || [];
    var counts = { stored: 0, already: 0, refused: 0, skipped: 0 };
    results.forEach(function (result) {
      counts[result.outcome] = (counts[result.outcome] || 0) + 1;
    });
    item.sent = item.size;
    this.progress(item);
    if (results.length === 1 && results[0].name === state.name) {
      this.show(item, results[0].outcome, results[0].message);
    } else {
      var outcome = counts.refused && !counts.stored && !counts.already ? "refused" : "stored";
      this.show(item, outcome, format(this.text.textSummary, counts));
      results.forEach(function (result) {
        if (result.outcome === "refused" || result.outcome === "skipped") {
          var li = document.createElement("li");
          li.className = result.outcome;
          li.setAttribute("data-testid", "upload-entry");
          li.textContent = result.name + " — " + result.message;
          item.details.append(li);
        }
      });
    }
    var studies = state.studies || [];
    if (studies.length && this.attachUrl) {
      var body = new URLSearchParams();
      studies.forEach(function (study) {
        body.append("study", study);
      });
      try {
        var attached = await this.patiently(item, function () {
          return send("POST", self.attachUrl, {
            headers: { "Content-Type": "application/x-www-form-urlencoded" },
            body: body.toString(),
          });
        });
        if (attached.status !== 200) {
          this.note(item, this.text.textAttachFailed + ": " + ((attached.data && attached.data.detail) || attached.status));
        }
      } catch (error) {
        if (error instanceof SessionEnded) {
          throw error;
        }
      }
    }
    if (studies.length) {
      document.body.dispatchEvent(
        new CustomEvent("mh:study", { detail: { kind: "study", id: studies[0], patient: this.patient } })
      );
    }
  };

  Uploader.prototype.show = function (item, outcome, message) {
    item.li.dataset.outcome = outcome;
    item.li.className = "done-" + outcome;
    var label = {
      stored: this.text.textStored,
      already: this.text.textAlready,
      refused: this.text.textRefused,
      skipped: this.text.textSkipped,
      failed: this.text.textFailed,
    }[outcome];
    item.state.textContent = (label || outcome) + (message ? ": " + message : "");
    if (outcome === "failed") {
      item.sent = item.size; // nothing more will move: count it as gone through for the overall bar
    }
    this.progress(item);
  };

  Uploader.prototype.note = function (item, message) {
    var li = document.createElement("li");
    li.className = "refused";
    li.textContent = message;
    item.details.append(li);
  };

  Uploader.prototype.progress = function (item) {
    if (item) {
      item.bar.value = item.size ? Math.floor((100 * item.sent) / item.size) : 100;
    }
    var total = 0;
    var sent = 0;
    this.items.forEach(function (one) {
      total += one.size;
      sent += Math.min(one.sent, one.size);
    });
    var percent = total ? Math.floor((100 * sent) / total) : 100;
    // 100% only once every file has its answer, not when the last byte has left.
    var waiting = this.items.some(function (one) {
      return !one.li.dataset.outcome;
    });
    if (waiting && percent === 100) {
      percent = 99;
    }
    this.bar.value = percent;
    this.percent.textContent = percent + "%";
  };

  document.querySelectorAll("[data-upload]").forEach(function (root) {
    new Uploader(root);
  });
})();
