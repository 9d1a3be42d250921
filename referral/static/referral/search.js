/* Search page enhancements; the form works without them.
 * 0. Empty fields stay out of the search's URL.
 * 1. Place autocomplete: suggestions from our own /api/v1/places (the local gazetteer),
 *    debounced and cached, in a native <datalist> (keyboard support built in), written
 *    as a local would: "Sydney NSW 2000". Never a call to a remote geocoder per keystroke.
 * 2. "Use my location": shown only when the browser has navigator.geolocation; rounds the
 *    position to two decimals (about 1 km) before it goes into any URL, so no access log
 *    ever holds a home address; fills the hidden lat/lon and submits, with a clear message
 *    when it cannot.
 */
(function () {
  "use strict";
  var box = document.querySelector("[data-referral-locate]");
  if (!box) { return; }
  var form = box.closest("form");
  var postcode = form.querySelector("input[name=postcode]");
  var message = box.querySelector("[data-referral-locate-message]");

  function say(text) { message.textContent = text; }

  // 0. A short address: fields left empty ("Any", no distance) stay out of the URL, which
  //    is what a patient shares and what the listing's "Back to search" carries.
  function leaveOutEmpty() {
    Array.prototype.forEach.call(form.querySelectorAll("select, input[type=text], input:not([type])"),
      function (field) { if (!field.value.trim() && field !== postcode) field.disabled = true; });
  }
  form.addEventListener("submit", leaveOutEmpty);
  // back to this page from the next (bfcache): the fields work again
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(form.querySelectorAll("select, input[type=text], input:not([type])"),
      function (field) { if (field.name !== "lat" && field.name !== "lon") field.disabled = false; });
  });

  // 1. Autocomplete
  if (postcode && window.fetch) {
    var list = document.createElement("datalist");
    list.id = "referral-places";
    form.appendChild(list);
    postcode.setAttribute("list", list.id);
    postcode.setAttribute("autocomplete", "off");
    var cache = {};
    var timer = null;
    var pending = null;

    var show = function (places) {
      list.textContent = "";
      places.forEach(function (p) {
        var option = document.createElement("option");
        option.value = p.label;
        list.appendChild(option);
      });
    };

    var fetchPlaces = function (q) {
      if (cache[q]) { show(cache[q]); return; }
      if (pending) { pending.abort(); }
      pending = window.AbortController ? new AbortController() : null;
      var url = box.dataset.placesUrl + "?q=" + encodeURIComponent(q) +
        "&country=" + encodeURIComponent(box.dataset.country || "");
      fetch(url, { signal: pending && pending.signal, headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (places) { cache[q] = places; show(places); })
        .catch(function () { /* typing on: the next keystroke asks again */ });
    };

    postcode.addEventListener("input", function () {
      var q = postcode.value.trim().toLowerCase();
      clearTimeout(timer);
      if (q.length < 2) { show([]); return; }
      timer = setTimeout(function () { fetchPlaces(q); }, 200);
    });
  }

  // 2. Use my location
  var lat = box.querySelector("input[name=lat]");
  var lon = box.querySelector("input[name=lon]");
  if (postcode && lat.value && lon.value) {
    // showing results for the device's location: changing a filter keeps it, and
    // typing a postcode replaces it
    postcode.required = false;
    postcode.placeholder = "Your location";
    form.addEventListener("submit", function () {
      if (postcode.value.trim()) { lat.disabled = lon.disabled = true; }
    });
  }
  var button = box.querySelector("[data-referral-locate-button]");
  if (!button || !("geolocation" in navigator)) { return; }
  button.hidden = false;

  var MESSAGES = {
    insecure: "Your browser only shares your location with secure (https) sites. " +
      "Please type your postcode or suburb instead.",
    1: "You did not allow this site to use your location. Type your postcode or suburb " +
      "instead, or allow location for this site in your browser settings.",
    2: "Your device could not work out where you are just now. Please type your postcode " +
      "or suburb instead.",
    3: "Finding your location took too long. Try again, or type your postcode or suburb.",
  };

  button.addEventListener("click", function () {
    if (window.isSecureContext === false) { say(MESSAGES.insecure); return; }
    say("Finding your location…");
    button.disabled = true;
    navigator.geolocation.getCurrentPosition(function (position) {
      // about 1 km: enough to find the nearest practitioners, too coarse for a house
      lat.value = position.coords.latitude.toFixed(2);
      lon.value = position.coords.longitude.toFixed(2);
      lat.disabled = lon.disabled = false;
      if (postcode) { postcode.value = ""; postcode.disabled = true; }
      leaveOutEmpty();
      form.submit();
    }, function (error) {
      button.disabled = false;
      say(MESSAGES[error.code] || MESSAGES[2]);
    }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 300000 });
  });
}());
