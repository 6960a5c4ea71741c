import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  buildLanes, changeoverStarts, formatClock, formatDay, indexAt, localTimeOnDay, machineStatusAt,
  nextChangeover, prevChangeover,
} from '../src/timeline.js';

const T0 = 1700000000;
const result = {
  window: { start: T0, end: T0 + 3600 },
  machine_states: [
    { machine: 'M3', state: 'stopped', start: T0 + 600, end: T0 + 900 },
    { machine: 'M3', state: 'running', start: T0, end: T0 + 600 },
    { machine: 'M3', state: 'running', start: T0 + 900, end: T0 + 3600 },
  ],
  worker_zones: [{ worker: 'W1', zone: 'M3', start: T0, end: T0 + 3600 }],
  tasks: [
    { machine: 'M3', task: 'tool_change', worker: 'W1', start: T0 + 600, end: T0 + 700 },
    { machine: 'M3', task: 'program_input', worker: null, start: T0 + 720, end: T0 + 900 },
    { machine: 'M7', task: 'jig_change', worker: 'W1', start: T0 + 2000, end: T0 + 2300 },
  ],
  beacon_lag: [],
};

test('indexAt finds the half-open interval containing t', () => {
  const iv = [{ start: 0, end: 10 }, { start: 10, end: 20 }, { start: 30, end: 40 }];
  assert.equal(indexAt(iv, 0), 0);
  assert.equal(indexAt(iv, 9.999), 0);
  assert.equal(indexAt(iv, 10), 1);
  assert.equal(indexAt(iv, 25), -1);
  assert.equal(indexAt(iv, 40), -1);
  assert.equal(indexAt([], 5), -1);
});

test('buildLanes sorts each lane and keeps unknown ids out', () => {
  const lanes = buildLanes(result, ['M3', 'M7', 'M10'], ['W1']);
  assert.deepEqual(lanes.machines[0].states.map((s) => s.start), [T0, T0 + 600, T0 + 900]);
  assert.equal(lanes.machines[2].tasks.length, 0);
  assert.equal(lanes.workers[0].tasks.length, 2);  // the null-worker task is not W1's
});

test('machineStatusAt reports state and task under way', () => {
  const lanes = buildLanes(result, ['M3', 'M7'], ['W1']);
  assert.deepEqual(
    [machineStatusAt(lanes.machines[0], T0 + 650).state, machineStatusAt(lanes.machines[0], T0 + 650).task],
    ['stopped', 'tool_change'],
  );
  assert.equal(machineStatusAt(lanes.machines[0], T0 + 710).task, null);
  assert.equal(machineStatusAt(lanes.machines[0], T0 + 1000).state, 'running');
  assert.equal(machineStatusAt(lanes.machines[1], T0 + 10).state, 'unknown');
});

test('changeovers merge close tasks and jumps move strictly forward/back', () => {
  const starts = changeoverStarts(result.tasks);
  assert.deepEqual(starts, [T0 + 600, T0 + 2000]);
  assert.equal(nextChangeover(starts, T0), T0 + 600);
  assert.equal(nextChangeover(starts, T0 + 600), T0 + 2000);
  assert.equal(nextChangeover(starts, T0 + 2000), null);
  assert.equal(prevChangeover(starts, T0 + 2000), T0 + 600);
  assert.equal(prevChangeover(starts, T0 + 600), null);
  assert.equal(prevChangeover(starts, T0 + 3000), T0 + 2000);
  const near = changeoverStarts([...result.tasks, { machine: 'M10', task: 'jig_change', start: T0 + 600.4, end: T0 + 700 }]);
  assert.deepEqual(near, [T0 + 600, T0 + 2000]);
});

test('clock and day follow the site time zone', () => {
  // 1700000000 = 2023-11-14 22:13:20 UTC = 2023-11-15 07:13:20 in Tokyo
  assert.equal(formatClock(T0, 'UTC'), '22:13:20');
  assert.equal(formatClock(T0, 'Asia/Tokyo'), '07:13:20');
  assert.equal(formatDay(T0, 'Asia/Tokyo'), '2023-11-15');
  const lunch = localTimeOnDay(T0, '12:00', 'Asia/Tokyo');
  assert.equal(formatClock(lunch, 'Asia/Tokyo'), '12:00:00');
  assert.equal(formatDay(lunch, 'Asia/Tokyo'), '2023-11-15');
});

test('skip idle: jumps to a lead before the next event, never past it, only when worth it', async () => {
  const { eventTimes, skipIdleTarget } = await import('../src/timeline.js');
  const lanes = buildLanes(result, ['M3'], ['W1']);
  const ev = eventTimes(lanes);
  // W1's task at M7 counts too (the worker moves), though M7 is not a lane here.
  assert.deepEqual(ev, [T0 + 600, T0 + 700, T0 + 720, T0 + 900, T0 + 2000, T0 + 2300]);
  // At 10x from T0: the next event is 600 s ahead; lead max(12 s, 1 s x 10) = 12 s.
  assert.equal(skipIdleTarget(ev, T0, 10, T0 + 3600), T0 + 588);
  // Inside the lead already: no jump (the approach is shown).
  assert.equal(skipIdleTarget(ev, T0 + 590, 10, T0 + 3600), null);
  // 700 -> 720: a 20 s gap is not worth skipping at 10x (less than 1 s of wall time + lead).
  assert.equal(skipIdleTarget(ev, T0 + 700, 10, T0 + 3600), null);
  assert.equal(skipIdleTarget(ev, T0 + 900, 60, T0 + 3600), T0 + 1940);
  // After the last event: towards the end of the window.
  assert.equal(skipIdleTarget(ev, T0 + 2300, 60, T0 + 3600), T0 + 3540);
  // At 600x the lead is 600 s of replay (one wall second): from T0 nothing to skip.
  assert.equal(skipIdleTarget(ev, T0, 600, T0 + 3600), null);
});
