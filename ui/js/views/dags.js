// The DAG list: paused switch, id and description, tags (a filter),
// schedule in words and cron, next run, recent runs as marks, parse
// errors in red with file:line. Refreshed every few seconds in place.
// SPDX-License-Identifier: MIT
import { get, enc } from '../api.js';
import { h, fill, setText, fmtTime, fmtRelative, pause } from '../dom.js';
import { mark } from '../states.js';
import { pauseToggle, triggerDialog } from './common.js';

const RECENT = 12;
const REFRESH_MS = 5000;
const TAG_KEY = 'dagd.tag';

export function mount(root, params, ctx) {
  let tag = sessionStorage.getItem(TAG_KEY) || '';
  const errors = h('section.import-errors', { 'aria-label': 'DAG files that failed to load', hidden: true });
  const tags = h('div.tag-filter', { role: 'group', 'aria-label': 'Filter by tag' });
  const tbody = h('tbody');
  const count = h('span.muted');
  const table = h('table.dags', {},
    h('thead', h('tr', ['', 'DAG', 'Tags', 'Schedule', 'Next run', 'Recent runs', ''].map((t, i) =>
      h('th', { scope: 'col', class: `c${i}` }, t)))), tbody);
  root.append(h('div.page-head', h('h1', 'DAGs'), count), errors, tags, h('div.scroll-x', table));
  const rows = new Map(); // dag_id -> row parts
  const errState = { sig: {} };

  function row(d) {
    const r = { toggle: pauseToggle(d, ctx.notify), desc: h('div.muted.small'), tags: h('td.c2'), sched: h('td.c3'),
      next: h('td.c4'), recent: h('td.c5'), sig: {} };
    r.tr = h('tr', { dataset: { dag: d.dag_id } },
      h('td.c0', r.toggle),
      h('td.c1', h('a.dag-link', { href: `#/dags/${enc(d.dag_id)}/grid` }, d.dag_id), r.desc),
      r.tags, r.sched, r.next, r.recent,
      h('td.c6', h('button.btn.small', { type: 'button', 'aria-label': `Trigger ${d.dag_id}`,
        onclick: () => triggerDialog(d.dag_id, ctx.notify).then((x) => x && refresh()).catch(() => {}) }, 'Trigger')));
    return r;
  }

  // Replaces a cell's children only when its signature changed.
  function put(r, key, cell, sig, build) {
    if (r.sig[key] === sig) return;
    r.sig[key] = sig;
    fill(cell, ...[].concat(build()));
  }

  function renderTags(all) {
    const sig = [...all].join(',') + '|' + tag;
    if (tags.dataset.sig === sig) return;
    tags.dataset.sig = sig;
    const chip = (t, label) => h('button', {
      type: 'button', class: 'chip', 'aria-pressed': String(tag === t),
      onclick: () => { tag = t; sessionStorage.setItem(TAG_KEY, t); refresh(); },
    }, label);
    fill(tags, h('span.muted', 'Tags: '), chip('', 'all'), [...all].sort().map((t) => chip(t, t)));
  }

  async function refresh() {
    const signal = ctx.signal;
    const data = await get('/dags', { limit: 1000 }, signal);
    const runs = await Promise.all(data.dags.map((d) =>
      get(`/dags/${enc(d.dag_id)}/dagRuns`, { limit: RECENT }, signal).then((x) => x.dag_runs, () => [])));
    if (signal.aborted) return;
    const all = new Set(data.dags.flatMap((d) => d.tags || []));
    if (tag && !all.has(tag)) tag = '';
    renderTags(all);
    const shown = data.dags.filter((d) => !tag || (d.tags || []).includes(tag));
    setText(count, `${shown.length} of ${data.dags.length}`);
    const order = [];
    data.dags.forEach((d, i) => {
      if (!shown.includes(d)) return;
      let r = rows.get(d.dag_id);
      if (!r) rows.set(d.dag_id, (r = row(d)));
      r.toggle.update(d);
      setText(r.desc, d.description || '');
      put(r, 'tags', r.tags, (d.tags || []).join(','), () => (d.tags || []).map((t) => h('span.tag', t)));
      put(r, 'sched', r.sched, `${d.schedule}|${d.schedule_description}|${d.on_event}`, () => d.schedule
        ? [h('div', d.schedule_description || ''), h('code.small', d.schedule), d.timezone !== 'UTC' ? h('span.muted.small', ' ' + d.timezone) : null]
        : [h('span.muted', d.on_event && d.on_event.length ? `on event: ${d.on_event.join(', ')}` : 'manual only')]);
      put(r, 'next', r.next, `${d.next_run_after}|${d.is_paused}`, () => d.next_run_after
        ? [h('div', fmtTime(d.next_run_after)), h('div.muted.small', fmtRelative(d.next_run_after))]
        : [h('span.muted', '—')]);
      const rr = runs[i].slice().reverse();
      put(r, 'recent', r.recent, rr.map((x) => x.dag_run_id + x.state).join(','), () => h('div.marks',
        rr.length ? rr.map((x) => h('a', { href: `#/runs/${enc(d.dag_id)}/${enc(x.dag_run_id)}`, class: 'mark-link' },
          mark(x.state, `${x.dag_run_id}: ${x.state}`))) : h('span.muted', 'no runs')));
      order.push(r.tr);
    });
    // Reorder/insert only what moved, so focus and hover survive.
    order.forEach((tr, i) => { if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null); });
    while (tbody.children.length > order.length) tbody.lastChild.remove();
    const errs = data.import_errors || [];
    errors.hidden = errs.length === 0;
    put(errState, 'e', errors, JSON.stringify(errs), () => [h('h2', `${errs.length} DAG file${errs.length === 1 ? '' : 's'} failed to load`),
      h('ul', errs.map((e) => h('li', h('code', `${e.file}:${e.line}`), ': ', e.message)))]);
  }

  (async () => {
    while (!ctx.signal.aborted) {
      try { await refresh(); } catch (e) { if (e.name !== 'AbortError' && e.status === 0) ctx.notify(e.explain()); }
      await pause(REFRESH_MS, ctx.signal);
    }
  })();
}
