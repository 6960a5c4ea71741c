import assert from 'node:assert/strict';
import { test } from 'node:test';

import { median, workerStats } from '../src/worker-stats.js';

const task = (task, start, durS) => ({ task, machine: 'M3', start, end: start + durS });

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});

test('per-task median and best, and minutes saved against earlier days', () => {
  const days = [
    { day: '2026-11-21', tasks: [task('tool_change', 200, 600)] },
    { day: '2026-11-19', tasks: [task('tool_change', 100, 900), task('jig_change', 1000, 1200)] },
    { day: '2026-11-20', tasks: [task('tool_change', 100, 780)] },
  ];
  const s = workerStats(days);
  assert.deepEqual(s.days.map((d) => d.day), ['2026-11-19', '2026-11-20', '2026-11-21']);
  assert.equal(s.byTask.tool_change.medianS, 780);
  assert.equal(s.byTask.tool_change.bestS, 600);
  assert.equal(s.days[0].savedMin, null);  // nothing earlier to compare with
  assert.equal(s.days[1].savedMin, 2);  // 900 -> 780 s
  assert.equal(s.days[2].savedMin, (840 - 600) / 60);  // median(900, 780) = 840
  assert.equal(s.days[2].tasks[0].isBest, true);
  assert.equal(s.days[0].tasks[0].vsMedianS, 120);
});
