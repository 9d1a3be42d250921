/* The results map beside (or, on a phone, instead of) the list. Progressive: without
 * JavaScript the list is all there is. With it, the List/Map links appear; they are links to
 * the same search with view=list or view=map, so reload, back and a listing's "Back to search"
 * keep the choice. With no view chosen, a phone shows the list and a wider screen the list
 * with the map beside it.
 *
 * Markers: first the page's own cards (data-lat/data-lon), then, when the search has more
 * results than this page shows, the rest from the JSON API (the same search, at the largest
 * page size, up to data-most results: REFERRAL_MAX_TOTAL). Leaflet (vendored, served from our
 * static files) loads only when the map is shown. */
(function () {
  "use strict";
  var box = document.getElementById("referral-map");
  if (!box || box.getAttribute("data-ready")) return;
  box.setAttribute("data-ready", "1");
  var results = box.closest(".referral-results") || document;
  var cards = Array.prototype.slice.call(results.querySelectorAll(".referral-card[data-lat]"));
  var toggle = results.querySelector("[data-referral-views]");
  if (!cards.length || !toggle) return;

  var wide = window.matchMedia("(min-width: 64rem)");
  var chosen = box.getAttribute("data-view");
  var status = document.createElement("p");
  status.className = "referral-map__status";
  status.setAttribute("role", "status");
  box.parentNode.insertBefore(status, box.nextSibling);

  function currentView() { return chosen || (wide.matches ? "map" : "list"); }

  function apply() {
    var view = currentView();
    results.classList.toggle("referral-results--map", view === "map");
    results.classList.toggle("referral-results--list", view === "list");
    Array.prototype.forEach.call(toggle.querySelectorAll("[data-view]"), function (link) {
      if (link.getAttribute("data-view") === view) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    });
    box.hidden = view !== "map";
    status.hidden = view !== "map";
    if (view === "map") loadLeaflet(draw);
  }

  // Draw once both the script and its stylesheet have loaded: Leaflet finds its marker
  // images through a rule of leaflet.css, and guesses a wrong path when the sheet is late.
  var loading = null;
  function loadLeaflet(then) {
    if (window.L && !loading) return then();
    if (loading) { loading.push(then); return; }
    loading = [then];
    var pending = 2;
    function loaded() {
      if (--pending) return;
      var waiting = loading;
      loading = null;
      waiting.forEach(function (callback) { callback(); });
    }
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = box.getAttribute("data-leaflet-css");
    css.onload = loaded;
    css.onerror = loaded;
    document.head.appendChild(css);
    var js = document.createElement("script");
    js.src = box.getAttribute("data-leaflet-js");
    js.onload = loaded;
    document.head.appendChild(js);
  }

  var map = null;
  var points = [];
  var placed = {};  // practitioner id -> true: one marker each
  var reading = false;  // a popup is open: leave the view where the visitor put it
  var moved = false;  // the visitor dragged the map: the same

  function fit() {
    if (!reading && !moved) map.fitBounds(points, { padding: [48, 48], maxZoom: 15 });
  }

  function addMarker(id, lat, lon, name, href, detail) {
    if (placed[id] || isNaN(lat) || isNaN(lon)) return;
    placed[id] = true;
    var popup = document.createElement("div");
    var a = document.createElement("a");
    a.href = href;
    a.textContent = name;
    popup.appendChild(a);
    if (detail) popup.appendChild(document.createTextNode(" · " + detail));
    window.L.marker([lat, lon], { title: name, alt: name }).addTo(map).bindPopup(popup);
    points.push([lat, lon]);
  }

  function say() {
    var count = points.length - 1;
    status.textContent = "The map shows " + count + " practitioner" + (count === 1 ? "" : "s") +
      (count >= parseInt(box.getAttribute("data-most"), 10) ? ", the nearest we count." : ".");
  }

  function draw() {
    if (map) { map.invalidateSize(); return; }
    var L = window.L;
    map = L.map(box, { scrollWheelZoom: false });
    L.tileLayer(box.getAttribute("data-tiles"), {
      maxZoom: 19,
      attribution: box.getAttribute("data-attribution")
    }).addTo(map);
    var centre = [parseFloat(box.getAttribute("data-lat")), parseFloat(box.getAttribute("data-lon"))];
    points.push(centre);
    L.circleMarker(centre, { radius: 7, color: "#1b1f23", weight: 2, fillOpacity: 0.9 })
      .addTo(map).bindTooltip(box.getAttribute("data-label") || "Search centre");
    cards.forEach(function (card) {
      var link = card.querySelector(".referral-card__name a");
      var distance = card.querySelector(".referral-card__distance strong");
      if (!link) return;
      addMarker(card.getAttribute("data-id"),
        parseFloat(card.getAttribute("data-lat")), parseFloat(card.getAttribute("data-lon")),
        link.textContent, link.href, distance && distance.textContent);
    });
    fit();
    say();
    map.on("popupopen", function () { reading = true; });
    map.on("popupclose", function () { reading = false; });
    map.on("dragstart", function () { moved = true; });
    fetchTheRest(1);
    // a phone turned sideways (or a resized frame) shows all the results again
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (box.hidden) return;
        map.invalidateSize();
        fit();
      }, 150);
    });
  }

  // the search's other results, a page of the API at a time, until all (up to the cap) are in
  function fetchTheRest(page) {
    var total = parseInt(box.getAttribute("data-total"), 10) || 0;
    var most = Math.min(total, parseInt(box.getAttribute("data-most"), 10) || 0);
    var perPage = parseInt(box.getAttribute("data-per-page"), 10) || 100;
    if (!window.fetch || points.length - 1 >= most || (page - 1) * perPage >= most) {
      box.setAttribute("data-complete", "1");
      return;
    }
    var listing = box.getAttribute("data-listing");
    var marker = box.getAttribute("data-marker");
    fetch(box.getAttribute("data-api") + "&per_page=" + perPage + "&page=" + page,
      { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { results: [] }; })
      .then(function (body) {
        (body.results || []).forEach(function (r) {
          addMarker(String(r.id), r.location.lat, r.location.lon, r.name,
            listing.replace(marker, String(r.id)), r.location.suburb);
        });
        fit();
        say();
        if ((body.results || []).length === perPage) fetchTheRest(page + 1);
        else box.setAttribute("data-complete", "1");
      })
      .catch(function () { box.setAttribute("data-complete", "1"); });
  }

  toggle.hidden = false;
  apply();
  if (!chosen && wide.addEventListener) wide.addEventListener("change", apply);
})();
