// Behaviour of plain forms, from a file: the pages' Content-Security-Policy runs no inline script.
// <select data-autosubmit> submits its form when the choice changes (the intake page's item).
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
