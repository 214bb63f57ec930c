/*
 * iceprobe serve: the customer's page. It fetches its configuration, gathers ICE candidates
 * with one RTCPeerConnection per server URL (policy "all", and "relay" for TURN URLs), checks
 * data through each TURN server that gave a relay, uploads the recording (iceprobe event log
 * version 2, docs/recordings.md) and says in plain words what the network allows.
 *
 * No credential ever enters the recording: config records carry the URL only. Every string
 * shown comes in through textContent.
 */
(function () {
  "use strict";

  var base = location.pathname.replace(/\/+$/, "");
  var CONFIG_URL = base + "/config";
  var UPLOAD_URL = base + "/upload";
  var ECHOES = 10;
  var ECHO_GAP_MS = 50;
  var MAX_EVENTS = 5000;

  var state = {running: false, recording: null, downloadUrl: null, permission: "not-asked",
               run: 0, microphone: null};

  function $(id) {
    return document.getElementById(id);
  }

  function say(id, text) {
    $(id).textContent = text;
  }

  function now() {
    return Math.round(performance.timeOrigin + performance.now());
  }

  // --- What the browser is ---------------------------------------------------------------

  function browserName() {
    var data = navigator.userAgentData;
    if (data && Array.isArray(data.brands)) {
      var names = data.brands.filter(function (b) {
        return b && typeof b.brand === "string" && b.brand.toLowerCase().indexOf("brand") < 0;
      }).map(function (b) { return b.brand + " " + b.version; });
      var named = names.filter(function (n) { return n.indexOf("Chromium ") !== 0; });
      if (named.length || names.length) {
        return (named.length ? named : names).join(", ");
      }
    }
    var ua = navigator.userAgent;
    var patterns = [[/Firefox\/([\d.]+)/, "Firefox"], [/Edg\/([\d.]+)/, "Edge"],
                    [/Chrome\/([\d.]+)/, "Chrome"], [/Version\/([\d.]+).*Safari/, "Safari"]];
    for (var i = 0; i < patterns.length; i++) {
      var match = patterns[i][0].exec(ua);
      if (match) {
        return patterns[i][1] + " " + match[1];
      }
    }
    return null;
  }

  function kindOf(url) {
    return /^turns?:/i.test(url) ? "turn" : "stun";
  }

  function transportOf(url) {
    if (/^turns:/i.test(url)) {
      return "tls";
    }
    var match = /[?&]transport=(\w+)/i.exec(url);
    return match ? match[1].toLowerCase() : "udp";
  }

  function portOf(url) {
    var rest = url.replace(/^[a-z]+:/i, "").split("?")[0];
    var match = /:(\d+)$/.exec(rest);
    if (match) {
      return Number(match[1]);
    }
    return /^(turns|stuns):/i.test(url) ? 5349 : 3478;
  }

  // --- Gathering against one server --------------------------------------------------------

  function Recorder() {
    this.events = [];
    this.mdns = false;
  }

  Recorder.prototype.add = function (record) {
    if (this.events.length < MAX_EVENTS) {
      this.events.push(record);
    }
  };

  function gatherOne(recorder, server, policy, pcId, deadlineMs, onDone) {
    var wanted = server.kind === "turn" ? "relay" : "srflx";
    var seen = {candidate: false, error: false};
    var finished = false;
    var pc = null;
    var timer = null;
    var result = {pc: pcId, url: server.url, policy: policy, outcome: null, relay: false};

    function finish(outcome) {
      if (finished) {
        return;
      }
      finished = true;
      clearTimeout(timer);
      result.outcome = outcome;
      recorder.add({type: "outcome", t: now(), pc: pcId, url: server.url, outcome: outcome});
      if (pc) {
        try { pc.close(); } catch (ignored) { /* already closed */ }
      }
      onDone(result);
    }

    recorder.add({type: "config", t: now(), pc: pcId, iceServers: [server.url],
                  iceTransportPolicy: policy});
    var iceServer = {urls: server.url};
    if (server.username !== null && server.username !== undefined) {
      iceServer.username = server.username;
    }
    if (server.credential !== null && server.credential !== undefined) {
      iceServer.credential = server.credential;
    }
    try {
      pc = new RTCPeerConnection({iceServers: [iceServer], iceTransportPolicy: policy});
    } catch (error) {
      recorder.add({type: "outcome", t: now(), pc: pcId, url: server.url, outcome: "error",
                    failure: String(error && error.name || error)});
      finished = true;
      result.outcome = "error";
      onDone(result);
      return;
    }
    pc.addEventListener("icecandidate", function (event) {
      var c = event.candidate;
      if (!c || !c.candidate) {
        recorder.add({type: "icecandidate", t: now(), pc: pcId, candidate: null, url: null,
                      relayProtocol: null});
        return;
      }
      var url = event.url || c.url || null;
      recorder.add({type: "icecandidate", t: now(), pc: pcId, candidate: c.candidate,
                    url: url, relayProtocol: c.relayProtocol || null});
      var type = c.type || (/ typ (\w+)/.exec(c.candidate) || [])[1];
      if (type === "host" && /\.local$/i.test(c.address || "")) {
        recorder.mdns = true;
      }
      if (type === wanted) {
        seen.candidate = true;
        if (type === "relay") {
          result.relay = true;
        }
      }
    });
    pc.addEventListener("icecandidateerror", function (event) {
      seen.error = true;
      recorder.add({type: "icecandidateerror", t: now(), pc: pcId,
                    url: event.url || server.url, address: event.address || null,
                    port: typeof event.port === "number" ? event.port : null,
                    errorCode: event.errorCode, errorText: event.errorText || ""});
    });
    ["icegatheringstatechange", "iceconnectionstatechange", "connectionstatechange"]
      .forEach(function (name) {
        pc.addEventListener(name, function () {
          var value = name === "icegatheringstatechange" ? pc.iceGatheringState :
            name === "iceconnectionstatechange" ? pc.iceConnectionState : pc.connectionState;
          recorder.add({type: name, t: now(), pc: pcId, state: value});
          if (name === "icegatheringstatechange" && value === "complete") {
            finish(seen.candidate ? "candidate" : seen.error ? "error"
              : "complete-without-candidate");
          }
        });
      });
    pc.createDataChannel("iceprobe");
    pc.createOffer().then(function (offer) {
      timer = setTimeout(function () {
        finish(seen.candidate ? "candidate" : seen.error ? "error" : "deadline");
      }, deadlineMs);
      return pc.setLocalDescription(offer);
    }).catch(function (error) {
      recorder.add({type: "outcome", t: now(), pc: pcId, url: server.url, outcome: "error",
                    failure: String(error && error.name || error)});
      finished = true;
      result.outcome = "error";
      clearTimeout(timer);
      onDone(result);
    });
  }

  // --- Data through a relay: two relay-only peer connections in this page ------------------

  function relayCheck(server, budgetMs) {
    return new Promise(function (resolve) {
      var iceServer = {urls: server.url, username: server.username,
                       credential: server.credential};
      var config = {iceServers: [iceServer], iceTransportPolicy: "relay"};
      var started = performance.now();
      var report = {type: "relaycheck", t: now(), url: server.url, ok: false,
                    ice_ms: null, connected_ms: null, duration_ms: null, rtt_ms: [],
                    sent: 0, received: 0, step: null, failure: null};
      var a, b;
      var done = false;
      // At the deadline: what the echoes gave so far, once the channel is open; else a
      // failure.
      var timer = setTimeout(function () {
        end(report.connected_ms !== null ? null : "no connection within the page's deadline");
      }, budgetMs);
      var sentAt = {};

      function end(failure, step) {
        if (done) {
          return;
        }
        done = true;
        clearTimeout(timer);
        report.failure = failure;
        report.ok = failure === null && report.received > 0;
        report.duration_ms = Math.round(performance.now() - started);
        if (!report.ok) {
          // The first step that did not complete: ICE between the two relays, then DTLS,
          // then the data channel, then the echoes.
          report.step = step || (report.connected_ms !== null ? "echo"
            : report.ice_ms === null ? "ice"
            : a && a.connectionState === "connected" ? "channel" : "dtls");
          report.failure = failure || "no echo came back";
        }
        [a, b].forEach(function (pc) {
          if (pc) {
            try { pc.close(); } catch (ignored) { /* already closed */ }
          }
        });
        resolve(report);
      }

      try {
        a = new RTCPeerConnection(config);
        b = new RTCPeerConnection(config);
      } catch (error) {
        end(String(error && error.name || error), "setup");
        return;
      }
      a.addEventListener("iceconnectionstatechange", function () {
        var state = a.iceConnectionState;
        if (report.ice_ms === null && (state === "connected" || state === "completed")) {
          report.ice_ms = Math.round(performance.now() - started);
        }
      });
      a.addEventListener("icecandidate", function (e) {
        if (e.candidate) { b.addIceCandidate(e.candidate).catch(function () {}); }
      });
      b.addEventListener("icecandidate", function (e) {
        if (e.candidate) { a.addIceCandidate(e.candidate).catch(function () {}); }
      });
      b.addEventListener("datachannel", function (e) {
        e.channel.addEventListener("message", function (m) { e.channel.send(m.data); });
      });
      var channel = a.createDataChannel("echo", {ordered: false, maxRetransmits: 0});
      channel.addEventListener("open", function () {
        report.connected_ms = Math.round(performance.now() - started);
        var sequence = 0;
        var sender = setInterval(function () {
          if (done || sequence >= ECHOES) {
            clearInterval(sender);
            if (!done) {
              setTimeout(function () { end(null); }, 500);
            }
            return;
          }
          sentAt[sequence] = performance.now();
          channel.send(String(sequence));
          sequence += 1;
          report.sent = sequence;
        }, ECHO_GAP_MS);
      });
      channel.addEventListener("message", function (m) {
        var at = sentAt[m.data];
        if (at !== undefined) {
          delete sentAt[m.data];
          report.received += 1;
          report.rtt_ms.push(Math.round((performance.now() - at) * 10) / 10);
        }
      });
      a.createOffer()
        .then(function (offer) { return a.setLocalDescription(offer); })
        .then(function () { return b.setRemoteDescription(a.localDescription); })
        .then(function () { return b.createAnswer(); })
        .then(function (answer) { return b.setLocalDescription(answer); })
        .then(function () { return a.setRemoteDescription(b.localDescription); })
        .catch(function (error) { end(String(error && error.name || error), "setup"); });
    });
  }

  // --- Plain words -----------------------------------------------------------------------

  function verdict(results, checks) {
    var udp = false, tcp = false, tls = [];
    results.forEach(function (r) {
      if (r.outcome !== "candidate") {
        return;
      }
      var transport = transportOf(r.url);
      if (kindOf(r.url) === "stun" || transport === "udp") {
        udp = true;
      } else if (transport === "tcp") {
        tcp = true;
      } else {
        tls.push(portOf(r.url));
      }
    });
    var relayOk = checks.some(function (c) { return c.ok; });
    var relayTried = checks.length > 0;
    var extra = relayTried ? (relayOk ? " Data passed through our relay."
      : " But no data passed through our relay.") : "";
    // A TURN server that answered with an error (a refused password, a full server) is
    // our side's problem, not the customer's network: say so rather than "all is well".
    var refused = results.some(function (r) {
      return kindOf(r.url) === "turn" && r.outcome === "error";
    });
    var ours = refused ? " One of our relay servers refused the test: that is on our side, " +
      "and support can see why in the result." : "";
    if (udp) {
      return {level: refused ? "limited" : "good",
              headline: "Your network can reach our media servers over UDP.",
              text: (refused ? "" : "Calls should work normally.") + extra + ours};
    }
    if (tcp) {
      return {level: "limited", headline: "Your network can reach our media servers only over TCP.",
              text: "Calls will work, perhaps with a little more delay." + extra + ours};
    }
    if (tls.length) {
      return {level: "limited",
              headline: "Your network can reach our media servers only over TLS on port " +
                tls[0] + ".",
              text: "Calls will work, perhaps with more delay." + extra + ours};
    }
    return {level: "bad",
            headline: "Your network cannot reach our media servers at all: please send this code to support.",
            text: "Support can see what was blocked from the recording of this test."};
  }

  function describe(result) {
    var how = result.policy === "relay" ? " (relay only)" : "";
    var words = {candidate: "reached", error: "answered with an error",
                 deadline: "no answer", "complete-without-candidate": "no address"};
    return result.url + how + ": " + (words[result.outcome] || "testing…");
  }

  // --- The run ---------------------------------------------------------------------------

  function fetchJson(url, options) {
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (ignored) { body = null; }
        if (!response.ok) {
          var reason = body && typeof body.error === "string" ? body.error
            : "the server answered " + response.status;
          throw new Error(reason);
        }
        return body;
      });
    });
  }

  function setLevel(level) {
    document.body.classList.remove("good", "limited", "bad", "failed");
    if (level) {
      document.body.classList.add(level);
    }
  }

  function run() {
    if (state.running) {
      return Promise.resolve();
    }
    state.running = true;
    state.run += 1;
    $("microphone").disabled = true;
    setLevel(null);
    say("headline", "Testing your network…");
    say("progress", "Fetching the test settings…");
    $("code-card").hidden = true;
    var started = now();
    return fetchJson(CONFIG_URL, {cache: "no-store", credentials: "same-origin"})
      .then(function (config) { return test(config, started); })
      .catch(function (error) {
        setLevel("failed");
        say("headline", "The test could not run");
        say("summary", String(error && error.message || error));
        say("progress", "Stopped: " + String(error && error.message || error));
      })
      .then(function () {
        state.running = false;
        releaseMicrophone();
        $("microphone").disabled = state.permission === "granted";
      });
  }

  function test(config, started) {
    var deadlineMs = Math.max(1000, Number(config.deadline_ms) || 8000);
    var servers = (config.servers || []).map(function (s) {
      return {url: String(s.url), kind: s.kind === "turn" ? "turn" : kindOf(String(s.url)),
              username: s.username, credential: s.credential};
    });
    var recorder = new Recorder();
    var jobs = [];
    servers.forEach(function (server) {
      jobs.push({server: server, policy: "all"});
      if (server.kind === "turn") {
        jobs.push({server: server, policy: "relay"});
      }
    });
    var list = $("servers");
    while (list.firstChild) {
      list.removeChild(list.firstChild);
    }
    var items = jobs.map(function (job) {
      var item = document.createElement("li");
      item.textContent = describe({url: job.server.url, policy: job.policy, outcome: null});
      list.appendChild(item);
      return item;
    });
    var bar = $("bar");
    bar.max = jobs.length + 1;
    bar.value = 0;
    say("progress", "Testing " + jobs.length + " connection" + (jobs.length === 1 ? "" : "s") +
        " to " + servers.length + " server" + (servers.length === 1 ? "" : "s") + "…");
    var finished = 0;
    // A TURN server whose relay-only run got its relay is checked for data at once, while
    // the other servers may still be waiting for their deadline.
    var checking = [];
    var gathered = jobs.map(function (job, index) {
      return new Promise(function (resolve) {
        gatherOne(recorder, job.server, job.policy, "pc-" + (index + 1), deadlineMs,
          function (result) {
            finished += 1;
            bar.value = finished;
            items[index].textContent = describe(result);
            items[index].className = result.outcome === "candidate" ? "ok" : "not-ok";
            say("progress", "Tested " + finished + " of " + jobs.length + " connections.");
            if (job.policy === "relay" && result.relay) {
              checking.push(relayCheck(job.server, deadlineMs));
            }
            resolve(result);
          });
      });
    });
    return Promise.all(gathered).then(function (results) {
      var early = verdict(results, []);
      say("headline", early.headline);
      say("progress", checking.length ? "Checking that data passes through the relay…"
        : "Sending the result…");
      return Promise.all(checking).then(function (checks) {
        checks.forEach(function (c) { recorder.add(c); });
        return finish(config, recorder, results, checks, started, deadlineMs);
      });
    });
  }

  function finish(config, recorder, results, checks, started, deadlineMs) {
    var plain = verdict(results, checks);
    var recording = {
      format: "iceprobe-events", version: 2, upload_id: String(config.upload_id || ""),
      page: {userAgent: navigator.userAgent, browser: browserName(), deadline_ms: deadlineMs,
             permission: state.permission, mdns: recorder.mdns, started_at: started,
             result: {level: plain.level, headline: plain.headline}},
      events: recorder.events,
    };
    state.recording = JSON.stringify(recording);
    offerDownload();
    setLevel(plain.level);
    say("headline", plain.headline);
    say("summary", plain.text.trim());
    $("bar").value = $("bar").max;
    say("progress", "Sending the result…");
    return fetchJson(UPLOAD_URL, {method: "POST", credentials: "same-origin",
                                  headers: {"Content-Type": "application/json"},
                                  body: state.recording})
      .then(function (answer) {
        $("code-card").hidden = false;
        say("code", answer && typeof answer.code === "string" ? answer.code : "—");
        say("upload-note", answer && typeof answer.message === "string" ? answer.message : "");
        say("progress", "Done. The result was sent to support.");
        document.title = "Network test: done";
      })
      .catch(function (error) {
        $("code-card").hidden = false;
        say("code", "not sent");
        say("upload-note", "The result could not be sent (" +
            String(error && error.message || error) +
            "). Please download the recording and send it to support by mail.");
        say("progress", "Done, but the result could not be sent.");
        document.title = "Network test: not sent";
      });
  }

  function offerDownload() {
    if (state.downloadUrl) {
      URL.revokeObjectURL(state.downloadUrl);
    }
    state.downloadUrl = URL.createObjectURL(new Blob([state.recording],
                                                     {type: "application/json"}));
    $("download").disabled = false;
  }

  function download() {
    if (!state.downloadUrl) {
      return;
    }
    var link = document.createElement("a");
    link.href = state.downloadUrl;
    link.download = "network-test.json";
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    say("more-note", "The recording was saved as network-test.json.");
  }

  function releaseMicrophone() {
    if (state.microphone) {
      state.microphone.getTracks().forEach(function (track) { track.stop(); });
      state.microphone = null;
    }
  }

  function askMicrophone() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("more-note", "This browser cannot use a microphone here (the page needs HTTPS).");
      return Promise.resolve();
    }
    return navigator.mediaDevices.getUserMedia({audio: true}).then(function (stream) {
      state.permission = "granted";
      // Kept open until the run ends: Firefox shows the real host addresses only while
      // the page captures (or the permission was remembered); Chromium once it is granted.
      releaseMicrophone();
      state.microphone = stream;
      say("more-note", "Thank you. Testing again with the microphone allowed…");
    }).catch(function () {
      state.permission = "denied";
      say("more-note", "The microphone was not allowed; that is fine, the test still works.");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("download").addEventListener("click", download);
    $("microphone").addEventListener("click", function () {
      askMicrophone().then(run);
    });
    // A link ending in #microphone asks for the microphone before the first run.
    var first = location.hash === "#microphone" ? askMicrophone() : Promise.resolve();
    first.then(run);
  });
}());
