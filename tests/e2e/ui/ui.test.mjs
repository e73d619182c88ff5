// dagd's web UI in headless Chromium. Started by tests/e2e/test_ui.sh,
// which runs two dagd instances (UI_URL without tokens, UI_LOCKED_URL
// with UI_TOKEN) over the DAGs in ./dags. Every wait polls the page or the
// API until a deadline: nothing sleeps for a state.
// SPDX-License-Identifier: MIT
import { chromium } from 'playwright-core';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const env = (k) => { if (!process.env[k]) throw new Error(`${k} is not set`); return process.env[k]; };
const URL0 = env('UI_URL'), LOCKED = env('UI_LOCKED_URL'), DAGS = env('UI_DAGS'), SHOTS = env('UI_SHOTS');
const TOKEN = env('UI_TOKEN');
const WAIT = 20000; // the deadline of every wait, ms

let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) passed++; else { failed++; console.log(`FAIL: ${what}`); }
}
async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); } catch (e) { failed++; console.log(`FAIL: ${name}: ${e.message.split('\n').slice(0, 6).join('\n')}`); }
  console.log(`  ${name} (${Date.now() - t0} ms)`);
}

async function api(method, path, body, base = URL0, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(base + '/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
// Polls fn() until it returns a truthy value, or throws after the deadline.
async function until(what, fn, ms = WAIT) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const enc = encodeURIComponent;
const touch = (f) => writeFileSync(join(DAGS, f), '');

const profile = mkdtempSync(join(process.env.UI_TMP || '/tmp', 'chromium-profile-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
ctx.setDefaultTimeout(WAIT);
const page = ctx.pages()[0] || await ctx.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`) });
// The newest column's cell of a task in the grid.
const cell = (task) => page.locator('table.grid tbody tr', { has: page.locator(`th.task:text-is("${task}")`) }).locator('td.c').last();

try {
  await step('DAG list: schedule in words, parse error with file:line, tags filter', async () => {
    await page.goto(URL0 + '/#/dags');
    await page.locator('tr[data-dag="quick"]').waitFor();
    check(await page.locator('tr[data-dag="quick"]').innerText().then((t) => t.includes('at 06:30 on Monday through Friday') && t.includes('30 6 * * 1-5')),
      'quick shows its schedule in words and cron');
    const err = page.locator('.import-errors');
    await err.waitFor();
    check((await err.innerText()).includes('broken.lua:3'), 'the parse error shows file:line');
    check(await err.evaluate((e) => getComputedStyle(e).color) === 'rgb(122, 28, 20)', 'the parse error is red');
    await page.click('.tag-filter button:text-is("ops")');
    await until('only failing listed', async () => (await page.locator('table.dags tbody tr').count()) === 1);
    check(await page.locator('tr[data-dag="failing"]').isVisible(), 'the ops tag shows failing');
    await page.click('.tag-filter button:text-is("all")');
    await until('all DAGs listed', async () => (await page.locator('table.dags tbody tr').count()) === 4);
  });

  let runId;
  await step('trigger with conf (validated), cells go running -> success without reload', async () => {
    await page.goto(URL0 + '/#/dags/quick/grid');
    await page.locator('.dag-info:has-text("4 tasks")').waitFor();
    await page.evaluate(() => { window.__noReload = true; });
    await page.click('#trigger-btn');
    await page.fill('#conf-input', '{"lr": 0.5,');
    await page.locator('#conf-error:has-text("Invalid conf")').waitFor();
    check(await page.locator('dialog button[value="trigger"]').isDisabled(), 'invalid conf disables Trigger');
    await page.fill('#conf-input', '{"lr": 0.5, "note": "from the UI test"}');
    await until('conf valid', async () => !(await page.locator('dialog button[value="trigger"]').isDisabled()));
    await page.click('dialog button[value="trigger"]');
    await cell('train').and(page.locator('.st-running')).waitFor();
    check(await cell('extract').evaluate((e) => e.classList.contains('st-success')), 'extract succeeded before train ran');
    await shot('grid-running');
    touch('release');
    for (const t of ['extract', 'train', 'features', 'evaluate']) await cell(t).and(page.locator('.st-success')).waitFor();
    check(await page.evaluate(() => window.__noReload === true), 'the grid updated without a reload');
    check((await cell('train').innerText()).trim() === '✓', 'a success cell shows its symbol');
    await cell('train').hover();
    await page.locator('.tip:has-text("try 1 of 1")').waitFor();
    const runs = (await api('GET', '/dags/quick/dagRuns')).body.dag_runs;
    runId = runs[0].dag_run_id;
    check(runs[0].conf.lr === 0.5, 'the run got the conf');
  });

  await step('run detail shows conf, run type and data interval', async () => {
    await page.locator('table.grid thead th.rh a').last().click();
    await page.locator('#run-conf').waitFor();
    check((await page.locator('#run-conf').innerText()).includes('"note": "from the UI test"'), 'run page shows conf');
    const t = await page.locator('dl.facts').innerText();
    check(t.includes('manual') && t.includes('Data interval'), 'run page shows run type and data interval');
    await shot('run');
  });

  await step('graph: tasks in layers with edges, coloured by the run', async () => {
    await page.goto(URL0 + `/#/dags/quick/graph/${enc(runId)}`);
    await until('4 success nodes', async () => (await page.locator('svg.graph a.node.st-success').count()) === 4);
    await until('4 edges', async () => (await page.locator('svg.graph path.edge').count()) === 4);
    check(await page.locator('svg.graph path.edge[data-edge="extract->train"]').count() === 1, 'an edge extract -> train');
    const at = await page.locator('svg.graph a.node').evaluateAll((ns) => Object.fromEntries(ns.map((n) => [n.dataset.task, n.getAttribute('transform')])));
    const x = (t) => Number(at[t].match(/translate\(([\d.]+)/)[1]);
    check(x('train') === x('features') && x('extract') < x('train') && x('train') < x('evaluate'), `layers: extract | train, features | evaluate (${JSON.stringify(at)})`);
    await shot('graph');
  });

  await step('a running task\'s log follows live', async () => {
    rmSync(join(DAGS, 'release'));
    const r = await api('POST', '/dags/quick/dagRuns', { conf: {}, dag_run_id: 'live' });
    check(r.status === 200 || r.status === 201, 'trigger live run');
    await until('train running', async () => {
      const x = (await api('GET', '/dags/quick/dagRuns/live/taskInstances')).body;
      return x.task_instances.find((t) => t.task_id === 'train').state === 'running';
    });
    await page.goto(URL0 + '/#/tasks/quick/live/train/1');
    await page.locator('#log:has-text("epoch 3")').waitFor();
    check(await page.locator('#ti-state [data-state="running"]').count() === 1, 'the task shows running');
    await page.evaluate(() => { window.__noReload = true; });
    touch('release');
    await page.locator('#log:has-text("trained")').waitFor();
    await page.locator('#ti-state [data-state="success"]').waitFor();
    check(await page.evaluate(() => window.__noReload === true), 'the log followed without a reload');
  });

  await step('a failing task\'s log shows the error; clearing it runs it again', async () => {
    await page.goto(URL0 + '/#/dags');
    await page.click('button[aria-label="Trigger failing"]');
    await page.click('dialog button[value="trigger"]');
    await page.goto(URL0 + '/#/dags/failing/grid');
    await cell('load').and(page.locator('.st-failed')).waitFor();
    check(await cell('report').evaluate((e) => e.classList.contains('st-upstream_failed')), 'report is upstream_failed');
    await cell('load').click();
    await page.locator('#log:has-text("ERROR: table features.daily is missing")').waitFor();
    await shot('log');
    touch('fixed');
    await page.click('#clear-btn');
    await page.locator('dialog:has-text("Clear load and its downstream tasks")').waitFor();
    await page.click('dialog button[value="ok"]');
    await page.locator('#ti-state [data-state="success"]').waitFor();
    await page.locator('#log:has-text("loaded")').waitFor();
    check((await page.locator('.ti-info').innerText()).includes('2 of'), 'the task ran a second try');
    const run = (await api('GET', '/dags/failing/dagRuns')).body.dag_runs[0];
    await until('failing run success', async () => (await api('GET', `/dags/failing/dagRuns/${enc(run.dag_run_id)}`)).body.state === 'success');
  });

  await step('mark failed asks first, then marks', async () => {
    await page.goto(URL0 + '/#/tasks/quick/live/evaluate/1');
    await page.locator('#ti-state [data-state="success"]').waitFor();
    await page.click('#mark-failed');
    await page.click('dialog button[value="cancel"]');
    check((await api('GET', '/dags/quick/dagRuns/live/taskInstances')).body.task_instances.find((t) => t.task_id === 'evaluate').state === 'success', 'cancel changes nothing');
    await page.click('#mark-failed');
    await page.click('dialog button[value="ok"]');
    await page.locator('#ti-state [data-state="failed"]').waitFor();
  });

  await step('gate report', async () => {
    const r = await api('POST', '/dags/model/dagRuns', { conf: { f1: 0.95 }, dag_run_id: 'g1' });
    check(r.status < 300, 'trigger model');
    await page.goto(URL0 + '/#/tasks/model/g1/gate');
    await until('gate report rows', async () => (await page.locator('table.gate-report tbody tr').count()) === 3);
    const t = await page.locator('table.gate-report').innerText();
    check(t.includes('latency_ms') && t.includes('< 100') && t.includes('pass'), 'the gate report lists the checks');
    await shot('gate');
  });

  await step('events: accepted, duplicate, and the run started', async () => {
    for (let i = 0; i < 2; i++) await api('POST', '/events', { name: 'drift_detected', payload: { psi: 0.31 }, id: 'ui-e1' });
    await page.goto(URL0 + '/#/events');
    await page.locator('table.events .out-duplicate').waitFor();
    await page.locator('table.events .out-accepted').waitFor();
    await page.locator('table.events a:has-text("retrain")').first().waitFor();
    await shot('events');
    await page.locator('table.events a:has-text("retrain")').first().click();
    await page.locator('#run-payload:has-text("0.31")').waitFor();
    check((await page.locator('dl.facts').innerText()).includes('event #'), 'the event run links its event');
  });

  await step('backfill with live progress', async () => {
    await page.goto(URL0 + '/#/dags/quick/backfill');
    await page.fill('#bf-from', '2030-01-01');
    await page.fill('#bf-to', '2030-01-03');
    await page.click('#bf-dry');
    await page.locator('.bf-plan:has-text("Dry run: 2 runs")').waitFor();
    await page.click('#bf-start');
    await page.click('dialog button[value="ok"]');
    await page.locator('#bf-progress[data-done="true"]').waitFor();
    check((await page.locator('#bf-counts').innerText()).includes('2 of 2 finished'), 'backfill finished 2 runs');
    await shot('backfill');
  });

  await step('pause survives a reload', async () => {
    await page.goto(URL0 + '/#/dags');
    const t = page.locator('tr[data-dag="failing"] button.toggle');
    await t.waitFor();
    check(await t.getAttribute('data-paused') === 'false', 'failing starts active');
    await t.click();
    await page.locator('tr[data-dag="failing"] button.toggle[data-paused="true"]').waitFor();
    await page.reload();
    await page.locator('tr[data-dag="failing"] button.toggle[data-paused="true"]').waitFor();
    check((await api('GET', '/dags/failing')).body.is_paused === true, 'the API says paused');
    await shot('list');
  });

  await step('keyboard: tab to the grid, arrows, Enter opens the task instance', async () => {
    await page.goto(URL0 + '/#/dags/quick/grid');
    await cell('evaluate').waitFor();
    await until('4 runs in the grid', async () => (await page.locator('table.grid thead th.rh').count()) === 4);
    await cell('train').hover();
    await page.locator('.tip').waitFor();
    await shot('grid');
    await page.locator('td.c[tabindex="0"]').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('End');
    const label = await page.evaluate(() => document.activeElement.getAttribute('aria-label'));
    check(/^train in run /.test(label || ''), `focused cell is labelled (${label})`);
    check(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle) !== 'none', 'focus is visible');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/tasks\/quick\/.*\/train\/1$/);
  });

  await step('phone-sized page', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(URL0 + '/#/dags');
    await page.locator('tr[data-dag="quick"]').waitFor();
    check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'no sideways scroll on a phone');
    await shot('phone');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await step('grid of 500 runs x 40 tasks: render time', async () => {
    await page.goto(URL0 + '/#/events');
    const ms = await page.evaluate(async () => {
      const { renderGrid } = await import('/ui/js/views/grid.js');
      const states = ['success', 'success', 'success', 'failed', 'running', 'queued', 'up_for_retry', 'skipped', 'upstream_failed', 'none'];
      const runs = [], tasks = [], tis = new Map();
      for (let t = 0; t < 40; t++) tasks.push(`task_${String(t).padStart(2, '0')}`);
      for (let r = 0; r < 500; r++) {
        const id = `scheduled__2025-01-01T00:00:00+00:00.${r}`;
        runs.push({ dag_run_id: id, state: 'success' });
        tis.set(id, new Map(tasks.map((t, i) => [t, { task_id: t, state: states[(r * 7 + i) % states.length], try_number: 1, max_tries: 2 }])));
      }
      const times = [];
      for (let k = 0; k < 3; k++) {
        const box = document.createElement('div');
        document.getElementById('view').replaceChildren(box);
        const t0 = performance.now();
        renderGrid(box, { dagId: 'big', runs, tasks, tis });
        void box.offsetHeight; // style and layout included
        await new Promise((r) => requestAnimationFrame(() => r()));
        times.push(performance.now() - t0);
      }
      return times;
    });
    const g = await page.evaluate(() => ({ width: document.querySelector('table.grid').offsetWidth, cells: document.querySelectorAll('table.grid td.c').length }));
    check(g.width === 200 + 500 * 20, `the grid spans 500 runs (${g.width} px)`);
    check(g.cells > 0 && g.cells % 40 === 0, `the runs in view are rendered (${g.cells} cells)`);
    // Scrolling to the oldest run brings its column in.
    await page.evaluate(() => { document.querySelector('.grid-scroll').scrollLeft = 0; });
    await until('the oldest run in the DOM', () => page.evaluate(() => Boolean(document.querySelector('table.grid a[aria-label^="run scheduled__2025-01-01T00:00:00+00:00.0:"]'))));
    console.log(`  grid 500 runs x 40 tasks rendered in ${ms.map((x) => x.toFixed(0)).join(' / ')} ms (first / second / third, to the next frame)`);
  });

  await step('with tokens configured, a page without one says "token required"; a wrong token gets a clear message; the right one works', async () => {
    await page.goto(LOCKED + '/#/dags');
    // Reads need a token too: the view says so instead of a list.
    await page.locator('section.token-required:has-text("Token required")').waitFor();
    await page.locator('#banner.error:has-text("Enter a valid API token")').waitFor();
    check(await page.locator('tr[data-dag="quick"]').count() === 0, 'no DAG is shown without a token');
    await page.click('#token-btn');
    await page.fill('#token-input', 'not-the-token');
    await page.click('dialog button[value="save"]');
    await page.locator('#banner.error:has-text("This token was refused by the server (401")').waitFor();
    await shot('token');
    check(await page.evaluate(() => document.cookie === '' && !location.href.includes('not-the-token')), 'the token is neither a cookie nor in the URL');
    check((await api('GET', '/dags/quick', undefined, LOCKED, TOKEN)).body.is_paused === false, 'the refused token changed nothing');
    await page.click('#token-btn');
    await page.fill('#token-input', TOKEN);
    await page.click('dialog button[value="save"]');
    await page.locator('#banner.info:has-text("accepted")').waitFor();
    // The page comes back with the token: the list, then an action.
    await page.locator('tr[data-dag="quick"] button.toggle').click();
    await page.locator('tr[data-dag="quick"] button.toggle[data-paused="true"]').waitFor();
    check((await api('GET', '/dags/quick', undefined, LOCKED, TOKEN)).body.is_paused === true, 'the right token paused the DAG');
  });

  check(errors.length === 0, `no page errors (${errors.join('; ')})`);
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
