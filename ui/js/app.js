// The UI's entry point: hash routing to one view at a time, the token
// dialog and the error banner. Each view gets an AbortSignal that fires
// when the user leaves it, which ends its long polls and timers.
// SPDX-License-Identifier: MIT
import { onError, getToken, setToken, checkToken } from './api.js';
import { h, fill, modal } from './dom.js';
import * as dags from './views/dags.js';
import * as grid from './views/grid.js';
import * as graph from './views/graph.js';
import * as run from './views/run.js';
import * as task from './views/task.js';
import * as events from './views/events.js';
import * as backfill from './views/backfill.js';

const ROUTES = [
  [/^#?\/?(dags)?$/, dags, () => ({})],
  [/^#\/dags\/([^/]+)(?:\/grid)?$/, grid, (m) => ({ dag: m[1] })],
  [/^#\/dags\/([^/]+)\/graph(?:\/([^/]+))?$/, graph, (m) => ({ dag: m[1], run: m[2] })],
  [/^#\/dags\/([^/]+)\/backfill(?:\/(\d+))?$/, backfill, (m) => ({ dag: m[1], id: m[2] })],
  [/^#\/runs\/([^/]+)\/([^/]+)$/, run, (m) => ({ dag: m[1], run: m[2] })],
  [/^#\/tasks\/([^/]+)\/([^/]+)\/([^/]+)(?:\/(\d+))?$/, task, (m) => ({ dag: m[1], run: m[2], task: m[3], try: m[4] })],
  [/^#\/events$/, events, () => ({})],
];

const view = document.getElementById('view');
const banner = document.getElementById('banner');
let current = null; // {ctrl, cleanup}

// Shows a message in the banner; kind is 'error' or 'info'.
export function notify(text, kind = 'error') {
  banner.className = `banner ${kind}`;
  fill(banner, h('span', text), h('button.btn.small', {
    type: 'button', 'aria-label': 'Dismiss', onclick: () => { banner.hidden = true; },
  }, '×'));
  banner.hidden = false;
  // Errors stay until dismissed; confirmations fade after a while.
  clearTimeout(notify.timer);
  if (kind === 'info') notify.timer = setTimeout(() => { banner.hidden = true; }, 8000);
}

export function clearNotice() { banner.hidden = true; }

onError((err) => {
  if (err.status === 401 || err.status === 403) notify(err.explain(), 'error');
  // A read refused: the page cannot show anything without a token.
  if (err.status === 401 && err.method === 'GET') tokenRequired(err);
});

// Replaces the view with what to do when reads need a token (api_tokens
// set): it stops the view's polling until a token is saved.
function tokenRequired(err) {
  if (current) {
    current.ctrl.abort();
    if (typeof current.cleanup === 'function') current.cleanup();
  }
  current = { ctrl: new AbortController() };
  fill(view, h('section.token-required', h('h1', 'Token required'),
    h('p', getToken()
      ? `The server refused the token this tab has (${err.detail || 'unknown token'}).`
      : 'This dagd has API tokens configured: every page needs one, reads too.'),
    h('p', 'Enter a token with the Token button. A token with the read scope is enough to look; ',
      'triggering needs the trigger scope, pausing, clearing and marking the admin scope.'),
    h('button.btn', { type: 'button', id: 'token-required-btn', onclick: tokenDialog }, 'Enter a token')));
}

function decode(params) {
  const out = {};
  for (const [k, v] of Object.entries(params)) out[k] = v === undefined ? undefined : decodeURIComponent(v);
  return out;
}

function route() {
  const hash = location.hash || '#/dags';
  if (current) {
    current.ctrl.abort();
    if (typeof current.cleanup === 'function') current.cleanup();
    current = null;
  }
  document.querySelectorAll('[data-nav]').forEach((a) => {
    const on = hash.startsWith('#/' + a.dataset.nav) || (a.dataset.nav === 'dags' && /^#\/(runs|tasks)/.test(hash));
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  const ctrl = new AbortController();
  for (const [re, mod, params] of ROUTES) {
    const m = hash.match(re);
    if (!m) continue;
    fill(view);
    const cleanup = mod.mount(view, decode(params(m)), { signal: ctrl.signal, notify });
    current = { ctrl, cleanup };
    return;
  }
  fill(view, h('h1', 'Not found'), h('p', 'No page at ', h('code', hash), '. ', h('a', { href: '#/dags' }, 'DAGs')));
  current = { ctrl };
}

function tokenLabel() {
  const btn = document.getElementById('token-btn');
  btn.textContent = getToken() ? 'Token ✓' : 'Token';
  btn.title = getToken() ? 'An API token is set for this tab' : 'Enter an API token';
}

async function tokenDialog() {
  const input = h('input', { type: 'password', id: 'token-input', autocomplete: 'off', value: getToken(), spellcheck: false });
  const v = await modal({
    title: 'API token',
    body: [h('p', 'When dagd has api_tokens configured every request needs a bearer token: reads need one ',
      'of the read scope or more, actions the trigger or admin scope. ',
      'It is kept in this tab\'s session storage and sent only in the Authorization header.'),
      h('label', { for: 'token-input' }, 'Token'), input],
    buttons: [{ label: 'Forget', value: 'forget' }, { label: 'Cancel', value: 'cancel' }, { label: 'Save', value: 'save', primary: true }],
  });
  if (v === 'forget') { setToken(''); tokenLabel(); notify('Token forgotten.', 'info'); route(); return; }
  if (v !== 'save') return;
  const t = input.value.trim();
  setToken(t);
  tokenLabel();
  if (!t) return;
  try {
    const r = await checkToken(t);
    if (r.status === 401) {
      notify(`This token was refused by the server (401: ${r.detail || 'unknown token'}). Pages and actions will fail until you enter a valid one.`, 'error');
      return;
    }
    if (r.status === 403) notify('Token accepted, with a scope too small for admin actions (pause, clear, mark, backfill).', 'info');
    else notify('Token saved and accepted by the server.', 'info');
  } catch (e) {
    notify(`Could not check the token: ${e.message}`, 'error');
  }
  route(); // show the page again, with the token
}

document.getElementById('token-btn').addEventListener('click', tokenDialog);
window.addEventListener('hashchange', route);
tokenLabel();
route();
