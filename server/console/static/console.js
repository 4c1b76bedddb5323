/* Fieldsync console: CSRF header for htmx, and the dashboard/report charts (ECharts).
   Figures come from <script type="application/json"> blocks; nothing is evaluated. */
(function () {
  "use strict";

  document.addEventListener("htmx:configRequest", function (event) {
    var token = document.body.getAttribute("data-csrf");
    if (token) { event.detail.headers["X-CSRF-Token"] = token; }
  });

  var palette = ["#1f6feb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#64748b"];

  function bars(data, stacked) {
    return {
      color: palette,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 8, right: 16, bottom: 8, top: 32, containLabel: true },
      xAxis: { type: "category", data: data.names, axisLabel: { interval: 0, rotate: data.names.length > 6 ? 30 : 0 } },
      yAxis: { type: "value" },
      series: data.series.map(function (s) {
        return { name: s.name, type: "bar", stack: stacked ? "all" : undefined, data: s.values };
      })
    };
  }

  var builders = {
    funnel: function (data) {
      return {
        color: palette,
        tooltip: { trigger: "item", formatter: function (p) {
          return p.name + "<br>" + data.countLabel + ": " + data.counts[p.dataIndex] +
            "<br>" + data.amountLabel + ": " + Number(data.amounts[p.dataIndex]).toLocaleString();
        } },
        series: [{
          type: "funnel", sort: "none", left: "5%", width: "90%", top: 8, bottom: 8, gap: 2,
          label: { show: true, position: "inside", formatter: function (p) {
            return p.name + "  " + data.counts[p.dataIndex];
          } },
          data: data.names.map(function (name, i) {
            return { name: name, value: Math.max(data.amounts[i], 0) };
          })
        }]
      };
    },
    bars: function (data) { return bars(data, false); },
    stacked: function (data) { return bars(data, true); },
    pie: function (data) {
      return {
        color: palette,
        tooltip: { trigger: "item" },
        legend: { bottom: 0 },
        title: { text: data.center, subtext: data.centerLabel, left: "center", top: "38%",
          textStyle: { fontSize: 22 } },
        series: [{ type: "pie", radius: ["45%", "70%"], center: ["50%", "45%"],
          data: data.names.map(function (name, i) { return { name: name, value: data.values[i] }; }) }]
      };
    }
  };

  function drawCharts() {
    if (typeof window.echarts === "undefined") { return; }
    var nodes = document.querySelectorAll("[data-chart]");
    var charts = [];
    nodes.forEach(function (node) {
      var source = document.getElementById(node.id + "-data");
      var build = builders[node.getAttribute("data-chart")];
      if (!source || !build) { return; }
      var chart = window.echarts.init(node, null, { renderer: "canvas" });
      chart.setOption(build(JSON.parse(source.textContent)));
      node.setAttribute("data-drawn", "true");
      charts.push(chart);
    });
    window.addEventListener("resize", function () {
      charts.forEach(function (c) { c.resize(); });
    });
  }

  // Deferred scripts (ECharts among them) have all run when DOMContentLoaded fires.
  if (document.readyState === "complete") {
    drawCharts();
  } else {
    document.addEventListener("DOMContentLoaded", drawCharts);
  }
})();
