import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  FORECAST_STRINGS, coldText, eventText, forecastMoment, ft, queueText, shiftEndText, wantFetch,
} from '../src/forecast.js';

const TZ = 'Asia/Tokyo';
// 2026-11-24 10:42:00 in Tokyo
const T = Date.UTC(2026, 10, 24, 1, 42) / 1000;

test('a running machine: ends ~10:42 (10:35-10:55), in both languages', () => {
  const m = { event: 'run_end', p10: T - 7 * 60, p50: T, p90: T + 13 * 60, cold: [] };
  assert.equal(eventText(m, TZ, 'en'), 'ends ~10:42 (10:35–10:55)');
  assert.equal(eventText(m, TZ, 'ja'), '終了 ~10:42 (10:35–10:55)');
  const r = { ...m, event: 'restart' };
  assert.equal(eventText(r, TZ, 'en'), 'runs again ~10:42 (10:35–10:55)');
  assert.equal(eventText(r, TZ, 'ja'), '再開 ~10:42 (10:35–10:55)');
});

test('no restart today, unknown state, open upper end', () => {
  assert.match(eventText({ event: 'restart', p50: null }, TZ, 'en'), /after the shift/);
  assert.match(eventText({ event: 'restart', p50: null }, TZ, 'ja'), /シフト後/);
  assert.equal(eventText({ event: null }, TZ, 'en'), 'state unknown: no forecast');
  assert.equal(eventText({ event: 'run_end', p10: T, p50: T, p90: null }, TZ, 'en'), 'ends ~10:42 (10:42–?)');
});

test('cold start reasons are said in words', () => {
  assert.deepEqual(coldText(['first_day'], 'en'), ['no history yet (first day): a rough range from priors']);
  assert.deepEqual(coldText(['worker_no_history:W9'], 'en', (w) => `Sato (${w})`),
    ['Sato (W9) has no history yet: from everyone\'s']);
  assert.match(coldText(['machine_never_seen_running'], 'ja')[0], /稼働履歴なし/);
  assert.deepEqual(coldText(undefined, 'en'), []);
  // every code the server sends has a text in both languages
  for (const lang of ['ja', 'en']) {
    for (const c of ['first_day', 'machine_never_seen_running', 'few_runs', 'few_stops', 'worker_unknown']) {
      assert.ok(!coldText([c], lang)[0].startsWith('cold_'), `${lang} ${c}`);
    }
  }
});

test("the operator's queue and the shift end", () => {
  const q = { machine: 'M7', need_at: T - 2 * 60, wait_p50_min: 6.2, wait_p90_min: 14.4 };
  assert.equal(queueText(q, TZ, 'en'), 'M7 will wait ~6 min for the operator at 10:40 (up to 14)');
  assert.equal(queueText(q, TZ, 'ja'), 'M7 は 10:40 に作業者を約6分待つ見込み (最大 14 分)');
  assert.match(queueText({ ...q, wait_p50_min: 0.2 }, TZ, 'en'), /served at once/);
  const doc = { shift_end: T, running_min: [400.4, 420, 455.6], changeovers: [5, 6, 8] };
  assert.deepEqual(shiftEndText(doc, TZ, 'en'), ['By the shift end 10:42', 'running 420 min (400–456)',
    '6 changeovers (5–8)']);
});

test('fetch once per replay minute, never two at a time, not too often', () => {
  assert.equal(forecastMoment(125.9), 120);
  const base = { inFlight: false, lastWallMs: 0, nowMs: 1000 };
  assert.equal(wantFetch({ ...base, t: 100, lastAt: null }), true);
  assert.equal(wantFetch({ ...base, t: 170, lastAt: 120 }), false);  // same minute
  assert.equal(wantFetch({ ...base, t: 181, lastAt: 120 }), true);
  assert.equal(wantFetch({ ...base, t: 60, lastAt: 120 }), true);  // scrubbed back
  assert.equal(wantFetch({ ...base, t: 999, lastAt: 120, inFlight: true }), false);
  assert.equal(wantFetch({ ...base, t: 999, lastAt: 120, lastWallMs: 900 }), false);
});

test('both languages have the same keys', () => {
  assert.deepEqual(Object.keys(FORECAST_STRINGS.ja).sort(), Object.keys(FORECAST_STRINGS.en).sort());
  assert.notEqual(ft('en')('forecast'), ft('ja')('forecast'));
  assert.equal(ft('xx')('forecast'), 'Forecast');
});
