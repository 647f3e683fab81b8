// Faust dashboard: polls /dashboard/data.json about once a second and draws it.
// Plain script, no build step and no dependencies; the chart is drawn on a canvas.
"use strict";

(function () {
  const DATA_URL = "/dashboard/data.json";
  const POLL_MS = 1000;
  // A request that takes longer than this counts as a failure (the worker is stuck or gone).
  const TIMEOUT_MS = 3000;
  // Back-off while disconnected: first retry after 1 s, doubling up to 8 s.
  const MAX_RETRY_MS = 8000;
  // Lag above these values is shown amber / red.
  const LAG_WARN = 1000;
  const LAG_BAD = 100000;
  const SERIES = 8;

  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const rateFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const compactFormat = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

  let lastOk = 0;           // Date.now() of the last successful fetch
  let failures = 0;
  let retryAt = 0;
  const colours = new Map(); // agent name -> series index, stable for the page's life

  function fmt(n) { return n === null || n === undefined ? "–" : numberFormat.format(n); }
  function fmtRate(n) { return n === null || n === undefined ? "–" : rateFormat.format(n); }
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 0.001) return `${rateFormat.format(seconds * 1e6)} µs`;
    if (seconds < 1) return `${rateFormat.format(seconds * 1e3)} ms`;
    return `${rateFormat.format(seconds)} s`;
  }
  function fmtAxis(n) { return n >= 10000 ? compactFormat.format(n) : rateFormat.format(n); }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-")) node.setAttribute(key, String(value));
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function setValue(node, value, text) {
    node.dataset.value = value === null || value === undefined ? "" : String(value);
    node.textContent = text === undefined ? fmt(value) : text;
  }

  // An agent's colour: a CSS variable for the page (it follows a theme change at once),
  // its value for the canvas.
  function seriesVar(name) {
    if (!colours.has(name)) colours.set(name, colours.size % SERIES);
    return `--series-${colours.get(name) + 1}`;
  }
  function seriesColour(name) { return cssVar(seriesVar(name)); }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function replaceRows(tbody, rows, columns, emptyText) {
    tbody.replaceChildren(...(rows.length ? rows : [
      el("tr", {}, el("td", { class: "empty", colspan: String(columns), text: emptyText })),
    ]));
  }

  // -- status ---------------------------------------------------------------------------

  function setStatus(state, text) {
    const pill = $("status");
    pill.dataset.state = state;
    pill.textContent = text;
    document.body.classList.toggle("stale", state === "disconnected" || state === "error");
    const banner = $("banner");
    banner.hidden = state !== "disconnected" && state !== "error";
    if (state === "disconnected") {
      banner.textContent = lastOk
        ? `Cannot reach the worker: showing what it reported at ${new Date(lastOk).toLocaleTimeString()}. Retrying…`
        : "Cannot reach the worker. Retrying…";
    }
  }

  function tickStatus() {
    const updated = $("updated");
    if (!lastOk) {
      updated.textContent = failures ? "worker not reachable · retrying" : "";
      return;
    }
    const ago = Math.max(0, Math.round((Date.now() - lastOk) / 1000));
    if (failures > 0) {
      const wait = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      updated.textContent = `last data ${ago}s ago · retrying${wait ? ` in ${wait}s` : "…"}`;
    } else {
      updated.textContent = ago <= 1 ? "updated just now" : `updated ${ago}s ago`;
    }
  }

  // -- rendering ------------------------------------------------------------------------

  function render(data) {
    const app = data.app || {};
    // The server's time of the data shown (tests wait for a response newer than theirs).
    document.body.dataset.time = String(data.time);
    $("app-id").textContent = app.id || "Faust";
    document.title = `${app.id || "Faust"} · Faust dashboard`;
    $("worker-url").textContent = app.url || "";
    $("app-version").textContent = app.version ? `faust ${app.version}` : "";
    $("sensors-off").hidden = app.sensors !== false;

    const agents = data.agents || [];
    const partitions = data.partitions || [];
    const errors = data.errors || {};
    const totalRate = agents.reduce((sum, a) => sum + (a.rate || 0), 0);
    const totalEvents = agents.reduce((sum, a) => sum + (a.events || 0), 0);
    const lags = partitions.filter((p) => p.lag !== null && p.lag !== undefined);
    const totalLag = lags.length ? lags.reduce((sum, p) => sum + p.lag, 0) : null;

    setValue($("total-rate"), Math.round(totalRate * 10) / 10, fmtRate(totalRate));
    setValue($("total-events"), totalEvents);
    setValue($("total-lag"), totalLag);
    $("total-lag").className = "tile-value num" + lagClass(totalLag, " ");
    setValue($("total-partitions"), partitions.length);
    setValue($("total-errors"), errors.total ?? 0);
    $("total-errors").className = "tile-value num" + ((errors.total || 0) > 0 ? " bad" : "");
    setValue($("total-dead-lettered"), errors.dead_lettered ?? 0);
    $("total-dead-lettered").className = "tile-value num" + ((errors.dead_lettered || 0) > 0 ? " warn" : "");

    renderAgents(agents);
    renderWorkers(data.workers || []);
    renderTables(data.tables || []);
    renderPartitions(partitions);
    renderErrors(errors);
    chart.update(agents, data.time, data.window);
  }

  function lagClass(lag, prefix) {
    if (lag === null || lag === undefined) return "";
    if (lag >= LAG_BAD) return `${prefix}bad`;
    if (lag >= LAG_WARN) return `${prefix}warn`;
    return "";
  }

  function renderAgents(agents) {
    const rows = agents.map((a) => el("tr", { "data-agent": a.name },
      el("td", { class: "name", title: a.name },
        el("span", { class: "swatch", style: `background:var(${seriesVar(a.name)})` }), a.name),
      el("td", { class: "r", "data-field": "rate", "data-value": a.rate, text: fmtRate(a.rate) }),
      el("td", { class: "r", "data-field": "events", "data-value": a.events, text: fmt(a.events) }),
      el("td", { class: "r", "data-field": "buffered", "data-value": a.buffered, text: fmt(a.buffered) }),
      el("td", { class: "r", "data-field": "mean", "data-value": a.mean_seconds, text: fmtDuration(a.mean_seconds) }),
    ));
    replaceRows($("agents").tBodies[0], rows, 5, "No agents");
  }

  function shortUrl(url) {
    return (url || "").replace(/^https?:\/\//, "");
  }

  function renderWorkers(workers) {
    $("workers-count").textContent = workers.length === 1 ? "1 worker" : `${workers.length} workers`;
    const items = workers.map((w) => {
      const topics = Object.entries(w.partitions || {}).sort(([a], [b]) => a.localeCompare(b));
      const count = topics.reduce((sum, [, parts]) => sum + parts.length, 0);
      const gone = w.reachable === false;
      return el("li", { class: "worker", "data-worker": w.url, "data-partitions": count, "data-reachable": String(!gone) },
        el("div", { class: "worker-head", title: gone ? `Not answering: ${w.error}` : "" },
          el("span", { class: gone ? "dot gone" : "dot" }),
          el("span", { class: "mono", title: w.url, text: w.url }),
          w.self ? el("span", { class: "you", text: "this worker" }) : null,
          gone ? el("span", { class: "gone-label small", text: "not answering" }) : null,
          el("span", { class: "count muted small", text: count === 1 ? "1 partition" : `${count} partitions` })),
        ...topics.map(([topic, parts]) => el("div", { class: "topic-parts" },
          el("span", { class: "topic-name mono", text: topic }),
          ...parts.slice().sort((a, b) => a - b).map((p) => el("span", { class: "part", text: String(p) })))));
    });
    $("workers").replaceChildren(...(items.length ? items : [el("li", { class: "muted small", text: "No workers known yet" })]));
  }

  function renderTables(tables) {
    $("tables-count").textContent = tables.length === 1 ? "1 table" : `${tables.length} tables`;
    const rows = tables.map((t) => el("tr", { "data-table": t.name },
      el("td", { class: "name", title: t.name, text: t.name + (t.global ? " (global)" : "") }),
      el("td", { class: "r", "data-field": "size", "data-value": t.size, text: fmt(t.size) }),
      el("td", { class: "r", "data-field": "partitions", "data-value": t.partitions,
        text: fmt(t.partitions) + (t.standby ? ` + ${fmt(t.standby)} standby` : "") }),
      el("td", {}, el("span", { class: "pill", "data-state": t.state, "data-field": "state", text: stateLabel(t) })),
    ));
    replaceRows($("tables").tBodies[0], rows, 4, "No tables");
  }

  function stateLabel(table) {
    const recovery = table.recovery || {};
    if (table.state === "recovering" && recovery.total) {
      return `recovering · ${Math.floor((100 * recovery.read) / recovery.total)}%`;
    }
    return table.state || "unknown";
  }

  function renderPartitions(partitions) {
    const sorted = partitions.slice().sort((a, b) =>
      a.topic.localeCompare(b.topic) || a.partition - b.partition);
    const maxLag = Math.max(1, ...sorted.map((p) => p.lag || 0));
    const rows = sorted.map((p) => {
      const share = p.lag ? Math.max(2, Math.round((100 * p.lag) / maxLag)) : 0;
      return el("tr", { "data-topic": p.topic, "data-partition": p.partition, "data-worker": p.worker },
        el("td", { class: "name mono", title: p.topic, text: p.topic }),
        el("td", { class: "r", text: String(p.partition) }),
        el("td", { class: "worker-col mono small", text: shortUrl(p.worker) }),
        el("td", { class: "r", "data-field": "committed", "data-value": p.committed, text: fmt(p.committed) }),
        el("td", { class: "r", "data-field": "end", "data-value": p.end, text: fmt(p.end) }),
        el("td", { class: "r" + lagClass(p.lag, " lag-"), "data-field": "lag", "data-value": p.lag, text: fmt(p.lag) }),
        el("td", { class: "bar-cell" }, el("div", { class: "bar" + lagClass(p.lag, " ") },
          el("span", { style: `width:${share}%` }))));
    });
    replaceRows($("partitions").tBodies[0], rows, 7, "No partitions assigned");
    // The worker column only tells something when there are several.
    $("partitions").classList.toggle("single-worker", new Set(sorted.map((p) => p.worker)).size <= 1);
  }

  function renderErrors(errors) {
    const counts = Object.entries(errors.counts || {});
    $("error-counts").replaceChildren(...counts.map(([kind, n]) =>
      el("span", { class: "chip" + (n > 0 ? " bad" : ""), "data-kind": kind },
        kind.replace(/_/g, " "), el("b", { "data-value": n, text: fmt(n) }))));
    const recent = errors.recent || [];
    $("errors-summary").textContent = recent.length ? `${recent.length} most recent` : "";
    const rows = recent.slice().reverse().map((e) => el("tr", { "data-kind": e.kind },
      el("td", { class: "when", text: e.time ? new Date(e.time * 1000).toLocaleTimeString() : "" }),
      el("td", {}, el("span", { class: "kind", text: (e.kind || "").replace(/_/g, " ") })),
      el("td", { class: "msg mono", title: e.message || "", text: e.message || "" }),
    ));
    replaceRows($("recent-errors").tBodies[0], rows, 3, "No errors");
  }

  // -- chart ----------------------------------------------------------------------------

  const chart = (function () {
    const canvas = $("throughput-chart");
    const tooltip = $("chart-tooltip");
    const pad = { left: 52, right: 14, top: 10, bottom: 24 };
    let series = [];
    let now = 0;
    let span = 300;
    const MIN_SPAN = 60;
    const TICK_STEPS = [10, 15, 30, 60, 120, 300];
    let hover = null;

    function niceStep(max, ticks) {
      const raw = max / ticks;
      const mag = Math.pow(10, Math.floor(Math.log10(raw)));
      const norm = raw / mag;
      return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
    }

    function update(agents, time, window) {
      series = agents.map((a) => ({ name: a.name, points: a.history || [] }));
      now = time || Date.now() / 1000;
      // The history the worker has, at least a minute: a fresh worker's first seconds
      // are not squeezed against the right edge of five empty minutes.
      const first = Math.min(now, ...series.map((s) => (s.points.length ? s.points[0][0] : now)));
      span = Math.min(window || 300, Math.max(MIN_SPAN, Math.ceil((now - first) / 30) * 30));
      const points = series.reduce((sum, s) => sum + s.points.length, 0);
      canvas.dataset.points = String(points);
      canvas.dataset.series = String(series.filter((s) => s.points.length).length);
      const spanText = span < 120 ? `${Math.round(span)} s` : `${Math.round(span / 60)} min`;
      $("chart-window").textContent = `last ${spanText} · events per second`;
      draw();
    }

    function draw() {
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth;
      const height = canvas.clientHeight;
      if (!width || !height) return;
      if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
        canvas.width = Math.round(width * ratio);
        canvas.height = Math.round(height * ratio);
      }
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      const plotW = width - pad.left - pad.right;
      const plotH = height - pad.top - pad.bottom;
      const start = now - span;
      let max = 0;
      for (const s of series) for (const [, v] of s.points) max = Math.max(max, v);
      const step = niceStep(max > 0 ? max * 1.1 : 1, 4);
      const top = Math.max(step, Math.ceil((max * 1.05) / step) * step);
      const x = (t) => pad.left + ((t - start) / span) * plotW;
      const y = (v) => pad.top + plotH - (v / top) * plotH;

      ctx.font = `11px ${getComputedStyle(document.body).fontFamily}`;
      ctx.lineWidth = 1;
      ctx.strokeStyle = cssVar("--grid");
      ctx.fillStyle = cssVar("--muted");
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (let v = 0; v <= top + step / 2; v += step) {
        const yy = Math.round(y(v)) + 0.5;
        ctx.beginPath(); ctx.moveTo(pad.left, yy); ctx.lineTo(width - pad.right, yy); ctx.stroke();
        ctx.fillText(fmtAxis(v), pad.left - 8, yy);
      }
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      // Ticks counted back from now: at most about six of them.
      const tick = TICK_STEPS.find((step) => span / step <= 6) || 600;
      for (let ago = 0; ago <= span; ago += tick) {
        const label = ago === 0 ? "now" : ago < 60 || ago % 60 ? `−${ago}s` : `−${ago / 60}m`;
        ctx.textAlign = ago === 0 ? "right" : "center";
        ctx.fillText(label, x(now - ago), height - pad.bottom + 7);
      }

      if (!series.some((s) => s.points.length)) {
        ctx.textBaseline = "middle";
        ctx.fillText("Waiting for events…", pad.left + plotW / 2, pad.top + plotH / 2);
        return;
      }
      ctx.save();
      ctx.beginPath();
      ctx.rect(pad.left, pad.top - 2, plotW, plotH + 4);
      ctx.clip();
      for (const s of series) {
        const visible = s.points.filter(([t]) => t >= start - 5);
        if (!visible.length) continue;
        const colour = seriesColour(s.name);
        if (visible.length === 1) {
          // One sample so far: a dot where the line will start.
          const [[t, v]] = visible;
          ctx.beginPath();
          ctx.arc(x(t), y(v), 3, 0, 2 * Math.PI);
          ctx.fillStyle = colour;
          ctx.fill();
          continue;
        }
        // A soft fill under the line, then the line itself.
        const gradient = ctx.createLinearGradient(0, pad.top, 0, pad.top + plotH);
        gradient.addColorStop(0, colour + "33");
        gradient.addColorStop(1, colour + "00");
        ctx.beginPath();
        visible.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
        ctx.lineTo(x(visible[visible.length - 1][0]), y(0));
        ctx.lineTo(x(visible[0][0]), y(0));
        ctx.closePath();
        ctx.fillStyle = gradient;
        ctx.fill();
        ctx.beginPath();
        visible.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
        ctx.strokeStyle = colour;
        ctx.lineWidth = 2;
        ctx.lineJoin = "round";
        ctx.stroke();
      }
      if (hover !== null) {
        const hx = x(hover);
        ctx.strokeStyle = cssVar("--muted");
        ctx.lineWidth = 1;
        ctx.setLineDash([3, 3]);
        ctx.beginPath(); ctx.moveTo(hx, pad.top); ctx.lineTo(hx, pad.top + plotH); ctx.stroke();
        ctx.setLineDash([]);
      }
      ctx.restore();
    }

    function nearest(points, t) {
      let best = null;
      for (const p of points) if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
      return best;
    }

    canvas.addEventListener("mousemove", (event) => {
      const rect = canvas.getBoundingClientRect();
      const plotW = rect.width - pad.left - pad.right;
      const t = now - span + ((event.clientX - rect.left - pad.left) / plotW) * span;
      if (t < now - span || t > now || !series.length) { hideTooltip(); return; }
      hover = t;
      draw();
      const rows = series.map((s) => {
        const p = nearest(s.points, t);
        return el("div", { class: "row" },
          el("span", { class: "swatch", style: `background:var(${seriesVar(s.name)})` }),
          s.name, el("span", { class: "v", text: p ? fmtRate(p[1]) : "–" }));
      });
      tooltip.replaceChildren(el("div", { class: "muted", text: new Date(t * 1000).toLocaleTimeString() }), ...rows);
      tooltip.hidden = false;
      const left = Math.min(event.clientX - rect.left + 14, rect.width - tooltip.offsetWidth - 4);
      tooltip.style.left = `${Math.max(4, left)}px`;
      tooltip.style.top = "8px";
    });
    function hideTooltip() { hover = null; tooltip.hidden = true; draw(); }
    canvas.addEventListener("mouseleave", hideTooltip);
    window.addEventListener("resize", draw);
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
    return { update, draw };
  })();

  // -- polling --------------------------------------------------------------------------

  async function fetchData() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(DATA_URL, { cache: "no-store", signal: controller.signal });
      if (!response.ok) {
        // The worker is there but failed to answer: say so rather than "disconnected".
        const body = await response.json().catch(() => ({}));
        const error = new Error(body.error || response.statusText);
        error.status = response.status;
        error.errorId = body.error_id;
        throw error;
      }
      return await response.json();
    } finally {
      clearTimeout(timer);
    }
  }

  async function poll() {
    let delay = POLL_MS;
    try {
      const data = await fetchData();
      lastOk = Date.now();
      failures = 0;
      render(data);
      const state = data.app && data.app.state;
      if (state === "recovering") setStatus("recovering", "Live · recovering");
      else if (state === "starting") setStatus("starting", "Live · starting");
      else setStatus("live", "Live");
    } catch (error) {
      failures += 1;
      delay = Math.min(MAX_RETRY_MS, POLL_MS * 2 ** Math.min(failures - 1, 3));
      if (error.status) {
        setStatus("error", `Error ${error.status}`);
        const banner = $("banner");
        banner.hidden = false;
        banner.textContent = `The worker answered ${error.status} (${error.message})` +
          (error.errorId ? `; its log has the traceback under error id ${error.errorId}` : "") +
          ". Retrying…";
      } else {
        setStatus("disconnected", "Disconnected");
      }
      $("status").title = `${error.message || error}; retrying.`;
    }
    retryAt = Date.now() + delay;
    tickStatus();
    setTimeout(poll, delay);
  }

  setInterval(tickStatus, 1000);
  poll();
})();
