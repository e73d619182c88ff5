// A DAG's graph as SVG: tasks in layers (a layer is one more than the
// deepest upstream task, from a topological order), edges drawn, each node
// coloured by its state in a chosen run. Dependencies come from
// GET /api/v1/dags/{id}/tasks ("upstream_task_ids", "downstream_task_ids");
// should that fail, the nodes are shown in a run's topological order
// without edges, and the page says so.
// SPDX-License-Identifier: MIT
import { get, enc } from '../api.js';
import { h, fill, setText, pause } from '../dom.js';
import { stateInfo, legend, ACTIVE } from '../states.js';
import { dagHeader } from './common.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 168, H = 38, GX = 64, GY = 18, PAD = 12;

function s(tag, attrs, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const k of kids) if (k) el.append(k);
  return el;
}

// tasks: ids in topological order; up: Map(id -> [upstream ids]) or null.
// Returns {pos: Map(id -> {x, y, layer}), width, height, edges: [[from, to]]}.
export function layout(tasks, up) {
  const pos = new Map();
  const edges = [];
  if (!up) {
    // No dependencies known: a wrapped grid in topological order.
    const cols = Math.max(1, Math.min(4, Math.ceil(Math.sqrt(tasks.length))));
    tasks.forEach((t, i) => pos.set(t, { layer: i % cols, x: PAD + (i % cols) * (W + GX), y: PAD + Math.floor(i / cols) * (H + GY) }));
    const rows = Math.ceil(tasks.length / cols);
    return { pos, edges, width: PAD * 2 + cols * W + (cols - 1) * GX, height: PAD * 2 + rows * H + Math.max(0, rows - 1) * GY };
  }
  // Kahn's algorithm keeps the given order among ready tasks; a layer is
  // 1 + the deepest upstream layer.
  const known = new Set(tasks);
  const indeg = new Map(tasks.map((t) => [t, 0]));
  const down = new Map(tasks.map((t) => [t, []]));
  for (const t of tasks) for (const u of up.get(t) || []) {
    if (!known.has(u)) continue;
    indeg.set(t, indeg.get(t) + 1);
    down.get(u).push(t);
    edges.push([u, t]);
  }
  const layer = new Map();
  const ready = tasks.filter((t) => indeg.get(t) === 0);
  const order = [];
  while (ready.length) {
    const t = ready.shift();
    order.push(t);
    for (const d of down.get(t)) {
      layer.set(d, Math.max(layer.get(d) || 0, (layer.get(t) || 0) + 1));
      indeg.set(d, indeg.get(d) - 1);
      if (indeg.get(d) === 0) ready.push(d);
    }
  }
  for (const t of tasks) if (!order.includes(t)) order.push(t); // a cycle cannot happen; be safe anyway
  const perLayer = [];
  for (const t of order) {
    const l = layer.get(t) || 0;
    (perLayer[l] = perLayer[l] || []).push(t);
  }
  const tallest = Math.max(...perLayer.map((x) => (x ? x.length : 0)));
  const height = PAD * 2 + tallest * H + Math.max(0, tallest - 1) * GY;
  perLayer.forEach((col, l) => {
    const colH = col.length * H + (col.length - 1) * GY;
    col.forEach((t, i) => pos.set(t, { layer: l, x: PAD + l * (W + GX), y: (height - colH) / 2 + i * (H + GY) }));
  });
  return { pos, edges, width: PAD * 2 + perLayer.length * W + Math.max(0, perLayer.length - 1) * GX, height };
}

// Draws the graph; returns the <svg> with update(tis) to recolour nodes.
export function drawGraph(tasks, up, hrefOf) {
  const g = layout(tasks, up);
  const svg = s('svg', { class: 'graph', viewBox: `0 0 ${g.width} ${g.height}`, width: g.width, height: g.height, role: 'img',
    'aria-label': `Task graph: ${tasks.length} tasks${up ? `, ${g.edges.length} dependencies` : ''}` });
  svg.append(s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))));
  for (const [a, b] of g.edges) {
    const p = g.pos.get(a), q = g.pos.get(b);
    const x1 = p.x + W, y1 = p.y + H / 2, x2 = q.x, y2 = q.y + H / 2, mx = (x1 + x2) / 2;
    svg.append(s('path', { class: 'edge', d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, 'marker-end': 'url(#arrow)', 'data-edge': `${a}->${b}` }));
  }
  const nodes = new Map();
  for (const t of tasks) {
    const p = g.pos.get(t);
    const sym = s('text', { x: 14, y: H / 2 + 5, class: 'sym', 'aria-hidden': 'true' });
    const label = s('text', { x: 32, y: H / 2 + 5, class: 'label' });
    label.textContent = t.length > 19 ? t.slice(0, 18) + '…' : t;
    const title = s('title');
    const rect = s('rect', { width: W, height: H, rx: 6 });
    const a = s('a', { class: 'node st-none', transform: `translate(${p.x} ${p.y})`, 'data-task': t, tabindex: 0 }, title, rect, sym, label);
    nodes.set(t, { a, sym, title });
    svg.append(a);
  }
  svg.update = (tis, runId) => {
    for (const [t, n] of nodes) {
      const ti = tis && tis.get(t);
      const st = ti ? ti.state || 'none' : 'none';
      const cls = `node st-${st}`;
      if (n.a.getAttribute('class') !== cls) n.a.setAttribute('class', cls);
      n.sym.textContent = stateInfo(st).sym;
      n.title.textContent = `${t}: ${stateInfo(st).label}${ti ? `, try ${ti.try_number}` : ''}`;
      n.a.setAttribute('aria-label', n.title.textContent);
      const href = ti && runId ? hrefOf(runId, t, ti.try_number || 1) : null;
      if (href) n.a.setAttribute('href', href); else n.a.removeAttribute('href');
    }
  };
  return svg;
}

// Upstream ids per task from GET dags/{id}/tasks, or null when dagd has no such endpoint.
async function fetchDeps(dagId, signal) {
  try {
    const x = await get(`/dags/${enc(dagId)}/tasks`, null, signal);
    const up = new Map();
    const link = (u, d) => {
      if (!up.has(d)) up.set(d, []);
      if (!up.get(d).includes(u)) up.get(d).push(u);
    };
    for (const t of x.tasks || []) {
      if (!up.has(t.task_id)) up.set(t.task_id, []);
      for (const u of t.upstream_task_ids || []) link(u, t.task_id);
      for (const d of t.downstream_task_ids || []) link(t.task_id, d);
    }
    return { up, order: (x.tasks || []).map((t) => t.task_id), tasks: new Map((x.tasks || []).map((t) => [t.task_id, t])) };
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return null;
  }
}

export function mount(root, params, ctx) {
  const dagId = params.dag;
  let runId = params.run || '';
  let kick = null;
  const header = dagHeader(dagId, 'graph', ctx, { onTriggered: (r) => { runId = r.dag_run_id; kick && kick(); } });
  const sel = h('select', { id: 'graph-run', onchange: () => { runId = sel.value; history.replaceState(null, '', `#/dags/${enc(dagId)}/graph/${enc(runId)}`); kick && kick(); } });
  const note = h('p.note', { id: 'graph-note', hidden: true });
  const box = h('div.graph-box');
  root.append(header, h('div.toolbar', h('label', { for: 'graph-run' }, 'Colours from run '), sel), note, legend(), box);
  let svg = null, deps;

  async function refresh(signal) {
    const [dag, list] = await Promise.all([get(`/dags/${enc(dagId)}`, null, signal), get(`/dags/${enc(dagId)}/dagRuns`, { limit: 50 }, signal)]);
    header.update(dag);
    if (deps === undefined) deps = await fetchDeps(dagId, signal);
    const runs = list.dag_runs;
    if (!runId && runs.length) runId = runs[0].dag_run_id;
    const sig = runs.map((r) => r.dag_run_id + r.state).join(',') + '|' + runId;
    if (sel.dataset.sig !== sig) {
      sel.dataset.sig = sig;
      fill(sel, ...runs.map((r) => h('option', { value: r.dag_run_id, selected: r.dag_run_id === runId },
        `${stateInfo(r.state).sym} ${r.dag_run_id} (${r.state})`)));
    }
    const run = runs.find((r) => r.dag_run_id === runId);
    let tis = null, order = deps ? deps.order : [];
    if (run) {
      const x = await get(`/dags/${enc(dagId)}/dagRuns/${enc(runId)}/taskInstances`, null, signal);
      tis = new Map(x.task_instances.map((ti) => [ti.task_id, ti]));
      if (!deps) order = x.task_instances.map((ti) => ti.task_id);
    }
    note.hidden = Boolean(deps);
    setText(note, deps ? '' : 'Could not read the task dependencies (GET /api/v1/dags/{dag_id}/tasks): tasks are shown in topological order, without edges.');
    if (!order.length) {
      svg = null;
      fill(box, h('p.empty', 'No runs yet: the task list comes from a run. Trigger one.'));
      return run;
    }
    const key = order.join(',');
    if (!svg || svg.dataset.key !== key) {
      svg = drawGraph(order, deps ? deps.up : null, (r, t, n) => `#/tasks/${enc(dagId)}/${enc(r)}/${enc(t)}/${n}`);
      svg.dataset.key = key;
      fill(box, svg);
    }
    svg.update(tis, runId);
    return run;
  }

  (async () => {
    while (!ctx.signal.aborted) {
      const waitCtl = new AbortController();
      const stop = () => waitCtl.abort();
      ctx.signal.addEventListener('abort', stop, { once: true });
      kick = stop;
      let run = null;
      try { run = await refresh(ctx.signal); } catch (e) { if (e.name === 'AbortError') break; }
      try {
        if (run && ACTIVE.has(run.state)) await get(`/dags/${enc(dagId)}/dagRuns/${enc(run.dag_run_id)}`, { wait: 20 }, waitCtl.signal);
        else await pause(5000, waitCtl.signal);
      } catch (e) { if (e.name !== 'AbortError') await pause(2000, waitCtl.signal); }
      ctx.signal.removeEventListener('abort', stop);
    }
  })();
}
