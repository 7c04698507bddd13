// Live cells and the log viewer. Pages work without this file; it only adds liveness.
"use strict";
document.documentElement.classList.add("has-js");
document.addEventListener("DOMContentLoaded", function () {
  document.body.classList.add("has-js");
  var ids = document.body.dataset.liveBuilders;
  if (ids && window.EventSource) live(ids);
  var bar = document.getElementById("logbar");
  if (bar) logViewer(bar, document.getElementById("log"));
});

// Browsers allow six connections per host: a page kept in the back-forward cache must not
// hold its stream, or a few pages later navigation stalls. Closed on pagehide, reopened on
// pageshow.
function live(ids) {
  var es = null;
  function open() {
    es = new EventSource("/pages/events?builders=" + encodeURIComponent(ids));
    es.addEventListener("cell", function (e) {
      var m = JSON.parse(e.data), tpl = document.createElement("template");
      tpl.innerHTML = m.html.trim();
      document.querySelectorAll('[data-cell="' + m.id + '"]').forEach(function (el) {
        el.replaceWith(tpl.content.firstElementChild.cloneNode(true));
      });
    });
    // A new build needs a row the page lacks: fetch the page once and swap <main>, unless
    // the reader is typing into a form on it.
    var refreshing = false;
    es.addEventListener("rows", function () {
      var focused = document.activeElement, main = document.querySelector("main");
      if (refreshing || !document.body.hasAttribute("data-live-rows") || !main) return;
      if (focused && main.contains(focused) && /^(INPUT|SELECT|TEXTAREA)$/.test(focused.tagName)) return;
      refreshing = true;
      fetch(location.href, { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        var fresh = html && new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var old = document.querySelector("main");
        if (fresh && old) old.replaceWith(document.adoptNode(fresh));
      }).finally(function () { refreshing = false; });
    });
  }
  open();
  window.addEventListener("pagehide", function () { if (es) { es.close(); es = null; } });
  window.addEventListener("pageshow", function (e) { if (e.persisted && !es) open(); });
}

function logViewer(bar, pre) {
  var id = bar.dataset.log, total = +bar.dataset.lines, busy = false, follow = null;
  function lineEl(l) {
    var s = document.createElement("span");
    s.className = "line " + l.s; s.id = "L" + l.n; s.dataset.n = l.n; s.innerHTML = l.h;
    return s;
  }
  function bounds() {
    var all = pre.querySelectorAll(".line");
    return all.length ? [+all[0].dataset.n, +all[all.length - 1].dataset.n] : [0, -1];
  }
  function load(first, count, where) {
    if (busy) return Promise.resolve(); busy = true;
    return fetch("/pages/logs/" + id + "/lines?first=" + first + "&count=" + count).then(function (r) { return r.json(); }).then(function (d) {
      total = d.num_lines; var frag = document.createDocumentFragment();
      d.lines.forEach(function (l) { frag.appendChild(lineEl(l)); frag.appendChild(document.createTextNode("\n")); });
      if (where === "replace") { pre.textContent = ""; pre.appendChild(frag); }
      else if (where === "before") { var h = pre.scrollHeight; pre.insertBefore(frag, pre.firstChild); pre.scrollTop += pre.scrollHeight - h; }
      else pre.appendChild(frag);
    }).finally(function () { busy = false; });
  }
  pre.addEventListener("scroll", function () {
    var b = bounds();
    if (pre.scrollTop + pre.clientHeight > pre.scrollHeight - 200 && b[1] + 1 < total) load(b[1] + 1, 500, "after");
    else if (pre.scrollTop < 100 && b[0] > 0) { var f = Math.max(0, b[0] - 500); load(f, b[0] - f, "before"); }
  });
  function show(n) {
    return load(Math.max(0, n - 100), 500, "replace").then(function () {
      var el = document.getElementById("L" + n);
      pre.querySelectorAll(".hit").forEach(function (h) { h.classList.remove("hit"); });
      if (el) { el.classList.add("hit"); pre.scrollTop = el.offsetTop - pre.offsetTop - 60; }
    });
  }
  function search(query, from) {
    return fetch("/pages/logs/" + id + "/search?" + query + "&from=" + from).then(function (r) { return r.json(); }).then(function (d) {
      if (d.line !== null) return show(d.line);
      if (d.next !== null) return search(query, d.next);
      bar.querySelector("span").textContent = total + " lines · not found";
    });
  }
  document.getElementById("logsearch").addEventListener("submit", function (e) {
    e.preventDefault(); var b = pre.querySelector(".hit");
    search("q=" + encodeURIComponent(document.getElementById("logq").value), b ? +b.dataset.n + 1 : 0);
  });
  document.getElementById("firsterror").addEventListener("click", function () { search("errors=1", 0); });
  var box = document.getElementById("follow");
  function setFollow() {
    if (follow) { follow.close(); follow = null; }
    if (!box.checked || bar.dataset.complete === "true") return;
    follow = new EventSource("/pages/logs/" + id + "/follow?from=" + (bounds()[1] + 1));
    follow.addEventListener("lines", function (e) {
      var d = JSON.parse(e.data), atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
      if (bounds()[1] + 1 !== d.first) return;
      d.lines.forEach(function (l) { pre.appendChild(lineEl(l)); pre.appendChild(document.createTextNode("\n")); });
      total = d.num_lines; bar.querySelector("span").textContent = total + " lines, still running";
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
    follow.addEventListener("done", function () { follow.close(); bar.querySelector("span").textContent = total + " lines"; });
  }
  box.addEventListener("change", setFollow);
  window.addEventListener("pagehide", function () { if (follow) { follow.close(); follow = null; } });
  if (bounds()[1] + 1 >= total) setFollow();
}
