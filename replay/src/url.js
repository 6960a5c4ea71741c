// The URL holds the shareable moment: site, shift (day), time, speed, and the view.

import { SPEEDS } from './clock.js';

// `mine`: one worker's own replay (the site replay cut to their rows, for a signed-in worker).
const VIEWS = ['replay', 'worker', 'mine'];
const LANGS = ['ja', 'en'];

/**
 * Parse a query string into view state; unknown or malformed values are dropped (not thrown)
 * because a shared link typed on a tablet must still open the replay.
 */
export function decodeState(search) {
  const q = new URLSearchParams(search);
  const out = {};
  const site = q.get('site');
  if (site && /^[A-Za-z0-9_.-]{1,64}$/.test(site)) out.site = site;
  const day = q.get('day');
  if (day && /^\d{4}-\d{2}-\d{2}$/.test(day)) out.day = day;
  const t = Number(q.get('t'));
  if (q.has('t') && Number.isFinite(t)) out.t = t;
  const speed = Number(q.get('speed'));
  if (SPEEDS.includes(speed)) out.speed = speed;
  const view = q.get('view');
  if (VIEWS.includes(view)) out.view = view;
  const worker = q.get('worker');
  if (worker && /^[A-Za-z0-9_.-]{1,64}$/.test(worker)) out.worker = worker;
  const lang = q.get('lang');
  if (LANGS.includes(lang)) out.lang = lang;
  const cam = q.get('cam');
  if (cam && /^[A-Za-z0-9_.:-]{1,70}$/.test(cam)) out.cam = cam;
  if (q.get('live') === '1') out.live = true;
  if (q.get('split') === '1') out.split = true;
  if (q.get('skip') === '1') out.skip = true;
  if (q.has('ideal')) out.ideal = decodeEdits(q.get('ideal'));
  return out;
}

const TASK_ID = /^[A-Za-z0-9_.-]{1,64}#\d{1,4}$/;

/**
 * Ideal-day edits as a compact URL value: `M3#0:1675829000:600,M7#2::300` (task id, new start
 * in epoch s or empty, new duration in s or empty), so a coached ideal day can be shared too.
 */
export function encodeEdits(edits) {
  return Object.entries(edits)
    .filter(([id]) => TASK_ID.test(id))
    .map(([id, e]) => `${id}:${Number.isFinite(e.start) ? Math.round(e.start) : ''}:`
      + `${Number.isFinite(e.durationS) ? Math.round(e.durationS) : ''}`)
    .join(',');
}

/** Inverse of encodeEdits; malformed entries are dropped. */
export function decodeEdits(text) {
  const out = {};
  for (const part of (text ?? '').split(',')) {
    const [id, start, dur] = part.split(':');
    if (!TASK_ID.test(id ?? '')) continue;
    const e = {};
    if (start && Number.isFinite(Number(start))) e.start = Number(start);
    if (dur && Number.isFinite(Number(dur)) && Number(dur) > 0) e.durationS = Number(dur);
    if (Object.keys(e).length) out[id] = e;
  }
  return out;
}

/** Query string (with leading `?`) for a view state; time is rounded to whole seconds. */
export function encodeState(state) {
  const q = new URLSearchParams();
  if (state.site) q.set('site', state.site);
  if (state.day) q.set('day', state.day);
  if (state.view && state.view !== 'replay') q.set('view', state.view);
  if (state.worker) q.set('worker', state.worker);
  if (Number.isFinite(state.t)) q.set('t', String(Math.round(state.t)));
  if (state.speed && state.speed !== 1) q.set('speed', String(state.speed));
  if (state.lang) q.set('lang', state.lang);
  if (state.cam && state.cam !== 'overview') q.set('cam', state.cam);
  if (state.live) q.set('live', '1');
  if (state.ideal) q.set('ideal', encodeEdits(state.ideal));
  if (state.ideal && state.split) q.set('split', '1');
  if (state.skip) q.set('skip', '1');
  return `?${q.toString()}`;
}
