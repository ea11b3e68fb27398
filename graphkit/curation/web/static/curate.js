// A little help for the curation page: remember the curator's name, confirm a rejection,
// suggest concepts while typing in the search box. The page works without it.
(function () {
  "use strict";
  var curator = document.getElementById("curator");
  if (curator) {
    // the name this browser last used wins over the server's default (several curators, one server)
    var remembered = window.localStorage ? localStorage.getItem("ehr-r1-curator") : null;
    if (remembered) curator.value = remembered;
    curator.addEventListener("change", function () {
      if (window.localStorage) localStorage.setItem("ehr-r1-curator", curator.value);
    });
  }
  var form = document.getElementById("change-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      var op = event.submitter ? event.submitter.value : "";
      if (curator && window.localStorage) localStorage.setItem("ehr-r1-curator", curator.value);
      if (op === "reject" && !window.confirm("Reject this edge? It stays in the graph but is never traversed.")) {
        event.preventDefault();
      }
    });
  }
  var box = document.getElementById("search-box");
  var list = document.getElementById("search-suggestions");
  if (!box || !list) return;
  var timer = null;
  box.addEventListener("input", function () {
    window.clearTimeout(timer);
    var text = box.value.trim();
    if (text.length < 3 || text.indexOf("|") >= 0) { list.hidden = true; return; }
    timer = window.setTimeout(function () {
      fetch("/api/search?q=" + encodeURIComponent(text), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (rows) {
          list.textContent = "";
          rows.forEach(function (row) {
            var item = document.createElement("li");
            item.textContent = row.name + " (" + row.cui + ")";
            item.addEventListener("mousedown", function () { window.location = "/concept/" + encodeURIComponent(row.cui); });
            list.appendChild(item);
          });
          list.hidden = rows.length === 0;
        });
    }, 200);
  });
  box.addEventListener("blur", function () { window.setTimeout(function () { list.hidden = true; }, 150); });
})();
