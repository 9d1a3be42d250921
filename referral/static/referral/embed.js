/* The snippet a site owner pastes:
 *   <script src="https://directory.example/find-a-therapist/embed.js" data-postcode="2000" async></script>
 * inserts the finder in an iframe right after itself and sizes the iframe to its content.
 * It accepts messages only from the plugin's origin (where this file came from) and only
 * from its own iframe; the plugin only frames itself for origins in REFERRAL_EMBED_ORIGINS.
 * data-: postcode, country, modality, radius-km, practitioner (an id), title, height, and
 * wait (milliseconds, default 8000): when the frame has not said it loaded by then (the
 * plugin refused to be framed by this site, or it is unreachable), a plain link to the
 * finder takes the frame's place, never a broken box. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.URL || !window.postMessage) return;
  var source = new URL(script.src, document.baseURI);
  var data = script.dataset;
  var path = /^\d+$/.test(data.practitioner || "") ? "embed/practitioners/" + data.practitioner : "embed/";
  var target = new URL(path, source);
  [["postcode", "postcode"], ["country", "country"], ["modality", "modality"], ["radiusKm", "radius_km"]]
    .forEach(function (pair) {
      if (data[pair[0]]) target.searchParams.set(pair[1], data[pair[0]]);
    });

  var frame = document.createElement("iframe");
  frame.src = target.href;
  frame.title = data.title || "Find a therapist";
  frame.setAttribute("allow", "geolocation");
  frame.className = "referral-embed-frame";
  var initial = parseInt(data.height, 10);
  frame.style.cssText = "display:block;width:100%;border:0;min-height:200px;height:" +
    (initial > 0 && initial < 10000 ? initial : 600) + "px";
  script.parentNode.insertBefore(frame, script.nextSibling);

  var pages = 0;
  var wait = parseInt(data.wait, 10);
  var fallback = window.setTimeout(function () {
    if (pages > 0 || !frame.parentNode) return;
    var direct = new URL(path.replace(/^embed\/?/, "") || "./", source);
    direct.search = target.search;
    var note = document.createElement("p");
    note.className = "referral-embed-fallback";
    var link = document.createElement("a");
    link.href = direct.href;
    link.textContent = (data.title || "Find a therapist") + " (opens the finder)";
    note.appendChild(link);
    frame.parentNode.replaceChild(note, frame);
  }, wait > 0 && wait < 60000 ? wait : 8000);
  window.addEventListener("message", function (event) {
    if (event.origin !== source.origin || event.source !== frame.contentWindow) return;
    var message = event.data;
    if (!message || typeof message !== "object") return;
    if (message.type === "referral:height") {
      var height = Math.ceil(Number(message.height));
      if (height > 0 && height < 100000) frame.style.height = height + "px";
    } else if (message.type === "referral:page") {
      window.clearTimeout(fallback);
      // a new page in the frame: bring its top into view, as a normal page load would
      if (pages++ > 0 && frame.getBoundingClientRect().top < 0) frame.scrollIntoView();
    }
  });
})();
