// perfsuite history dashboard: draws the embedded JSON with uPlot (inlined above this script).
// Every chart of a page shares one time axis: drag to zoom, the wheel to zoom, shift+wheel to
// pan, double-click to see every run again. Works offline; loads nothing.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("data").textContent);
  var page = document.body.getAttribute("data-page");
  var tooltip = document.getElementById("tooltip");
  var COLOR = {p: "#3465a4", f: "#cc0000", s: "#c4a000", u: "#c4a000", r: "#06989a", b: "#888888"};
  var STATUS = {p: "pass", f: "fail", s: "skip", r: "recorded", b: "machine busy: not searched", u: "-"};
  var CP = {regression: "#cc0000", improvement: "#4e9a06", acked: "#999999"};
  var plots = [], drawn = 0, folded = 0;
  var view = {min: null, max: null, full: [null, null]};  // the shared x range, Unix seconds

  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; });
  }
  function fmt(v) {
    if (v === null || v === undefined) return "-";
    var a = Math.abs(v);
    return (a !== 0 && (a < 0.01 || a >= 1e5)) ? v.toExponential(3) : String(+v.toPrecision(4));
  }
  function expand(c) {  // x as [first, count] where a series has one value per run
    if (c.xr) { var x = []; for (var i = 0; i < c.x[1]; i++) x.push(c.x[0] + i); c.x = x; c.xr = false; }
    return c;
  }
  function cpClass(cp) { return cp.acked ? "acked" : (cp.regression ? "regression" : "improvement"); }
  function cpText(cp) {
    return cp.id + " " + cpClass(cp) + ": " + fmt(cp.ratio) + "x [" + fmt(cp.ci[0]) + ", " + fmt(cp.ci[1]) + "], p=" + cp.p +
      (cp.acked ? " - acknowledged: " + cp.acked : "") + " - " + cp.label;
  }

  // --- the shared time axis -------------------------------------------------------------
  function setView(min, max) {
    var lo = view.full[0], hi = view.full[1], span = Math.max(max - min, 60);
    if (max - min < 60) { min -= (60 - (max - min)) / 2; max = min + 60; }
    if (span >= hi - lo) { min = lo; max = hi; } else {
      if (min < lo) { max += lo - min; min = lo; }
      if (max > hi) { min -= max - hi; max = hi; }
    }
    view.min = min; view.max = max;
    plots.forEach(function (u) { u.setScale("x", {min: min, max: max}); });
  }
  function fullRange(times) {
    var lo = Math.min.apply(null, times), hi = Math.max.apply(null, times), pad = Math.max((hi - lo) * 0.02, 1800);
    return [lo - pad, hi + pad];
  }
  function interaction(u) {  // wheel zoom and pan, double-click back to every run
    u.over.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var min = u.scales.x.min, max = u.scales.x.max, span = max - min;
      if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
        var shift = span * 0.1 * Math.sign(ev.deltaX || ev.deltaY);
        setView(min + shift, max + shift);
      } else {
        var at = u.posToVal(ev.offsetX, "x"), f = ev.deltaY < 0 ? 0.8 : 1.25;
        setView(at - (at - min) * f, at + (max - at) * f);
      }
    }, {passive: false});
    u.over.addEventListener("dblclick", function () { setView(view.full[0], view.full[1]); });
  }

  function ticks(runs) {  // commit ticks: a few runs spread over what is in view
    var byTime = {};
    runs.forEach(function (r) { byTime[r[4]] = r; });
    return {
      splits: function (u, ax, min, max) {
        var inView = runs.filter(function (r) { return r[4] >= min && r[4] <= max; });
        var room = Math.max(1, Math.floor(u.bbox.width / uPlot.pxRatio / 80)), out = [];
        var step = Math.max(1, Math.ceil(inView.length / room));
        for (var i = 0; i < inView.length; i += step) out.push(inView[i][4]);
        return out;
      },
      values: function (u, splits) {
        u.tickLabels = splits.map(function (t) {
          var r = byTime[t];
          return r ? r[0].slice(5, 10) + " " + r[0].slice(11, 16) + "\n" + r[1].slice(0, 7) : "";
        });
        return u.tickLabels;
      },
    };
  }

  // --- one chart ------------------------------------------------------------------------
  function marks(c, xs) {  // points by status (busy hollow), then labelled change points
    return function (u) {
      var ctx = u.ctx, r = uPlot.pxRatio, box = u.bbox, ymin = u.scales.y.min, ymax = u.scales.y.max, i;
      ctx.save();
      ctx.beginPath(); ctx.rect(box.left, box.top, box.width, box.height); ctx.clip();
      for (i = 0; i < xs.length; i++) {
        if (xs[i] < u.scales.x.min || xs[i] > u.scales.x.max) continue;
        var st = c.s.charAt(i) || "u", y = Math.min(Math.max(c.y[i], ymin), ymax);
        var px = u.valToPos(xs[i], "x", true), py = u.valToPos(y, "y", true);
        ctx.beginPath(); ctx.arc(px, py, (st === "p" ? 2 : 3) * r, 0, 2 * Math.PI);
        if (st === "b") { ctx.lineWidth = r; ctx.strokeStyle = COLOR.b; ctx.fillStyle = "#fff"; ctx.fill(); ctx.stroke(); }
        else { ctx.fillStyle = COLOR[st] || COLOR.u; ctx.fill(); }
      }
      ctx.restore();
      // Change points: a dashed line, and its label kept wholly inside the plot - moved left
      // from the right edge, down a row when it would overlap its neighbour, shortened with
      // an ellipsis only when wider than the plot itself (the full text is listed below).
      var rows = [], boxes = [], font = 10 * r;
      ctx.save();
      ctx.font = font + "px system-ui, sans-serif"; ctx.textBaseline = "top"; ctx.textAlign = "left";
      (c.changes || []).forEach(function (cp) {
        var t = cp.t, cls = cpClass(cp);
        if (t < u.scales.x.min || t > u.scales.x.max) return;
        var x = u.valToPos(t, "x", true);
        ctx.strokeStyle = CP[cls]; ctx.lineWidth = 1.5 * r; ctx.setLineDash([3 * r, 2 * r]);
        ctx.beginPath(); ctx.moveTo(x, box.top); ctx.lineTo(x, box.top + box.height); ctx.stroke(); ctx.setLineDash([]);
        var text = cp.label, w = ctx.measureText(text).width, limit = box.width - 4 * r;
        while (w > limit && text.length > 1) { text = text.slice(0, -2) + "\u2026"; w = ctx.measureText(text).width; }
        var lx = Math.min(Math.max(x + 3 * r, box.left + 2 * r), box.left + box.width - w - 2 * r), row = 0;
        while (rows[row] !== undefined && rows[row] > lx - 4 * r) row++;
        rows[row] = lx + w;
        var ly = box.top + 2 * r + row * (font + 2 * r);
        ctx.fillStyle = "rgba(250,250,250,0.7)"; ctx.fillRect(lx - r, ly - r, w + 2 * r, font + 2 * r);
        ctx.fillStyle = CP[cls]; ctx.fillText(text, lx, ly);
        boxes.push({left: lx / r, right: (lx + w) / r, top: ly / r, bottom: (ly + font) / r, cls: cls});
      });
      ctx.restore();
      u.cpBoxes = boxes;  // what the browser test reads: every label inside the canvas
    };
  }

  function hover(c, xs, runs, label) {
    return function (u) {
      var i = u.cursor.idx;
      if (i === null || i === undefined || u.cursor.left < 0) { tooltip.hidden = true; return; }
      var run = runs[c.x[i]] || [], st = STATUS[c.s.charAt(i)] || "-";
      var lines = [label, c.metric + " = " + fmt(c.y[i]) + " " + c.unit, run[0] + " UTC  commit " + run[1],
        run[2] + "  (" + run[3] + ", " + st + ")"];
      if (run[5]) lines.push(run[5]);
      (c.changes || []).forEach(function (cp) { if (cp.t === xs[i]) lines.push(cpText(cp)); });
      tooltip.textContent = lines.join("\n");
      tooltip.hidden = false;
      var box = u.over.getBoundingClientRect();
      tooltip.style.left = Math.min(box.left + u.cursor.left + 12, window.innerWidth - tooltip.offsetWidth - 8) + "px";
      tooltip.style.top = (box.top + u.cursor.top + 12) + "px";
    };
  }

  function plot(el, c, runs, label) {
    expand(c);
    var xs = c.x.map(function (k) { return runs[k][4]; });
    (c.changes || []).forEach(function (cp) { cp.t = (runs[cp.i] || [])[4]; });
    // The y range comes from runs timed on a quiet machine where there are any: a busy run
    // (hollow) beyond it is drawn at the edge instead of flattening the series.
    var calm = c.y.filter(function (v, i) { return c.s.charAt(i) !== "b"; });
    var range = calm.length >= 2 ? calm : c.y, lo = Math.min.apply(null, range), hi = Math.max.apply(null, range);
    var pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.01 || 1, top = (c.changes || []).length ? 3 * pad : pad;  // room for labels
    var axis = ticks(runs);
    var u = new uPlot({
      width: 380, height: 190,
      legend: {show: false},
      cursor: {drag: {x: true, y: false, setScale: false}, points: {show: false}},
      select: {show: true},
      scales: {x: {time: true}, y: {auto: false, range: [lo - pad, hi + top]}},
      series: [{}, {stroke: "#3465a4", width: 1.2, points: {show: false}, spanGaps: true}],
      axes: [
        {splits: axis.splits, values: axis.values, size: 36, font: "10px system-ui, sans-serif", gap: 3},
        {label: c.unit, labelSize: 14, labelFont: "10px system-ui, sans-serif", size: 52,
          font: "10px system-ui, sans-serif", values: function (u, s) { return s.map(fmt); }},
      ],
      hooks: {
        draw: [marks(c, xs)],
        setCursor: [hover(c, xs, runs, label)],
        setSelect: [function (u) {
          if (u.select.width < 4) return;
          var min = u.posToVal(u.select.left, "x"), max = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({left: 0, top: 0, width: 0, height: 0}, false);
          setView(min, max);
        }],
      },
    }, [xs, c.y], el);
    u.over.addEventListener("mouseleave", function () { tooltip.hidden = true; });
    interaction(u);
    plots.push(u);
    drawn++;
    return u;
  }

  function notes(c) {  // the change points in words, under their chart
    return (c.changes || []).map(function (cp) {
      return '<div class="cp-note ' + cpClass(cp) + '">' + esc(cpText(cp)) + "</div>";
    }).join("");
  }

  // --- pages ----------------------------------------------------------------------------
  function tierPage() {
    var runs = data.runs, root = document.getElementById("charts"), filters = document.getElementById("filters");
    var facets = ["model", "dtype", "attention", "padding"], chosen = {};
    facets.forEach(function (f) {
      var values = {};
      data.variants.forEach(function (v) { if (v[f]) values[v[f]] = 1; });
      filters.insertAdjacentHTML("beforeend", "<label>" + f + ' <select data-facet="' + f + '"><option value="">all</option>' +
        Object.keys(values).sort().map(function (v) { return "<option>" + esc(v) + "</option>"; }).join("") + "</select></label>");
    });
    filters.insertAdjacentHTML("beforeend", '<span class="help">drag: zoom · wheel: zoom · shift+wheel: pan · double-click: every run</span>');
    if (runs.length) { view.full = fullRange(runs.map(function (r) { return r[4]; })); }
    var html = [];
    data.variants.forEach(function (v, k) {
      html.push('<div class="variant" data-k="' + k + '"><h2>' + esc(v.id) + '</h2><div class="charts">');
      v.charts.forEach(function (c, j) {
        var scope = c.scope === "*" ? "any machine" : c.scope;
        if (c.folded) {
          html.push('<div class="folded">' + esc(c.metric) + " " + esc(fmt(c.folded.value)) + " " + esc(c.unit) +
            " <small>(" + esc(scope) + ")</small>: unchanged since " + esc(c.folded.since) + " UTC, " + c.folded.runs + " runs</div>");
        } else {
          html.push('<div class="chartbox" data-j="' + j + '"><div class="charttitle">' + esc(c.metric) + " <small>(" +
            esc(scope) + ")</small></div><div class=\"plot\"></div>" + notes(c) + "</div>");
        }
      });
      html.push("</div></div>");
    });
    root.innerHTML = html.join("");
    var boxes = root.querySelectorAll(".variant");
    boxes.forEach(function (box) {
      var v = data.variants[+box.getAttribute("data-k")];
      box.querySelectorAll(".chartbox").forEach(function (cb) {
        plot(cb.querySelector(".plot"), v.charts[+cb.getAttribute("data-j")], runs, v.id);
      });
      folded += box.querySelectorAll(".folded").length;
    });
    if (runs.length) setView(view.full[0], view.full[1]);
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
    document.getElementById("summary").textContent = data.variants.length + " series over " + runs.length + " runs; " +
      alerts + " unacknowledged regression change points in red, acknowledged ones grey; busy runs hollow; " +
      folded + " series that never moved folded into one line";
  }

  function chainPage() {
    var root = document.getElementById("charts"), html = [];
    if (!data.chains.length) { root.textContent = "no compare --base runs in this history"; return; }
    var all = [];
    data.chains.forEach(function (ch, k) {
      html.push('<div class="variant"><h2>' + esc(ch.series) + ' <span class="' + (ch.flagged ? "alert" : "ok") + '">' +
        (ch.flagged ? "creep flagged" : "no creep") + '</span></h2><div class="plot" data-k="' + k + '"></div>');
      html.push("<table><tr><th>time</th><th>commit</th><th>head/base [95%]</th><th>cumulative [95%]</th></tr>" +
        ch.links.map(function (l) {
          return "<tr><td>" + esc(l.time.slice(0, 19)) + "</td><td>" + esc(l.commit.slice(0, 12)) + "</td><td>" + fmt(l.ratio) +
            " [" + fmt(l.low) + ", " + fmt(l.high) + "]</td><td>" + fmt(l.cumulative) + " [" + fmt(l.cumulative_low) + ", " +
            fmt(l.cumulative_high) + "]</td></tr>";
        }).join("") + "</table></div>");
      ch.links.forEach(function (l) { all.push(Date.parse(l.time) / 1000); });
    });
    root.innerHTML = html.join("");
    view.full = fullRange(all);
    data.chains.forEach(function (ch, k) {
      var runs = ch.links.map(function (l) {
        return [l.time.slice(0, 19), l.commit.slice(0, 12), "base " + l.base_commit.slice(0, 12), "compare", Date.parse(l.time) / 1000, ""];
      });
      var c = {metric: "cumulative head/base", unit: "x", x: [], y: [], s: "", changes: []};
      ch.links.forEach(function (l, i) { c.x.push(i); c.y.push(l.cumulative); c.s += l.low > 1 + data.threshold ? "f" : "p"; });
      plot(root.querySelector('.plot[data-k="' + k + '"]'), c, runs, ch.series);
    });
    setView(view.full[0], view.full[1]);
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
    window.perfsuitePlots = plots;
    document.body.setAttribute("data-charts", String(drawn));
    document.body.setAttribute("data-folded", String(folded));
    document.body.setAttribute("data-rendered", "done");
  } catch (err) {
    document.body.setAttribute("data-rendered", "error: " + err);
    throw err;
  }
})();
