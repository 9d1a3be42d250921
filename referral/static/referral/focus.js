// The error summary (referral/_error_summary.html) takes focus when the page loads, so a
// screen reader reads it and a phone shows it; its links move focus to their field.
(function () {
  "use strict";
  var summary = document.querySelector("[data-referral-focus]");
  if (!summary) return;
  summary.focus();
  summary.addEventListener("click", function (event) {
    var link = event.target.closest("a[href^='#']");
    var field = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    field.focus();
    field.scrollIntoView({ block: "center" });
  });
})();
