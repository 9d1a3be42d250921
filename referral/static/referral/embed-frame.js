/* Runs inside an {prefix}/embed/ page: tells the parent page how tall the content is.
 * Messages go only to the origins the server allowed (data-referral-parent-origins), so a
 * page that framed us without permission (the CSP blocks that anyway) learns nothing. */
(function () {
  "use strict";
  if (window.parent === window) return;
  var body = document.body;
  var origins;
  try {
    origins = JSON.parse(body.getAttribute("data-referral-parent-origins") || "[]");
  } catch (e) {
    return;
  }
  function send(message) {
    origins.forEach(function (origin) {
      window.parent.postMessage(message, origin);
    });
  }
  var last = -1;
  function report() {
    var height = Math.ceil(body.getBoundingClientRect().height);
    if (height === last) return;
    last = height;
    send({ type: "referral:height", height: height });
  }
  // a link to another site (a practitioner's website) opens a tab, not inside the frame
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[href]") : null;
    if (link && /^https?:$/.test(link.protocol) && link.origin !== window.location.origin) {
      link.target = "_blank";
      link.rel = (link.rel + " noopener").trim();
    }
  });
  send({ type: "referral:page", path: window.location.pathname });
  report();
  if (window.ResizeObserver) new ResizeObserver(report).observe(body);
  window.addEventListener("load", report);
})();
