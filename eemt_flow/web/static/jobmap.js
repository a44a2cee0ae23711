// eemt-flow job page: the pan-and-zoom map of a job's result maps (Leaflet, vendored from npm)
// and the monthly charts, from GET /api/jobs/{id}/maps, /tiles and /point (docs/api.md).
// Everything the server sends is put into the page with textContent, never as HTML.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const MAPS_POLL_MS = 3000;

function layerGroupName(m) {
  if (m.kind === "eemt") return "EEMT";
  if (m.kind === "terrain") return "Terrain";
  return "Solar";
}

// The maps the chooser offers: monthly solar maps, every EEMT map, the static terrain maps.
function chooserMaps(maps) {
  return maps.filter((m) => m.period !== "daily" && m.bands === 1 && m.statistics && m.statistics.valid_cells > 0);
}

function formatValue(v) {
  if (v === null || v === undefined) return "no data";
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-2) ? v.toExponential(3) : v.toFixed(a >= 100 ? 1 : 3);
}

function showLegend(m) {
  document.getElementById("legend-title").textContent = m.title + " (" + m.legend.units + ")";
  document.getElementById("legend-vmin").textContent = formatValue(m.legend.vmin);
  document.getElementById("legend-vmax").textContent = formatValue(m.legend.vmax);
  document.getElementById("legend-bar").style.background =
    "linear-gradient(to right, " + m.legend.colors.join(", ") + ")";
}

function buildMap(index) {
  const section = document.getElementById("explore");
  section.hidden = false;
  const [west, south, east, north] = index.bounds_lonlat;
  const bounds = L.latLngBounds([south, west], [north, east]);
  const map = L.map("leaflet-map", { minZoom: Math.max(0, index.minzoom - 2), maxZoom: index.maxzoom + 2 });
  window.eemtMap = map;  // for the browser test and the console
  map.fitBounds(bounds);
  const osm = L.tileLayer(section.dataset.osm + "/{z}/{x}/{y}.png", {
    maxZoom: 19, attribution: "© OpenStreetMap contributors", className: "osm-tile" });
  osm.on("tileerror", () => {});  // without a network its tiles fail quietly
  const toggle = document.getElementById("osm-toggle");
  toggle.addEventListener("change", () => { if (toggle.checked) osm.addTo(map).bringToBack(); else osm.remove(); });

  const maps = chooserMaps(index.maps);
  const select = document.getElementById("layer-select");
  for (const m of maps) {
    const opt = document.createElement("option");
    opt.value = m.path;
    opt.textContent = layerGroupName(m) + ": " + m.title;
    select.appendChild(opt);
  }
  let current = null;
  let layer = null;
  function choose(path) {
    current = maps.find((m) => m.path === path);
    if (layer) layer.remove();
    layer = L.tileLayer(current.tiles_url, {
      minZoom: 0, maxZoom: index.maxzoom + 2, maxNativeZoom: index.maxzoom, bounds: bounds,
      className: "result-tile", opacity: 0.9 });
    layer.addTo(map);
    window.eemtLayer = layer;
    showLegend(current);
  }
  select.addEventListener("change", () => choose(select.value));
  const eemtMaps = maps.filter((m) => m.variable === "EEMT" && (m.period === "annual" || m.period === "mean"));
  const first = eemtMaps.find((m) => (m.model || "").toLowerCase() === "topo") || eemtMaps[0]
             || maps.find((m) => m.variable === "glob_rad") || maps[0];
  if (first) { select.value = first.path; choose(first.path); }

  map.on("click", async (ev) => {
    const url = "/api/jobs/" + document.getElementById("job").dataset.jobId + "/point?lon="
                + ev.latlng.lng + "&lat=" + ev.latlng.lat;
    const content = document.createElement("div");
    content.className = "point-popup";
    const resp = await fetch(url);
    if (!resp.ok) {
      content.textContent = await errorText(resp);
    } else {
      const body = await resp.json();
      const hit = body.values.find((v) => v.path === current.path);
      const head = document.createElement("p");
      const strong = document.createElement("strong");
      strong.className = "point-value";
      strong.dataset.value = hit && hit.value !== null ? String(hit.value) : "";
      strong.textContent = hit ? formatValue(hit.value) + " " + hit.units : "no value";
      head.append(current.title + ": ", strong);
      const where = document.createElement("p");
      where.textContent = "lon " + body.lon.toFixed(5) + ", lat " + body.lat.toFixed(5)
                          + " (row " + body.row + ", col " + body.col + ")";
      content.append(head, where);
    }
    L.popup().setLatLng(ev.latlng).setContent(content).openOn(map);
  });
  buildCharts(index.maps);
}

// Monthly series of a variable: [{month, mean, p10, p90}] sorted by month.
function monthlySeries(maps, variable, model) {
  return maps.filter((m) => m.variable === variable && m.period === "monthly" && m.month
                            && (model === undefined || m.model === model) && m.statistics)
             .map((m) => ({ month: m.month, mean: m.statistics.mean, p10: m.statistics.p10,
                            p90: m.statistics.p90, units: m.units }))
             .sort((a, b) => a.month - b.month);
}

const SERIES_COLORS = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a"];

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

// A small SVG chart: lines of monthly means with their p10-p90 bands.
function drawChart(title, series) {
  const W = 560, H = 260, left = 70, right = 20, top = 30, bottom = 40;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return null;
  const vmax = Math.max(...all.map((p) => Math.max(p.p90 ?? p.mean, p.mean)));
  const vmin = Math.min(0, ...all.map((p) => Math.min(p.p10 ?? p.mean, p.mean)));
  const x = (month) => left + (month - 0.5) / 12 * (W - left - right);
  const y = (v) => top + (1 - (v - vmin) / ((vmax - vmin) || 1)) * (H - top - bottom);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  svg.dataset.title = title;
  const t = svgEl("text", { x: left, y: 18, class: "chart-title" });
  t.textContent = title + " (" + all[0].units + ")";
  svg.appendChild(t);
  svg.appendChild(svgEl("line", { x1: left, y1: y(vmin), x2: W - right, y2: y(vmin), stroke: "#444" }));
  svg.appendChild(svgEl("line", { x1: left, y1: top, x2: left, y2: y(vmin), stroke: "#444" }));
  for (const v of [vmin, (vmin + vmax) / 2, vmax]) {
    const lab = svgEl("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "chart-axis" });
    lab.textContent = formatValue(v);
    svg.appendChild(lab);
  }
  for (let mo = 1; mo <= 12; mo++) {
    const lab = svgEl("text", { x: x(mo), y: H - bottom + 16, "text-anchor": "middle", class: "chart-axis" });
    lab.textContent = String(mo);
    svg.appendChild(lab);
  }
  series.forEach((s, i) => {
    const color = SERIES_COLORS[i % SERIES_COLORS.length];
    const pts = s.points;
    if (pts.every((p) => p.p10 !== undefined && p.p90 !== undefined)) {
      const upper = pts.map((p) => `${x(p.month)},${y(p.p90)}`);
      const lower = pts.slice().reverse().map((p) => `${x(p.month)},${y(p.p10)}`);
      svg.appendChild(svgEl("polygon", { points: upper.concat(lower).join(" "), fill: color,
                                         "fill-opacity": 0.2, class: "chart-band" }));
    }
    svg.appendChild(svgEl("polyline", { points: pts.map((p) => `${x(p.month)},${y(p.mean)}`).join(" "),
                                        fill: "none", stroke: color, "stroke-width": 2, class: "chart-line" }));
    for (const p of pts) {
      const c = svgEl("circle", { cx: x(p.month), cy: y(p.mean), r: 3, fill: color, class: "chart-point" });
      c.dataset.series = s.name;
      c.dataset.month = String(p.month);
      c.dataset.mean = String(p.mean);
      const tip = svgEl("title", {});
      tip.textContent = s.name + ", month " + p.month + ": " + formatValue(p.mean);
      c.appendChild(tip);
      svg.appendChild(c);
    }
    const key = svgEl("text", { x: W - right - 4, y: 18 + 14 * i, "text-anchor": "end", fill: color, class: "chart-key" });
    key.textContent = s.name + " (mean, band p10-p90)";
    svg.appendChild(key);
  });
  return svg;
}

function buildCharts(maps) {
  const box = document.getElementById("charts");
  const charts = [];
  const rad = [{ name: "topographic glob_rad", points: monthlySeries(maps, "glob_rad") },
               { name: "flat flat_glob_rad", points: monthlySeries(maps, "flat_glob_rad") }]
              .filter((s) => s.points.length);
  if (rad.length) charts.push(drawChart("Global radiation, monthly mean", rad));
  for (const variable of ["E_PPT", "E_BIO"]) {
    const models = [...new Set(maps.filter((m) => m.variable === variable && m.period === "monthly")
                                     .map((m) => m.model))];
    const series = models.map((model) => ({ name: variable + (model ? " " + model : ""),
                                            points: monthlySeries(maps, variable, model) }))
                         .filter((s) => s.points.length);
    if (series.length) charts.push(drawChart(variable + ", monthly mean", series));
  }
  box.replaceChildren(...charts.filter(Boolean));
}

async function loadMaps() {
  const id = document.getElementById("job").dataset.jobId;
  try {
    const resp = await fetch("/api/jobs/" + id + "/maps");
    if (resp.ok) {
      const index = await resp.json();
      if (index.maps && index.maps.length) { buildMap(index); return; }
    }
  } catch (e) { /* the server restarting: try again */ }
  // Until the job's results (and their maps index) exist; a finished job without maps stops here.
  if (document.getElementById("job").dataset.active === "1" || !document.getElementById("results").hidden) {
    setTimeout(loadMaps, MAPS_POLL_MS);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof L === "undefined") {
    const section = document.getElementById("explore");
    section.hidden = false;
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = "The interactive map is unavailable: Leaflet did not load.";
    section.replaceChildren(p);
    return;
  }
  loadMaps();
});
