/* The snippet a site owner pastes:
 *   <script src="https://directory.example/find-a-therapist/embed.js" data-postcode="2000" async></script>
 * inserts the finder in an iframe right after itself and sizes the iframe to its content.
 * It accepts messages only from the plugin's origin (where this file came from) and only
 * from its own iframe; the plugin only frames itself for the websites it allows
 * (REFERRAL_EMBED_ORIGINS and the admin page "Websites that embed the finder").
 *
 * data-: postcode, country, condition, modality, radius-km, practitioner (an id): where the
 * finder starts; accent (#rgb or #rrggbb; anything else is ignored) and hide-heading
 * ("true"): how it looks, on every page inside the frame; title, height; and wait
 * (milliseconds, default 8000).
 *
 * The snippet may start with <a class="referral-embed-link" href="...">, a link to the finder
 * for a visitor whose browser never runs this script; it is removed here.
 *
 * The frame stays invisible until its page says it loaded. A browser that refuses to show
 * it (this site is not allowed: CSP frame-ancestors, which fires no error event) or a page
 * that cannot be reached never says so: a moment after the frame's load event, or after
 * `wait` at the latest, a plain link to the finder takes its place, never a broken box. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.URL || !window.postMessage) return;
  var source = new URL(script.src, document.baseURI);
  var data = script.dataset;
  var segment = "embed";
  var accent = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec((data.accent || "").trim());
  if (accent) {
    var hex = accent[1].toLowerCase();
    segment += "-" + (hex.length === 3 ? hex.replace(/./g, "$&$&") : hex);
  }
  if (/^(true|yes|1)$/i.test(data.hideHeading || "")) segment += "-plain";
  var listing = /^\d+$/.test(data.practitioner || "") ? "practitioners/" + data.practitioner : "";
  var target = new URL(segment + "/" + listing, source);
  [["postcode", "postcode"], ["country", "country"], ["condition", "condition"],
    ["modality", "modality"], ["radiusKm", "radius_km"]]
    .forEach(function (pair) {
      if (data[pair[0]]) target.searchParams.set(pair[1], data[pair[0]]);
    });
  var title = data.title || "Find a therapist";

  var box = document.createElement("div");
  box.className = "referral-embed-box";
  var loading = document.createElement("p");
  loading.className = "referral-embed-loading";
  loading.textContent = "Loading the therapist finder…";
  var frame = document.createElement("iframe");
  frame.src = target.href;
  frame.title = title;
  frame.setAttribute("allow", "geolocation");
  frame.className = "referral-embed-frame";
  var initial = parseInt(data.height, 10);
  // hidden (and out of the tab order) until its page reports: a refused frame is never seen
  frame.style.cssText = "display:block;width:100%;border:0;min-height:200px;visibility:hidden;" +
    "height:" + (initial > 0 && initial < 10000 ? initial : 600) + "px";
  box.appendChild(loading);
  box.appendChild(frame);
  script.parentNode.insertBefore(box, script.nextSibling);
  // the snippet's own link to the finder, for when this script never runs: the frame (or,
  // failing that, the link below) takes its place
  var placeholder = script.previousElementSibling;
  if (placeholder && placeholder.classList && placeholder.classList.contains("referral-embed-link")) {
    placeholder.parentNode.removeChild(placeholder);
  }

  var pages = 0;
  function showLink() {
    if (pages > 0 || !box.parentNode) return;
    var direct = new URL(listing || "./", source);
    direct.search = target.search;
    var note = document.createElement("p");
    note.className = "referral-embed-fallback";
    var link = document.createElement("a");
    link.href = direct.href;
    link.textContent = title;
    note.appendChild(link);
    note.appendChild(document.createTextNode(" (opens on " + source.host + ")"));
    box.parentNode.replaceChild(note, box);
  }
  var wait = parseInt(data.wait, 10);
  wait = wait > 0 && wait < 60000 ? wait : 8000;
  var fallback = window.setTimeout(showLink, wait);
  // the frame's page posts its first message before the frame's load event reaches us
  frame.addEventListener("load", function () {
    if (pages === 0) window.setTimeout(showLink, Math.min(1500, wait));
  });
  window.addEventListener("message", function (event) {
    if (event.origin !== source.origin || event.source !== frame.contentWindow) return;
    var message = event.data;
    if (!message || typeof message !== "object") return;
    if (message.type === "referral:height") {
      var height = Math.ceil(Number(message.height));
      if (height > 0 && height < 100000) frame.style.height = height + "px";
    } else if (message.type === "referral:page") {
      window.clearTimeout(fallback);
      if (pages === 0) {
        frame.style.visibility = "visible";
        if (loading.parentNode) box.removeChild(loading);
      }
      // a new page in the frame: bring its top into view, as a normal page load would
      if (pages++ > 0 && frame.getBoundingClientRect().top < 0) frame.scrollIntoView();
    }
  });
})();
