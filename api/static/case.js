// The case page follows the case: every few seconds it asks for the case's version and, when the
// system or a colleague has moved the case, shows the new state — at once when nothing is being
// typed on the page, else as a note with a link, so no half-filled form is lost.
(function () {
  "use strict";
  var meta = document.querySelector("meta[name=case-version]");
  if (!meta) { return; }
  var number = meta.getAttribute("data-number");
  var seen = meta.getAttribute("content");
  var dirty = false;
  document.addEventListener("input", function () { dirty = true; });
  var every = Number(document.documentElement.getAttribute("data-poll-ms")) || 3000;
  function look() {
    fetch("/ui/cases/" + encodeURIComponent(number) + "/version", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || String(body.version) === seen) { return; }
        if (dirty) {
          document.getElementById("live-note").hidden = false;
          return;
        }
        window.location.replace("/ui/cases/" + encodeURIComponent(number));
      })
      .catch(function () { /* offline for a moment: look again next time */ });
  }
  window.setInterval(look, every);
})();
