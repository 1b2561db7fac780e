// The dashboard: polls the broker's JSON API (/api/*, described in docs/observability.md) about
// once a second and updates the page in place. Plain browser JavaScript with no build step; uPlot
// (a global from vendor/uPlot.iife.min.js) draws the charts.
//
// Polling, not a stream: a fetch either answers or fails, so "disconnected" is simply the last
// fetch failing, and the next success recovers with no reconnect logic. The next poll is
// scheduled when the previous one ends, so a slow broker is never asked twice at once.
//
// window.__dashboard exposes the last data and the charts for tests/browser and for a curious
// person's console.

"use strict";

(() => {
  const POLL_MS = 1000;
  /**
   * A poll unanswered this long shows "disconnected". The fetch is not aborted: it may be waiting
   * on the browser's own password prompt (a 401 with a Basic challenge), which an abort would
   * close; a broker that answers late simply recovers the page.
   */
  const SLOW_MS = 4000;
  const CHART_HEIGHT = 210;
  /** Samples the charts keep: as many as the broker does (ten minutes at one a second). */
  const HISTORY_KEPT = 600;

  // ---- formatting -------------------------------------------------------------------------------

  const DASH = "–";
  const missing = (v) =>
    v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v));

  /** 999 · 1.2k · 34k · 5.6M: three significant figures at most, so a column stays narrow. */
  function compact(n) {
    if (missing(n)) return DASH;
    if (typeof n !== "number") return String(n);
    const units = ["", "k", "M", "G", "T"];
    let value = n;
    let unit = 0;
    while (Math.abs(value) >= 999.5 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    if (unit === 0) {
      return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) < 10 ? 1 : 0);
    }
    return (Math.abs(value) < 9.95 ? value.toFixed(1) : Math.round(value).toString()) + units[unit];
  }

  /** 512 B · 3.4 KiB · 120 MiB. */
  function bytes(n) {
    if (missing(n)) return DASH;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = n;
    let unit = 0;
    while (value >= 1023.95 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    const digits = unit === 0 ? 0 : value < 99.95 ? 1 : 0;
    return `${value.toFixed(digits)} ${units[unit]}`;
  }

  /** 0.4s · 3.2s · 42s · 4m 10s · 2h 05m · 3d 4h. */
  function age(seconds) {
    if (missing(seconds)) return DASH;
    const s = Math.max(0, seconds);
    if (s < 9.95) return `${s.toFixed(1)}s`;
    if (s < 60) return `${Math.round(s)}s`;
    const whole = Math.floor(s);
    const pad = (n) => String(n).padStart(2, "0");
    if (whole < 3600) return `${Math.floor(whole / 60)}m ${pad(whole % 60)}s`;
    if (whole < 86400)
      return `${Math.floor(whole / 3600)}h ${pad(Math.floor((whole % 3600) / 60))}m`;
    return `${Math.floor(whole / 86400)}d ${Math.floor((whole % 86400) / 3600)}h`;
  }

  /** `t` (Unix seconds) as 14:03:07, local time; the day is today's on a dashboard. */
  const timeOfDay = (t) =>
    new Date(t * 1000).toLocaleTimeString([], {
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });

  /** How a `data-format` attribute turns a value into text; a count when there is none. */
  const FORMATS = {
    count: compact,
    rate: compact,
    bytes,
    age,
    text: (v) => (missing(v) || v === "" ? DASH : String(v)),
    version: (v) => (missing(v) ? DASH : `v${v}`),
    storage: (v) => (missing(v) ? DASH : v ? "durable" : "in-memory"),
    active: (v) => (v ? "active" : "standby"),
  };

  /** `"a.b"` of `{ a: { b: 1 } }` is 1; a missing step is undefined. */
  const pick = (object, path) =>
    path.split(".").reduce((o, key) => (o == null ? undefined : o[key]), object);

  /**
   * Shows `value` in `el`: its text, its raw value in `data-value` (for CSS and tests), dim when
   * zero, and flagged red when `data-flag="nonzero"` and it is above zero.
   */
  function show(el, value, format) {
    const text = (FORMATS[format] ?? compact)(value);
    if (el.textContent !== text) el.textContent = text;
    el.dataset.value = missing(value) ? "" : String(value);
    if (el.dataset.flag === "nonzero")
      el.classList.toggle("flag-bad", typeof value === "number" && value > 0);
  }

  /** Fills every `[data-field]` under `root` from `data`. */
  function bind(root, data) {
    // Table cells are the tables' own (syncRows): a panel holding a table must not fill them.
    for (const el of root.querySelectorAll("[data-field]:not(td)")) {
      show(el, pick(data, el.dataset.field), el.dataset.format);
    }
  }

  // ---- the API ----------------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, detail) {
      super(`${status}${detail ? `: ${detail}` : ""}`);
      this.status = status;
    }
  }

  async function getJson(path) {
    let response;
    try {
      response = await fetch(path, {
        cache: "no-store",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
    } catch {
      // fetch() rejects only when nothing answered at all; its TypeError says no more than that.
      throw new Error("no connection");
    }
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).error ?? detail;
      } catch {
        // Not JSON (a proxy's page, say): the status text says enough.
      }
      throw new HttpError(response.status, detail);
    }
    return response.json();
  }

  const groupPath = ({ topic, group }) =>
    `/api/group?topic=${encodeURIComponent(topic)}&group=${encodeURIComponent(group)}`;

  /** The selected group's detail, or `{ gone: true }` once the broker no longer has it. */
  async function getGroup(selection) {
    try {
      return await getJson(groupPath(selection));
    } catch (error) {
      if (error.status === 404) return { gone: true };
      throw error;
    }
  }

  // ---- tables -----------------------------------------------------------------------------------

  /**
   * Makes `table`'s body show `items`, one row each, in order. A row is kept for as long as its
   * key is there, and only cells whose text changed are written: a selection, a hover and the
   * clicked row survive the refresh under them.
   *
   * `columns`: `{ field, format, className, value(item), flag(value, item), dimZero }`; `flag`
   * names a class (`flag-warn`, `flag-bad`) for a cell that needs a look, and a zero is dimmed
   * unless `dimZero` is false (an id 0 is as much an id as any). `rowAttributes(item)` gives the
   * row's `data-*` attributes, `rowClass` a class to toggle by a predicate.
   */
  function syncRows(table, items, { key, rowAttributes, rowClass, columns }) {
    const body = table.tBodies[0];
    const old = new Map(Array.from(body.rows, (row) => [row.dataset.key, row]));
    let previous = null;
    for (const item of items) {
      const id = key(item);
      let row = old.get(id);
      if (row) {
        old.delete(id);
      } else {
        row = document.createElement("tr");
        row.dataset.key = id;
        Object.assign(row.dataset, rowAttributes(item));
        for (const column of columns) {
          const cell = row.insertCell();
          cell.dataset.field = column.field;
          cell.className = column.className ?? "n";
        }
      }
      columns.forEach((column, i) => {
        const cell = row.cells[i];
        const value = column.value ? column.value(item) : pick(item, column.field);
        show(cell, value, column.format);
        cell.classList.toggle("zero", value === 0 && column.dimZero !== false);
        for (const name of ["flag-warn", "flag-bad"]) cell.classList.remove(name);
        const flag = column.flag?.(value, item);
        if (flag) cell.classList.add(flag);
      });
      if (rowClass) row.classList.toggle(rowClass.name, rowClass.when(item));
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (row !== expected) body.insertBefore(row, expected);
      previous = row;
    }
    for (const row of old.values()) row.remove();
    table.dataset.rows = String(items.length);
  }

  const TEXT = { className: "name" };
  const deadLettered = (g) =>
    g.dead_lettered ? g.dead_lettered.rejected + g.dead_lettered.max_deliveries : 0;
  /** A message waiting this long with nobody taking it is worth a look. */
  const OLD_READY_SECONDS = 60;

  const GROUPS = {
    key: (g) => JSON.stringify([g.topic, g.group]),
    rowAttributes: (g) => ({ topic: g.topic, group: g.group }),
    columns: [
      { field: "topic", format: "text", ...TEXT },
      { field: "group", format: "text", ...TEXT },
      { field: "mode", format: "text", className: "text" },
      { field: "ready" },
      { field: "in_flight" },
      { field: "consumers", flag: (n, g) => (n === 0 && g.ready > 0 ? "flag-warn" : null) },
      {
        field: "oldest_ready_seconds",
        format: "age",
        flag: (s) => (s > OLD_READY_SECONDS ? "flag-warn" : null),
      },
      { field: "rates.delivered", format: "rate" },
      { field: "rates.acked", format: "rate" },
      { field: "dead_lettered", value: deadLettered, flag: (n) => (n > 0 ? "flag-bad" : null) },
    ],
  };

  const SUBSCRIPTIONS = {
    key: (s) => s.pattern,
    rowAttributes: (s) => ({ pattern: s.pattern }),
    rowClass: { name: "has-gaps", when: (s) => s.gaps > 0 },
    columns: [
      { field: "pattern", format: "text", ...TEXT },
      { field: "subscribers" },
      { field: "buffered" },
      { field: "delivered" },
      { field: "gaps", flag: (n) => (n > 0 ? "flag-bad" : null) },
      { field: "slow_events", flag: (n) => (n > 0 ? "flag-warn" : null) },
    ],
  };

  const CONNECTIONS = {
    key: (c) => String(c.id),
    rowAttributes: (c) => ({ connectionId: String(c.id) }),
    columns: [
      { field: "id", dimZero: false },
      { field: "peer", format: "text", ...TEXT },
      { field: "connected_seconds", format: "age" },
      { field: "streams" },
    ],
  };

  const CONSUMERS = {
    key: (c) => String(c.id),
    rowAttributes: (c) => ({ consumerId: String(c.id) }),
    columns: [
      { field: "id", dimZero: false },
      { field: "prefetch" },
      { field: "in_flight" },
      { field: "ack_deadline_seconds", format: "age" },
      { field: "active", format: "active", className: "text" },
    ],
  };

  const byTopicThenGroup = (a, b) =>
    a.topic.localeCompare(b.topic) || a.group.localeCompare(b.group);

  // ---- charts -----------------------------------------------------------------------------------

  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  /** `#rrggbb` at `alpha`, for the fill under a line: a canvas takes no CSS `color-mix()`. */
  function translucent(hex, alpha) {
    const n = Number.parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
  }

  /** The charts and the `history.samples` fields each line draws. */
  const CHARTS = {
    rates: {
      element: "chart-rates",
      format: compact,
      series: [
        { field: "published", label: "published", color: "--c-published" },
        { field: "delivered", label: "delivered", color: "--c-delivered" },
        { field: "acked", label: "acked", color: "--c-acked" },
        { field: "redelivered", label: "redelivered", color: "--c-redelivered" },
      ],
    },
    queued: {
      element: "chart-queued",
      format: compact,
      fill: true,
      series: [
        { field: "ready", label: "ready", color: "--c-ready" },
        { field: "in_flight", label: "in flight", color: "--c-in-flight" },
      ],
    },
  };

  function makeChart(spec) {
    const element = document.getElementById(spec.element);
    const axis = {
      stroke: css("--muted"),
      grid: { stroke: css("--border"), width: 1 },
      ticks: { stroke: css("--border"), width: 1 },
      font: `11px ${css("--mono")}`,
    };
    const options = {
      width: Math.max(element.clientWidth, 200),
      height: CHART_HEIGHT,
      // Zooming would be undone by the next refresh; hovering for values is what stays useful.
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: {
        x: { time: true },
        y: { range: (u, min, max) => [0, Math.max(1, (max ?? 0) * 1.12)] },
      },
      axes: [
        { ...axis, space: 70, values: (u, ticks) => ticks.map(timeOfDay) },
        { ...axis, size: 52, values: (u, ticks) => ticks.map(spec.format) },
      ],
      series: [
        { label: "time", value: (u, t) => (t == null ? DASH : timeOfDay(t)) },
        ...spec.series.map((s) => {
          const color = css(s.color);
          return {
            label: s.label,
            stroke: color,
            width: 2,
            fill: spec.fill ? translucent(color, 0.14) : undefined,
            points: { show: false },
            spanGaps: false,
            value: (u, v) => spec.format(v),
          };
        }),
      ],
    };
    const chart = new uPlot(options, chartData(spec, []), element);
    new ResizeObserver(() => {
      const width = element.clientWidth;
      if (width > 0 && width !== chart.width) chart.setSize({ width, height: CHART_HEIGHT });
    }).observe(element);
    return chart;
  }

  /**
   * Shows `data` in `chart`. The legend shows the latest values while the cursor is off the chart
   * (uPlot would show none), and the hovered ones while it is on.
   */
  function draw(chart, data) {
    chart.setData(data);
    const last = data[0].length - 1;
    if (last >= 0 && !(chart.cursor.left >= 0)) chart.setLegend({ idx: last });
  }

  /** uPlot's columns from the samples: times in seconds, then one array per line. */
  function chartData(spec, samples) {
    return [
      samples.map((s) => s.t / 1000),
      ...spec.series.map((line) =>
        samples.map((s) => (missing(s[line.field]) ? null : s[line.field])),
      ),
    ];
  }

  // ---- the page ---------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const state = {
    /** The last answers, by endpoint. */
    data: {},
    charts: {},
    /** Successful refreshes so far; also `<body data-updated>`. */
    refreshes: 0,
    /** `{ topic, group }` of the row clicked, or null. */
    selected: null,
    /** The history's samples so far, oldest first (see `keepSamples`). */
    samples: [],
    lastSuccess: null,
  };
  window.__dashboard = state;

  /**
   * The history so far: the first overview brings all the broker keeps, later ones only what came
   * after the last sample here (`?since=`), appended, and the oldest dropped past the broker's own
   * ten minutes.
   */
  function keepSamples(fresh) {
    const all = state.samples.concat(fresh);
    state.samples = all.slice(Math.max(0, all.length - HISTORY_KEPT));
    return state.samples;
  }

  function overviewPath() {
    const last = state.samples.at(-1);
    return last ? `/api/overview?since=${last.t}` : "/api/overview";
  }

  function renderOverview(overview) {
    for (const root of document.querySelectorAll('[data-bind="overview"]')) bind(root, overview);
    $("journal").hidden = !overview.journal;

    const { used_bytes: used, limit_bytes: limit } = overview.memory ?? {};
    const share = limit > 0 ? Math.min(1, used / limit) : 0;
    $("memory-fill").style.width = `${(share * 100).toFixed(1)}%`;
    $("memory-bar").dataset.level = share > 0.9 ? "bad" : share > 0.7 ? "warn" : "ok";
    $("memory-bar").setAttribute("aria-valuenow", String(Math.round(share * 100)));
    $("memory-text").textContent =
      limit > 0 ? `${bytes(used)} / ${bytes(limit)}` : `${bytes(used)} (no limit)`;

    const samples = keepSamples(overview.history?.samples ?? []);
    for (const [name, spec] of Object.entries(CHARTS)) {
      state.charts[name] ??= makeChart(spec);
      draw(state.charts[name], chartData(spec, samples));
    }
  }

  function renderTables({ groups, subscriptions, connections }) {
    const sorted = [...groups.groups].sort(byTopicThenGroup);
    syncRows($("groups-table"), sorted, GROUPS);
    $("groups-count").textContent = String(sorted.length);
    const patterns = [...subscriptions.patterns].sort((a, b) => a.pattern.localeCompare(b.pattern));
    syncRows($("subscriptions-table"), patterns, SUBSCRIPTIONS);
    $("subscriptions-count").textContent = String(patterns.length);
    const open = [...connections.connections].sort((a, b) => a.id - b.id);
    syncRows($("connections-table"), open, CONNECTIONS);
    $("connections-table-count").textContent = String(open.length);
    markSelectedRow();
  }

  const isSelected = (row) =>
    state.selected !== null &&
    row.dataset.topic === state.selected.topic &&
    row.dataset.group === state.selected.group;

  function markSelectedRow() {
    for (const row of $("groups-table").tBodies[0].rows) {
      row.setAttribute("aria-selected", String(isSelected(row)));
    }
  }

  /** The detail panel for `detail` (an /api/group answer, or `{ gone: true }`). */
  function renderDetail(detail) {
    const panel = $("group-detail");
    if (!state.selected) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    panel.dataset.topic = state.selected.topic;
    panel.dataset.group = state.selected.group;
    panel.dataset.gone = String(Boolean(detail?.gone));
    $("group-detail-missing").hidden = !detail?.gone;
    // Until the first answer, the row's own numbers stand in: the panel opens at once.
    const row = (state.data.groups?.groups ?? []).find(
      (g) => g.topic === state.selected.topic && g.group === state.selected.group,
    );
    const shown =
      detail && !detail.gone ? detail : { ...row, ...state.selected, consumers: undefined };
    bind(panel, shown);
    // The broker lists them as `consumers_attached`, keeping `consumers` for the count as in
    // /api/groups (docs/observability.md); a list under `consumers` is read too. Neither: the
    // row is standing in until the first answer.
    const listed = [shown.consumers, shown.consumers_attached].find(Array.isArray);
    syncRows($("group-consumers"), listed ?? [], CONSUMERS);
    $("group-consumers-count").textContent = listed ? String(listed.length) : "";
  }

  function select(selection) {
    state.selected = selection;
    state.data.group = null;
    markSelectedRow();
    renderDetail(null);
    if (!selection) return;
    // Fetched now rather than at the next poll, so a click answers at once.
    getGroup(selection).then(
      (detail) => {
        if (state.selected === selection) {
          state.data.group = detail;
          renderDetail(detail);
        }
      },
      () => {}, // the poll reports failures
    );
  }

  // ---- connection state -------------------------------------------------------------------------

  const clock = (date) => timeOfDay(date.getTime() / 1000);

  function setStatus(kind, text, banner) {
    document.body.dataset.state = kind;
    $("status-text").textContent = text;
    const el = $("banner");
    el.hidden = !banner;
    if (banner) el.replaceChildren(...banner);
  }

  function strong(text) {
    const el = document.createElement("strong");
    el.textContent = text;
    return el;
  }

  function failed(error) {
    const since = state.lastSuccess
      ? ` The numbers below are from ${clock(state.lastSuccess)}.`
      : "";
    if (error.status === 401 || error.status === 403) {
      const [title, advice] =
        error.status === 401
          ? [
              "401: token needed",
              " This broker has authentication on: reload the page and give an admin token as" +
                " the password (any user name).",
            ]
          : ["403: not an admin token", ' The dashboard needs a token with "admin": true.'];
      setStatus("unauthorized", title, [strong(`${title}.`), advice + since]);
      return;
    }
    const reason =
      error instanceof HttpError ? `HTTP ${error.message}` : error.message || String(error);
    setStatus("disconnected", "disconnected", [
      strong("Disconnected from the broker"),
      ` (${reason}). Retrying every second.${since}`,
    ]);
  }

  // ---- the loop ---------------------------------------------------------------------------------

  async function refresh() {
    const selection = state.selected;
    const [overview, groups, subscriptions, connections, group] = await Promise.all([
      getJson(overviewPath()),
      getJson("/api/groups"),
      getJson("/api/subscriptions"),
      getJson("/api/connections"),
      selection ? getGroup(selection) : null,
    ]);
    state.data = { ...state.data, overview, groups, subscriptions, connections };
    renderOverview(overview);
    renderTables(state.data);
    if (state.selected === selection) {
      state.data.group = group;
      renderDetail(group);
    }
    state.refreshes += 1;
    state.lastSuccess = new Date();
    document.body.dataset.updated = String(state.refreshes);
    setStatus("live", `live · ${clock(state.lastSuccess)}`, null);
  }

  async function poll() {
    const slow = setTimeout(() => failed(new Error(`no answer for ${SLOW_MS / 1000}s`)), SLOW_MS);
    try {
      await refresh();
    } catch (error) {
      failed(error);
    } finally {
      clearTimeout(slow);
    }
    setTimeout(poll, POLL_MS);
  }

  function start() {
    $("groups-table").addEventListener("click", (event) => {
      const row = event.target.closest("tbody tr");
      if (!row) return;
      select(isSelected(row) ? null : { topic: row.dataset.topic, group: row.dataset.group });
    });
    $("group-detail-close").addEventListener("click", () => select(null));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.selected) select(null);
    });
    poll();
  }

  if (typeof uPlot === "undefined") {
    setStatus("disconnected", "broken page", [
      strong("The chart library did not load"),
      ": /assets/uPlot.iife.min.js.",
    ]);
  } else {
    start();
  }
})();
