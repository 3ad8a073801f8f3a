// Starts Swagger UI on /docs (a file of its own: the page's policy allows no inline script).
// The document's server URL is relative ("/"), so "Try it out" calls the gateway that served
// this page, at whatever address the browser reached it. No validator badge: Swagger UI would
// send the document's address to validator.swagger.io (and the policy refuses its image).
window.ui = SwaggerUIBundle({
  url: "/openapi.yaml",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  persistAuthorization: true,
  validatorUrl: null,
});
