// 督查看板: polls the scoped JSON data endpoint and redraws; DOM built with textContent only.
"use strict";
(function () {
  var POLL_MS = 3000;
  var SVG = "http://www.w3.org/2000/svg";
  var names = JSON.parse(document.getElementById("names").textContent);
  var form = document.getElementById("filters");

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function set(id, value) { document.getElementById(id).textContent = value; }
  function regionName(code) { return names.regions[code] || code; }
  function counterName(id) { return (names.counters[id] && names.counters[id].name) || id; }
  function itemName(code) { return names.items[code] || code; }

  function bars(id, data, label) {
    var box = document.getElementById(id);
    box.replaceChildren();
    var keys = Object.keys(data);
    if (!keys.length) { box.appendChild(el("p", {"class": "muted"}, "无在办件")); return; }
    var max = Math.max.apply(null, keys.map(function (k) { return data[k]; }));
    keys.forEach(function (k) {
      var row = el("div", {"class": "bar-row", "data-key": k});
      row.appendChild(el("span", {"class": "bar-label", title: label(k)}, label(k)));
      var track = el("span", {"class": "bar-track"});
      var fill = el("span", {"class": "bar-fill"});
      fill.style.width = (100 * data[k] / max).toFixed(1) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", {"class": "bar-n"}, data[k]));
      box.appendChild(row);
    });
  }

  function caseLink(number) {
    return el("a", {href: "/ui/cases/" + encodeURIComponent(number)}, number);
  }

  function rows(id, list, cells) {
    var body = document.querySelector("#" + id + " tbody");
    body.replaceChildren();
    if (!list.length) {
      var tr = el("tr");
      tr.appendChild(el("td", {colspan: "9", "class": "muted"}, "无"));
      body.appendChild(tr);
    }
    list.forEach(function (r) {
      var tr = el("tr");
      cells(r).forEach(function (c) {
        var td = el("td");
        if (c instanceof Node) td.appendChild(c); else td.textContent = c === null ? "—" : String(c);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  // The case's task runs in the Prefect UI; none when no UI is configured (TONGBAN_PREFECT_UI_URL empty).
  function prefect(r) {
    return r.prefect_url ? el("a", {href: r.prefect_url, target: "_blank", rel: "noopener"}, "Prefect") : null;
  }
  function badge(status) {
    return el("span", {"class": "badge " + ({"逾期": "bad", "预警": "warn"}[status] || "good")}, status);
  }

  function chart(points) {
    var box = document.getElementById("chart-throughput");
    var W = 760, H = 220, L = 36, B = 28, T = 12;
    var top = Math.max(1, Math.max.apply(null, points.map(function (p) { return Math.max(p.received, p.finished); })));
    var max = Math.ceil(top / 4) * 4;  // four whole-number gridlines
    var s = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "每日收件与办结"});
    var step = (W - L - 8) / Math.max(1, points.length);
    var bw = Math.max(1, step / 2 - 1);
    for (var g = 0; g <= 4; g++) {
      var y = T + (H - T - B) * (1 - g / 4);
      s.appendChild(svg("line", {x1: L, x2: W, y1: y, y2: y, "class": "gridline"}));
      s.appendChild(svg("text", {x: L - 4, y: y + 4, "text-anchor": "end", "class": "axis"}, max * g / 4));
    }
    points.forEach(function (p, i) {
      var x = L + i * step;
      [["received", 0], ["finished", 1]].forEach(function (k) {
        var h = (H - T - B) * p[k[0]] / max;
        var r = svg("rect", {x: x + k[1] * (bw + 1), y: H - B - h, width: bw, height: h, "class": "bar-" + k[0]});
        r.appendChild(svg("title", {}, p.day + (k[1] ? " 办结 " : " 收件 ") + p[k[0]]));
        s.appendChild(r);
      });
      if (points.length <= 10 || i % Math.ceil(points.length / 8) === 0) {
        s.appendChild(svg("text", {x: x + bw, y: H - 8, "text-anchor": "middle", "class": "axis"}, p.day.slice(5)));
      }
    });
    var lg = svg("g", {transform: "translate(" + (W - 150) + ",8)"});
    lg.appendChild(svg("rect", {x: 0, y: 0, width: 10, height: 10, "class": "bar-received"}));
    lg.appendChild(svg("text", {x: 14, y: 10, "class": "axis"}, "收件"));
    lg.appendChild(svg("rect", {x: 60, y: 0, width: 10, height: 10, "class": "bar-finished"}));
    lg.appendChild(svg("text", {x: 74, y: 10, "class": "axis"}, "办结"));
    s.appendChild(lg);
    box.replaceChildren(s);
  }

  // Instants come as UTC; show them as the product zone's wall time.
  function localTime(iso, zone) {
    var parts = new Intl.DateTimeFormat("zh-CN", {timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hour12: false}).formatToParts(new Date(iso));
    var p = {};
    parts.forEach(function (x) { p[x.type] = x.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute;
  }

  function render(d) {
    var warning = document.getElementById("calendar-warning");
    if (d.calendar_missing_years.length) {
      warning.textContent = "尚未发布 " + d.calendar_missing_years.join("、") + " 年节假日安排: 涉及该年的办理期限按周末临时计算, 发布后自动重算 (请系统管理员导入节假日安排)";
      warning.hidden = false;
    } else {
      warning.hidden = true;
    }
    set("open-total", d.open_total);
    set("dl-normal", d.deadline["正常"]);
    set("dl-warning", d.deadline["预警"]);
    set("dl-overdue", d.deadline["逾期"]);
    set("stuck-count", d.stuck.count);
    set("period", "近 " + d.period_days + " 天");
    set("warn-note", "预警: 距承诺办结 ≤ " + d.warn_working_days + " 个工作日");
    set("stuck-note", "超过 " + d.stuck_working_days + " 个工作日无办理事件");
    bars("by-state", d.open_by.state, function (k) { return k; });
    bars("by-region", d.open_by.region, regionName);
    bars("by-counter", d.open_by.counter, counterName);
    bars("by-item", d.open_by.item, itemName);
    chart(d.throughput);
    rows("at-risk", d.at_risk, function (r) {
      return [caseLink(r.number), itemName(r.item), r.state, counterName(r.counter), r.promised_due, badge(r.deadline), prefect(r)];
    });
    rows("stuck", d.stuck.cases, function (r) {
      return [caseLink(r.number), itemName(r.item), r.state, counterName(r.counter), localTime(r.last_event, d.timezone), prefect(r)];
    });
    rows("handoffs", d.handoffs, function (r) {
      return [regionName(r.from), regionName(r.to), r.count, r.pending, r.avg_hours, r.max_hours];
    });
    rows("workloads", d.workloads, function (r) { return [counterName(r.counter), r.clerk, r.open]; });
    set("updated", "更新于 " + new Date().toLocaleTimeString("zh-CN", {hour12: false}));
  }

  function query() {
    var p = new URLSearchParams(new FormData(form));
    Array.from(p.keys()).forEach(function (k) { if (!p.get(k)) p.delete(k); });
    return p.toString();
  }

  var timer = null;
  function poll() {
    fetch("/api/v1/dashboard?" + query(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) {
        if (r.status === 401) { location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search); }
        return r.json().then(function (body) { if (!r.ok) throw new Error(body.detail || r.statusText); return body; });
      })
      .then(function (d) { document.getElementById("error").hidden = true; render(d); })
      .catch(function (e) { var x = document.getElementById("error"); x.textContent = "看板数据加载失败: " + e.message; x.hidden = false; })
      .finally(function () { timer = setTimeout(poll, POLL_MS); });
  }
  form.addEventListener("change", function () {
    history.replaceState(null, "", "/ui/dashboard?" + query());
    clearTimeout(timer);
    poll();
  });
  poll();
})();
