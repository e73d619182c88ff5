// A run's detail: state, how it started (schedule, manual, backfill, or
// an event with its payload), logical date and data interval, conf, and
// its task instances. Follows the run with a long poll while it is active.
// SPDX-License-Identifier: MIT
import { get, enc } from '../api.js';
import { h, fill, fmtTime, fmtDuration, prettyJson, pause } from '../dom.js';
import { badge, ACTIVE } from '../states.js';

const TYPE_WORDS = { scheduled: 'by the schedule', manual: 'manually', backfill: 'by a backfill', event: 'by an event' };

export function mount(root, params, ctx) {
  const { dag, run } = params;
  const body = h('div');
  root.append(h('div.crumbs', h('a', { href: '#/dags' }, 'DAGs'), ' / ', h('a', { href: `#/dags/${enc(dag)}/grid` }, dag), ' / run'),
    h('h1.break', run), body);
  let lastSig = '';

  function render(r, tis) {
    const source = [h('span.runtype', { dataset: { type: r.run_type } }, r.run_type), ' — started ', TYPE_WORDS[r.run_type] || ''];
    if (r.event_id) source.push(' ', h('a', { href: '#/events' }, `event #${r.event_id}`));
    if (r.backfill_id) source.push(' ', h('a', { href: `#/dags/${enc(dag)}/backfill/${r.backfill_id}` }, `backfill #${r.backfill_id}`));
    const conf = r.conf || {};
    const dl = h('dl.facts', {},
      h('dt', 'State'), h('dd', { id: 'run-state' }, badge(r.state)),
      h('dt', 'Run type'), h('dd', source),
      h('dt', 'Logical date'), h('dd', fmtTime(r.logical_date)),
      h('dt', 'Data interval'), h('dd', `${fmtTime(r.data_interval_start)} → ${fmtTime(r.data_interval_end)}`),
      h('dt', 'Queued'), h('dd', fmtTime(r.queued_at)),
      h('dt', 'Started'), h('dd', fmtTime(r.start_date)),
      h('dt', 'Ended'), h('dd', fmtTime(r.end_date)),
      h('dt', 'Duration'), h('dd', r.start_date ? fmtDuration(((r.end_date ? new Date(r.end_date) : new Date()) - new Date(r.start_date)) / 1000) : '—'));
    const parts = [h('div.cols', h('section', h('h2', 'Run'), dl),
      h('section', h('h2', r.run_type === 'event' ? `Event ${conf.event || ''}` : 'conf'),
        r.run_type === 'event' && conf.payload !== undefined ? [h('h3', 'Payload'), h('pre.json', { id: 'run-payload' }, prettyJson(conf.payload))] : null,
        r.run_type === 'event' && conf.labels ? [h('h3', 'Alert labels'), h('pre.json', prettyJson(conf.labels))] : null,
        h('h3', 'conf'), h('pre.json', { id: 'run-conf' }, prettyJson(conf))))];
    parts.push(h('h2', 'Task instances'), h('div.scroll-x', h('table.list', {},
      h('thead', h('tr', ['Task', 'State', 'Try', 'Operator', 'Started', 'Duration', 'Exit'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', tis.map((ti) => h('tr', { dataset: { task: ti.task_id } },
        h('td', h('a', { href: `#/tasks/${enc(dag)}/${enc(run)}/${enc(ti.task_id)}/${ti.try_number || 1}` }, ti.task_id)),
        h('td', badge(ti.state)), h('td', `${ti.try_number} / ${ti.max_tries}`), h('td', ti.operator || ''),
        h('td', fmtTime(ti.start_date)), h('td', fmtDuration(ti.duration)),
        h('td', ti.exit_code === null || ti.exit_code === undefined ? '—' : String(ti.exit_code))))))));
    fill(body, ...parts);
  }

  (async () => {
    while (!ctx.signal.aborted) {
      let r;
      try {
        r = await get(`/dags/${enc(dag)}/dagRuns/${enc(run)}`, null, ctx.signal);
        const x = await get(`/dags/${enc(dag)}/dagRuns/${enc(run)}/taskInstances`, null, ctx.signal);
        const sig = JSON.stringify([r, x.task_instances]);
        if (sig !== lastSig) { lastSig = sig; render(r, x.task_instances); }
      } catch (e) {
        if (e.name === 'AbortError') return;
        fill(body, h('p.error', e.explain ? e.explain() : e.message));
      }
      try {
        if (r && ACTIVE.has(r.state)) await get(`/dags/${enc(dag)}/dagRuns/${enc(run)}`, { wait: 20 }, ctx.signal);
        else await pause(5000, ctx.signal);
      } catch (e) { if (e.name === 'AbortError') return; await pause(2000, ctx.signal); }
    }
  })();
}
