import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeState, encodeState } from '../src/url.js';

test('a shared moment round-trips through the URL', () => {
  const s = { site: 'toyama-pilot', day: '2026-11-23', t: 1700000123.6, speed: 30, lang: 'en', cam: 'machine:M7' };
  const back = decodeState(encodeState(s));
  assert.deepEqual(back, { ...s, t: 1700000124 });
});

test('defaults are left out and bad values are dropped, not thrown', () => {
  assert.equal(encodeState({ site: 'a', speed: 1, view: 'replay', cam: 'overview' }), '?site=a');
  assert.deepEqual(decodeState('?site=a&speed=3&t=abc&day=yesterday&view=admin&lang=de'), { site: 'a' });
  assert.deepEqual(decodeState('?site=../etc&worker=W1&view=worker'), { worker: 'W1', view: 'worker' });
});
