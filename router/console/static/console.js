// Follows the topics: fetches this page again every few seconds and, when its live part
// changed, swaps it in place (no reload, the search box keeps what is typed). The server
// escapes everything it renders; nothing here builds HTML from data.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var pulse = document.getElementById("pulse");
  if (!live) {
    return;
  }
  var every = Number(live.getAttribute("data-refresh-ms")) || 2000;

  function state(ok) {
    if (pulse) {
      pulse.className = ok ? "pulse" : "pulse lost";
      pulse.textContent = ok ? "live" : "reconnecting";
    }
  }

  function refresh() {
    fetch(window.location.href, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok && response.status !== 404) {
          throw new Error(String(response.status));
        }
        return response.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
        if (fresh && fresh.innerHTML !== live.innerHTML) {
          live.innerHTML = fresh.innerHTML;
        }
        state(true);
      })
      .catch(function () {
        state(false);
      })
      .finally(function () {
        window.setTimeout(refresh, every);
      });
  }

  window.setTimeout(refresh, every);
})();
