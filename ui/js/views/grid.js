// A DAG's grid: runs as columns (oldest left), tasks as rows, each cell a
// task instance coloured by state with its symbol. The table is built once
// as one HTML string (fast for 500 x 40) and later refreshes change only
// the cells whose state or try moved. Keyboard: one cell is in the tab
// order (roving tabindex), arrows move, Enter opens the task instance.
// SPDX-License-Identifier: MIT
import { get, enc } from '../api.js';
import { h, fill, esc, setText, fmtTime, fmtDuration, pause } from '../dom.js';
import { stateInfo, legend, ACTIVE } from '../states.js';
import { dagHeader } from './common.js';

const SIZES = [25, 50, 100, 500];
const SIZE_KEY = 'dagd.gridRuns';

function cellHtml(ti) {
  const s = ti ? ti.state || 'none' : 'none';
  return `<td class="c st-${s}" tabindex="-1">${ti ? stateInfo(s).sym : ''}</td>`;
}

// Column pitch (cell plus spacing) and the task column's width, in px;
// they match .grid in app.css.
const COL = 20, TASK_W = 200, BUF = 12;

// Renders model {dagId, runs (oldest first), tasks (ids), tis: Map(run id ->
// Map(task id -> ti))} into container. Only the runs in view (and BUF on
// each side) are in the DOM, between two spacer cells that keep the full
// width, so 500 runs cost what 70 do; scrolling moves the window. Returns a
// handle whose update(model) changes cells in place when runs and tasks are
// the same, and rebuilds otherwise, keeping the focused cell and the
// distance from the right edge.
export function renderGrid(container, model, { onOpen } = {}) {
  let m = model;
  let focus = { r: m.runs.length - 1, t: 0 };
  let win = { a: 0, b: 0 }; // runs [a, b) are in the DOM
  const scroller = h('div.grid-scroll');
  const tip = h('div.tip', { role: 'tooltip', hidden: true });
  fill(container, scroller, tip);

  // The run window for a scroll position (default: the right end).
  function windowAt(left) {
    const n = m.runs.length;
    const width = (scroller.clientWidth || 1200) - TASK_W;
    if (left === undefined) left = Math.max(0, n * COL - width);
    const a = Math.floor(left / COL), b = Math.ceil((left + width) / COL);
    return { a: Math.max(0, a - BUF), b: Math.min(n, Math.max(b + BUF, a + 1)) };
  }

  function build(w) {
    win = w;
    const n = m.runs.length, left = w.a * COL, right = (n - w.b) * COL;
    const parts = [`<table class="grid" role="grid" aria-rowcount="${m.tasks.length + 1}" aria-colcount="${n + 1}" style="width:${TASK_W + n * COL}px" `,
      'aria-label="Task instances: tasks in rows, runs in columns, newest on the right">',
      `<thead><tr><th class="corner" scope="col">task \\ run</th><td class="sp" style="width:${left}px"></td>`];
    for (let r = w.a; r < w.b; r++) {
      const run = m.runs[r];
      const i = stateInfo(run.state);
      parts.push(`<th class="rh" scope="col"><a class="mark st-${run.state}" href="#/runs/${esc(enc(m.dagId))}/${esc(enc(run.dag_run_id))}" aria-label="run ${esc(run.dag_run_id)}: ${i.label}">${i.sym}</a></th>`);
    }
    parts.push(`<td class="sp" style="width:${right}px"></td></tr></thead><tbody>`);
    for (let t = 0; t < m.tasks.length; t++) {
      const task = m.tasks[t];
      parts.push(`<tr><th class="task" scope="row" title="${esc(task)}">${esc(task)}</th><td class="sp"></td>`);
      for (let r = w.a; r < w.b; r++) {
        const tis = m.tis.get(m.runs[r].dag_run_id);
        parts.push(cellHtml(tis && tis.get(task)));
      }
      parts.push('<td class="sp"></td></tr>');
    }
    parts.push('</tbody></table>');
    scroller.innerHTML = parts.join('');
    focus.r = Math.max(0, Math.min(focus.r, n - 1));
    focus.t = Math.max(0, Math.min(focus.t, m.tasks.length - 1));
    const c = cell(focus.r, focus.t) || cell(w.b - 1, focus.t);
    if (c) c.tabIndex = 0;
  }

  const table = () => scroller.firstElementChild;
  function cell(r, t) {
    if (r < win.a || r >= win.b) return null;
    const tb = table() && table().tBodies[0];
    const row = tb && tb.rows[t];
    return row ? row.cells[r - win.a + 2] : null;
  }
  function pos(td) {
    return { r: win.a + td.cellIndex - 2, t: td.parentElement.sectionRowIndex };
  }
  function tiAt(r, t) {
    const run = m.runs[r];
    const tis = run && m.tis.get(run.dag_run_id);
    return tis ? tis.get(m.tasks[t]) : undefined;
  }
  function describe(r, t) {
    const run = m.runs[r], ti = tiAt(r, t);
    const s = ti ? ti.state || 'none' : 'none';
    return { run, ti, s, label: `${m.tasks[t]} in run ${run.dag_run_id}: ${stateInfo(s).label}${ti ? `, try ${ti.try_number}` : ''}` };
  }

  function showTip(td) {
    const { r, t } = pos(td);
    if (r < 0) return;
    const { run, ti, s } = describe(r, t);
    fill(tip,
      h('strong', m.tasks[t]), h('div', run.dag_run_id),
      h('div', `${stateInfo(s).sym} ${stateInfo(s).label}`),
      ti ? h('div', `try ${ti.try_number} of ${ti.max_tries}`) : null,
      ti && ti.start_date ? h('div', `start ${fmtTime(ti.start_date)}`) : null,
      ti && ti.end_date ? h('div', `end ${fmtTime(ti.end_date)}`) : null,
      ti && ti.duration !== null && ti.duration !== undefined ? h('div', `duration ${fmtDuration(ti.duration)}`) : null);
    tip.hidden = false;
    const b = td.getBoundingClientRect(), cb = container.getBoundingClientRect();
    let x = b.right - cb.left + 6;
    if (x + 220 > cb.width) x = Math.max(0, b.left - cb.left - 226);
    tip.style.transform = `translate(${Math.round(x)}px, ${Math.round(b.top - cb.top)}px)`;
  }

  function moveFocus(r, t) {
    r = Math.max(0, Math.min(r, m.runs.length - 1));
    t = Math.max(0, Math.min(t, m.tasks.length - 1));
    if (r === focus.r && t === focus.t) return;
    const old = cell(focus.r, focus.t);
    if (old) { old.tabIndex = -1; old.removeAttribute('aria-label'); }
    focus = { r, t };
    if (!cell(r, t)) build(windowAt(Math.max(0, (r - 2) * COL - ((scroller.clientWidth || 1200) - TASK_W) / 2)));
    const c = cell(r, t);
    if (!c) return;
    c.tabIndex = 0;
    c.focus();
  }

  let scrollQueued = false;
  scroller.addEventListener('scroll', () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      const want = windowAt(scroller.scrollLeft);
      const inView = { a: Math.floor(scroller.scrollLeft / COL), b: Math.ceil((scroller.scrollLeft + scroller.clientWidth - TASK_W) / COL) };
      if (inView.a < win.a || Math.min(inView.b, m.runs.length) > win.b) {
        const hadFocus = scroller.contains(document.activeElement);
        build(want);
        if (hadFocus) { const c = cell(focus.r, focus.t); if (c) c.focus({ preventScroll: true }); }
      }
    });
  }, { passive: true });
  scroller.addEventListener('mouseover', (e) => {
    const td = e.target.closest('td.c');
    if (td) showTip(td); else tip.hidden = true;
  });
  scroller.addEventListener('mouseleave', () => { tip.hidden = true; });
  scroller.addEventListener('focusin', (e) => {
    const td = e.target.closest('td.c');
    if (!td) return;
    const { r, t } = pos(td);
    if (r !== focus.r || t !== focus.t) { const old = cell(focus.r, focus.t); if (old) old.tabIndex = -1; focus = { r, t }; td.tabIndex = 0; }
    td.setAttribute('aria-label', describe(r, t).label);
    showTip(td);
  });
  scroller.addEventListener('focusout', () => { tip.hidden = true; });
  scroller.addEventListener('click', (e) => {
    const td = e.target.closest('td.c');
    if (!td) return;
    const { r, t } = pos(td);
    const { run, ti } = describe(r, t);
    if (ti && onOpen) onOpen(run, m.tasks[t], ti);
  });
  scroller.addEventListener('keydown', (e) => {
    const td = e.target.closest('td.c');
    if (!td) return;
    const { r, t } = pos(td);
    const moves = { ArrowLeft: [r - 1, t], ArrowRight: [r + 1, t], ArrowUp: [r, t - 1], ArrowDown: [r, t + 1],
      Home: [0, t], End: [m.runs.length - 1, t] };
    if (moves[e.key]) { e.preventDefault(); moveFocus(...moves[e.key]); return; }
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); td.click(); }
  });

  function sameShape(a, b) {
    if (a.runs.length !== b.runs.length || a.tasks.length !== b.tasks.length) return false;
    for (let i = 0; i < a.runs.length; i++) if (a.runs[i].dag_run_id !== b.runs[i].dag_run_id) return false;
    for (let i = 0; i < a.tasks.length; i++) if (a.tasks[i] !== b.tasks[i]) return false;
    return true;
  }

  function update(next) {
    if (!sameShape(m, next)) {
      const key = { run: m.runs[focus.r] && m.runs[focus.r].dag_run_id, task: m.tasks[focus.t] };
      const hadFocus = scroller.contains(document.activeElement);
      const fromRight = scroller.scrollWidth - scroller.scrollLeft;
      const atEnd = fromRight <= scroller.clientWidth + COL;
      m = next;
      const r = m.runs.findIndex((x) => x.dag_run_id === key.run), t = m.tasks.indexOf(key.task);
      focus = { r: r >= 0 ? r : m.runs.length - 1, t: t >= 0 ? t : 0 };
      const total = TASK_W + m.runs.length * COL;
      const left = atEnd ? undefined : Math.max(0, total - fromRight);
      build(windowAt(left));
      scroller.scrollLeft = left === undefined ? scroller.scrollWidth : left;
      if (hadFocus) { const c = cell(focus.r, focus.t); if (c) c.focus({ preventScroll: true }); }
      return;
    }
    m = next;
    const head = table().tHead.rows[0];
    for (let r = win.a; r < win.b; r++) {
      const run = m.runs[r], a = head.cells[r - win.a + 2].firstElementChild, i = stateInfo(run.state);
      const cls = `mark st-${run.state}`;
      if (a.className !== cls) { a.className = cls; a.textContent = i.sym; a.setAttribute('aria-label', `run ${run.dag_run_id}: ${i.label}`); }
      const tis = m.tis.get(run.dag_run_id);
      for (let t = 0; t < m.tasks.length; t++) {
        const ti = tis && tis.get(m.tasks[t]), s = ti ? ti.state || 'none' : 'none';
        const td = cell(r, t), c = `c st-${s}`;
        if (td.className !== c) { td.className = c; td.textContent = ti ? stateInfo(s).sym : ''; }
        if (r === focus.r && t === focus.t && document.activeElement === td) td.setAttribute('aria-label', describe(r, t).label);
      }
    }
  }

  build(windowAt());
  scroller.scrollLeft = scroller.scrollWidth;
  return { update, get model() { return m; }, get window() { return { ...win }; } };
}

// Fetches at most `limit` requests at once.
async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() { while (next < items.length) { const i = next++; out[i] = await fn(items[i], i); } }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function mount(root, params, ctx) {
  const dagId = params.dag;
  let size = Number(sessionStorage.getItem(SIZE_KEY)) || 25;
  let kick = null; // ends the current wait early
  const header = dagHeader(dagId, 'grid', ctx, { onTriggered: () => kick && kick() });
  const sizeSel = h('select', { id: 'grid-size', onchange: () => { size = Number(sizeSel.value); sessionStorage.setItem(SIZE_KEY, size); kick && kick(); } },
    SIZES.map((n) => h('option', { value: n, selected: n === size }, `${n} runs`)));
  const summary = h('span.muted.small', { id: 'grid-summary' });
  const area = h('div.grid-area');
  root.append(header, h('div.toolbar', h('label', { for: 'grid-size' }, 'Show '), sizeSel, summary), legend(), area);

  let handle = null;
  const tiCache = new Map(); // run id -> {sig, tis: Map}
  const sigOf = (run) => `${run.state}|${run.start_date}|${run.end_date}`;

  async function refresh(signal) {
    const [dag, list] = await Promise.all([get(`/dags/${enc(dagId)}`, null, signal), get(`/dags/${enc(dagId)}/dagRuns`, { limit: size }, signal)]);
    header.update(dag);
    const runs = list.dag_runs.slice().reverse();
    const stale = runs.filter((r) => { const c = tiCache.get(r.dag_run_id); return !c || c.sig !== sigOf(r) || ACTIVE.has(r.state); });
    await pool(stale, 4, async (run) => {
      const x = await get(`/dags/${enc(dagId)}/dagRuns/${enc(run.dag_run_id)}/taskInstances`, null, signal);
      tiCache.set(run.dag_run_id, { sig: sigOf(run), tis: new Map(x.task_instances.map((ti) => [ti.task_id, ti])), order: x.task_instances.map((ti) => ti.task_id) });
    });
    if (signal.aborted) return runs;
    const keep = new Set(runs.map((r) => r.dag_run_id));
    for (const k of tiCache.keys()) if (!keep.has(k)) tiCache.delete(k);
    // Rows follow the newest run's (topological) order; tasks only older runs know come last.
    const tasks = [];
    const seen = new Set();
    for (let i = runs.length - 1; i >= 0; i--) for (const t of tiCache.get(runs[i].dag_run_id).order) if (!seen.has(t)) { seen.add(t); tasks.push(t); }
    const model = { dagId, runs, tasks, tis: new Map(runs.map((r) => [r.dag_run_id, tiCache.get(r.dag_run_id).tis])) };
    setText(summary, ` ${runs.length} of ${list.total_entries} runs · ${tasks.length} tasks`);
    if (!runs.length) {
      handle = null;
      fill(area, h('p.empty', 'No runs yet. Trigger one with the button above.'));
    } else if (!handle) {
      fill(area);
      handle = renderGrid(area, model, {
        onOpen: (run, task, ti) => { location.hash = `#/tasks/${enc(dagId)}/${enc(run.dag_run_id)}/${enc(task)}/${ti.try_number || 1}`; },
      });
    } else handle.update(model);
    return runs;
  }

  (async () => {
    while (!ctx.signal.aborted) {
      const waitCtl = new AbortController();
      const stop = () => waitCtl.abort();
      ctx.signal.addEventListener('abort', stop, { once: true });
      kick = stop;
      let runs = [];
      try {
        runs = await refresh(ctx.signal);
      } catch (e) {
        if (e.name === 'AbortError') break;
        if (e.status === 404) { fill(area, h('p.error', e.explain())); }
      }
      // Wait for a change: a long poll on the newest unfinished run, else a modest refresh.
      const active = runs.filter((r) => r.state === 'queued' || r.state === 'running');
      try {
        if (active.length && !waitCtl.signal.aborted) {
          const run = active[active.length - 1];
          await get(`/dags/${enc(dagId)}/dagRuns/${enc(run.dag_run_id)}`, { wait: active.length > 1 ? 5 : 20 }, waitCtl.signal);
        } else await pause(5000, waitCtl.signal);
      } catch (e) {
        if (e.name !== 'AbortError') await pause(2000, waitCtl.signal);
      }
      ctx.signal.removeEventListener('abort', stop);
    }
  })();
}
