// The review queue refreshes its rows without a reload and answers the keyboard.
// Everything here is an enhancement: every button is a plain form that works without it.
(function () {
  "use strict";
  var table = document.querySelector("table.queue");
  if (!table) { return; }
  var body = document.getElementById("queue-rows");
  var selected = null;  // event id of the highlighted row

  function rows() { return Array.prototype.slice.call(body.querySelectorAll("tr.item")); }

  function select(row) {
    rows().forEach(function (r) { r.classList.remove("selected"); });
    if (row) { row.classList.add("selected"); selected = row.dataset.event; }
  }

  function current() {
    return rows().filter(function (r) { return r.dataset.event === selected; })[0] || null;
  }

  function busy() {  // never replace rows under someone typing or choosing an action
    var active = document.activeElement;
    return active && body.contains(active) && active.tagName !== "BUTTON" && active.tagName !== "A";
  }

  function refresh() {
    if (busy()) { return; }
    fetch(table.dataset.live, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) {
        if (r.redirected) { window.location.reload(); return null; }  // signed out: show the sign-in page
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || busy()) { return; }
        body.innerHTML = html;
        select(current() || rows()[0] || null);
      })
      .catch(function () { /* the next tick tries again */ });
  }

  function press(row, cls) {
    var button = row && row.querySelector("button." + cls);
    if (button) { button.click(); }
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA" || ev.target.tagName === "SELECT") { return; }
    var list = rows(), row = current(), i = list.indexOf(row);
    if (ev.key === "j") { select(list[Math.min(i + 1, list.length - 1)] || null); }
    else if (ev.key === "k") { select(list[Math.max(i - 1, 0)] || null); }
    else if (ev.key === "c") { press(row, "claim"); }
    else if (ev.key === "a") { press(row, "approve"); }
    else if (ev.key === "x") { press(row, "dismiss"); }
    else if (ev.key === "o" && row) { row.querySelector("a.open").click(); }
    else { return; }
    ev.preventDefault();
  });

  select(rows()[0] || null);
  window.setInterval(refresh, Number(table.dataset.interval || 3000));
})();
