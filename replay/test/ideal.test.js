import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  avoidBreaks, idealDay, idealMachineDay, idealWorkerLanes, moveTask, overlayIntervals, resizeTask, runsToStates, taskId,
} from '../src/ideal.js';
import { buildLanes } from '../src/timeline.js';

const H = 3600;
const T0 = 1700000000;  // 08:00 on the test's clock
const lunch = { start: T0 + 4 * H, end: T0 + 5 * H };  // 12:00-13:00
const window = { start: T0, end: T0 + 9 * H };

// M3: runs 08:00-11:30, idles through lunch, changeover 13:00-13:30, runs 13:30-15:30,
// changeover 16:00-16:20, runs 16:20-17:00.
const lane = {
  id: 'M3',
  states: runsToStates('M3', [
    { start: T0, end: T0 + 3.5 * H },
    { start: T0 + 5.5 * H, end: T0 + 7.5 * H },
    { start: T0 + 8 * H + 1200, end: T0 + 9 * H },
  ], T0, T0 + 9 * H),
  tasks: [
    { machine: 'M3', task: 'jig_change', worker: 'W1', start: T0 + 5 * H, end: T0 + 5.5 * H },
    { machine: 'M3', task: 'tool_change', worker: 'W1', start: T0 + 8 * H, end: T0 + 8 * H + 1200 },
  ],
};

test('no edits reproduce the recording exactly (zero gain)', () => {
  const d = idealMachineDay(lane, window, [lunch], {});
  assert.equal(d.gainedMin, 0);
  assert.deepEqual(d.tasks.map((t) => [t.start, t.end]), lane.tasks.map((t) => [t.start, t.end]));
  assert.deepEqual(d.states, lane.states);
});

test('starting the long run before lunch gains the moved minutes and runs through lunch', () => {
  // Do the jig change at 11:30-12:00 instead of 13:00-13:30: 90 min earlier.
  const edits = moveTask({}, taskId('M3', 0), T0 + 5 * H, -1.5 * H);
  const d = idealMachineDay(lane, window, [lunch], edits);
  assert.equal(d.tasks[0].start, T0 + 3.5 * H);
  assert.equal(d.gainedMin, 90);
  assert.equal(d.breakRunRealMin, 0);
  assert.equal(d.breakRunIdealMin, 60);
  // The later changeover ripples earlier by the same 90 min, keeping its idle gap.
  assert.equal(d.tasks[1].start, T0 + 6.5 * H);
});

test('a moved task never lands in a break, and never before the previous job ends', () => {
  // Ask for 11:50: it would overlap lunch, so it is pushed to 13:00 (no gain).
  const d = idealMachineDay(lane, window, [lunch], moveTask({}, 'M3#0', T0 + 5 * H, -(70 * 60)));
  assert.equal(d.tasks[0].start, lunch.end);
  assert.equal(d.gainedMin, 0);
  // Ask for 09:00: the morning run lasts until 11:30, so the task starts then.
  const e = idealMachineDay(lane, window, [], moveTask({}, 'M3#0', T0 + 5 * H, -4 * H));
  assert.equal(e.tasks[0].start, T0 + 3.5 * H);
  assert.equal(avoidBreaks(T0 + 3.9 * H, 600, [lunch]), lunch.end);
});

test('shortening a task pulls the rest of the day earlier; lengthening costs minutes', () => {
  const shorter = idealMachineDay(lane, window, [lunch], resizeTask({}, 'M3#1', 1200, -600));
  assert.equal(shorter.gainedMin, 10);
  const longer = idealMachineDay(lane, window, [lunch], resizeTask({}, 'M3#0', 1800, 300));
  assert.equal(longer.gainedMin, -5);
  assert.ok(resizeTask({}, 'M3#0', 30, -600)['M3#0'].durationS >= 10);
});

test('idealDay sums machines; a machine without tasks gains nothing', () => {
  const result = {
    window,
    machine_states: [...lane.states, { machine: 'M7', state: 'running', start: T0, end: T0 + 9 * H }],
    tasks: lane.tasks,
  };
  const lanes = buildLanes(result, ['M3', 'M7'], []);
  const d = idealDay(lanes, [lunch], moveTask({}, 'M3#0', T0 + 5 * H, -1.5 * H));
  assert.equal(d.totalGainedMin, 90);
  assert.equal(d.machines[1].gainedMin, 0);
});

test('overlays replace the base where they lie and never overlap each other', () => {
  const base = [{ zone: 'A', start: 0, end: 10 }, { zone: 'B', start: 10, end: 20 }];
  const out = overlayIntervals(base, [{ zone: 'C', start: 5, end: 12 }, { zone: 'D', start: 11, end: 14 }]);
  assert.deepEqual(out.map((z) => [z.zone, z.start, z.end]),
    [['A', 0, 5], ['C', 5, 12], ['D', 12, 14], ['B', 14, 20]]);
  assert.deepEqual(overlayIntervals(base, []), base);
});

test('on the ideal day a worker does the moved task at its new time, at that machine', () => {
  const workers = [{
    id: 'W1',
    zones: [{ worker: 'W1', zone: 'none', start: T0, end: T0 + 5 * H },
      { worker: 'W1', zone: 'M3', start: T0 + 5 * H, end: T0 + 9 * H }],
    tasks: lane.tasks,
  }];
  const lanes = { start: T0, end: T0 + 9 * H, machines: [lane], workers };
  const day = idealDay(lanes, [lunch], moveTask({}, 'M3#0', T0 + 5 * H, -1.5 * H));
  const [w] = idealWorkerLanes(workers, day);
  // 11:30-12:00: at M3 doing the jig change; before and after, where the recording had them.
  assert.deepEqual(w.zones.map((z) => [z.zone, (z.start - T0) / H, (z.end - T0) / H]), [
    ['none', 0, 3.5], ['M3', 3.5, 4], ['none', 4, 5], ['M3', 5, 6.5], ['M3', 6.5, 24600 / H], ['M3', 24600 / H, 9]]);
  assert.deepEqual(w.tasks.map((x) => [x.task, (x.start - T0) / H]), [['jig_change', 3.5], ['tool_change', 6.5]]);
  // No edits: the recorded lane again.
  const [same] = idealWorkerLanes(workers, idealDay(lanes, [lunch], {}));
  assert.deepEqual(same.tasks.map((x) => [x.start, x.end]), lane.tasks.map((x) => [x.start, x.end]));
});
