// Console enhancements; every page works without them.
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("[data-copy]");
  if (!btn) return;
  var el = document.getElementById(btn.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) return;
  navigator.clipboard.writeText(el.textContent.trim()).then(function () {
    btn.textContent = "Copied";
  }, function () {});
});
// Capture phase: runs before htmx's boosted-form handler.
document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
    ev.stopImmediatePropagation();
  }
}, true);
// Sortable tables: clicking a header of a table.data[data-sortable] sorts
// its rows by that column (numbers numerically), again to reverse.
document.addEventListener("click", function (ev) {
  var th = ev.target.closest("table.data[data-sortable] th");
  if (!th || ev.target.closest("a")) return;
  var table = th.closest("table");
  var tbody = table.tBodies[0];
  if (!tbody) return;
  var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
  var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
  Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
  th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  var rows = Array.prototype.slice.call(tbody.rows);
  var key = function (r) { return (r.cells[idx] ? r.cells[idx].textContent : "").trim(); };
  rows.sort(function (a, b) {
    var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
    if (!isNaN(nx) && !isNaN(ny) && String(nx) === x && String(ny) === y) return (nx - ny) * dir;
    return x.localeCompare(y) * dir;
  });
  rows.forEach(function (r) { tbody.appendChild(r); });
});
