/*! consentry.js: Consentry's first-party tag. No dependencies, no storage.
 * <script src="https://collect.shop.example/v1/consentry.js"
 *         data-write-key="KEY" async></script>
 * consentry.page(name?, properties?), consentry.track(event, properties?),
 * consentry.identify(userId, traits?): sent with navigator.sendBeacon (or
 * fetch keepalive), text/plain so no CORS preflight is needed. The page's
 * consent is read from __tcfapi (TCF v2), __gpp (GPP) and
 * navigator.globalPrivacyControl and sent in context.consent. The tag stores
 * nothing on the device: the collector may set its own first-party id cookie
 * when the event grants the purpose it is configured for.
 */
(function (w, d) {
  "use strict";
  var s = d.currentScript || d.querySelector("script[data-write-key]");
  var host = s && s.src ? s.src.replace(/\/v1\/consentry\.js.*$/, "") : "";
  var key = (s && s.getAttribute("data-write-key")) || "";
  var queued = (w.consentry && w.consentry.q) || [];
  var userId = null;
  var tcString = null, gppString = null, categories = null;

  function uuid() {
    if (w.crypto && w.crypto.randomUUID) return w.crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 3) | 8).toString(16);
    });
  }

  function readCmp() {
    try {
      if (typeof w.__tcfapi === "function") {
        w.__tcfapi("getTCData", 2, function (data, ok) {
          if (ok && data && data.tcString) tcString = data.tcString;
        });
      }
    } catch (e) { /* a broken CMP must not break the page */ }
    try {
      if (typeof w.__gpp === "function") {
        w.__gpp("ping", function (data, ok) {
          if (ok !== false && data && data.gppString) gppString = data.gppString;
        });
      }
    } catch (e) { /* idem */ }
  }

  function consent() {
    var c = {};
    if (tcString) c.tcString = tcString;
    if (gppString) c.gppString = gppString;
    if (categories) c.categoryPreferences = categories;
    if (navigator.globalPrivacyControl === true) c.gpc = true;
    return c;
  }

  function context() {
    var ctx = {
      library: { name: "consentry.js", version: "1" },
      page: {
        path: w.location.pathname, referrer: d.referrer, search: w.location.search,
        title: d.title, url: w.location.href
      },
      userAgent: navigator.userAgent,
      locale: navigator.language
    };
    var c = consent();
    for (var k in c) { ctx.consent = c; break; }
    return ctx;
  }

  function send(type, fields) {
    var msg = {
      type: type, messageId: uuid(), timestamp: new Date().toISOString(),
      context: context(), writeKey: key
    };
    for (var f in fields) if (fields[f] !== undefined) msg[f] = fields[f];
    if (userId && !msg.userId) msg.userId = userId;
    var url = host + "/v1/" + type;
    var body = JSON.stringify(msg);
    var sent = false;
    try {
      if (navigator.sendBeacon) {
        sent = navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }));
      }
    } catch (e) { sent = false; }
    if (!sent && w.fetch) {
      w.fetch(url, {
        method: "POST", body: body, keepalive: true, credentials: "include",
        headers: { "Content-Type": "text/plain" }
      })["catch"](function () {});
    }
    return msg.messageId;
  }

  var api = {
    page: function (name, properties) {
      return send("page", { name: name, properties: properties || {} });
    },
    track: function (event, properties) {
      return send("track", { event: event, properties: properties || {} });
    },
    identify: function (id, traits) {
      if (id) userId = String(id);
      return send("identify", { userId: userId || undefined, traits: traits || {} });
    },
    // Consent categories from the page's own banner: {analytics: true, ...}.
    consent: function (prefs) { categories = prefs; },
    refresh: readCmp
  };
  readCmp();
  w.consentry = api;
  for (var i = 0; i < queued.length; i++) {
    var call = queued[i];
    if (api[call[0]]) api[call[0]].apply(null, call[1]);
  }
})(window, document);
