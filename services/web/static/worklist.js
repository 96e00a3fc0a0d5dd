// The worklist, enhanced: when a listed case's tasks change (the obligations service's change
// feed, through the web service), its rows are marked and a note offers to reload the page.
// Without JavaScript or EventSource the page is as it was: reloading shows the changes.
(function () {
  "use strict";
  var note = document.getElementById("aendringer");
  if (!note || !window.EventSource) {
    return;
  }
  var listed = {};
  document.querySelectorAll("tr[data-case]").forEach(function (row) { listed[row.dataset.case] = true; });
  var changed = [];
  var feed = new EventSource("/opgaver/aendringer");
  feed.onopen = function () { note.dataset.listening = "ja"; };
  feed.onmessage = function (message) {
    var caseId = JSON.parse(message.data).case_id;
    if (!listed[caseId] || changed.indexOf(caseId) >= 0) {
      return;
    }
    changed.push(caseId);
    document.querySelectorAll("tr[data-case]").forEach(function (row) {
      if (row.dataset.case === caseId) {
        row.classList.add("frisag-changed");
      }
    });
    note.querySelector("[data-cases]").textContent = changed.join(", ");
    note.hidden = false;
  };
})();
