// A task instance: state, tries, outputs, the gate report for a gate
// task, the actions (clear with downstream, mark success or failed) and
// the try's log, which follows live while the task runs (long poll on
// logs/{try}?offset=N&wait=20). Without a try in the path it shows the
// latest try and moves on to the next one after a clear.
// SPDX-License-Identifier: MIT
import { get, request, enc } from '../api.js';
import { h, fill, setText, fmtTime, fmtDuration, pause, confirmAction } from '../dom.js';
import { badge, ACTIVE } from '../states.js';

// The gate operator's report: a JSON list of checks, or null.
export function gateReport(outputs) {
  if (!outputs || typeof outputs.report !== 'string') return null;
  try {
    const v = JSON.parse(outputs.report);
    return Array.isArray(v) ? v : null;
  } catch { return null; }
}

function num(v) {
  return v === undefined || v === null ? '—' : typeof v === 'number' ? String(Math.round(v * 1e6) / 1e6) : String(v);
}

export function mount(root, params, ctx) {
  const { dag, run, task } = params;
  const fixedTry = params.try ? Number(params.try) : 0;
  const base = `/dags/${enc(dag)}/dagRuns/${enc(run)}`;
  const info = h('div.ti-info');
  const tries = h('nav.tries', { 'aria-label': 'Tries' });
  const outputs = h('section.outputs');
  const gate = h('section.gate', { hidden: true });
  const logPre = h('pre.log', { id: 'log', tabindex: 0, 'aria-label': 'Log', 'aria-live': 'off' });
  const logState = h('span.muted.small', { id: 'log-state' });
  const downstream = h('input', { type: 'checkbox', id: 'clear-downstream', checked: true });
  const actions = h('div.actions.ti-actions', {},
    h('button.btn', { type: 'button', id: 'clear-btn', onclick: () => clearTask() }, 'Clear'),
    h('label.inline', { for: 'clear-downstream' }, downstream, ' with downstream'),
    h('button.btn', { type: 'button', id: 'mark-success', onclick: () => mark('success') }, 'Mark success'),
    h('button.btn', { type: 'button', id: 'mark-failed', onclick: () => mark('failed') }, 'Mark failed'));
  root.append(
    h('div.crumbs', h('a', { href: '#/dags' }, 'DAGs'), ' / ', h('a', { href: `#/dags/${enc(dag)}/grid` }, dag), ' / ',
      h('a', { href: `#/runs/${enc(dag)}/${enc(run)}` }, run), ' / task'),
    h('div.title-row', h('h1', task), actions), info, tries,
    h('div.cols', outputs, gate),
    h('h2', 'Log ', logState), logPre);

  let ti = null;
  let shownTry = fixedTry;
  let logCtl = null; // aborts the log follower when the try changes
  let kick = null;

  async function clearTask() {
    const down = downstream.checked;
    if (!await confirmAction(`Clear ${task}?`, `Clear ${task}${down ? ' and its downstream tasks' : ''} in run ${run}: they will run again.`, 'Clear')) return;
    try {
      const r = await request('POST', `/dags/${enc(dag)}/clearTaskInstances`, { body: { dag_run_id: run, task_ids: [task], include_downstream: down, only_failed: false, dry_run: false } });
      ctx.notify(`Cleared ${r.task_instances.map((x) => x.task_id).join(', ') || 'nothing'}.`, 'info');
      // Follow the next try from now on.
      if (fixedTry) location.hash = `#/tasks/${enc(dag)}/${enc(run)}/${enc(task)}`;
      else kick && kick();
    } catch (e) { if (e.status !== 401 && e.status !== 403) ctx.notify(e.explain ? e.explain() : e.message); }
  }

  async function mark(state) {
    if (!await confirmAction(`Mark ${task} ${state}?`, `Set ${task} in run ${run} to ${state} without running it.`, `Mark ${state}`)) return;
    try {
      await request('PATCH', `${base}/taskInstances/${enc(task)}`, { body: { new_state: state, dry_run: false } });
      ctx.notify(`Marked ${task} ${state}.`, 'info');
      kick && kick();
    } catch (e) { if (e.status !== 401 && e.status !== 403) ctx.notify(e.explain ? e.explain() : e.message); }
  }

  function renderInfo() {
    const dl = h('dl.facts.inline-facts', {},
      h('dt', 'State'), h('dd', { id: 'ti-state' }, badge(ti.state)),
      h('dt', 'Try'), h('dd', `${ti.try_number} of ${ti.max_tries}`),
      h('dt', 'Operator'), h('dd', ti.operator || '—'),
      h('dt', 'Pool'), h('dd', ti.pool || '—'),
      h('dt', 'Started'), h('dd', fmtTime(ti.start_date)),
      h('dt', 'Ended'), h('dd', fmtTime(ti.end_date)),
      h('dt', 'Duration'), h('dd', fmtDuration(ti.duration)),
      h('dt', 'Exit code'), h('dd', ti.exit_code === null || ti.exit_code === undefined ? '—' : String(ti.exit_code)),
      ti.next_try_at ? [h('dt', 'Next try'), h('dd', fmtTime(ti.next_try_at))] : null);
    fill(info, dl);
    const n = Math.max(ti.try_number || 0, shownTry || 0);
    fill(tries, n ? h('span.muted', 'Tries: ') : null, Array.from({ length: n }, (_, i) => h('a', {
      href: `#/tasks/${enc(dag)}/${enc(run)}/${enc(task)}/${i + 1}`, 'aria-current': i + 1 === shownTry ? 'page' : undefined,
    }, String(i + 1))));
    const outs = Object.entries(ti.outputs || {}).filter(([k]) => k !== 'report');
    fill(outputs, h('h2', 'Outputs'), outs.length
      ? h('table.list', h('tbody', outs.map(([k, v]) => h('tr', h('th', { scope: 'row' }, k), h('td', h('code', String(v)))))))
      : h('p.muted', 'none'));
    const rep = gateReport(ti.outputs);
    gate.hidden = !rep;
    if (rep) {
      fill(gate, h('h2', 'Gate report'), h('div.scroll-x', h('table.list.gate-report', {},
        h('thead', h('tr', ['Output', 'Check', 'Value', 'Baseline', 'Threshold', 'Result'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', rep.map((c) => h('tr', { class: `row-${c.result}` },
          h('td', c.output), h('td', h('code', c.check)), h('td', num(c.value)), h('td', num(c.baseline)), h('td', num(c.threshold)),
          h('td', h('span', { class: `result res-${c.result}` }, { pass: '✓ pass', fail: '✕ fail', skipped: '» skipped' }[c.result] || c.result),
            c.reason ? h('span.muted.small', ` (${c.reason})`) : null)))))));
    }
  }

  // Reads the try's log from offset 0 and follows it until the try ends.
  async function followLog(tryNo) {
    if (logCtl) logCtl.abort();
    const ctl = new AbortController();
    logCtl = ctl;
    ctx.signal.addEventListener('abort', () => ctl.abort(), { once: true });
    logPre.textContent = '';
    let offset = 0;
    setText(logState, `(try ${tryNo}, following)`);
    while (!ctl.signal.aborted) {
      try {
        const x = await get(`${base}/taskInstances/${enc(task)}/logs/${tryNo}`, { offset, wait: 20 }, ctl.signal);
        if (ctl.signal.aborted) return;
        if (x.content) {
          const atEnd = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 4;
          logPre.append(x.content);
          if (atEnd) logPre.scrollTop = logPre.scrollHeight;
        }
        offset = x.next_offset;
        if (x.done) { setText(logState, `(try ${tryNo}, complete)`); return; }
      } catch (e) {
        if (e.name === 'AbortError') return;
        setText(logState, e.status === 404 ? `(try ${tryNo}: no log yet)` : `(try ${tryNo}: ${e.message})`);
        await pause(2000, ctl.signal);
      }
    }
  }

  (async () => {
    let lastSig = '';
    while (!ctx.signal.aborted) {
      const waitCtl = new AbortController();
      const stop = () => waitCtl.abort();
      ctx.signal.addEventListener('abort', stop, { once: true });
      kick = stop;
      let runState = null;
      try {
        const [r, x] = await Promise.all([get(base, null, ctx.signal), get(`${base}/taskInstances`, null, ctx.signal)]);
        runState = r.state;
        ti = x.task_instances.find((t) => t.task_id === task);
        if (!ti) { fill(info, h('p.error', `Run ${run} has no task ${task}.`)); return; }
        const want = fixedTry || Math.max(1, ti.try_number || 1);
        const sig = JSON.stringify(ti);
        if (sig !== lastSig || want !== shownTry) { shownTry = want; lastSig = sig; renderInfo(); }
        // (Re)start the log when the try changes, or when a finished log
        // is shown for a try that started again.
        const started = (ti.try_number || 0) >= want;
        const restarted = logState.textContent.includes('complete') && ACTIVE.has(ti.state) && ti.try_number === want;
        if (started && (logPre.dataset.try !== String(want) || restarted)) {
          logPre.dataset.try = String(want);
          followLog(want);
        } else if (!started && logPre.dataset.try !== String(want)) {
          setText(logState, `(try ${want} has not started)`);
        }
      } catch (e) {
        if (e.name === 'AbortError') return;
        fill(info, h('p.error', e.explain ? e.explain() : e.message));
      }
      try {
        if (runState === 'queued' || runState === 'running') await get(base, { wait: 20 }, waitCtl.signal);
        else await pause(5000, waitCtl.signal);
      } catch (e) { if (e.name !== 'AbortError') await pause(2000, waitCtl.signal); }
      ctx.signal.removeEventListener('abort', stop);
    }
  })();
}
