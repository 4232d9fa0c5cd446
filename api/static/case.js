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

// Scanned pages reorder by drag: dropping a page on another puts it there and sends the slot's
// new order (the ↑ buttons send the same form without a mouse).
(function () {
  "use strict";
  var dragged = null;
  document.querySelectorAll(".thumbs figure.page[draggable=true]").forEach(function (fig) {
    fig.addEventListener("dragstart", function (e) { dragged = fig; e.dataTransfer.effectAllowed = "move"; });
    fig.addEventListener("dragover", function (e) { if (dragged && dragged.parentNode === fig.parentNode) { e.preventDefault(); } });
    fig.addEventListener("drop", function (e) {
      e.preventDefault();
      if (!dragged || dragged === fig || dragged.parentNode !== fig.parentNode) { return; }
      var strip = fig.parentNode;
      var figs = Array.prototype.slice.call(strip.children);
      strip.insertBefore(dragged, figs.indexOf(dragged) < figs.indexOf(fig) ? fig.nextSibling : fig);
      var order = Array.prototype.map.call(strip.querySelectorAll("figure.page"), function (f) { return f.getAttribute("data-page"); });
      var form = document.querySelector("form.drag-order[data-material='" + strip.getAttribute("data-material") + "']");
      form.querySelector("input[name=order]").value = order.join(",");
      form.submit();
    });
  });
})();

// The chosen file's name beside the picker.
(function () {
  "use strict";
  document.querySelectorAll("label.file-pick input[type=file]").forEach(function (input) {
    input.addEventListener("change", function () {
      var shown = input.parentNode.nextElementSibling;
      if (shown) { shown.textContent = input.files.length ? input.files[0].name : "未选择文件"; }
    });
  });
})();
