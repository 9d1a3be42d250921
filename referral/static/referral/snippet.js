/* The snippet builder (referral/_embed_builder.html): a button copies the snippet and says
 * "Copied"; changing an option updates the snippet, the script-free frame and the preview
 * at once, by fetching the same page for the new options (the server builds the snippet,
 * so there is one way to build it) and keeping the address in step. Without script the
 * options are an ordinary GET form and the snippet can be selected and copied by hand. */
(function () {
  "use strict";
  var root = document.querySelector("[data-referral-embed-builder]");
  if (!root || !window.fetch || !window.DOMParser || !window.URLSearchParams) return;
  var form = root.querySelector("[data-referral-embed-options]");

  function bindCopy() {
    var button = root.querySelector("[data-referral-copy]");
    var status = root.querySelector("[data-referral-copy-status]");
    var text = button && document.getElementById(button.getAttribute("data-referral-copy"));
    if (!text) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      function copied() { status.textContent = "Copied"; }
      function failed() {
        text.focus();
        text.select();
        status.textContent = "Selected: press Ctrl+C (or ⌘C) to copy";
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text.value).then(copied, failed);
      } else {
        text.select();
        try {
          if (document.execCommand("copy")) copied(); else failed();
        } catch (e) {
          failed();
        }
      }
    });
  }

  function preview(from) {
    var box = root.querySelector("[data-referral-embed-preview]");
    var source = from.querySelector("[data-referral-embed-preview] script");
    if (!box || !source) return;
    var script = document.createElement("script");
    Array.prototype.forEach.call(source.attributes, function (a) {
      script.setAttribute(a.name, a.value);
    });
    box.textContent = "";
    box.appendChild(script);
  }

  var pending = null;
  var asked = 0;
  var shown = window.location.pathname + window.location.search;
  function update() {
    var params = new URLSearchParams(new FormData(form));
    var url = window.location.pathname + "?" + params.toString();
    if (url === shown) return; // nothing changed (a field left after Enter sent it)
    shown = url;
    var mine = ++asked;
    window.fetch(url, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html || mine !== asked) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-referral-embed-result]");
        var current = root.querySelector("[data-referral-embed-result]");
        if (!fresh || !current) return;
        current.innerHTML = fresh.innerHTML;
        var error = doc.getElementById("referral-embed-accent-error");
        var old = document.getElementById("referral-embed-accent-error");
        if (old) old.parentNode.removeChild(old);
        if (error) document.getElementById("referral-embed-accent").after(error);
        bindCopy();
        preview(doc);
        window.history.replaceState(null, "", url);
      });
  }

  function soon() {
    window.clearTimeout(pending);
    pending = window.setTimeout(update, 400);
  }
  // "change": a choice made, or a field left; typing a colour half-way changes nothing yet
  form.addEventListener("change", soon);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    update();
  });
  bindCopy();
})();
