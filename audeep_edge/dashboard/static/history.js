// audeep-edge dashboard, history panel: the selected device's windows, label shares, hourly summary and
// events (with playable clips) over 5 min / 1 h / 24 h / 7 d, read from the recorder's database through
// /api/history and /api/events. Drag across the timeline (mouse or finger) or use +/− to zoom.
"use strict";

(() => {
  const shared = window.audeepDashboard;   // from app.js: labelColour(label), selected()
  const $ = (sel) => document.querySelector(sel);
  const panel = $("#history");
  const canvas = $("#history-timeline");
  const MIN_SPAN_S = 60;
  const MIN_TICK_PX = 72;       // axis labels at least this far apart, so they never overlap (phones too)
  const TICK_STEPS = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];
  let range = 86400;            // seconds shown when not zoomed, ending now
  let zoom = null;              // [t0, t1] when zoomed
  let device = null;
  let data = null;              // last /api/history answer
  let loading = false;
  let loadedAt = 0;

  function view() {
    if (zoom) return zoom;
    const t1 = Date.now() / 1000;
    return [t1 - range, t1];
  }

  // ---- loading ----------------------------------------------------------------------------------
  async function load() {
    if (loading || !device) return;
    loading = true;
    const [t0, t1] = view();
    const width = Math.max(50, Math.min(2000, Math.round(canvas.clientWidth || 600)));
    // Past two days, hourly bars: the server reads those from its hourly counts instead of every window.
    const buckets = t1 - t0 > 2 * 86400 ? Math.floor((t1 - t0) / 3600) : width;
    const events = new URLSearchParams({ device, from: t0, to: t1, limit: 200 });
    const type = $("#event-type").value, label = $("#event-label").value;
    if (type) events.set("type", type);
    if (label) events.set("label", label);
    try {
      const [history, list] = await Promise.all([
        fetchJson(`/api/history?${new URLSearchParams({ device, from: t0, to: t1, buckets })}`),
        fetchJson(`/api/events?${events}`),
      ]);
      if (history.device !== device) return;   // the selection changed meanwhile
      data = history;
      panel.hidden = false;
      draw();
      renderShares(history);
      renderHours(history);
      renderEvents(list);
    } catch (err) {
      if (err.status === 404) panel.hidden = true;   // the dashboard runs without a database
    } finally {
      loading = false;
      loadedAt = Date.now();
    }
  }

  async function fetchJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw Object.assign(new Error(url), { status: response.status });
    return response.json();
  }

  // ---- timeline and axis ------------------------------------------------------------------------
  function draw() {
    if (!data) return;
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = Number(canvas.getAttribute("height"));
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    canvas.style.height = `${h}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const { from: t0, to: t1, bucket_s: bucket } = data;
    const x = (t) => ((t - t0) / (t1 - t0)) * w;
    for (const [start, label, , novelty] of data.buckets) {
      ctx.fillStyle = shared.labelColour(label);
      ctx.fillRect(x(start), 0, Math.max(1, x(start + bucket) - x(start)), h - 6);
      if (novelty != null && novelty >= 0.95) {   // a high novelty score in this bucket
        ctx.fillStyle = "#f85149";
        ctx.fillRect(x(start), h - 4, Math.max(1, x(start + bucket) - x(start)), 4);
      }
    }
    renderAxis(t0, t1, w);
  }

  function renderAxis(t0, t1, w) {
    const span = t1 - t0;
    const step = TICK_STEPS.find((s) => (s / span) * w >= MIN_TICK_PX) || TICK_STEPS[TICK_STEPS.length - 1];
    const offset = new Date(t0 * 1000).getTimezoneOffset() * 60;   // ticks on local clock boundaries
    const labels = [];
    for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) {
      const date = new Date(t * 1000);
      const text = step >= 86400 ? date.toLocaleDateString([], { weekday: "short", day: "numeric" })
        : step < 60 ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
        : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      labels.push([((t - t0) / span) * w, text]);
    }
    const axis = $("#history-axis");
    axis.replaceChildren(...labels.map(([px, text]) => {
      const tick = document.createElement("span");
      tick.textContent = text;
      tick.style.left = `${px}px`;
      return tick;
    }));
    // A label that would stick out of the chart is dropped rather than squeezed against its neighbour.
    const right = Math.min(w, canvas.getBoundingClientRect().width);   // clientWidth rounds too
    for (const tick of [...axis.children]) {
      // the rendered width, fractional: offsetWidth rounds, and a label 0.04 px wider than that sticks out
      const half = tick.getBoundingClientRect().width / 2, left = parseFloat(tick.style.left);
      if (left - half < 0 || left + half > right) tick.remove();
    }
  }

  // ---- shares, hourly summary, summary line -------------------------------------------------------
  // Percentages to one decimal that add up to exactly 100 (largest remainder).
  function shares(counts, total) {
    const tenths = counts.map((n) => (n * 1000) / total);
    const floors = tenths.map(Math.floor);
    let left = 1000 - floors.reduce((a, b) => a + b, 0);
    tenths.map((v, i) => [v - floors[i], i]).sort((a, b) => b[0] - a[0])
      .forEach(([, i]) => { if (left > 0) { floors[i]++; left--; } });
    return floors.map((v) => v / 10);
  }

  function labelName(label) { return label === "null" ? "no classifier" : label; }

  function renderShares(history) {
    const entries = Object.entries(history.labels).sort((a, b) => b[1] - a[1]);
    const percent = shares(entries.map((e) => e[1]), history.windows);
    const rows = entries.map(([label, n], i) => {
      const tr = document.createElement("tr");
      tr.dataset.label = label;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = shared.labelColour(label === "null" ? null : label);
      const name = document.createElement("th");
      name.append(swatch, labelName(label));
      const share = document.createElement("td");
      share.className = "share";
      share.textContent = `${percent[i].toFixed(1)} %`;
      const count = document.createElement("td");
      count.className = "count";
      count.textContent = `${n} windows`;
      tr.append(name, share, count);
      return tr;
    });
    $("#history-shares tbody").replaceChildren(...rows);
    const select = $("#event-label");
    const chosen = select.value;
    const options = [["", "all labels"], ...entries.filter(([l]) => l !== "null").map(([l]) => [l, l])];
    if (chosen && !options.some(([v]) => v === chosen)) options.push([chosen, chosen]);
    if (select.dataset.key !== options.map((o) => o[0]).join("\u0000")) {
      select.dataset.key = options.map((o) => o[0]).join("\u0000");
      select.replaceChildren(...options.map(([value, text]) => new Option(text, value, false, value === chosen)));
    }
    const [t0, t1] = [history.from, history.to];
    const summary = $("#history-summary");
    summary.dataset.windows = String(history.windows);
    summary.textContent = `${history.windows} windows · ${stamp(t0, t1 - t0)} – ${stamp(t1, t1 - t0)}`
      + (history.windows ? "" : " · nothing recorded in this range");
  }

  function renderHours(history) {
    const rows = new Map();   // local day -> row element
    const container = $("#history-hours");
    container.replaceChildren();
    for (const [hour, counts] of history.hourly) {
      const date = new Date(hour * 1000);
      const day = date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });
      let row = rows.get(day);
      if (!row) {
        row = document.createElement("div");
        row.className = "hours-row";
        const name = document.createElement("span");
        name.className = "day";
        name.textContent = day;
        row.append(name);
        for (let h = 0; h < 24; h++) row.append(Object.assign(document.createElement("span"), { className: "hour" }));
        rows.set(day, row);
        container.append(row);
      }
      const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
      const n = entries.reduce((a, e) => a + e[1], 0);
      const cell = row.children[1 + date.getHours()];
      cell.dataset.n = String(n);
      cell.style.background = shared.labelColour(entries[0][0] === "null" ? null : entries[0][0]);
      cell.title = `${date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })} · `
        + entries.map(([l, c]) => `${labelName(l)} ${Math.round((100 * c) / n)} %`).join(", ") + ` · ${n} windows`;
    }
  }

  // ---- events -----------------------------------------------------------------------------------
  function renderEvents(list) {
    const withClip = $("#event-with-clip").checked;
    const items = list.filter((e) => !withClip || e.clip).map((e) => {
      const li = document.createElement("li");
      li.dataset.type = e.type;
      const head = document.createElement("div");
      const details = e.type === "label_change" ? `${e.event.previous ?? "–"} → ${e.label ?? "–"}`
        : e.type === "novel" ? [e.event.state, e.event.peak != null && `peak ${Number(e.event.peak).toFixed(2)}`,
                                e.event.duration != null && `${Number(e.event.duration).toFixed(1)} s`]
          .filter(Boolean).join(" · ")
        : `${e.clip.reason}${e.clip.label ? ` ${e.clip.label}` : ""}`;
      head.textContent = `${new Date(e.wall_time * 1000).toLocaleString()} · ${e.type} · ${details}`;
      li.append(head);
      if (e.clip) {
        const audio = document.createElement("audio");
        audio.controls = true;
        audio.preload = "metadata";
        audio.src = `/api/clips/${encodeURIComponent(e.clip.device_id)}/${encodeURIComponent(e.clip.clip_id)}`;
        const note = document.createElement("span");
        note.className = "hint";
        note.textContent = ` clip ${e.clip.duration_s.toFixed(1)} s · ${e.clip.format}`
          + (e.clip.score != null ? ` · score ${e.clip.score.toFixed(2)}` : "");
        li.append(audio, note);
      }
      return li;
    });
    if (!items.length) items.push(Object.assign(document.createElement("li"), { textContent: "none in this range" }));
    const list_ = $("#history-events");
    // Keep players that are playing: only replace the list when what it shows changed.
    const key = list.map((e) => `${e.device_id}/${e.wall_time}/${e.type}`).join("|") + withClip;
    if (list_.dataset.key !== key) { list_.dataset.key = key; list_.replaceChildren(...items); }
  }

  // ---- formatting ---------------------------------------------------------------------------------
  function stamp(t, span) {
    const date = new Date(t * 1000);
    return span >= 86400 ? date.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" })
      : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // ---- controls ---------------------------------------------------------------------------------
  function setZoom(next) {
    zoom = next;
    $("#zoom-reset").hidden = !zoom;
    load();
  }

  function zoomBy(factor) {
    const [t0, t1] = view();
    const centre = (t0 + t1) / 2, half = Math.max(MIN_SPAN_S, (t1 - t0) * factor) / 2;
    const now = Date.now() / 1000;
    setZoom(factor > 1 && 2 * half >= range ? null : [centre - half, Math.min(now, centre + half)]);
  }

  for (const button of document.querySelectorAll("#history .ranges button")) {
    button.addEventListener("click", () => {
      range = Number(button.dataset.range);
      for (const b of document.querySelectorAll("#history .ranges button")) b.classList.toggle("active", b === button);
      setZoom(null);
    });
  }
  $("#zoom-in").addEventListener("click", () => zoomBy(0.5));
  $("#zoom-out").addEventListener("click", () => zoomBy(2));
  $("#zoom-reset").addEventListener("click", () => setZoom(null));
  for (const id of ["#event-type", "#event-label", "#event-with-clip"]) $(id).addEventListener("change", load);

  // Drag to zoom: pointer events cover mouse, pen and touch.
  let dragFrom = null;
  const selection = $("#history-selection");
  canvas.addEventListener("pointerdown", (e) => { dragFrom = e.offsetX; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => {
    if (dragFrom == null) return;
    const a = Math.min(dragFrom, e.offsetX), b = Math.max(dragFrom, e.offsetX);
    selection.hidden = b - a < 3;
    selection.style.left = `${a}px`;
    selection.style.width = `${b - a}px`;
  });
  canvas.addEventListener("pointerup", (e) => {
    if (dragFrom == null) return;
    const a = Math.min(dragFrom, e.offsetX), b = Math.max(dragFrom, e.offsetX);
    dragFrom = null;
    selection.hidden = true;
    if (b - a < 5) return;
    const [t0, t1] = view(), w = canvas.clientWidth;
    const from = t0 + (a / w) * (t1 - t0), to = t0 + (b / w) * (t1 - t0);
    const mid = (from + to) / 2;
    setZoom(to - from >= MIN_SPAN_S ? [from, to] : [mid - MIN_SPAN_S / 2, mid + MIN_SPAN_S / 2]);
  });

  new ResizeObserver(() => { draw(); }).observe(canvas);

  // Follow the selected device; refresh while the view ends now (faster for short ranges).
  setInterval(() => {
    const selected = shared.selected();
    if (selected !== device) {
      device = selected;
      data = null;
      load();
      return;
    }
    const every = zoom ? Infinity : range <= 3600 ? 2000 : 10000;
    if (Date.now() - loadedAt >= every) load();
  }, 500);
})();
