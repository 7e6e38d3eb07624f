// Terminal Guard HQ console: light progressive enhancement. Every page works without this file.
"use strict";

(function () {
  var LIVE_PERIOD_MS = 5000;
  var BADGE_PERIOD_MS = 15000;

  function getJSON(url, done, always) {
    var request = new XMLHttpRequest();
    request.open("GET", url);
    request.setRequestHeader("Accept", "application/json");
    request.timeout = 30000;
    request.onloadend = function () { if (always) { always(); } };
    request.onload = function () {
      if (request.status === 401) { window.location.reload(); return; }
      if (request.status === 200) {
        try { done(JSON.parse(request.responseText)); } catch (e) { /* a bad answer: try next time */ }
      }
    };
    request.send();
  }

  function every(periodMs, task) {
    task();
    window.setInterval(function () { if (!document.hidden) { task(); } }, periodMs);
  }

  function badge() {
    var live = document.body.getAttribute("data-live");
    var element = document.getElementById("open-alerts");
    if (!live || !element) { return; }
    every(BADGE_PERIOD_MS, function () {
      getJSON(live, function (data) { element.textContent = data.open > 0 ? String(data.open) : ""; });
    });
  }

  function liveQueue() {
    var table = document.getElementById("alert-queue");
    if (!table) { return; }
    var body = table.tBodies[0];
    var status = document.getElementById("live-status");
    var busy = false;  // a slow answer must not overlap the next poll (it would bring the same rows twice)
    var poll = function () {
      if (busy) { return; }
      busy = true;
      var url = table.getAttribute("data-rows") + "&after=" + encodeURIComponent(table.getAttribute("data-last"));
      getJSON(url, function (data) {
        table.setAttribute("data-last", String(data.last));
        if (data.count > 0) {
          var empty = body.querySelector(".empty-row");
          if (empty) { empty.parentNode.removeChild(empty); }
          var holder = document.createElement("tbody");
          holder.innerHTML = data.html;  // server-rendered and escaped by the same templates as the page
          var rows = Array.prototype.slice.call(holder.rows);
          var added = 0;
          for (var i = rows.length - 1; i >= 0; i--) {
            if (body.querySelector('tr[data-pk="' + rows[i].getAttribute("data-pk") + '"]')) { continue; }
            rows[i].classList.add("new");
            body.insertBefore(rows[i], body.firstChild);
            added++;
          }
          if (added) { status.textContent = added + " new alert(s) at " + new Date().toLocaleTimeString(); }
        }
      }, function () { busy = false; });
    };
    window.setInterval(function () { if (!document.hidden) { poll(); } }, LIVE_PERIOD_MS);
  }

  function confirmations() {
    document.addEventListener("submit", function (event) {
      var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
      if (message && !window.confirm(message)) { event.preventDefault(); }
    });
  }

  function selectToken() {
    var token = document.getElementById("token-value");
    if (token) { token.focus(); token.select(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    badge();
    liveQueue();
    confirmations();
    selectToken();
  });
})();
