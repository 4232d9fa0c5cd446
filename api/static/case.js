// Page thumbnails of each material's scans, once the scans API (issue #3) is present.
"use strict";
(function () {
  document.querySelectorAll(".thumbs[data-pages]").forEach(function (box) {
    fetch(box.getAttribute("data-pages"), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : {pages: []}; })
      .then(function (d) {
        (d.pages || d.items || []).forEach(function (p) {
          var url = p.thumbnail_url || p.thumbnail || p.url;
          if (!url) return;
          var img = document.createElement("img");
          img.src = url;
          img.alt = "第 " + (p.page || p.index || "") + " 页";
          img.loading = "lazy";
          box.appendChild(img);
        });
      })
      .catch(function () { /* no scans yet */ });
  });
})();
