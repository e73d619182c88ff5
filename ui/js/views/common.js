// Pieces several views share: the DAG header with its tabs and actions,
// the trigger dialog with its JSON conf editor, the pause toggle.
// SPDX-License-Identifier: MIT
import { request, enc } from '../api.js';
import { h, fill, modal, setText } from '../dom.js';

// Parses a conf text; returns {value} or {error} with a line/column hint.
export function parseConf(text) {
  if (!text.trim()) return { value: {} };
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return { error: 'conf must be a JSON object, like {"key": "value"}' };
    return { value: v };
  } catch (e) {
    let msg = e.message;
    const m = msg.match(/position (\d+)/);
    if (m) {
      const before = text.slice(0, Number(m[1]));
      const line = before.split('\n').length, col = before.length - before.lastIndexOf('\n');
      msg += ` (line ${line}, column ${col})`;
    }
    return { error: msg };
  }
}

// Opens the trigger dialog; resolves with the new run, or null.
export function triggerDialog(dagId, notify) {
  return new Promise((resolve) => {
    const conf = h('textarea', { id: 'conf-input', rows: 8, spellcheck: false, 'aria-describedby': 'conf-error' }, '{\n  \n}');
    const date = h('input', { id: 'date-input', type: 'text', placeholder: 'now (RFC 3339, optional)' });
    const runId = h('input', { id: 'runid-input', type: 'text', placeholder: 'generated (optional)' });
    const error = h('p.field-error', { id: 'conf-error', role: 'status' });
    const send = h('button.btn.primary', { type: 'submit', value: 'trigger' }, 'Trigger');
    const validate = () => {
      const r = parseConf(conf.value);
      setText(error, r.error ? 'Invalid conf: ' + r.error : '');
      conf.setAttribute('aria-invalid', r.error ? 'true' : 'false');
      send.disabled = Boolean(r.error);
      return r;
    };
    conf.addEventListener('input', validate);
    const form = h('form.trigger-form', {},
      h('h2', `Trigger ${dagId}`),
      h('label', { for: 'conf-input' }, 'conf (JSON object)'), conf, error,
      h('div.row2', h('div', h('label', { for: 'date-input' }, 'Logical date'), date),
        h('div', h('label', { for: 'runid-input' }, 'Run id'), runId)),
      h('div.modal-buttons', h('button.btn', { type: 'button', onclick: () => dlg.close('') }, 'Cancel'), send));
    const dlg = h('dialog.modal', { 'aria-label': `Trigger ${dagId}` }, form);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const r = validate();
      if (r.error) return;
      const body = { conf: r.value };
      if (date.value.trim()) body.logical_date = date.value.trim();
      if (runId.value.trim()) body.dag_run_id = runId.value.trim();
      send.disabled = true;
      try {
        const created = await request('POST', `/dags/${enc(dagId)}/dagRuns`, { body });
        dlg.close('ok');
        notify(`Triggered ${dagId}: run ${created.dag_run_id}.`, 'info');
        resolve(created);
      } catch (e) {
        setText(error, e.explain ? e.explain() : e.message);
        send.disabled = false;
      }
    });
    dlg.addEventListener('close', () => { if (dlg.returnValue !== 'ok') resolve(null); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
    validate();
    conf.focus();
  });
}

// A switch button for a DAG's paused flag; onChange(dag) after the PATCH.
export function pauseToggle(dag, notify, onChange) {
  const btn = h('button', { type: 'button', class: 'toggle', role: 'switch' });
  const show = (paused) => {
    btn.setAttribute('aria-checked', paused ? 'false' : 'true');
    btn.dataset.paused = paused ? 'true' : 'false';
    btn.setAttribute('aria-label', `${dag.dag_id}: ${paused ? 'paused, press to unpause' : 'active, press to pause'}`);
    btn.title = paused ? 'Paused: press to unpause' : 'Active: press to pause';
    setText(btn, paused ? 'Paused' : 'Active');
  };
  show(dag.is_paused);
  btn.addEventListener('click', async () => {
    const want = btn.dataset.paused !== 'true';
    btn.disabled = true;
    try {
      const d = await request('PATCH', `/dags/${enc(dag.dag_id)}`, { body: { is_paused: want } });
      show(d.is_paused);
      if (onChange) onChange(d);
    } catch (e) {
      if (e.status !== 401 && e.status !== 403) notify(e.explain ? e.explain() : e.message);
    } finally {
      btn.disabled = false;
    }
  });
  btn.update = (d) => { if (!btn.disabled) show(d.is_paused); };
  return btn;
}

// The header of every DAG page: id, description, tabs, trigger, pause.
export function dagHeader(dagId, active, ctx, { onTriggered } = {}) {
  const tabs = [['grid', 'Grid'], ['graph', 'Graph'], ['backfill', 'Backfill']];
  const info = h('p.muted.dag-info');
  const actions = h('div.actions');
  const el = h('div.dag-header', {},
    h('div.crumbs', h('a', { href: '#/dags' }, 'DAGs'), ' / '),
    h('div.title-row', h('h1', dagId), actions),
    info,
    h('nav.tabs', { 'aria-label': 'DAG views' }, tabs.map(([k, label]) => h('a', {
      href: `#/dags/${enc(dagId)}/${k}`, 'aria-current': k === active ? 'page' : undefined,
    }, label))));
  let toggle = null;
  const trigger = h('button.btn.primary', { type: 'button', id: 'trigger-btn', onclick: async () => {
    const r = await triggerDialog(dagId, ctx.notify);
    if (r && onTriggered) onTriggered(r);
  } }, 'Trigger…');
  // Fills in what GET dags/{id} says; called again on refresh.
  el.update = (dag) => {
    const sched = dag.schedule ? `${dag.schedule_description || ''} (${dag.schedule}, ${dag.timezone})` : 'no schedule';
    const ev = dag.on_event && dag.on_event.length ? ` · on events: ${dag.on_event.join(', ')}` : '';
    setText(info, `${dag.description ? dag.description + ' · ' : ''}${sched}${ev} · ${dag.tasks} tasks`);
    if (!toggle) {
      toggle = pauseToggle(dag, ctx.notify);
      fill(actions, toggle, trigger);
    } else toggle.update(dag);
  };
  return el;
}
