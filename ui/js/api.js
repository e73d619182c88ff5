// The REST API client: every request goes through request(), which adds
// the bearer token the user entered (kept in sessionStorage only: never a
// cookie, never the URL) and turns error answers into ApiError.
// SPDX-License-Identifier: MIT

const TOKEN_KEY = 'dagd.token';
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
  // A sentence for people: what went wrong and what to do about it.
  explain() {
    if (this.status === 401 && !getToken())
      return 'Token required: this dagd has API tokens configured, so every page needs one, reads too. ' +
        'Enter a valid API token with the "Token" button (a token with the read scope is enough to look).';
    if (this.status === 401)
      return `The server refused the request: ${this.detail || 'missing or wrong token'}. ` +
        'Enter a valid API token with the "Token" button.';
    if (this.status === 403)
      return `Your token is valid but its scope is too small: ${this.detail || 'forbidden'}. ` +
        'Use a token with the admin scope.';
    if (this.status === 0) return `Cannot reach dagd: ${this.detail}`;
    return `${this.title || 'Error'} (${this.status}): ${this.detail || ''}`;
  }
}

export function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lasts for this page only */ }
}

// Called with every ApiError a request raises (the app shows 401/403 in
// its banner whatever view made the request).
export function onError(fn) { listeners.add(fn); }

export const enc = encodeURIComponent;

// request('GET', '/dags', {query, body, signal}) -> parsed JSON body.
export async function request(method, path, { query, body, signal } = {}) {
  let url = '/api/v1' + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    if (s) url += '?' + s;
  }
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(url, {
      method, headers, signal, credentials: 'omit', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    const err = new ApiError(0, 'Network error', e.message);
    listeners.forEach((fn) => fn(err));
    throw err;
  }
  let data = null;
  const text = await resp.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text }; }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data && data.title, data && data.detail);
    err.method = method;
    listeners.forEach((fn) => fn(err));
    throw err;
  }
  return data;
}

export const get = (path, query, signal) => request('GET', path, { query, signal });

// Checks a token without changing anything: authorisation comes before the
// handler, so a PATCH of a DAG that cannot exist answers 401 (unknown
// token), 403 (scope too small) or 404 (token accepted).
export async function checkToken(token) {
  const resp = await fetch('/api/v1/dags/' + enc('~token-check~'), {
    method: 'PATCH', credentials: 'omit', cache: 'no-store',
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: '{}',
  });
  let detail = '';
  try { detail = (await resp.json()).detail || ''; } catch { /* not JSON */ }
  return { status: resp.status, detail };
}
