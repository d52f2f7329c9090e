/*
 * weir's page-load beacon. On any page:
 *
 *   <script src="https://weir.example:8080/beacon.js" async
 *           data-name="page.load" data-token="..." data-tags='{"app":"shop"}'></script>
 *
 * Once the page has loaded, it sends one event with navigator.sendBeacon to
 * the weir that served this script: `data-name` (default page.load), the
 * value the page's load time in ms (the navigation timing's loadEventStart,
 * or the time since navigation start when that is missing), tags `page`
 * (location.pathname) plus `data-tags`. sendBeacon posts text/plain, which
 * weir takes as JSON, so there is no preflight; a page on another origin
 * must be in WEIR_CORS_ORIGINS. A token goes as ?token= (a beacon sends no
 * headers): give it a token of role ingest only.
 */
(function () {
  var me = document.currentScript;
  if (!me || typeof navigator.sendBeacon !== "function") return;
  var base = new URL(me.src, location.href);
  var url = base.origin + "/api/v1/events" + (me.dataset.token ? "?token=" + encodeURIComponent(me.dataset.token) : "");
  var name = me.dataset.name || "page.load";
  var extra = {};
  try {
    extra = me.dataset.tags ? JSON.parse(me.dataset.tags) : {};
  } catch (e) {
    extra = {};
  }
  function send() {
    var nav = performance.getEntriesByType ? performance.getEntriesByType("navigation")[0] : null;
    var ms = nav && nav.loadEventStart > 0 ? nav.loadEventStart : performance.now();
    var tags = { page: location.pathname };
    for (var k in extra) tags[k] = String(extra[k]);
    navigator.sendBeacon(url, JSON.stringify({ name: name, value: Math.round(ms), tags: tags, ts: Date.now() }));
  }
  // After the load event: its timing is known only once the handlers of `load` have run.
  if (document.readyState === "complete") setTimeout(send, 0);
  else addEventListener("load", function () { setTimeout(send, 0); });
})();
