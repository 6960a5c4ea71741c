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

// Two machines and one operator, for the reasons and the worker constraint. 08:00 = T0.
// M3: jig change 10:00-10:20 (W1), runs 10:20-11:40, tool change 13:00-13:20 (W1), runs to 16:00.
// M7: material setting 10:40-11:00 (W1), runs 11:00-12:00.
const m3 = {
  id: 'M3',
  states: runsToStates('M3', [{ start: T0 + 2 * H + 1200, end: T0 + 3 * H + 2400 },
    { start: T0 + 5 * H + 1200, end: T0 + 8 * H }], T0, T0 + 9 * H),
  tasks: [
    { machine: 'M3', task: 'jig_change', worker: 'W1', start: T0 + 2 * H, end: T0 + 2 * H + 1200 },
    { machine: 'M3', task: 'tool_change', worker: 'W1', start: T0 + 5 * H, end: T0 + 5 * H + 1200 },
  ],
};
const m7 = {
  id: 'M7',
  states: runsToStates('M7', [{ start: T0 + 3 * H, end: T0 + 4 * H }], T0, T0 + 9 * H),
  tasks: [{ machine: 'M7', task: 'material_setting', worker: 'W1', start: T0 + 2 * H + 2400, end: T0 + 3 * H }],
};
const twoLanes = { start: T0, end: T0 + 9 * H, machines: [m3, m7], workers: [] };

test('a shortened task before lunch gains nothing, and says the next task waits for the break', () => {
  const d = idealDay(twoLanes, [{ ...lunch, name: 'lunch', name_ja: '昼休み' }], resizeTask({}, 'M3#0', 1200, -600));
  const m = d.machines[0];
  // The run after the jig change ends 10 min earlier (11:30), the tool change keeps its gap and
  // would start at 12:50, inside lunch: it waits until 13:00, and the day ends as recorded.
  assert.equal(m.gainedMin, 0);
  const kinds = m.reasons.map((r) => r.kind);
  assert.deepEqual(kinds, ['shorter', 'break']);
  assert.equal(m.reasons[0].deltaS, -600);
  assert.equal(m.reasons[1].waitS, 600);
  assert.equal(m.reasons[1].to, T0 + 5 * H);
  assert.equal(m.reasons[1].breakNameJa, '昼休み');
});

test('starting a job before lunch shows the running it adds during the break', () => {
  const d = idealDay(twoLanes, [lunch], moveTask({}, 'M3#1', T0 + 5 * H, -(2 * H)));
  const m = d.machines[0];
  // Asked for 11:00, it starts when the previous job's run ends (11:40) and ends at 12:00 sharp:
  // the job runs through lunch (+60 min of running during breaks) and the day ends 80 min earlier.
  assert.equal(m.tasks[1].start, T0 + 3 * H + 2400);
  const run = m.reasons.find((r) => r.kind === 'breakRun');
  assert.equal(Math.round(run.deltaMin), 60);
  assert.equal(Math.round(m.gainedMin), 80);
  assert.equal(Math.round(run.deltaMin), Math.round(m.breakRunIdealMin - m.breakRunRealMin));
});

test('a worker is never at two machines at once: a task waits for its worker', () => {
  // Move M7's material setting (W1) to 10:05, in the middle of W1's jig change at M3.
  const d = idealDay(twoLanes, [lunch], moveTask({}, 'M7#0', T0 + 2 * H + 2400, -(35 * 60)));
  const task = d.machines[1].tasks[0];
  assert.equal(task.start, T0 + 2 * H + 1200);  // waits until the jig change ends at 10:20
  const why = d.machines[1].reasons.find((r) => r.kind === 'worker');
  assert.equal(why.busyMachine, 'M3');
  assert.equal(why.waitS, 900);
  assert.equal(why.worker, 'W1');
});

test('property: whatever the edits, no worker has two ideal tasks at once, no task moves into a break', () => {
  // A long day of three machines and two workers, edited at random (a fixed seed).
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const breaks = [lunch, { start: T0 + 2 * H, end: T0 + 2 * H + 600 }];
  const lanes = { start: T0, end: T0 + 9 * H, workers: [], machines: [] };
  for (const [k, id] of ['M3', 'M7', 'M10'].entries()) {
    const tasks = [];
    const runs = [];
    for (let j = 0; j < 6; j += 1) {
      const s = T0 + k * 600 + j * 5400;
      tasks.push({ machine: id, task: 'jig_change', worker: (j + k) % 2 ? 'W1' : 'W2', start: s, end: s + 900 });
      runs.push({ start: s + 900, end: s + 4800 });
    }
    lanes.machines.push({ id, tasks, states: runsToStates(id, runs, T0, T0 + 9 * H) });
  }
  const recorded = lanes.machines.flatMap((m) => m.tasks);
  for (let trial = 0; trial < 300; trial += 1) {
    let edits = {};
    for (let e = 0; e < 4; e += 1) {
      const m = lanes.machines[Math.floor(rnd() * 3)];
      const i = Math.floor(rnd() * m.tasks.length);
      edits = rnd() < 0.5
        ? moveTask(edits, taskId(m.id, i), m.tasks[i].start, Math.round((rnd() - 0.5) * 4 * H))
        : resizeTask(edits, taskId(m.id, i), 900, Math.round((rnd() - 0.6) * 1200));
    }
    const d = idealDay(lanes, breaks, edits);
    const all = d.machines.flatMap((m) => m.tasks);
    for (const a of all) {
      for (const b of all) {
        if (a === b || a.worker !== b.worker) continue;
        const ra = recorded.find((r) => r.machine === a.machine && r.start === a.start - a.shiftS);
        const rb = recorded.find((r) => r.machine === b.machine && r.start === b.start - b.shiftS);
        const recOverlap = ra.start < rb.end && rb.start < ra.end;
        assert.ok(recOverlap || !(a.start < b.end && b.start < a.end),
          `trial ${trial}: ${a.worker} at ${a.machine} and ${b.machine} at once`);
      }
      if (Math.abs(a.shiftS) > 1e-6) {
        const rec = recorded.find((r) => r.machine === a.machine && r.start === a.start - a.shiftS);
        const newBreak = breaks.some((br) => a.start < br.end && a.end > br.start && !(rec.start < br.end && rec.end > br.start));
        assert.ok(!newBreak, `trial ${trial}: ${a.id} moved into a break`);
      }
    }
  }
});

test('property: shortening tasks never costs any machine minutes (random days, breaks, shared workers)', () => {
  let seed = 11;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const breaks = [lunch, { start: T0 + 2 * H, end: T0 + 2 * H + 600 }];
  for (let trial = 0; trial < 300; trial += 1) {
    const lanes = { start: T0, end: T0 + 9 * H, workers: [], machines: [] };
    for (const id of ['M3', 'M7', 'M10']) {
      const tasks = [];
      const runs = [];
      let s = T0 + rnd() * 1800;
      while (s < T0 + 8 * H) {  // tasks anywhere, breaks included, workers at random
        const d = 300 + rnd() * 1200;
        tasks.push({ machine: id, task: 'jig_change', worker: rnd() < 0.5 ? 'W1' : 'W2', start: s, end: s + d });
        const r = 1200 + rnd() * 5000;
        runs.push({ start: s + d, end: s + d + r });
        s += d + r + rnd() * 900;
      }
      lanes.machines.push({ id, tasks, states: runsToStates(id, runs, T0, T0 + 9 * H) });
    }
    let edits = {};
    for (let e = 0; e < 3; e += 1) {
      const m = lanes.machines[Math.floor(rnd() * 3)];
      const i = Math.floor(rnd() * m.tasks.length);
      edits = resizeTask(edits, taskId(m.id, i), m.tasks[i].end - m.tasks[i].start, -Math.round(rnd() * 300));
    }
    const d = idealDay(lanes, breaks, edits);
    for (const m of d.machines) assert.ok(m.gainedMin > -1e-6, `trial ${trial}: ${m.id} loses ${m.gainedMin} min`);
  }
});

test('work moved earlier waits for its worker rather than delay another machine', () => {
  const at = (h, m) => T0 + (h - 8) * H + m * 60;
  // M3: jig change 10:00-10:20 (W1), runs to 11:00, tool change 11:10-11:30 (W1), runs to 13:00.
  // M7: material setting 11:00-11:10 (W1), runs to 12:00.
  const a = {
    id: 'M3',
    states: runsToStates('M3', [{ start: at(10, 20), end: at(11, 0) }, { start: at(11, 30), end: at(13, 0) }], T0, T0 + 9 * H),
    tasks: [{ machine: 'M3', task: 'jig_change', worker: 'W1', start: at(10, 0), end: at(10, 20) },
      { machine: 'M3', task: 'tool_change', worker: 'W1', start: at(11, 10), end: at(11, 30) }],
  };
  const b = {
    id: 'M7',
    states: runsToStates('M7', [{ start: at(11, 10), end: at(12, 0) }], T0, T0 + 9 * H),
    tasks: [{ machine: 'M7', task: 'material_setting', worker: 'W1', start: at(11, 0), end: at(11, 10) }],
  };
  const d = idealDay({ start: T0, end: T0 + 9 * H, machines: [a, b], workers: [] }, [lunch], resizeTask({}, 'M3#0', 1200, -600));
  // The tool change would start at 11:00, but W1 is at M7 until 11:10: it waits; M7 is untouched.
  assert.equal(d.machines[1].gainedMin, 0);
  assert.equal(d.machines[1].tasks[0].start, at(11, 0));
  assert.equal(d.machines[0].tasks[1].start, at(11, 10));
  const why = d.machines[0].reasons.find((r) => r.kind === 'worker');
  assert.deepEqual([why.busyMachine, why.waitS], ['M7', 600]);
  assert.deepEqual(d.machines[0].reasons.map((r) => r.kind), ['shorter', 'worker']);
});
