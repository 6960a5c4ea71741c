import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseLiveMessage } from '../src/live.js';

test('readings move the live edge to their newest time', () => {
  const m = parseLiveMessage({ type: 'readings', readings: [{ t: 105.5 }, { t: 103 }, { t: 'x' }] });
  assert.deepEqual(m, { edge: 105.5, day: null, result: null });
});

test('analysis frames name the day to refetch and the edge', () => {
  const m = parseLiveMessage({ type: 'analysis', day: '2026-11-24', window: [100, 900], machine_states: [] });
  assert.equal(m.edge, 900);
  assert.equal(m.day, '2026-11-24');
  assert.equal(m.result, null);  // a window array is not a contract result
  const snap = parseLiveMessage({ type: 'snapshot', sensors: {}, analysis: { day: '2026-11-24', window: [1, 2] } });
  assert.deepEqual([snap.edge, snap.day], [2, '2026-11-24']);
});

test('a whole contract result is taken as new shift data; junk is ignored', () => {
  const doc = { window: { start: 0, end: 50 }, machine_states: [], tasks: [] };
  assert.equal(parseLiveMessage({ result: doc }).result, doc);
  assert.deepEqual(parseLiveMessage(null), { edge: null, day: null, result: null });
  assert.deepEqual(parseLiveMessage({ type: 'analysis', day: '../x', window: 'no' }), { edge: null, day: null, result: null });
});

test('live pace and end of shift', async () => {
  const { liveEnded, liveRate } = await import('../src/live.js');
  assert.equal(liveRate([]), 1);
  assert.equal(liveRate([{ wallMs: 0, edge: 100 }, { wallMs: 2000, edge: 220 }]), 60);
  assert.equal(liveRate([{ wallMs: 0, edge: 100 }, { wallMs: 500, edge: 130 }]), 1);  // too short to tell
  assert.equal(liveRate([{ wallMs: 0, edge: 100 }, { wallMs: 2000, edge: 100 }]), 1);
  assert.equal(liveEnded({ recording: false, lastEdgeWallMs: 0, nowMs: 1 }), true);
  assert.equal(liveEnded({ recording: true, lastEdgeWallMs: 0, nowMs: 10000 }), false);
  assert.equal(liveEnded({ recording: true, lastEdgeWallMs: 0, nowMs: 40000 }), true);
});
