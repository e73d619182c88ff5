// The backfill form (from, to, rerun failed, reset, reverse; a dry run
// lists the runs first) and a started backfill's live progress.
// SPDX-License-Identifier: MIT
import { get, request, enc } from '../api.js';
import { h, fill, setText, pause, confirmAction } from '../dom.js';
import { dagHeader } from './common.js';

export function mount(root, params, ctx) {
  const dagId = params.dag;
  const header = dagHeader(dagId, 'backfill', ctx);
  const field = (id, label, attrs) => h('div.field', h('label', { for: id }, label), h('input', { id, ...attrs }));
  const check = (id, label) => h('label.inline', { for: id }, h('input', { type: 'checkbox', id }), ' ', label);
  const msg = h('p.field-error', { id: 'bf-error', role: 'status' });
  const plan = h('div.bf-plan');
  const progress = h('section.bf-progress', { id: 'bf-progress', hidden: true });
  const form = h('form.backfill-form', { novalidate: true },
    h('div.row2', field('bf-from', 'From (logical date, inclusive)', { type: 'text', placeholder: '2026-01-01', required: true }),
      field('bf-to', 'To (inclusive)', { type: 'text', placeholder: '2026-01-07', required: true })),
    h('div.checks', check('bf-rerun', 'rerun failed runs'), check('bf-reset', 'reset every run in range'), check('bf-reverse', 'newest first')),
    msg,
    h('div.actions', h('button.btn', { type: 'button', id: 'bf-dry', onclick: () => submit(true) }, 'Dry run'),
      h('button.btn.primary', { type: 'submit', id: 'bf-start' }, 'Start backfill')));
  form.addEventListener('submit', (e) => { e.preventDefault(); submit(false); });
  root.append(header, h('h2', 'Backfill'), form, plan, progress);

  const val = (id) => form.querySelector('#' + id);
  function body(dry) {
    return { from: val('bf-from').value.trim(), to: val('bf-to').value.trim(), rerun_failed: val('bf-rerun').checked,
      reset: val('bf-reset').checked, reverse: val('bf-reverse').checked, dry_run: dry };
  }

  async function submit(dry) {
    const b = body(dry);
    if (!b.from || !b.to) { setText(msg, 'Enter both dates.'); return; }
    setText(msg, '');
    if (!dry) {
      const what = b.reset ? 'This clears and re-runs every run in the range.' : b.rerun_failed ? 'Failed runs in the range run again.' : 'Missing runs in the range are created.';
      if (!await confirmAction(`Backfill ${dagId}?`, `From ${b.from} to ${b.to}. ${what}`, 'Start backfill')) return;
    }
    try {
      const r = await request('POST', `/dags/${enc(dagId)}/backfills`, { body: b });
      const acts = r.dag_runs || [];
      fill(plan, h('h3', dry ? `Dry run: ${r.total} runs` : `Backfill #${r.id}: ${r.total} runs`),
        h('ul.compact', acts.slice(0, 50).map((x) => h('li', h('code', x.logical_date), ' ', x.action))),
        acts.length > 50 ? h('p.muted', `… and ${acts.length - 50} more`) : null);
      if (!dry && r.id) history.replaceState(null, '', `#/dags/${enc(dagId)}/backfill/${r.id}`), follow(r.id);
    } catch (e) {
      if (e.name !== 'AbortError') setText(msg, e.explain ? e.explain() : e.message);
    }
  }

  let followCtl = null;
  async function follow(id) {
    if (followCtl) followCtl.abort();
    const ctl = new AbortController();
    followCtl = ctl;
    ctx.signal.addEventListener('abort', () => ctl.abort(), { once: true });
    const bar = h('progress', { max: 1, value: 0, id: 'bf-bar' });
    const counts = h('p', { id: 'bf-counts' });
    progress.hidden = false;
    fill(progress, h('h3', `Backfill #${id}`), bar, counts,
      h('p', h('a', { href: `#/dags/${enc(dagId)}/grid` }, 'See the runs in the grid')));
    while (!ctl.signal.aborted) {
      try {
        const p = await get(`/backfills/${id}`, null, ctl.signal);
        const finished = p.success + p.failed;
        bar.max = Math.max(1, p.total);
        bar.value = finished;
        setText(counts, `${finished} of ${p.total} finished · ✓ ${p.success} success · ✕ ${p.failed} failed · ▶ ${p.running} running · Q ${p.queued} queued${p.done ? ' · done' : ''}`);
        progress.dataset.done = String(Boolean(p.done));
        if (p.done) return;
      } catch (e) {
        if (e.name === 'AbortError') return;
        setText(counts, e.explain ? e.explain() : e.message);
      }
      await pause(1000, ctl.signal);
    }
  }

  get(`/dags/${enc(dagId)}`, null, ctx.signal).then(header.update, (e) => e.name !== 'AbortError' && setText(msg, e.explain ? e.explain() : e.message));
  if (params.id) follow(params.id);
}
