// Draw every chart on the page from the JSON the server embedded next to it.
// (No inline script: the page's Content-Security-Policy allows scripts from this server only.)
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("div.chart[data-figure]").forEach(function (el) {
    var src = document.getElementById(el.dataset.figure);
    if (!src) { return; }
    var fig = JSON.parse(src.textContent);
    Plotly.newPlot(el, fig.data, fig.layout, {displaylogo: false, responsive: true}).then(function () {
      el.dataset.rendered = "true";
      el.dataset.points = String(fig.points || 0);
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) { e.preventDefault(); }
    });
  });
});
