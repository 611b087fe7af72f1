// audeep-edge dashboard: reads the server's Server-Sent Events (one snapshot, then deltas) and draws
// the fleet cards and the selected device's detail. No libraries; everything is canvas + DOM.
"use strict";

(() => {
  const devices = new Map();      // id -> device record (see ensureDevice)
  const dirty = new Set();        // ids whose card must be redrawn
  let historyS = 300;             // seconds of windows shown, sent by the server
  let clockOffset = 0;            // server time - browser time (s)
  let broker = null;              // the server's broker link, from its first message on
  let brokerSeen = false;         // this page saw the server connected to its broker
  let streamUp = null;            // null until the first connection attempt settles
  let selected = decodeURIComponent(location.hash.slice(1)) || null;
  let frameRequested = false;
  let detailDirty = true;
  const counters = { updates: 0, windows: 0, renderMs: 0 };
  // `listen`'s default --novelty-threshold, drawn for devices whose info does not carry their own.
  const NOVELTY_THRESHOLD = 0.95;
  // A dashboard that started less than this ago may not have reached its broker yet: no alarm meanwhile.
  const CONNECT_GRACE_S = 6;
  window.dashboardCounters = counters;   // read by benchmarks/dashboard_bench.py

  const $ = (sel, root = document) => root.querySelector(sel);
  // Writes only when the value changes: even a same-value write invalidates style and layout.
  const setText = (el, text) => { if (el.textContent !== text) el.textContent = text; };
  const setClass = (el, cls) => { if (el.className !== cls) el.className = cls; };
  const setStyle = (el, prop, value) => { if (el.style[prop] !== value) el.style[prop] = value; };
  const now = () => Date.now() / 1000 + clockOffset;

  // ---- colours: one colour per label, the same on every device ---------------------------------
  // Labels take palette slots in the order of the models' label lists (from retained `info`), so a
  // fleet running one model gets distinct colours; slots past the palette fall back to spread hues.
  const PALETTE = [[91, 155, 213], [242, 142, 43], [225, 87, 89], [118, 183, 178], [89, 161, 79], [237, 201, 72],
                   [176, 122, 161], [255, 157, 167], [196, 156, 122], [140, 209, 125], [160, 203, 232], [255, 190, 125]];
  const labelSlots = new Map();
  const colourCache = new Map();
  function registerLabels(labels) { for (const l of labels) if (!labelSlots.has(l)) labelSlots.set(l, labelSlots.size); }
  function labelColour(label, alpha = 1) {
    if (label == null) return `rgba(110, 119, 129, ${alpha})`;   // no classifier head: embeddings only
    const key = `${label}\u0000${alpha}`;
    let colour = colourCache.get(key);
    if (colour === undefined) {
      registerLabels([label]);
      const slot = labelSlots.get(label);
      colour = slot < PALETTE.length ? `rgba(${PALETTE[slot].join(", ")}, ${alpha.toFixed(2)})`
        : `hsla(${((slot * 137.508) % 360).toFixed(0)}, 65%, 62%, ${alpha.toFixed(2)})`;
      colourCache.set(key, colour);
    }
    return colour;
  }

  // ---- state ------------------------------------------------------------------------------------
  function ensureDevice(id) {
    let d = devices.get(id);
    if (!d) {
      d = { id, status: "unknown", info: null, health: null, lost: 0, repeats: 0, lastSeen: null,
            windows: [], events: [], novel: [], map: { points: [] }, lastN: -1, card: null };
      devices.set(id, d);
    }
    return d;
  }

  function merge(d, delta) {
    for (const key of ["status", "info", "health", "lost", "repeats", "map"]) {
      if (key in delta) d[key] = delta[key];
    }
    if (delta.info && Array.isArray(delta.info.labels)) registerLabels(delta.info.labels);
    if (delta.last_seen != null) d.lastSeen = delta.last_seen;
    for (const w of delta.windows || []) {
      if (w.n <= d.lastN) continue;   // already in the snapshot
      d.windows.push(w);
      d.lastN = w.n;
      counters.windows++;
    }
    // An event can be in both the snapshot and the first delta: keep the ones newer than the last kept.
    const lastRx = d.events.length ? d.events[d.events.length - 1].rx : -Infinity;
    const fresh = (delta.events || []).filter((e) => e.rx > lastRx);
    if (fresh.length) d.events = d.events.concat(fresh).slice(-20);
    const lastEdge = d.novel.length ? d.novel[d.novel.length - 1].t : -Infinity;
    const edges = (delta.novel || []).filter((e) => e.t > lastEdge);
    if (edges.length) d.novel = d.novel.concat(edges);
    prune(d);
  }

  function prune(d) {
    const cutoff = now() - historyS;
    let i = 0;
    while (i < d.windows.length && d.windows[i].t < cutoff) i++;
    if (i) d.windows.splice(0, i);
    // The newest novel edge stays however old: an event that is still on is drawn up to now.
    let j = 0;
    while (j < d.novel.length - 1 && d.novel[j].t < cutoff) j++;
    if (j) d.novel.splice(0, j);
  }

  function apply(msg) {
    counters.updates++;
    clockOffset = msg.now - Date.now() / 1000;
    if (msg.type === "snapshot") {
      historyS = msg.history_s || historyS;
      for (const d of devices.values()) if (d.card) d.card.remove();
      devices.clear();
    }
    if (msg.broker) broker = msg.broker;
    if (msg.stats) renderStats(msg.stats);
    for (const id of msg.removed || []) {   // dropped by the server (too many devices, silent the longest)
      const d = devices.get(id);
      if (d && d.card) d.card.remove();
      devices.delete(id);
    }
    for (const delta of msg.devices) {
      merge(ensureDevice(delta.id), delta);
      dirty.add(delta.id);
      if (delta.id === selected) detailDirty = true;
    }
    renderConnection();
    schedule();
  }

  // ---- server connection ------------------------------------------------------------------------
  function connect() {
    const source = new EventSource("/events");
    source.onopen = () => { streamUp = true; renderConnection(); };
    source.onmessage = (e) => apply(JSON.parse(e.data));
    source.onerror = () => { streamUp = false; renderConnection(); };  // EventSource retries by itself
  }

  function renderConnection() {
    brokerSeen = brokerSeen || Boolean(broker && broker.connected);
    const starting = !broker || (!brokerSeen && now() - (broker.started || 0) < CONNECT_GRACE_S);
    const [cls, pillText, bannerText] =
      streamUp === null ? ["pill pill-wait", "connecting…", null]
      : !streamUp ? ["pill pill-bad", "dashboard: offline", "dashboard server unreachable — reconnecting…"]
      : starting ? ["pill pill-wait", "broker: connecting…", null]
      : !broker.connected ? ["pill pill-bad", "broker: disconnected",
                             `broker disconnected (${broker.error || "down"}) — reconnecting…`]
      : ["pill pill-ok", "broker: connected", null];
    const pill = $("#broker");
    const banner = $("#banner");
    setClass(pill, cls);
    setText(pill, pillText);
    if (bannerText) setText(banner, bannerText);
    if (banner.hidden !== !bannerText) banner.hidden = !bannerText;
    document.body.classList.toggle("stale", streamUp === false || !starting && !broker.connected);
  }

  function renderStats(stats) {
    setText($("#rate"), `${stats.messages_per_s} msg/s · ${stats.messages} messages`);
  }

  // ---- rendering ----------------------------------------------------------------------------------
  function schedule() {
    if (!frameRequested) { frameRequested = true; requestAnimationFrame(render); }
  }

  function render() {
    const start = performance.now();
    frameRequested = false;
    const ids = [...devices.keys()].sort();
    $("#empty").hidden = ids.length > 0;
    const online = ids.filter((id) => devices.get(id).status === "online").length;
    setText($("#fleet-summary"), ids.length
      ? `${ids.length} device${ids.length === 1 ? "" : "s"} · ${online} online` : "no devices yet");
    if (!selected || !devices.has(selected)) { selected = ids[0] || null; detailDirty = true; }
    const fleet = $("#fleet");
    ids.forEach((id, i) => {
      const d = devices.get(id);
      if (!d.card) { d.card = makeCard(d); dirty.add(id); }
      const slot = fleet.children[i + 1] || null;   // child 0 is the "waiting" note
      if (slot !== d.card) fleet.insertBefore(d.card, slot);
      if (dirty.has(id)) renderCard(d);
    });
    dirty.clear();
    if (detailDirty) { renderDetail(); detailDirty = false; }
    counters.renderMs += performance.now() - start;
  }

  function makeCard(d) {
    const card = $("#card-template").content.firstElementChild.cloneNode(true);
    card.dataset.device = d.id;
    $(".name", card).textContent = d.id;
    $(".name", card).title = d.id;
    observeSize($(".strip", card));
    observeSize($(".novelty-strip", card));
    const choose = () => { selected = d.id; location.hash = encodeURIComponent(d.id); detailDirty = true;
                           for (const o of devices.values()) dirty.add(o.id); schedule(); };
    card.addEventListener("click", choose);
    card.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") choose(); });
    return card;
  }

  function latest(d) { return d.windows.length ? d.windows[d.windows.length - 1] : null; }

  function renderCard(d) {
    const card = d.card;
    const w = latest(d);
    setClass(card, `device-card${d.status === "offline" ? " offline" : ""}${d.id === selected ? " selected" : ""}`);
    const status = $(".status", card);
    setText(status, d.status);
    setClass(status, `status ${d.status}`);
    const label = $(".label", card);
    setText(label, w ? w.label ?? "no classifier" : "—");
    setStyle(label, "color", w && w.label != null ? labelColour(w.label) : "");
    setText($(".confidence", card), w && w.conf != null ? `${Math.round(w.conf * 100)} %` : "");
    const dbfs = w && w.dbfs != null ? w.dbfs : null;
    setStyle($(".meter-fill", card), "width",
             dbfs == null ? "0px" : `${(Math.max(0, Math.min(1, (dbfs + 90) / 90)) * 100).toFixed(1)}%`);
    setText($(".dbfs", card), dbfs == null ? "" : `${dbfs.toFixed(1)} dBFS`);
    const h = d.health;
    setText($(".health-line", card), h
      ? `RTF ${fmt(h.rtf, 2)} · p50 ${fmt(h.latency_ms_p50, 0)} ms · overruns ${h.overruns ?? "–"}` : "no health report yet");
    setText($(".seen", card), d.lastSeen ? `last message ${ago(d.lastSeen)}` : "no messages yet");
    drawTimeline($(".strip", card), d, false);
    const scores = noveltyScores(d);
    const row = $(".novelty-row", card);
    if (row.hidden !== !scores.length) row.hidden = !scores.length;
    if (scores.length) {
      const text = $(".novelty", card);
      setText(text, `novelty ${scores[scores.length - 1].novelty.toFixed(2)}`);
      setClass(text, novelSpans(d).some((s) => s.active) ? "novelty active" : "novelty");
      drawNovelty($(".novelty-strip", card), d, false);
    }
    const enrolled = labelsOf(d).enrolled;
    const line = $(".enrolled-line", card);
    if (line.hidden !== !enrolled.length) line.hidden = !enrolled.length;
    setText(line, enrolled.length ? `enrolled: ${enrolled.join(", ")}` : "");
  }

  // The device's labels from its retained `info`: `labels` lists the bundle's, then the enrolled ones.
  function labelsOf(d) {
    const labels = (d.info && d.info.labels) || [];
    const enrolled = (d.info && d.info.enrolled_labels) || [];
    return { trained: labels.filter((l) => !enrolled.includes(l)), enrolled };
  }

  function noveltyScores(d) { return d.windows.filter((w) => w.novelty != null); }

  // [t0, t1] of each `novel` event from its edges: an `end` carries the whole event (t0 = end - duration);
  // a `start` not yet ended lasts until now (or the device's last message when it went offline).
  function novelSpans(d) {
    const spans = [];
    let open = null;
    for (const e of d.novel) {
      if (e.state === "start") open = e;
      else { spans.push({ t0: e.t0, t1: e.t, active: false }); open = null; }
    }
    if (open) spans.push({ t0: open.t0, t1: d.status === "offline" && d.lastSeen ? d.lastSeen : now(), active: true });
    return spans;
  }

  function renderDetail() {
    const section = $("#detail");
    const d = selected && devices.get(selected);
    section.hidden = !d;
    if (!d) return;
    setText($("#detail-name"), d.id);
    const status = $("#detail-status");
    setText(status, d.status);
    setClass(status, `status ${d.status}`);
    const w = latest(d);
    setText($("#detail-scene"), w && w.label != null ? `${w.label}${w.conf != null ? ` ${Math.round(w.conf * 100)} %` : ""}` : "");
    const info = d.info || {};
    setText($("#detail-info"), [info.bundle, info.precision, info.hop_seconds && `hop ${info.hop_seconds} s`,
      info.embedding_size && `${info.embedding_size}-d embedding`].filter(Boolean).join(" · "));
    setText($("#timeline-span"),
            historyS < 120 ? `last ${Math.round(historyS)} s` : `last ${Math.round(historyS / 60)} min`);
    drawTimeline($("#timeline"), d, true);
    renderNovelty(d);
    renderLabels(d);
    drawTopK($("#topk"), d);
    drawLevel($("#level"), d);
    drawMap($("#map"), d);
    renderHealth(d);
    renderEvents(d);
  }

  // ---- canvases -----------------------------------------------------------------------------------
  // Canvas widths come from a ResizeObserver, so drawing never forces a synchronous layout.
  const resizeObserver = new ResizeObserver((entries) => {
    for (const e of entries) e.target.cssWidth = e.contentRect.width;
    for (const id of devices.keys()) dirty.add(id);
    detailDirty = true;
    schedule();
  });
  function observeSize(canvas) { resizeObserver.observe(canvas); }

  function fitCanvas(canvas) {
    const ratio = window.devicePixelRatio || 1;
    if (!canvas.dataset.cssHeight) canvas.dataset.cssHeight = canvas.getAttribute("height");
    const cssH = Number(canvas.dataset.cssHeight);
    const w = Math.max(1, Math.round((canvas.cssWidth || 0) * ratio));
    const h = Math.round(cssH * ratio);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; canvas.style.height = `${cssH}px`; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    return { ctx, w: w / ratio, h: cssH };
  }

  function hopOf(d) {
    if (d.info && d.info.hop_seconds) return d.info.hop_seconds;
    const n = d.windows.length;
    return n > 1 ? Math.max(0.05, (d.windows[n - 1].t - d.windows[0].t) / (n - 1)) : 1;
  }

  function drawTimeline(canvas, d, withAxis) {
    const { ctx, w, h } = fitCanvas(canvas);
    const t1 = now(), t0 = t1 - historyS, hop = hopOf(d);
    const barH = withAxis ? h - 14 : h;
    const x = (t) => ((t - t0) / historyS) * w;
    for (let i = 0; i < d.windows.length; i++) {
      const win = d.windows[i];
      const next = i + 1 < d.windows.length ? d.windows[i + 1].t : t1;
      const end = Math.min(next, win.t + 2 * hop);   // leave gaps where windows are missing
      ctx.fillStyle = labelColour(win.label);
      ctx.fillRect(x(win.t), 0, Math.max(1, x(end) - x(win.t)), barH);
    }
    if (withAxis) {
      ctx.fillStyle = "#8b98a5";
      ctx.font = "11px system-ui";
      // at least 64 px between labels, so they never overlap on a phone
      const step = [15, 30, 60, 120, 300, 600, 900, 1800, 3600].find((s) => (s / historyS) * w >= 64) || 3600;
      for (let s = 0; s <= historyS; s += step) {
        const px = w - (s / historyS) * w;
        ctx.fillRect(px - 0.5, barH, 1, 3);
        ctx.textAlign = px < 30 ? "left" : px > w - 30 ? "right" : "center";
        ctx.fillText(s === 0 ? "now" : s % 60 ? `-${s} s` : `-${s / 60} min`, px, h - 1);
      }
      const labels = [...new Set(d.windows.map((win) => win.label).filter((l) => l != null))];
      renderLegend($("#legend"), labels);
    }
  }

  function renderNovelty(d) {
    const scores = noveltyScores(d);
    const canvas = $("#novelty");
    $("#novelty-empty").hidden = scores.length > 0;
    $("#novelty-summary").hidden = scores.length === 0;
    canvas.hidden = scores.length === 0;
    if (!scores.length) return;
    const values = scores.map((w) => w.novelty);
    const spans = novelSpans(d);
    const active = spans.some((s) => s.active);
    const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
    setText($("#novelty-summary"), `latest ${values[values.length - 1].toFixed(2)} · max ${Math.max(...values).toFixed(2)}`
      + ` · ${plural(values.length, "score")} · ${plural(spans.length, "novel event")}${active ? " (one going on)" : ""}`);
    drawNovelty(canvas, d, true);
  }

  function renderLabels(d) {
    const { trained, enrolled } = labelsOf(d);
    renderLegend($("#trained-labels"), trained);
    renderLegend($("#enrolled-labels"), enrolled);
    $("#enrolled-none").hidden = enrolled.length > 0;
  }

  // Novelty 0..1 over the history: red spans where the device reported `novel` events, its threshold
  // dashed, and the scores as a line (broken where a window has no score).
  function drawNovelty(canvas, d, withGrid) {
    const { ctx, w, h } = fitCanvas(canvas);
    const threshold = typeof d.info?.novelty_threshold === "number" ? d.info.novelty_threshold : NOVELTY_THRESHOLD;
    const t1 = now(), t0 = t1 - historyS;
    const x = (t) => ((t - t0) / historyS) * w;
    const y = (v) => (1 - v) * (h - 4) + 2;
    ctx.fillStyle = "rgba(248, 81, 73, 0.28)";
    for (const span of novelSpans(d)) {
      const a = Math.max(0, x(span.t0)), b = Math.min(w, x(span.t1));
      if (b > a) ctx.fillRect(a, 0, Math.max(1, b - a), h);
    }
    const yt = Math.round(y(threshold)) + 0.5;
    if (withGrid) {
      drawGrid(ctx, w, h, [0, 0.5], (v) => v.toFixed(1), 0, 1);
      ctx.textAlign = "right";
      ctx.fillText(threshold.toFixed(2), w - 2, yt + 11);
    }
    ctx.strokeStyle = "#f85149";
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(0, yt);
    ctx.lineTo(w, yt);
    ctx.stroke();
    ctx.setLineDash([]);
    drawLine(ctx, d.windows.map((win) => win.novelty == null ? null : [x(win.t), y(win.novelty)]), "#d29922");
  }

  function drawTopK(canvas, d) {
    const { ctx, w, h } = fitCanvas(canvas);
    const t1 = now(), t0 = t1 - historyS;
    const best = new Map();   // label -> highest p seen, to pick the lines worth drawing
    for (const win of d.windows) for (const [label, p] of win.topk) best.set(label, Math.max(best.get(label) || 0, p));
    const labels = [...best.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map((e) => e[0]);
    drawGrid(ctx, w, h, [0, 0.5, 1], (v) => v.toFixed(1), 0, 1);
    for (const label of labels) {
      const points = d.windows.map((win) => {   // null (a break) where the label is not in the top k
        const hit = win.topk.find((e) => e[0] === label);
        return hit ? [((win.t - t0) / historyS) * w, (1 - hit[1]) * (h - 4) + 2] : null;
      });
      drawLine(ctx, points, labelColour(label));
    }
    renderLegend($("#topk-legend"), labels);
  }

  function drawLevel(canvas, d) {
    const { ctx, w, h } = fitCanvas(canvas);
    const t1 = now(), t0 = t1 - historyS, lo = -90, hi = 0;
    drawGrid(ctx, w, h, [-80, -60, -40, -20, 0], (v) => `${v}`, lo, hi);
    const points = d.windows.filter((win) => win.dbfs != null).map((win) => [
      ((win.t - t0) / historyS) * w,
      (1 - (Math.max(lo, Math.min(hi, win.dbfs)) - lo) / (hi - lo)) * (h - 4) + 2,
    ]);
    drawLine(ctx, points, "#58a6ff");
  }

  // A polyline (null points break it) with a dot on the newest point, so a lone point shows too.
  function drawLine(ctx, points, colour) {
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let previous = null;
    for (const p of points) {
      if (p) { if (previous) ctx.lineTo(p[0], p[1]); else ctx.moveTo(p[0], p[1]); }
      previous = p;
    }
    ctx.stroke();
    const last = points[points.length - 1];
    if (last) {
      ctx.beginPath();
      ctx.arc(last[0], last[1], 2.5, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  function drawGrid(ctx, w, h, ticks, format, lo, hi) {
    ctx.strokeStyle = "#2d3640";
    ctx.fillStyle = "#8b98a5";
    ctx.font = "10px system-ui";
    ctx.textAlign = "left";
    ctx.lineWidth = 1;
    for (const v of ticks) {
      const py = Math.round((1 - (v - lo) / (hi - lo)) * (h - 4) + 2) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, py); ctx.lineTo(w, py); ctx.stroke();
      ctx.fillText(format(v), 2, Math.max(10, py - 2));
    }
  }

  function drawMap(canvas, d) {
    const points = (d.map && d.map.points) || [];
    $("#map-empty").hidden = points.length > 0;
    canvas.hidden = points.length === 0;
    if (!points.length) return;
    const { ctx, w, h } = fitCanvas(canvas);
    const size = Math.min(w, h) / 2 - 8, cx = w / 2, cy = h / 2;
    points.forEach(([x, y, label], i) => {
      const age = (points.length - 1 - i) / points.length;   // 0 = newest
      ctx.fillStyle = labelColour(label, 1 - 0.75 * age);
      ctx.beginPath();
      ctx.arc(cx + x * size, cy - y * size, 3.5, 0, 2 * Math.PI);
      ctx.fill();
    });
    const [x, y] = points[points.length - 1];
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(cx + x * size, cy - y * size, 7, 0, 2 * Math.PI);
    ctx.stroke();
  }

  function renderLegend(el, labels) {
    const key = labels.join("\u0000");
    if (el.dataset.key === key) return;
    el.dataset.key = key;
    el.replaceChildren(...labels.map((label) => {
      const item = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = labelColour(label);
      item.append(swatch, label);
      return item;
    }));
  }

  function renderHealth(d) {
    const body = $("#health tbody");
    const h = d.health || {};
    const rows = [
      ["real-time factor", fmt(h.rtf, 3)],
      ["latency p50 / p99", h.latency_ms_p50 == null ? "–" : `${fmt(h.latency_ms_p50, 0)} / ${fmt(h.latency_ms_p99, 0)} ms`],
      ["overruns", h.overruns ?? "–"],
      ["queue depth", h.queue_depth ?? "–"],
      ["dropped", h.dropped ?? "–"],
      ["buffered", h.buffered ?? "–"],
      ["lost windows (seq gaps)", d.lost],
      ["repeated windows (ignored)", d.repeats],
      ["uptime", h.uptime_s == null ? "–" : duration(h.uptime_s)],
      ["report", h.rx ? ago(h.rx) : "none yet"],
    ];
    if (body.rows.length !== rows.length) {
      body.replaceChildren(...rows.map(() => {
        const tr = document.createElement("tr");
        tr.append(document.createElement("th"), document.createElement("td"));
        return tr;
      }));
    }
    rows.forEach(([name, value], i) => {
      setText(body.rows[i].cells[0], name);
      setText(body.rows[i].cells[1], String(value));
    });
  }

  function renderEvents(d) {
    const key = `${d.id}\u0000${d.events.length}\u0000${d.events.length && d.events[d.events.length - 1].rx}`;
    const list = $("#events");
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    const items = d.events.slice(-8).reverse().map((e) => {
      const li = document.createElement("li");
      const rest = e.type === "label_change" ? `${e.previous ?? "–"} → ${e.label ?? "–"}` : Object.entries(e)
        .filter(([k]) => !["schema_version", "device_id", "wall_time", "type", "rx", "seq", "audio_time"].includes(k))
        .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
      li.textContent = `${new Date((e.wall_time || e.rx) * 1000).toLocaleTimeString()} ${e.type} ${rest}`;
      return li;
    });
    if (!items.length) items.push(Object.assign(document.createElement("li"), { textContent: "none" }));
    list.replaceChildren(...items);
  }

  // ---- formatting ---------------------------------------------------------------------------------
  function fmt(v, digits) { return typeof v === "number" ? v.toFixed(digits) : "–"; }
  function ago(t) {
    const s = Math.max(0, now() - t);
    return s < 1.5 ? "just now" : s < 120 ? `${Math.round(s)} s ago` : `${Math.round(s / 60)} min ago`;
  }
  function duration(s) {
    return s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  }

  // Time moves even when no message arrives: scroll the timelines and age the "last message" once a second.
  setInterval(() => {
    for (const d of devices.values()) { prune(d); dirty.add(d.id); }
    detailDirty = true;
    renderConnection();
    schedule();
  }, 1000);
  for (const id of ["timeline", "novelty", "topk", "level", "map"]) observeSize(document.getElementById(id));

  // What history.js needs: the label colours and the device shown in the detail.
  window.audeepDashboard = { labelColour, selected: () => (selected && devices.has(selected) ? selected : null) };

  connect();
  renderConnection();
})();
