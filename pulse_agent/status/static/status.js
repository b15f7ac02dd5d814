// Live updates for the status page (progressive enhancement: the page is complete without this).
// Listens to the page's public event feed: each finished run updates its check's state at once;
// an incident opened or resolved refreshes the incident list and the headline from the server.
(function () {
  "use strict";
  var feed = document.body.getAttribute("data-events");
  if (!feed || !window.EventSource) return;
  var TEXT = {up: "Up", degraded: "Degraded", down: "Down", maintenance: "Maintenance", not_run: "Not run yet"};
  var OVERALL = {up: "All systems operational", degraded: "Some systems degraded", down: "Some systems down",
    maintenance: "Maintenance in progress", not_run: "Waiting for the first checks"};
  var ORDER = ["down", "degraded", "maintenance", "up"];
  var live = document.getElementById("live");

  function worst(states) {
    for (var i = 0; i < ORDER.length; i++) if (states.indexOf(ORDER[i]) >= 0) return ORDER[i];
    return "not_run";
  }
  function setState(el, state) {
    el.className = el.className.replace(/\bs-\S+/, "s-" + state);
    el.setAttribute("data-state", state);
    el.textContent = TEXT[state] || state;
  }
  function recompute() {
    var all = [];
    document.querySelectorAll("section").forEach(function (section) {
      var states = [];
      section.querySelectorAll(".check .state").forEach(function (s) { states.push(s.getAttribute("data-state")); });
      all = all.concat(states);
      var badge = section.querySelector("h2 .state");
      if (badge && states.length) setState(badge, worst(states));
    });
    var overall = document.getElementById("overall"), state = worst(all);
    overall.className = "overall o-" + state;
    overall.setAttribute("data-state", state);
    overall.textContent = OVERALL[state];
  }
  function refreshSections() {
    fetch(location.pathname, {headers: {Accept: "text/html"}}).then(function (r) { return r.text(); }).then(function (text) {
      var doc = new DOMParser().parseFromString(text, "text/html");
      ["incidents", "maintenance"].forEach(function (id) {
        var fresh = doc.getElementById(id), old = document.getElementById(id);
        if (fresh && old) old.innerHTML = fresh.innerHTML;
      });
    }).catch(function () {});
  }
  function connect() {
    var source = new EventSource(feed);
    source.addEventListener("state", function (e) {
      var d = JSON.parse(e.data);
      var item = document.querySelector('.check[data-check="' + CSS.escape(d.check) + '"]');
      if (!item) return;
      var badge = item.querySelector(".state"), before = badge.getAttribute("data-state");
      setState(badge, d.state);
      var last = item.querySelector("[data-last]");
      if (last && d.ts) last.innerHTML = 'Last checked <time datetime="' + d.ts + '">' + d.ts.slice(0, 16).replace("T", " ") + " UTC</time>";
      if (before !== d.state) {
        recompute();
        live.textContent = item.querySelector("h3").textContent + " is now " + (TEXT[d.state] || d.state).toLowerCase() + ".";
      }
    });
    source.addEventListener("incident", refreshSections);
    source.onerror = function () { live.textContent = "Live updates paused; retrying."; };
    source.onopen = function () { live.textContent = "Live updates on."; };
  }
  connect();
})();
