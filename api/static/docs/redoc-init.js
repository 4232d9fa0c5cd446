// Starts ReDoc on /redoc (no inline script: the page's CSP allows scripts from this origin only).
(function () {
  "use strict";
  var el = document.getElementById("redoc");
  Redoc.init(el.dataset.openapiUrl, {
    hideDownloadButton: false,
    expandResponses: "200,201",
    pathInMiddlePanel: true,
    // No web fonts from elsewhere: the machine's CJK fonts first, then any sans-serif.
    theme: {
      typography: {
        fontFamily: '"Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", sans-serif',
        headings: { fontFamily: '"Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", sans-serif' },
      },
    },
  }, el);
})();
