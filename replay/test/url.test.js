import assert from 'node:assert/strict';
import { test } from 'node:test';

import { decodeEdits, decodeState, encodeEdits, encodeState } from '../src/url.js';

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

test('an ideal day travels in the URL', () => {
  const edits = { 'M3#0': { start: 1675829000.4 }, 'M7#12': { durationS: 300 }, 'M10#1': { start: 5, durationS: 60 } };
  const back = decodeState(encodeState({ site: 'a', ideal: edits })).ideal;
  assert.deepEqual(back, { 'M3#0': { start: 1675829000 }, 'M7#12': { durationS: 300 }, 'M10#1': { start: 5, durationS: 60 } });
  assert.deepEqual(decodeState('?ideal=').ideal, {});  // ideal mode on, nothing edited yet
  assert.deepEqual(decodeEdits('M3#0:x:,bad,../x#1:5:,M3#1::-5,M3#2::60'), { 'M3#2': { durationS: 60 } });
  assert.equal(encodeEdits({ 'no id': { start: 1 } }), '');
  assert.equal(decodeState('?site=a').ideal, undefined);
});

test('the side-by-side replay is shared only with an ideal day', () => {
  assert.equal(decodeState(encodeState({ site: 'a', ideal: {}, split: true })).split, true);
  assert.equal(encodeState({ site: 'a', split: true }), '?site=a');
  assert.equal(decodeState('?split=yes').split, undefined);
});
