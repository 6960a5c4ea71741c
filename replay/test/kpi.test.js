import assert from 'node:assert/strict';
import { test } from 'node:test';

import { machineFigures, sparkPoints } from '../src/kpi.js';
import { axisTicks, minConfidence } from '../src/timeline-view.js';

test('sparkline points span the box, lowest value at the bottom, gaps for missing days', () => {
  const pts = sparkPoints([0.5, null, 1.0], 44, 14, 1.5);
  assert.deepEqual(pts, [[1.5, 12.5], [42.5, 1.5]]);
  assert.deepEqual(sparkPoints([null, null]), []);
  assert.deepEqual(sparkPoints([3], 44, 14), [[22, 12.5]]);
});

test('machine figures: values, jumps to the moment behind each, trends per figure', () => {
  const k = {
    utilisation: 0.754, changeover_count: 2, changeover_min: 19, attended_idle_min: 7.67,
    longest_attended_idle: { start: 300, end: 500, min: 3.3 }, longest_stop: { start: 100, end: 1900, min: 30 },
    first_changeover: 100,
  };
  const trend = [{ machines: { M3: { utilisation: 0.6 } } }, { machines: { M3: { utilisation: 0.754 } } }];
  const t = (key) => ({ kpiUtil: 'U', kpiChangeovers: 'C', kpiAttendedIdle: 'I', kpiLongestStop: 'S', times: 'x' }[key] ?? key);
  const figs = machineFigures(k, trend, 'M3', { t, min: (m) => `${m.toFixed(1)}m` });
  assert.deepEqual(figs.map((f) => [f.key, f.value, f.jump]), [
    ['util', '75%', 100], ['changeovers', '2x · 19.0m', 100], ['idle', '7.7m', 300], ['stop', '30.0m', 100]]);
  assert.deepEqual(figs[0].spark, [0.6, 0.754]);
  const none = machineFigures({ ...k, utilisation: null, longest_stop: null }, [], 'M3', { t, min: String });
  assert.equal(none[0].value, '—');
  assert.equal(none[3].jump, null);
});

test('hour axis labels never closer than the minimum spacing, aligned to local midnight', () => {
  const start = 1675812600;  // 2023-02-08 08:30 Asia/Tokyo
  const end = start + 9 * 3600;
  const phone = axisTicks(start, end, 320, 'Asia/Tokyo', 56);
  assert.ok(phone.step * (320 / (end - start)) >= 56);
  assert.equal(phone.step, 7200);
  const tv = axisTicks(start, end, 1700, 'Asia/Tokyo', 56);
  assert.equal(tv.step, 1800);
  // Ticks fall on whole local half hours: 09:00 JST = 00:00 UTC.
  assert.equal(tv.ticks[1] % 1800, 0);
  assert.equal(new Date(tv.ticks[1] * 1000).toISOString().slice(11, 16), '00:00');
});

test('lowest zone confidence over an interval; null when the data has none', () => {
  const zones = [{ start: 0, end: 10, confidence: 0.9 }, { start: 10, end: 20, confidence: 0.4 }, { start: 20, end: 30 }];
  assert.equal(minConfidence(zones, 2, 8), 0.9);
  assert.equal(minConfidence(zones, 5, 15), 0.4);
  assert.equal(minConfidence(zones, 21, 25), null);
});

test('name tags never overlap each other or the camera buttons, and stay in the view', async () => {
  const { placeLabels } = await import('../src/labels.js');
  const bounds = { x0: 0, y0: 0, x1: 390, y1: 300 };
  const camera = { x0: 0, y0: 0, x1: 390, y1: 60 };
  // Three machine tags on one row, closer than their width, and two workers on top of them.
  const items = [
    { x: 80, y: 120, w: 100, h: 40 }, { x: 150, y: 120, w: 100, h: 40 }, { x: 220, y: 120, w: 100, h: 40 },
    { x: 150, y: 125, w: 70, h: 22 }, { x: 385, y: 290, w: 70, h: 22 },
  ];
  const out = placeLabels(items, bounds, [camera]);
  const boxes = out.map((o) => o.box);
  for (const [i, a] of boxes.entries()) {
    assert.ok(a.x0 >= 0 && a.x1 <= 390 && a.y0 >= 0 && a.y1 <= 300, `tag ${i} outside`);
    assert.ok(!(a.y0 < camera.y1), `tag ${i} under the camera buttons`);
    for (const b of boxes.slice(i + 1)) assert.ok(!(a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1));
  }
  assert.ok(out.every((o) => o.clear));
  assert.deepEqual([out[0].dx, out[0].dy], [0, 0]);  // the first keeps its place
});

test('access log: rows about a worker, CSV of what is shown', async () => {
  const { aboutWorker, toCsv } = await import('../src/access.js');
  const rows = [
    { id: 1, t: 100, user: 'sato', role: 'supervisor', route: '/api/worker/{site}/{worker}', target_worker: 'W1', status: 200 },
    { id: 2, t: 200, user: 'sato', role: 'supervisor', route: '/api/replay/{site}', target_worker: null, status: 200 },
    { id: 3, t: 300, user: 'sato', role: 'supervisor', route: '/api/worker/{site}/{worker}', target_worker: 'W2', status: 200 },
    { id: 4, t: 400, user: 'sato', role: 'supervisor', route: '/api/audit', target_worker: null, status: 200 },
  ];
  assert.deepEqual(rows.filter((r) => aboutWorker(r, 'W1')).map((r) => r.id), [1, 2]);
  assert.equal(rows.filter((r) => aboutWorker(r, '')).length, 4);
  const csv = toCsv([{ ...rows[0], path: '/api/worker/x/W1', action: 'read', method: 'GET', client: '127.0.0.1' }], (s) => `T${s}`);
  assert.equal(csv.split('\n')[0], 't_local,t,user,role,action,method,route,path,target_worker,status,client');
  assert.equal(csv.split('\n')[1], 'T100,100,sato,supervisor,read,GET,/api/worker/{site}/{worker},/api/worker/x/W1,W1,200,127.0.0.1');
  assert.equal(toCsv([{ t: 1, user: 'a,"b' }], () => 'x').split('\n')[1], 'x,1,"a,""b",,,,,,,,');
});
