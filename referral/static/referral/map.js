/* List/map switch for search results. Progressive: without JavaScript the list is all there
 * is; with it, a switch appears and Leaflet (vendored, served from our static files) loads on
 * the first "Map". Markers come from the result cards' data-lat/data-lon. */
(function () {
  "use strict";
  var box = document.getElementById("referral-map");
  if (!box || box.getAttribute("data-ready")) return;
  box.setAttribute("data-ready", "1");
  var results = box.closest(".referral-results") || document;
  var lists = Array.prototype.slice.call(results.querySelectorAll(".referral-list"));
  var cards = Array.prototype.slice.call(results.querySelectorAll(".referral-card[data-lat]"));
  if (!cards.length || !lists.length) return;

  var toggle = document.createElement("div");
  toggle.className = "referral-view-toggle";
  toggle.setAttribute("role", "group");
  toggle.setAttribute("aria-label", "Show results as");
  var buttons = {};
  ["list", "map"].forEach(function (view) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "referral-toggle";
    button.textContent = view === "list" ? "List" : "Map";
    button.setAttribute("aria-pressed", view === "list" ? "true" : "false");
    button.setAttribute("aria-controls", "referral-map");
    button.addEventListener("click", function () { show(view); });
    toggle.appendChild(button);
    buttons[view] = button;
  });
  lists[0].parentNode.insertBefore(toggle, lists[0]);
  lists[0].parentNode.insertBefore(box, lists[0]);

  var map = null;
  function show(view) {
    buttons.list.setAttribute("aria-pressed", String(view === "list"));
    buttons.map.setAttribute("aria-pressed", String(view === "map"));
    lists.forEach(function (list) { list.hidden = view === "map"; });
    box.hidden = view !== "map";
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

  function draw() {
    if (map) { map.invalidateSize(); return; }
    var L = window.L;
    map = L.map(box, { scrollWheelZoom: false });
    L.tileLayer(box.getAttribute("data-tiles"), {
      maxZoom: 19,
      attribution: box.getAttribute("data-attribution")
    }).addTo(map);
    var centre = [parseFloat(box.getAttribute("data-lat")), parseFloat(box.getAttribute("data-lon"))];
    var points = [centre];
    L.circleMarker(centre, { radius: 7, color: "#1b1f23", weight: 2, fillOpacity: 0.9 })
      .addTo(map).bindTooltip(box.getAttribute("data-label") || "Search centre");
    cards.forEach(function (card) {
      var point = [parseFloat(card.getAttribute("data-lat")), parseFloat(card.getAttribute("data-lon"))];
      var link = card.querySelector(".referral-card__name a");
      var distance = card.querySelector(".referral-card__distance strong");
      if (!link || isNaN(point[0]) || isNaN(point[1])) return;
      var name = link.textContent;
      var popup = document.createElement("div");
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = name;
      popup.appendChild(a);
      if (distance) popup.appendChild(document.createTextNode(" · " + distance.textContent));
      L.marker(point, { title: name, alt: name }).addTo(map).bindPopup(popup);
      points.push(point);
    });
    var fit = function () { map.fitBounds(points, { padding: [48, 48], maxZoom: 15 }); };
    fit();
    // a phone turned sideways (or a resized frame) shows all the results again
    var timer = null;
    var reading = false;  // a popup is open: leave the view where the visitor put it
    map.on("popupopen", function () { reading = true; });
    map.on("popupclose", function () { reading = false; });
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (box.hidden) return;
        map.invalidateSize();
        if (!reading) fit();
      }, 150);
    });
  }
})();
