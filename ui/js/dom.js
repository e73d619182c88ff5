// Small DOM and formatting helpers shared by the views.
// SPDX-License-Identifier: MIT

// h('div.a.b', {attrs}, children...): an element. Children may be strings,
// nodes, arrays, null or false (skipped). Attributes starting with "on" are
// listeners; "class", "text" and "dataset" are special.
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// Sets an element's text only when it differs (no needless layout).
export function setText(el, text) {
  text = text === null || text === undefined ? '' : String(text);
  if (el.textContent !== text) el.textContent = text;
}

export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// "2026-01-02 03:04:05 UTC" style, in the browser's zone, compact.
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtDuration(sec) {
  if (sec === null || sec === undefined || Number.isNaN(sec)) return '—';
  if (sec < 1) return `${Math.round(sec * 1000)} ms`;
  if (sec < 60) return `${sec.toFixed(1)} s`;
  const m = Math.floor(sec / 60), s = Math.round(sec % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtRelative(iso, now = Date.now()) {
  if (!iso) return '';
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const a = Math.abs(s);
  const v = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `in ${v}` : `${v} ago`;
}

export function prettyJson(v) {
  return JSON.stringify(v, null, 2);
}

// Resolves after ms, or early when the signal aborts (never rejects).
export function pause(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal && signal.removeEventListener('abort', done); resolve(); }
    if (signal) signal.addEventListener('abort', done, { once: true });
  });
}

// A modal dialog built on <dialog>. Resolves with the value of the button
// pressed ('' when dismissed with Escape).
export function modal({ title, body, buttons, danger }) {
  return new Promise((resolve) => {
    const dlg = h('dialog.modal', { 'aria-labelledby': 'modal-title' },
      h('form', { method: 'dialog' },
        h('h2', { id: 'modal-title', text: title }),
        h('div.modal-body', body),
        h('div.modal-buttons', buttons.map((b) => h('button', {
          value: b.value, type: 'submit',
          class: b.primary ? (danger ? 'btn danger' : 'btn primary') : 'btn',
        }, b.label)))));
    dlg.addEventListener('close', () => { resolve(dlg.returnValue); dlg.remove(); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// Asks before a destructive action; resolves true when confirmed.
export async function confirmAction(title, text, label = 'Confirm') {
  const v = await modal({
    title, body: h('p', text), danger: true,
    buttons: [{ label: 'Cancel', value: 'cancel' }, { label, value: 'ok', primary: true }],
  });
  return v === 'ok';
}

// Replaces el's children; like h(), accepts arrays, null and false.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
