import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ReplayClock, SPEEDS } from '../src/clock.js';

test('paused clock holds; playing clock advances speed x wall time', () => {
  const c = new ReplayClock({ start: 100, end: 10000 });
  assert.equal(c.time(5000), 100);
  c.play(1000);
  assert.equal(c.time(3000), 102);
  c.setSpeed(10, 3000);
  assert.equal(c.time(3000), 102);  // no jump on a speed change
  assert.equal(c.time(4000), 112);
  c.pause(4500);
  assert.equal(c.time(99999), 117);
});

test('every offered speed scales exactly', () => {
  for (const s of SPEEDS) {
    const c = new ReplayClock({ start: 0, end: 1e6, speed: s });
    c.play(0);
    assert.equal(c.time(2000), 2 * s);
  }
});

test('seek clamps to the window and the clock stops at the end', () => {
  const c = new ReplayClock({ start: 0, end: 60, speed: 60 });
  c.seek(-5, 0);
  assert.equal(c.time(0), 0);
  c.seek(50, 0);
  c.play(0);
  assert.equal(c.time(500), 60);
  assert.equal(c.tick(500), true);
  assert.equal(c.playing, false);
  c.play(1000);  // playing again from the end restarts at the top
  assert.equal(c.time(1000), 0);
});

test('bad speed and inverted window are refused', () => {
  const c = new ReplayClock({ start: 0, end: 10 });
  assert.throws(() => c.setSpeed(3, 0), RangeError);
  assert.throws(() => new ReplayClock({ start: 10, end: 0 }), RangeError);
  assert.equal(new ReplayClock({ start: 0, end: 1, speed: 7 }).speed, 1);
});

test('live window grows without moving the replay time', () => {
  const c = new ReplayClock({ start: 0, end: 100 });
  c.seek(90, 0);
  c.play(0);
  c.extendTo(300, 1000);
  assert.equal(c.time(1000), 91);
  assert.equal(c.time(3000), 93);
  c.extendTo(200, 3000);  // never shrinks
  assert.equal(c.end, 300);
});
