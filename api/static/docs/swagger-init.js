// Starts Swagger UI on /docs (no inline script: the page's CSP allows scripts from this origin only).
(function () {
  "use strict";
  var el = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: el.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    displayOperationId: true,
    persistAuthorization: false,
    validatorUrl: null, // the default would fetch a badge from the validator's public server
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
