// The definition editor: line numbers beside the text (kept in step when typing and scrolling),
// and each problem's line:col a link that puts the cursor there.
(function () {
  "use strict";
  var source = document.getElementById("source");
  var gutter = document.getElementById("gutter");
  if (!source || !gutter) { return; }
  function number() {
    var n = source.value.split("\n").length;
    var out = [];
    for (var i = 1; i <= n; i++) { out.push(i); }
    gutter.textContent = out.join("\n");
    gutter.scrollTop = source.scrollTop;
  }
  source.addEventListener("input", number);
  source.addEventListener("scroll", function () { gutter.scrollTop = source.scrollTop; });
  number();
  document.querySelectorAll("a.goto").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      var lines = source.value.split("\n");
      var line = Math.max(1, Math.min(lines.length, Number(a.getAttribute("data-line"))));
      var at = 0;
      for (var i = 0; i < line - 1; i++) { at += lines[i].length + 1; }
      at += Math.max(0, Number(a.getAttribute("data-col")) - 1);
      source.focus();
      source.setSelectionRange(at, at + Math.max(1, lines[line - 1].length - Number(a.getAttribute("data-col")) + 1));
      var height = source.scrollHeight / lines.length;
      source.scrollTop = Math.max(0, (line - 5) * height);
    });
  });
})();
