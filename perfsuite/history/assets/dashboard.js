// perfsuite history dashboard: draws the embedded JSON as SVG. No libraries, works offline.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var page = document.body.getAttribute("data-page");
  var W = 280, H = 120, L = 44, R = 6, T = 14, B = 16;
  var tooltip = document.getElementById("tooltip");
  var drawn = 0;

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; });
  }
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    var a = Math.abs(v);
    return (a !== 0 && (a < 0.01 || a >= 1e5)) ? v.toExponential(3) : String(+v.toPrecision(4));
  }
  function scale(lo, hi, a, b) {
    if (hi === lo) { hi = lo + (Math.abs(lo) || 1) * 0.01; lo = lo - (Math.abs(lo) || 1) * 0.01; }
    return function (v) { return a + (v - lo) / (hi - lo) * (b - a); };
  }

  function expand(c) {  // x as [first, count] where a series has one value per run
    if (c.xr) { var x = []; for (var i = 0; i < c.x[1]; i++) x.push(c.x[0] + i); c.x = x; c.xr = false; }
    return c;
  }

  function chartSvg(c, nRuns, runs, title) {
    expand(c);
    // The y range comes from runs timed on a quiet machine where there are any: a busy run
    // (hollow) beyond it is drawn at the edge instead of flattening the series.
    var calm = c.y.filter(function (v, i) { return c.s.charAt(i) !== "b"; });
    var range = calm.length >= 2 ? calm : c.y, lo = Math.min.apply(null, range), hi = Math.max.apply(null, range);
    var ys = c.y.map(function (v) { return Math.min(Math.max(v, lo), hi); });
    var sx = scale(0, Math.max(nRuns - 1, 1), L, W - R), sy = scale(lo, hi, H - B, T);
    var pts = [], i, out = [];
    for (i = 0; i < ys.length; i++) pts.push(sx(c.x[i]).toFixed(1) + "," + sy(ys[i]).toFixed(1));
    out.push('<svg class="chart" width="' + W + '" height="' + H + '" data-metric="' + esc(c.metric) + '">');
    out.push("<title>" + esc(title) + "</title>");
    out.push('<text x="2" y="' + (T - 3) + '">' + esc(fmt(hi)) + "</text>");
    out.push('<text x="2" y="' + (H - B) + '">' + esc(fmt(lo)) + "</text>");
    out.push('<polyline class="line" points="' + pts.join(" ") + '"/>');
    var every = ys.length <= 120;
    for (i = 0; i < ys.length; i++) {
      var st = c.s.charAt(i) || "u";
      if (every || st !== "p") {
        out.push('<circle class="pt-' + st + '" r="' + (st === "p" ? 1.6 : 2.6) + '" cx="' + sx(c.x[i]).toFixed(1) + '" cy="' + sy(ys[i]).toFixed(1) + '"/>');
      }
    }
    (c.changes || []).forEach(function (cp, k) {
      var x = sx(cp.i).toFixed(1), cls = cp.acked ? "acked" : (cp.regression ? "regression" : "improvement");
      out.push('<line class="cp ' + cls + '" x1="' + x + '" x2="' + x + '" y1="' + T + '" y2="' + (H - B) + '"><title>' +
        esc(cp.id + " " + cls + ": " + fmt(cp.ratio) + "x [" + fmt(cp.ci[0]) + ", " + fmt(cp.ci[1]) + "], p=" + cp.p +
        (cp.acked ? "\nacknowledged: " + cp.acked : "") + "\n" + cp.label) + "</title></line>");
      var ly = k % 2 === 0 ? H - 3 : T - 3;  // alternate bottom and top, so neighbouring labels do not overlap
      out.push('<text class="cplabel ' + cls + '" x="' + (+x + 2) + '" y="' + ly + '">' + esc(cp.label.slice(0, 40)) + "</text>");
    });
    out.push('<line class="hover" x1="-1" x2="-1" y1="' + T + '" y2="' + (H - B) + '"/>');
    out.push("</svg>");
    return out.join("");
  }

  function attachHover(svg, c, runs, label) {
    var nRuns = runs.length, sx = scale(0, Math.max(nRuns - 1, 1), L, W - R);
    var hover = svg.querySelector("line.hover");
    svg.addEventListener("mousemove", function (ev) {
      var box = svg.getBoundingClientRect(), x = ev.clientX - box.left, best = 0, bd = Infinity;
      for (var i = 0; i < c.x.length; i++) {
        var d = Math.abs(sx(c.x[i]) - x);
        if (d < bd) { bd = d; best = i; }
      }
      var run = runs[c.x[best]] || [];
      hover.setAttribute("x1", sx(c.x[best])); hover.setAttribute("x2", sx(c.x[best]));
      var status = {p: "pass", f: "fail", s: "skip", r: "recorded", b: "machine busy: not searched", u: "-"}[c.s.charAt(best)] || "-";
      tooltip.textContent = label + "\n" + c.metric + " = " + fmt(c.y[best]) + "\n" + run[0] + "  commit " + run[1] +
        "\n" + run[2] + "  (" + run[3] + ", " + status + ")";
      tooltip.hidden = false;
      tooltip.style.left = (ev.clientX + 12) + "px"; tooltip.style.top = (ev.clientY + 12) + "px";
    });
    svg.addEventListener("mouseleave", function () { tooltip.hidden = true; });
  }

  function tierPage() {
    var runs = data.runs, root = document.getElementById("charts"), filters = document.getElementById("filters");
    var facets = ["model", "dtype", "attention", "padding"], chosen = {};
    facets.forEach(function (f) {
      var values = {};
      data.variants.forEach(function (v) { if (v[f]) values[v[f]] = 1; });
      var sel = '<label>' + f + ' <select data-facet="' + f + '"><option value="">all</option>' +
        Object.keys(values).sort().map(function (v) { return '<option>' + esc(v) + "</option>"; }).join("") + "</select></label>";
      filters.insertAdjacentHTML("beforeend", sel);
    });
    var html = [];
    data.variants.forEach(function (v, k) {
      html.push('<div class="variant" data-k="' + k + '"><h2>' + esc(v.id) + '</h2><div class="charts">');
      v.charts.forEach(function (c, j) {
        var scope = c.scope === "*" ? "any machine" : c.scope;
        html.push('<div class="chartbox" data-j="' + j + '">' + esc(c.metric) + " <small>(" + esc(scope) + ")</small><br>" +
          chartSvg(c, runs.length, runs, v.id + " " + c.metric) + "</div>");
      });
      html.push("</div></div>");
    });
    root.innerHTML = html.join("");
    var boxes = root.querySelectorAll(".variant");
    boxes.forEach(function (box) {
      var v = data.variants[+box.getAttribute("data-k")];
      box.querySelectorAll(".chartbox").forEach(function (cb) {
        var c = v.charts[+cb.getAttribute("data-j")];
        attachHover(cb.querySelector("svg"), c, runs, v.id);
        drawn++;
      });
    });
    filters.addEventListener("change", function (ev) {
      chosen[ev.target.getAttribute("data-facet")] = ev.target.value;
      var shown = 0;
      boxes.forEach(function (box) {
        var v = data.variants[+box.getAttribute("data-k")];
        var ok = facets.every(function (f) { return !chosen[f] || v[f] === chosen[f]; });
        box.classList.toggle("hidden", !ok);
        shown += ok ? 1 : 0;
      });
      document.getElementById("summary").textContent = shown + " of " + boxes.length + " series shown";
    });
    var alerts = 0;
    data.variants.forEach(function (v) { v.charts.forEach(function (c) { (c.changes || []).forEach(function (cp) { if (cp.regression && !cp.acked) alerts++; }); }); });
    document.getElementById("summary").textContent = data.variants.length + " series over " + runs.length +
      " runs; " + alerts + " unacknowledged regression change points marked in red, acknowledged ones grey";
  }

  function chainPage() {
    var root = document.getElementById("charts"), html = [];
    if (!data.chains.length) { root.textContent = "no compare --base runs in this history"; return; }
    data.chains.forEach(function (ch) {
      var n = ch.links.length, c = {metric: "cumulative head/base", x: [], y: [], s: "", changes: []};
      var runs = ch.links.map(function (l) { return [l.time.slice(0, 19), l.commit.slice(0, 12), "base " + l.base_commit.slice(0, 12), "compare"]; });
      ch.links.forEach(function (l, i) { c.x.push(i); c.y.push(l.cumulative); c.s += l.low > 1 + data.threshold ? "f" : "p"; });
      html.push('<div class="variant"><h2>' + esc(ch.series) + ' <span class="' + (ch.flagged ? "alert" : "ok") + '">' +
        (ch.flagged ? "creep flagged" : "no creep") + "</span></h2>");
      html.push(chartSvg(c, n, runs, ch.series + " cumulative head/base"));
      html.push("<table><tr><th>time</th><th>commit</th><th>head/base [95%]</th><th>cumulative [95%]</th></tr>" +
        ch.links.map(function (l) {
          return "<tr><td>" + esc(l.time.slice(0, 19)) + "</td><td>" + esc(l.commit.slice(0, 12)) + "</td><td>" + fmt(l.ratio) +
            " [" + fmt(l.low) + ", " + fmt(l.high) + "]</td><td>" + fmt(l.cumulative) + " [" + fmt(l.cumulative_low) + ", " +
            fmt(l.cumulative_high) + "]</td></tr>";
        }).join("") + "</table></div>");
      drawn++;
    });
    root.innerHTML = html.join("");
  }

  function indexPage() {
    var root = document.getElementById("charts");
    var rows = data.tiers.map(function (t) {
      return '<tr><td><a href="' + esc(t.page) + '">' + esc(t.tier) + "</a></td><td>" + t.runs + "</td><td>" + esc(t.last.slice(0, 19)) + "</td></tr>";
    }).join("");
    var alerts = data.alerts.map(function (a) {
      return '<li class="alert">' + esc(a.change + " " + a.series + " " + a.metric + ": " + fmt(a.ratio) + "x from commit " +
        a.commit.slice(0, 12) + " - " + (a.what_changed.join("; ") || "nothing recorded changed")) + "</li>";
    }).join("");
    root.innerHTML = "<table><tr><th>tier</th><th>runs</th><th>last run</th></tr>" + rows + "</table>" +
      "<h2>Unacknowledged regressions (latest level of their series)</h2>" + (alerts ? "<ul>" + alerts + "</ul>" : '<p class="ok">none</p>') +
      "<h2>Compare chain</h2>" + (data.creep.length ? "<ul>" + data.creep.map(function (c) { return '<li class="alert">' + esc(c) + "</li>"; }).join("") + "</ul>" : '<p class="ok">no creep flagged</p>');
  }

  try {
    if (page === "tier") tierPage(); else if (page === "chain") chainPage(); else indexPage();
    document.body.setAttribute("data-charts", String(drawn));
    document.body.setAttribute("data-rendered", "done");
  } catch (err) {
    document.body.setAttribute("data-rendered", "error: " + err);
    throw err;
  }
})();
