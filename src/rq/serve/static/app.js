// rq serve: small hand-written enhancements. Every page works without this file.
// - search as you type: the results part of the same server-rendered page is swapped in;
// - "mark read" / "mark unread" post in place and the list is redrawn from the server's answer;
// - the map's search box highlights the points whose resources match.
// Server HTML is escaped by the templates; text from the API is set with textContent only.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="rq-csrf"]') || {}).content || "";

  function partial(url, options) {
    options = options || {};
    options.headers = Object.assign({"X-Rq-Partial": "1"}, options.headers || {});
    options.credentials = "same-origin";
    return fetch(url, options).then(function (r) { return r.text(); });
  }

  // ---- search as you type
  var form = document.getElementById("search");
  var results = document.getElementById("results");
  if (form && results) {
    var timer = null, asked = 0;
    var run = function () {
      var query = new URLSearchParams(new FormData(form));
      if (!query.get("q").trim()) { return; }
      var url = "/?" + query.toString();
      var mine = ++asked;
      partial(url).then(function (html) {
        if (mine !== asked) { return; }  // a later keystroke has asked again
        results.innerHTML = html;
        history.replaceState(null, "", url);
      });
    };
    form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 180); });
    form.addEventListener("change", function () { clearTimeout(timer); run(); });
  }

  // ---- mark read / unread in place
  document.addEventListener("submit", function (event) {
    var mark = event.target;
    if (!mark.classList || !mark.classList.contains("mark")) { return; }
    event.preventDefault();
    var body = new URLSearchParams(new FormData(mark));
    var list = document.getElementById("next-list");
    var button = mark.querySelector("button");
    if (button) { button.disabled = true; }
    // The server answers with a redirect to this page; asked as a partial it sends only the list.
    partial("/mark", {method: "POST", body: body, headers: {"X-Rq-CSRF": csrf}}).then(function (html) {
      if (list) { list.innerHTML = html; } else { location.reload(); }
    });
  });

  // ---- the map: highlight matching points
  var mapForm = document.getElementById("map-search");
  var frame = document.getElementById("map");
  if (mapForm && frame) {
    var box = document.getElementById("map-q"), count = document.getElementById("map-count");
    var highlight = function () {
      var doc = frame.contentDocument;
      var q = box.value.trim();
      if (!doc) { return; }
      var paint = function (titles) {
        var found = 0;
        doc.querySelectorAll("svg circle").forEach(function (c) {
          var hit = titles !== null && titles.has(c.dataset.t);
          c.style.opacity = titles === null || hit ? "" : "0.15";
          c.setAttribute("r", hit ? "9" : "5.5");
          c.style.strokeWidth = hit ? "3" : "";
          if (hit) { found++; }
        });
        count.textContent = titles === null ? "" : found + " matching points";
      };
      if (!q) { paint(null); return; }
      fetch("/api/search?" + new URLSearchParams({q: q, n: "20"}), {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          if (box.value.trim() !== q) { return; }
          paint(new Set((answer.results || []).map(function (h) { return h.title; })));
        });
    };
    var wait = null;
    box.addEventListener("input", function () { clearTimeout(wait); wait = setTimeout(highlight, 200); });
    mapForm.addEventListener("submit", function (event) { event.preventDefault(); highlight(); });
  }
})();
