// optserve dashboard: read-only views of a server's experiments, refreshed by polling.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "optserve-token";
const view = { timer: null, charts: {}, version: null, data: null, metric: null, sort: null };

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(+value.toPrecision(6));
  return String(value);
}

function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 19) : "-";
}

async function getJSON(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const reply = await fetch(path, { headers, cache: "no-store" });
  if (reply.status === 401) {
    showLogin();
    throw new Error("this server needs a token");
  }
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.message || reply.statusText);
  return body;
}

function showError(error) {
  const box = document.getElementById("error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

function showLogin() {
  document.getElementById("login").hidden = false;
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("login").hidden = true;
  route();
});

function stamp() {
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

function poll(refresh) {
  const tick = async () => {
    try {
      await refresh();
      showError(null);
      stamp();
    } catch (error) {
      showError(error);
    }
  };
  tick();
  view.timer = setInterval(tick, POLL_MS);
}

function reset() {
  clearInterval(view.timer);
  for (const chart of Object.values(view.charts)) chart.dispose();
  Object.assign(view, {
    timer: null, charts: {}, version: null, data: null, metric: null, sort: null, importanceKey: null,
  });
}

function chart(id, option) {
  const node = document.getElementById(id);
  if (!node) return;
  let instance = view.charts[id];
  if (!instance) instance = view.charts[id] = echarts.init(node);
  instance.setOption(option, { notMerge: true });
}

window.addEventListener("resize", () => Object.values(view.charts).forEach((c) => c.resize()));

// ------------------------------------------------------------------ experiment list

function progressCell(e) {
  const done = e.budget ? `${e.observations}/${e.budget}` : String(e.observations);
  const share = e.budget ? Math.min(1, e.observations / e.budget) : 0;
  const bar = el("span", { class: "bar" }, el("span", { style: `width:${(share * 100).toFixed(1)}%` }));
  return el("td", { class: "num" }, e.budget ? bar : null, " ", done);
}

function showList() {
  const app = document.getElementById("app");
  app.replaceChildren(el("h1", {}, "Experiments"), el("div", { id: "list" }, "loading..."));
  poll(async () => {
    const { experiments } = await getJSON("/dashboard/api/experiments");
    const head = ["ID", "Name", "Project", "Type", "State", "Progress", "Open", "Best", "Updated"];
    const rows = experiments.map((e) =>
      el("tr", { "data-id": e.id, class: `state-${e.state}` },
        el("td", { class: "num" }, e.id),
        el("td", {}, el("a", { href: `#/experiments/${e.id}` }, e.name)),
        el("td", {}, e.project || "-"),
        el("td", {}, e.type),
        el("td", {}, e.state),
        progressCell(e),
        el("td", { class: "num" }, e.open),
        el("td", { class: "num" }, e.best ? fmt(e.best.value) : "-"),
        el("td", {}, when(e.update_time))));
    const table = experiments.length
      ? el("table", { id: "experiments" },
          el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows))
      : el("p", { class: "muted" }, "No experiments yet.");
    document.getElementById("list").replaceChildren(table);
  });
}

// ------------------------------------------------------------------ one experiment

function metricsOf(exp, strategy) {
  return exp.metrics.filter((m) => m.strategy === strategy);
}

function better(metric, a, b) {
  return metric.objective === "minimize" ? a < b : a > b;
}

function satisfies(metric, value) {
  if (metric.threshold === null || metric.threshold === undefined) return true;
  return metric.objective === "minimize" ? value <= metric.threshold : value >= metric.threshold;
}

function feasible(exp, obs) {
  return metricsOf(exp, "constraint").every((m) => obs.values[m.name] !== undefined && satisfies(m, obs.values[m.name]));
}

function statusOf(exp, obs) {
  if (obs.failed) return "failed";
  return feasible(exp, obs) ? "ok" : "infeasible";
}

function showExperiment(id) {
  const app = document.getElementById("app");
  app.replaceChildren(el("p", { class: "muted" }, "loading..."));
  poll(async () => {
    const data = ownKeysOnly(await getJSON(`/dashboard/api/experiments/${id}`));
    if (data.version === view.version) return;
    const first = view.data === null;
    view.version = data.version;
    view.data = data;
    if (first) layout(data);
    render(data);
  });
}

// Values and assignments by user-chosen names: as objects without a prototype, a
// name like "toString" or "__proto__" finds only what the data holds.
function ownKeysOnly(data) {
  const bare = (o) => Object.assign(Object.create(null), o);
  for (const o of [...data.observations, ...data.open_suggestions]) {
    if (o.values) o.values = bare(o.values);
    if (o.assignments) o.assignments = bare(o.assignments);
  }
  return data;
}

function layout(data) {
  const exp = data.experiment;
  const optimized = metricsOf(exp, "optimize");
  view.metric = (optimized[0] || exp.metrics[0]).name;
  const select = el("select", { id: "metric", onchange: (e) => { view.metric = e.target.value; render(view.data); } },
    ...exp.metrics.map((m) => el("option", { value: m.name }, m.name)));
  select.value = view.metric;
  const cards = [
    el("section", { class: "card" }, el("h2", {}, "Best so far"), el("div", { id: "chart-history", class: "chart" })),
    el("section", { class: "card" }, el("h2", {}, "Parameter importance"),
      el("div", { id: "importance-note", class: "muted" }),
      el("div", { id: "chart-importance", class: "chart" })),
    el("section", { class: "card wide" }, el("h2", {}, "Parallel coordinates"), el("div", { id: "chart-parallel", class: "chart" })),
  ];
  if (optimized.length === 2) {
    cards.push(el("section", { class: "card" }, el("h2", {}, "Pareto front"), el("div", { id: "chart-pareto", class: "chart" })));
  }
  const constraints = metricsOf(exp, "constraint");
  if (constraints.length) {
    cards.push(el("section", { class: "card" }, el("h2", {}, "Constraint metrics"),
      el("div", { id: "feasibility-note", class: "muted" }),
      ...constraints.map((m, i) => el("div", { id: `chart-feasibility-${i}`, class: "chart small" }))));
  }
  cards.push(
    el("section", { class: "card wide" }, el("h2", {}, "Observations"), el("div", { class: "scroll", id: "observations-box" })),
    el("section", { class: "card wide" }, el("h2", {}, "Open suggestions"), el("div", { class: "scroll", id: "suggestions-box" })));
  document.getElementById("app").replaceChildren(
    el("a", { href: "#/" }, "\u2190 all experiments"),
    el("h1", { id: "title" }),
    el("div", { id: "facts", class: "facts" }),
    el("p", {}, "Metric: ", select),
    el("div", { class: "cards" }, ...cards));
}

function render(data) {
  const exp = data.experiment;
  document.title = `${exp.name} - optserve`;
  document.getElementById("title").textContent = `${exp.name} (experiment ${exp.id})`;
  const fact = (label, value) => el("div", {}, el("b", {}, value), label);
  const budget = exp.budget ? `${exp.observations} / ${exp.budget}` : String(exp.observations);
  document.getElementById("facts").replaceChildren(
    fact("state", exp.state), fact("type", exp.type), fact("observations", budget),
    fact("failed", exp.failed), fact("open suggestions", exp.open),
    fact("best " + (exp.best ? exp.best.metric : ""), exp.best ? fmt(exp.best.value) : "-"));
  const metric = exp.metrics.find((m) => m.name === view.metric);
  renderHistory(exp, data.observations, metric);
  renderParallel(exp, data.observations, metric);
  renderImportance(exp, metric).catch(showError);
  if (metricsOf(exp, "optimize").length === 2) renderPareto(exp, data);
  renderFeasibility(exp, data.observations);
  renderObservations(exp, data);
  renderSuggestions(exp, data.open_suggestions);
}

function renderHistory(exp, observations, metric) {
  const good = [], bad = [], failed = [], best = [];
  let incumbent = null;
  observations.forEach((o, i) => {
    const x = i + 1;
    const y = o.values[metric.name];
    if (o.failed || y === undefined || y === null) {
      if (o.failed) failed.push(x);
    } else if (feasible(exp, o)) {
      good.push([x, y]);
      if (incumbent === null || better(metric, y, incumbent)) incumbent = y;
    } else {
      bad.push([x, y]);
    }
    if (incumbent !== null) best.push([x, incumbent]);
  });
  const ys = good.concat(bad).map((p) => p[1]);
  const floor = ys.length ? Math.min(...ys) : 0;
  const series = [
    { name: "observation", type: "scatter", data: good, symbolSize: 7 },
    { name: "violates a constraint", type: "scatter", data: bad, symbolSize: 7, itemStyle: { color: "#9ca3af" } },
    { name: "failed", type: "scatter", data: failed.map((x) => [x, floor]), symbol: "triangle", symbolSize: 8, itemStyle: { color: "#b91c1c" } },
    { name: "best so far", type: "line", step: "end", data: best, showSymbol: false, lineStyle: { width: 2 }, itemStyle: { color: "#f97316" } },
  ];
  chart("chart-history", {
    animation: false,
    tooltip: { trigger: "item" },
    legend: { top: 0, data: series.filter((s) => s.data.length).map((s) => s.name) },
    grid: { left: 70, right: 20, top: 40, bottom: 40 },
    xAxis: { type: "value", name: "observation", nameLocation: "middle", nameGap: 25, min: 0, max: exp.budget || undefined },
    yAxis: { type: "value", name: `${metric.name} (${metric.objective})`, nameLocation: "middle", nameGap: 50, scale: true },
    series,
  });
}

function axesOf(exp) {
  const axes = exp.conditionals.map((c) => ({ name: c.name, type: "category", data: c.values }));
  for (const p of exp.parameters) {
    if (p.type === "categorical") axes.push({ name: p.name, type: "category", data: p.values });
    else axes.push({ name: p.name, type: p.log ? "log" : "value", min: p.min, max: p.max });
  }
  return axes;
}

function renderParallel(exp, observations, metric) {
  const axes = axesOf(exp);
  const rows = [];
  for (const o of observations) {
    const y = o.values[metric.name];
    if (o.failed || y === undefined || y === null) continue;
    const row = axes.map((a) => (o.assignments[a.name] === undefined ? null : o.assignments[a.name]));
    row.push(y);
    rows.push(row);
  }
  const values = rows.map((r) => r[r.length - 1]);
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  chart("chart-parallel", {
    animation: false,
    parallel: { left: 60, right: 90, top: 40, bottom: 30 },
    parallelAxis: [...axes, { name: metric.name, type: "value", scale: true }].map((a, dim) => ({ dim, ...a })),
    visualMap: {
      type: "continuous", dimension: axes.length, min: lo, max: hi === lo ? lo + 1 : hi,
      inRange: { color: metric.objective === "minimize" ? ["#fde725", "#21918c", "#440154"] : ["#440154", "#21918c", "#fde725"] },
      right: 0, top: "middle", calculable: false, itemHeight: 160, text: ["", metric.name],
    },
    series: [{ type: "parallel", data: rows, lineStyle: { width: 1.2, opacity: 0.7 } }],
  });
}

async function renderImportance(exp, metric) {
  const note = document.getElementById("importance-note");
  const key = `${exp.id}:${metric.name}:${view.data.version}`;
  if (view.importanceKey === key) return;
  view.importanceKey = key;
  if (!note.textContent) note.textContent = "Fitting a Gaussian process to the observations...";
  const answer = await getJSON(`/dashboard/api/experiments/${exp.id}/importance?metric=${encodeURIComponent(metric.name)}`);
  if (view.importanceKey !== key) return;
  if (!answer.scores) {
    note.textContent = `Needs ${answer.needs} observations of ${answer.metric}; ${answer.points} so far.`;
    chart("chart-importance", { series: [] });
    return;
  }
  note.textContent = "Inverse length scales of a Gaussian process fitted to the observations, summing to 1.";
  const ranked = answer.scores.slice().reverse();
  chart("chart-importance", {
    animation: false,
    grid: { left: 110, right: 40, top: 10, bottom: 30 },
    xAxis: { type: "value", max: 1 },
    yAxis: { type: "category", data: ranked.map((s) => s.name) },
    series: [{ type: "bar", data: ranked.map((s) => +s.score.toFixed(4)), label: { show: true, position: "right" } }],
  });
}

function renderPareto(exp, data) {
  const [a, b] = metricsOf(exp, "optimize");
  const front = new Set(data.best);
  const points = [], infeasible = [], best = [];
  for (const o of data.observations) {
    const x = o.values[a.name], y = o.values[b.name];
    if (o.failed || x === undefined || y === undefined || x === null || y === null) continue;
    if (front.has(o.id)) best.push([x, y]);
    else if (feasible(exp, o)) points.push([x, y]);
    else infeasible.push([x, y]);
  }
  best.sort((p, q) => p[0] - q[0]);
  chart("chart-pareto", {
    animation: false,
    tooltip: { trigger: "item" },
    legend: { top: 0 },
    grid: { left: 60, right: 20, top: 40, bottom: 45 },
    xAxis: { type: "value", name: `${a.name} (${a.objective})`, nameLocation: "middle", nameGap: 28, scale: true },
    yAxis: { type: "value", name: `${b.name} (${b.objective})`, scale: true },
    series: [
      { name: "observation", type: "scatter", data: points, symbolSize: 7 },
      { name: "violates a constraint", type: "scatter", data: infeasible, symbolSize: 7, itemStyle: { color: "#9ca3af" } },
      { name: "Pareto front", type: "line", data: best, step: a.objective === "minimize" ? "end" : "start", symbolSize: 10, itemStyle: { color: "#f97316" } },
    ],
  });
}

function renderFeasibility(exp, observations) {
  const constraints = metricsOf(exp, "constraint");
  if (!constraints.length) return;
  const done = observations.filter((o) => !o.failed);
  const ok = done.filter((o) => feasible(exp, o)).length;
  document.getElementById("feasibility-note").textContent = `${ok} of ${done.length} successful observations satisfy every constraint metric.`;
  constraints.forEach((m, i) => {
    const yes = [], no = [];
    done.forEach((o) => {
      const y = o.values[m.name];
      if (y === undefined || y === null) return;
      const index = observations.indexOf(o) + 1;
      (satisfies(m, y) ? yes : no).push([index, y]);
    });
    chart(`chart-feasibility-${i}`, {
      animation: false,
      title: { text: `${m.name} ${m.objective === "minimize" ? "<=" : ">="} ${fmt(m.threshold)}`, textStyle: { fontSize: 12 } },
      grid: { left: 60, right: 20, top: 30, bottom: 30 },
      xAxis: { type: "value", min: 0 },
      yAxis: { type: "value", scale: true },
      series: [
        { name: "satisfied", type: "scatter", data: yes, itemStyle: { color: "#15803d" },
          markLine: { silent: true, symbol: "none", data: [{ yAxis: m.threshold }], lineStyle: { color: "#111827" } } },
        { name: "violated", type: "scatter", data: no, itemStyle: { color: "#b91c1c" } },
      ],
    });
  });
}

function sortable(table, columns, rows, render) {
  // columns: [{key, label, num}]; rows: objects with a value per key
  const head = el("tr", {}, ...columns.map((c) => {
    const th = el("th", { class: "sortable" + (c.num ? " num" : ""), "data-key": c.key }, c.label);
    if (view.sort && view.sort.key === c.key) th.setAttribute("aria-sort", view.sort.dir > 0 ? "ascending" : "descending");
    th.addEventListener("click", () => {
      const dir = view.sort && view.sort.key === c.key ? -view.sort.dir : 1;
      view.sort = { key: c.key, dir };
      render();
    });
    return th;
  }));
  const sorted = rows.slice();
  if (view.sort) {
    const { key, dir } = view.sort;
    sorted.sort((p, q) => {
      const a = p[key], b = q[key];
      if (a === b) return 0;
      if (a === null || a === undefined) return 1;
      if (b === null || b === undefined) return -1;
      return (typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b))) * dir;
    });
  }
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...sorted.map((r) =>
    el("tr", { class: r._class, "data-id": r.id }, ...columns.map((c) => el("td", { class: c.num ? "num" : "" }, fmt(r[c.key])))))));
}

function renderObservations(exp, data) {
  const names = [...exp.conditionals.map((c) => c.name), ...exp.parameters.map((p) => p.name)];
  const columns = [
    { key: "index", label: "#", num: true },
    { key: "id", label: "id", num: true },
    { key: "status", label: "status" },
    ...names.map((n) => ({ key: "a:" + n, label: n, num: true })),
    ...exp.metrics.map((m) => ({ key: "m:" + m.name, label: m.name, num: true })),
  ];
  const best = new Set(data.best);
  const rows = data.observations.map((o, i) => {
    const status = statusOf(exp, o);
    const row = { index: i + 1, id: Number(o.id), status, _class: best.has(o.id) ? "best" : status };
    names.forEach((n) => { row["a:" + n] = o.assignments[n]; });
    exp.metrics.forEach((m) => { row["m:" + m.name] = o.values[m.name]; });
    return row;
  });
  const table = el("table", { id: "observations" });
  const draw = () => sortable(table, columns, rows, draw);
  draw();
  document.getElementById("observations-box").replaceChildren(
    rows.length ? table : el("p", { class: "muted" }, "No observations yet."));
}

function renderSuggestions(exp, suggestions) {
  const names = [...exp.conditionals.map((c) => c.name), ...exp.parameters.map((p) => p.name)];
  const box = document.getElementById("suggestions-box");
  if (!suggestions.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No open suggestions."));
    return;
  }
  box.replaceChildren(el("table", { id: "open-suggestions" },
    el("thead", {}, el("tr", {}, ...["id", "created", "expires", ...names].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...suggestions.map((s) => el("tr", { "data-id": s.id },
      el("td", { class: "num" }, s.id), el("td", {}, when(s.create_time)), el("td", {}, when(s.expire_time)),
      ...names.map((n) => el("td", { class: "num" }, fmt(s.assignments[n]))))))));
}

// ------------------------------------------------------------------ routing

function route() {
  reset();
  showError(null);
  const match = location.hash.match(/^#\/experiments\/(\d+)$/);
  if (match) showExperiment(match[1]);
  else showList();
}

window.addEventListener("hashchange", route);
route();
