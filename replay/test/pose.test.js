import assert from 'node:assert/strict';
import { test } from 'node:test';

import { WALK_SPEED_M_S, standingSpots, workerPose } from '../src/pose.js';

const machines = [
  { id: 'M3', zone: [[0, 0], [2, 0], [2, 2], [0, 2]] },
  { id: 'M7', zone: [[6, 0], [8, 0], [8, 2], [6, 2]] },
];
const centres = { M3: [1, 3.5], M7: [7, 3.5] };
const spots = standingSpots(machines, ['W1'])['W1'];
const zones = [
  { zone: 'M3', start: 0, end: 100 },
  { zone: 'M7', start: 100, end: 200 },
];

test('a worker stands in the zone and faces the machine during a task', () => {
  const tasks = [{ machine: 'M3', task: 'tool_change', start: 10, end: 50 }];
  const p = workerPose(zones, tasks, spots, centres, 20);
  assert.deepEqual([p.x, p.y, p.walking, p.task], [1, 1, false, 'tool_change']);
  assert.ok(Math.abs(p.heading - Math.PI / 2) < 1e-9);  // machine is at +y
  const idle = workerPose(zones, tasks, spots, centres, 60);
  assert.ok(Math.abs(idle.heading + Math.PI / 2) < 1e-9);
});

test('the walk to the next zone ends on arrival, at walking speed', () => {
  const walkS = 6 / WALK_SPEED_M_S;  // 6 m between spots
  const mid = workerPose(zones, [], spots, centres, 100 - walkS / 2);
  assert.equal(mid.walking, true);
  assert.ok(Math.abs(mid.x - 4) < 1e-9);
  assert.ok(Math.abs(mid.heading) < 1e-9);  // walking towards +x
  const before = workerPose(zones, [], spots, centres, 100 - walkS - 1);
  assert.equal(before.walking, false);
  const arrived = workerPose(zones, [], spots, centres, 100);
  assert.deepEqual([arrived.x, arrived.zone], [7, 'M7']);
});

test('outside the recorded zones the worker stays at the nearest end', () => {
  assert.equal(workerPose(zones, [], spots, centres, 500).zone, 'M7');
  assert.equal(workerPose([], [], spots, centres, 5).zone, 'none');
});
