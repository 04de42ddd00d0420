// fabline station page: time-in-state counters, errors into the flash, resuming the stream.
(function () {
  "use strict";
  function span(seconds) {
    if (seconds < 60) return Math.floor(seconds) + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
    return Math.floor(seconds / 86400) + " d " + Math.floor((seconds % 86400) / 3600) + " h";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(t)) el.textContent = span(Math.max(0, (now - t) / 1000));
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);

  // an action's answer (ok or error) goes into the flash, whatever its status
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.xhr.status >= 400) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
      evt.detail.target = document.getElementById("flash");
    }
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    var form = evt.detail.elt;
    if (evt.detail.successful && form.tagName === "FORM" && form.dataset.reset !== "no") form.reset();
  });

  // the stream's event ids: a new EventSource (after the extension gave up on the old one)
  // starts where the old one stopped, not from now
  var last = null;
  document.addEventListener("htmx:sseMessage", function (evt) {
    if (evt.detail && evt.detail.lastEventId) last = evt.detail.lastEventId;
    if (evt.detail && evt.detail.type === "reload") location.reload();
  });
  document.addEventListener("htmx:load", function () {
    if (!window.htmx || htmx.__fablineSource) return;
    htmx.__fablineSource = true;
    var make = htmx.createEventSource;
    htmx.createEventSource = function (url) {
      if (last) url += (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + encodeURIComponent(last);
      return make ? make(url) : new EventSource(url, { withCredentials: true });
    };
  });
})();
