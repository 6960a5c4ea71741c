import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  KIT, detectLines, duplicateTarget, footprintCorners, frontRotation, nextId, planTransform, problemTarget,
  rectPoints, scaleFromClicks, sensorsFromDevice, seriesName, snapPlanPoint, toGrid,
} from '../src/editor-geom.js';
import { EDITOR_STRINGS } from '../src/editor-strings.js';

test('plan pixels and floor metres map both ways, y up on the floor', () => {
  const T = planTransform({ m_per_px: 1 / 60, origin_px: [90, 690] });
  assert.deepEqual(T.toPx(0, 0), [90, 690]);
  const [px, py] = T.toPx(3, 6.5);
  assert.ok(Math.abs(px - 270) < 1e-9 && Math.abs(py - 300) < 1e-9);
  const [x, y] = T.toFloor(270, 300);
  assert.ok(Math.abs(x - 3) < 1e-9 && Math.abs(y - 6.5) < 1e-9);
});

test('scale from two clicks and a typed distance; zero, negative and junk refused', () => {
  assert.ok(Math.abs(scaleFromClicks([90, 100], [1050, 100], '16') * 960 - 16) < 1e-6);
  assert.ok(Math.abs(scaleFromClicks([0, 0], [300, 400], '2,5') - 0.005) < 1e-11);
  for (const bad of ['0', '-3', '', 'abc', 'NaN', 'Infinity']) {
    assert.throws(() => scaleFromClicks([0, 0], [100, 0], bad), (e) => e.code === 'distance', bad);
  }
  assert.throws(() => scaleFromClicks([5, 5], [5, 5], '3'), (e) => e.code === 'points');
});

test('rectangles are counter-clockwise from the lower left, in millimetres', () => {
  assert.deepEqual(rectPoints([4.4, 5.6], [1.6, 3.6]), [[1.6, 3.6], [4.4, 3.6], [4.4, 5.6], [1.6, 5.6]]);
  assert.deepEqual(rectPoints([0.30000000000000004, 0], [1, 1])[0], [0.3, 0]);
  assert.equal(toGrid(3.04), 3);
  assert.equal(toGrid(5.36), 5.4);
});

test('machine corners turn with rotation; front sides', () => {
  const c = footprintCorners([0, 0], [2, 1], 90);
  assert.ok(Math.abs(c[0][0] - 0.5) < 1e-9 && Math.abs(c[0][1] + 1) < 1e-9);
  assert.deepEqual(['up', 'left', 'down', 'right'].map(frontRotation), [0, 90, 180, 270]);
});

test('plan lines are found and points snap to them, vertices first', () => {
  const w = 200;
  const h = 120;
  const data = new Uint8ClampedArray(w * h * 4).fill(255);
  const dark = (x, y) => { const i = (y * w + x) * 4; data[i] = 0; data[i + 1] = 0; data[i + 2] = 0; };
  for (let x = 10; x < 190; x += 1) for (const y of [20, 21, 22]) dark(x, y); // a 3 px wall at y = 21
  for (let y = 10; y < 110; y += 1) dark(50, y); // a 1 px line at x = 50
  for (let x = 100; x < 105; x += 1) dark(x, 80); // too short to be a line
  const lines = detectLines(data, w, h);
  assert.equal(lines.h.length, 1);
  assert.equal(lines.h[0].y, 21);
  assert.equal(lines.v.length, 1);
  assert.equal(lines.v[0].x, 50);
  const s = snapPlanPoint([53, 25], { lines, tolPx: 8 });
  assert.deepEqual(s.p, [50, 21]);
  assert.ok(s.x && s.y && !s.vertex);
  const far = snapPlanPoint([120, 60], { lines, tolPx: 8 });
  assert.deepEqual(far.p, [120, 60]);
  assert.ok(!far.x && !far.y);
  const v = snapPlanPoint([53, 25], { lines, vertices: [[55, 27]], tolPx: 8 });
  assert.deepEqual(v.p, [55, 27]);
  assert.ok(v.vertex);
});

test('names in a series follow the id; ids count up', () => {
  assert.equal(seriesName('NC lathe No. 3', 'M3', 'M7'), 'NC lathe No. 7');
  assert.equal(seriesName('NC旋盤 3号機', 'M3', 'M10'), 'NC旋盤 10号機');
  assert.equal(seriesName('Lathe 13', 'M3', 'M7'), '');
  assert.equal(seriesName('Operator A', 'W1', 'W2'), 'Operator B');
  assert.equal(seriesName('作業者A', 'W1', 'W2'), '作業者B');
  assert.equal(seriesName('', 'W1', 'W2'), '');
  assert.equal(nextId('M', ['M1', 'M2', 'M4']), 'M3');
});

test('validator paths point at shapes', () => {
  assert.deepEqual(problemTarget('machines[2].zone'), { kind: 'zone', index: 2 });
  assert.deepEqual(problemTarget('machines[0].footprint'), { kind: 'machine', index: 0 });
  assert.deepEqual(problemTarget('receivers[1].machine'), { kind: 'receiver', index: 1 });
  assert.deepEqual(problemTarget('survey.blocked[3]'), { kind: 'wall', index: 3 });
  assert.deepEqual(problemTarget('plan.m_per_px'), { kind: 'plan', index: 0 });
  assert.equal(problemTarget('timezone'), null);
  const doc = { machines: [{ id: 'M3' }, { id: 'M7' }, { id: 'M3' }] };
  assert.deepEqual(duplicateTarget('machines', "duplicate id 'M3'", doc), { kind: 'machine', index: 2 });
});

test('sensors from what a Pi sent, wired like the hardware guide kit', () => {
  const dev = { sensors: [{ id: 'sw-program', kind: 'switch', channel: 'program_input' }, { id: 'light', kind: 'light', channel: '' },
    { id: 'sw-tool', kind: 'switch', channel: 'tool_change' }, { id: 'extra', kind: 'pressure', channel: '' }] };
  assert.deepEqual(sensorsFromDevice(dev), [KIT[0], { id: 'extra', kind: 'pressure' }, KIT[2], KIT[3]]);
  assert.deepEqual(sensorsFromDevice(null), KIT);
});

test('every editor string exists in both languages', () => {
  assert.deepEqual(Object.keys(EDITOR_STRINGS.ja).sort(), Object.keys(EDITOR_STRINGS.en).sort());
});
