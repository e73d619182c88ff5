// Webhook and event deliveries, newest first: source, name, the sender's
// id, outcome (accepted, duplicate, resolved or ignored), payload, and the
// runs each started (found from the runs' event_id, since the events list
// gives a count) or, when none, the outcome in words ("no DAG listens to").
// SPDX-License-Identifier: MIT
import { get, enc } from '../api.js';
import { h, fill, fmtTime, prettyJson, pause } from '../dom.js';
import { mark } from '../states.js';

export function mount(root, params, ctx) {
  const tbody = h('tbody');
  const count = h('span.muted');
  root.append(h('div.page-head', h('h1', 'Events'), count),
    h('p.muted', 'Deliveries to POST /api/v1/events and the Alertmanager and Grafana webhooks. A duplicate (same id, or an alert already seen), a resolved alert and an event no DAG listens to start nothing.'),
    h('div.scroll-x', h('table.list.events', {},
      h('thead', h('tr', ['#', 'Received', 'Source', 'Name', 'Id', 'Outcome', 'Runs started', 'Payload'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody)));
  let lastSig = '';

  async function refresh() {
    const [ev, dags] = await Promise.all([get('/events', { limit: 200 }, ctx.signal), get('/dags', { limit: 1000 }, ctx.signal)]);
    const listeners = dags.dags.filter((d) => d.on_event && d.on_event.length);
    const lists = await Promise.all(listeners.map((d) => get(`/dags/${enc(d.dag_id)}/dagRuns`, { limit: 500 }, ctx.signal).then((x) => x.dag_runs, () => [])));
    const byEvent = new Map();
    for (const r of lists.flat()) if (r.event_id) (byEvent.get(r.event_id) || byEvent.set(r.event_id, []).get(r.event_id)).push(r);
    const sig = JSON.stringify([ev.events, [...byEvent]]);
    count.textContent = `${ev.total_entries} deliveries`;
    if (sig === lastSig) return;
    lastSig = sig;
    fill(tbody, ...(ev.events.length ? ev.events.map((e) => {
      const runs = byEvent.get(e.event_id) || [];
      return h('tr', { dataset: { event: e.event_id } },
        h('td', String(e.event_id)), h('td', fmtTime(e.received_at)), h('td', e.source), h('td', h('code', e.name || '—')),
        h('td', e.id ? h('code.small', e.id) : '—'),
        h('td', h('span', { class: `outcome out-${e.outcome}` }, e.outcome === 'duplicate' ? '⧉ duplicate' : e.outcome === 'accepted' ? '✓ accepted' : e.outcome)),
        h('td', runs.length ? runs.map((r) => h('div', h('a', { href: `#/runs/${enc(r.dag_id)}/${enc(r.dag_run_id)}` }, mark(r.state), ` ${r.dag_id}`)))
          : [String(e.runs_started || 0), e.detail ? h('div.muted.small', e.detail) : null]),
        h('td', h('details', h('summary', 'payload'), h('pre.json', prettyJson(e.payload)))));
    }) : [h('tr', h('td', { colspan: 8, class: 'empty' }, 'No deliveries yet.'))]));
  }

  (async () => {
    while (!ctx.signal.aborted) {
      try { await refresh(); } catch (e) { if (e.name === 'AbortError') return; }
      await pause(5000, ctx.signal);
    }
  })();
}
