// Task instance and run states: a colour from a palette that stays
// distinguishable with the common colour-vision deficiencies (Okabe-Ito),
// plus a symbol and a word, so that colour is never the only cue.
// SPDX-License-Identifier: MIT
import { h } from './dom.js';

export const STATES = {
  success: { sym: '✓', label: 'success' },
  failed: { sym: '✕', label: 'failed' },
  running: { sym: '▶', label: 'running' },
  queued: { sym: 'Q', label: 'queued' },
  scheduled: { sym: 'S', label: 'scheduled' },
  up_for_retry: { sym: '↻', label: 'up for retry' },
  up_for_reschedule: { sym: 'R', label: 'up for reschedule' },
  upstream_failed: { sym: '!', label: 'upstream failed' },
  skipped: { sym: '»', label: 'skipped' },
  removed: { sym: '–', label: 'removed' },
  none: { sym: '·', label: 'no status' },
};

export function stateInfo(s) {
  return STATES[s] || { sym: '?', label: s || 'unknown' };
}

// A badge: coloured box with symbol and word.
export function badge(state) {
  const i = stateInfo(state || 'none');
  return h('span', { class: `badge st-${state || 'none'}`, dataset: { state: state || 'none' } },
    h('span.sym', { 'aria-hidden': 'true' }, i.sym), ' ', i.label);
}

// A small square mark (for recent runs), labelled for screen readers.
export function mark(state, title) {
  const i = stateInfo(state);
  return h('span', {
    class: `mark st-${state || 'none'}`, title: title || i.label, role: 'img', 'aria-label': title || i.label,
    dataset: { state: state || 'none' },
  }, i.sym);
}

export function legend(states = Object.keys(STATES)) {
  return h('ul.legend', { 'aria-label': 'Legend' }, states.map((s) => h('li', mark(s), ' ', stateInfo(s).label)));
}

export const ACTIVE = new Set(['queued', 'running', 'scheduled', 'up_for_retry', 'up_for_reschedule']);
