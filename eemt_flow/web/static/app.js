// eemt-flow web pages: submit the form to the REST API, follow a job's progress.
// Everything the server sends is put into the page with textContent, never as HTML.
"use strict";

function authHeaders() {
  const field = document.getElementById("token");
  const token = (field && field.value) || sessionStorage.getItem("eemt-token") || "";
  if (field && field.value) sessionStorage.setItem("eemt-token", field.value);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (e) {
    return resp.status + " " + resp.statusText;
  }
}

// Optional user rasters of an EEMT job (the API's file fields; eemt_flow.web.runner.RASTER_FIELDS).
const RASTER_FIELDS = ["ndvi", "canopy_height", "wind_speed", "npp"];

function collectParameters(form) {
  const params = {};
  const numbers = ["step_minutes", "linke", "albedo", "tile_size_cells", "halo_m", "horizon_step_deg",
                   "station_elevation_m"];
  const climate = form.elements.climate ? form.elements.climate.value : "none";
  const names = ["days", "reproject", "horizon_method", ...numbers];
  if (climate === "daymet") names.push("years");
  for (const name of names) {
    const el = form.elements[name];
    if (!el || el.value.trim() === "") continue;
    if (name === "station_elevation_m" && climate !== "station") continue;
    params[name] = numbers.includes(name) ? Number(el.value) : el.value.trim();
  }
  if (form.elements.keep_daily && form.elements.keep_daily.checked) params.keep_daily = true;
  params.climate = climate;
  if (climate !== "none") {
    params.models = Array.from(form.querySelectorAll("input[name=models]:checked"), (el) => el.value);
  }
  return params;
}

function showClimateOptions(form) {
  const climate = form.elements.climate.value;
  show(document.getElementById("eemt-options"), climate !== "none");
  show(document.getElementById("station-options"), climate === "station");
  show(document.getElementById("daymet-options"), climate === "daymet");
}

function setupForm(form) {
  const error = document.getElementById("form-error");
  const button = document.getElementById("submit");
  if (form.elements.climate) {
    form.elements.climate.addEventListener("change", () => showClimateOptions(form));
    showClimateOptions(form);
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const file = form.elements.dem.files[0];
    if (!file) {
      error.textContent = "Choose a GeoTIFF DEM first.";
      error.hidden = false;
      return;
    }
    const body = new FormData();
    body.append("dem", file, file.name);
    const params = collectParameters(form);
    body.append("parameters", JSON.stringify(params));
    const csv = form.elements.climate_csv && form.elements.climate_csv.files[0];
    if (params.climate === "station" && csv) body.append("climate_csv", csv, csv.name);
    if (params.climate !== "none") {
      for (const name of RASTER_FIELDS) {
        const raster = form.elements[name] && form.elements[name].files[0];
        if (raster) body.append(name, raster, raster.name);
      }
    }
    button.disabled = true;
    button.textContent = "Uploading…";
    try {
      const resp = await fetch("/api/jobs", { method: "POST", body, headers: authHeaders() });
      if (resp.status !== 201) throw new Error(await errorText(resp));
      const created = await resp.json();
      window.location.assign("/jobs/" + encodeURIComponent(created.id));
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      button.disabled = false;
      button.textContent = "Submit job";
    }
  });
}

function show(el, visible) { if (el) el.hidden = !visible; }

function resultItem(r) {
  const li = document.createElement("li");
  const a = document.createElement("a");
  a.href = r.url;
  a.textContent = r.name;
  const size = document.createElement("small");
  size.textContent = " (" + (r.size_bytes / 1024).toFixed(1) + " KiB)";
  li.append(a, size);
  return li;
}

function renderJob(job) {
  const state = document.getElementById("job-state");
  state.textContent = job.state;
  state.className = "state state-" + job.state;
  const progress = document.getElementById("job-progress");
  progress.max = job.tasks_total || 1;
  progress.value = job.tasks_done;
  document.getElementById("job-tasks").textContent = job.tasks_done + "/" + job.tasks_total;
  const error = document.getElementById("job-error");
  error.textContent = job.error || "";
  show(error, !!job.error);
  const note = document.getElementById("job-note");
  note.textContent = job.note || "";
  show(note, !!job.note);
  show(document.getElementById("cancel"), job.state === "queued" || job.state === "running");
  show(document.getElementById("files-removed"), job.files_removed);
  const log = document.getElementById("log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = job.log_tail;
  if (atBottom) log.scrollTop = log.scrollHeight;

  show(document.getElementById("results"), job.results.length > 0);
  const list = document.getElementById("result-list");
  list.replaceChildren(...job.results.map(resultItem));
  const eemtMaps = document.getElementById("eemt-maps");
  if (eemtMaps.dataset.shown !== job.eemt_maps.map((m) => m.url).join(" ")) {
    eemtMaps.dataset.shown = job.eemt_maps.map((m) => m.url).join(" ");
    eemtMaps.replaceChildren(...job.eemt_maps.map((m) => {
      const figure = document.createElement("figure");
      figure.className = "eemt-map";
      const img = document.createElement("img");
      img.src = m.url;
      img.alt = m.title;
      const caption = document.createElement("figcaption");
      caption.textContent = m.title;
      figure.append(img, caption);
      return figure;
    }));
  }
  document.getElementById("eemt-list").replaceChildren(...job.eemt_geotiffs.map(resultItem));
  show(document.getElementById("eemt-downloads"), job.eemt_geotiffs.length > 0);
  if (job.results_zip_url) document.getElementById("zip").href = job.results_zip_url;
  const map = document.getElementById("map");
  if (job.map_url && map.getAttribute("src") !== job.map_url) map.src = job.map_url;
  show(document.getElementById("map-figure"), !!job.map_url);
}

function followJob(section) {
  const id = section.dataset.jobId;
  const url = "/api/jobs/" + encodeURIComponent(id);
  let timer = null;
  async function poll() {
    try {
      const resp = await fetch(url, { cache: "no-store" });
      if (resp.ok) {
        const job = await resp.json();
        renderJob(job);
        if (job.state !== "queued" && job.state !== "running") return;
      }
    } catch (e) { /* the server may be restarting: keep polling */ }
    timer = setTimeout(poll, 1000);
  }
  document.getElementById("cancel").addEventListener("click", async () => {
    const resp = await fetch(url + "/cancel", { method: "POST", headers: authHeaders() });
    if (!resp.ok) alert(await errorText(resp));
    if (timer === null) poll();
  });
  if (section.dataset.active === "1") poll();
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("job-form");
  if (form) setupForm(form);
  const section = document.getElementById("job");
  if (section) followJob(section);
});
