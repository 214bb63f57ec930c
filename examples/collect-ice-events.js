/*
 * collect-ice-events.js — record what ICE does in your web app, for `iceprobe analyze`.
 *
 * Include it before your app creates any RTCPeerConnection:
 *
 *     <script src="collect-ice-events.js"></script>
 *
 * It wraps window.RTCPeerConnection (your code does not change) and records, for every peer
 * connection: its ICE server URLs and iceTransportPolicy (never usernames or credentials),
 * every icecandidate and icecandidateerror event, and the gathering, ICE and connection
 * state changes, each with a timestamp. Nothing leaves the page by itself.
 *
 * When a user reports a problem, get the recording with
 *
 *     window.iceprobeEvents.download();          // saves ice-events.json
 *     window.iceprobeEvents.dump();              // or: the same JSON as a string
 *
 * (from a "report a problem" button, or typed into the browser console), and have them send
 * you the file. Then: `iceprobe analyze ice-events.json`.
 *
 * The format is iceprobe's event log, version 1 (documented in iceprobe's README):
 * {"format": "iceprobe-events", "version": 1, "events": [RECORD, ...]}; every RECORD has
 * `type`, `t` (epoch milliseconds) and `pc` (a peer connection id, "pc-1", "pc-2", …).
 */
(function () {
  "use strict";
  var Original = window.RTCPeerConnection;
  if (!Original || Original.iceprobeWrapped) return;

  var MAX_EVENTS = 5000; // keep memory bounded on long calls
  var events = [];
  var count = 0;

  function now() {
    return Math.round(performance.timeOrigin + performance.now());
  }

  function push(record) {
    if (events.length < MAX_EVENTS) events.push(record);
  }

  function serverUrls(configuration) {
    var urls = [];
    ((configuration && configuration.iceServers) || []).forEach(function (server) {
      var list = server.urls || server.url || [];
      (Array.isArray(list) ? list : [list]).forEach(function (url) {
        urls.push(String(url)); // URLs only: username and credential are never copied
      });
    });
    return urls;
  }

  function Wrapped(configuration, constraints) {
    var pc = new Original(configuration, constraints);
    var id = "pc-" + (++count);
    push({
      type: "config", t: now(), pc: id,
      iceServers: serverUrls(configuration),
      iceTransportPolicy: (configuration && configuration.iceTransportPolicy) || "all",
      page: location.origin + location.pathname, // no query string: it may hold tokens
      userAgent: navigator.userAgent
    });

    pc.addEventListener("icecandidate", function (event) {
      var candidate = event.candidate;
      push({
        type: "icecandidate", t: now(), pc: id,
        candidate: candidate ? candidate.candidate : null,
        url: (candidate && candidate.url) || event.url || null,
        relayProtocol: (candidate && candidate.relayProtocol) || null
      });
    });

    pc.addEventListener("icecandidateerror", function (event) {
      push({
        type: "icecandidateerror", t: now(), pc: id,
        url: event.url || "",
        address: event.address || null,
        port: event.port || null,
        errorCode: event.errorCode,
        errorText: event.errorText || ""
      });
    });

    [["icegatheringstatechange", "iceGatheringState"],
     ["iceconnectionstatechange", "iceConnectionState"],
     ["connectionstatechange", "connectionState"]].forEach(function (pair) {
      pc.addEventListener(pair[0], function () {
        push({type: pair[0], t: now(), pc: id, state: pc[pair[1]]});
      });
    });
    return pc;
  }

  Wrapped.prototype = Original.prototype;
  Object.setPrototypeOf(Wrapped, Original); // keeps static methods (generateCertificate)
  Wrapped.iceprobeWrapped = true;
  window.RTCPeerConnection = Wrapped;

  function dump() {
    return JSON.stringify({format: "iceprobe-events", version: 1, events: events});
  }

  window.iceprobeEvents = {
    dump: dump,
    download: function (filename) {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([dump()], {type: "application/json"}));
      link.download = filename || "ice-events.json";
      document.body.appendChild(link);
      link.click();
      setTimeout(function () {
        URL.revokeObjectURL(link.href);
        link.remove();
      }, 0);
    },
    clear: function () {
      events = [];
    }
  };
})();
