import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { STRINGS, commissioningText, itemLabel, itemReason } from '../src/commissioning-strings.js';

// Every reason code and check the server emits (twin_server/live/commissioning.py: Item(key, check, status, code, ...)).
const PY = readFileSync(new URL('../../twin_server/live/commissioning.py', import.meta.url), 'utf8');
const EMITTED = [...PY.matchAll(/Item\([^,]+,\s*"(\w+)",\s*"(\w+)",\s*"(\w+)"/g)];
const CODES = new Set(EMITTED.map((m) => m[3]));
const CHECKS = new Set(EMITTED.map((m) => m[1]));

test('both languages have the same keys, checks and reasons', () => {
  assert.deepEqual(Object.keys(STRINGS.ja).sort(), Object.keys(STRINGS.en).sort());
  assert.deepEqual(Object.keys(STRINGS.ja.check).sort(), Object.keys(STRINGS.en.check).sort());
  assert.deepEqual(Object.keys(STRINGS.ja.reason).sort(), Object.keys(STRINGS.en.reason).sort());
});

test('every code and check the server emits is translated', () => {
  assert.ok(CODES.size >= 20, `found only ${CODES.size} codes: the pattern no longer matches the Python`);
  for (const code of CODES) assert.ok(code in STRINGS.ja.reason && code in STRINGS.en.reason, code);
  for (const check of CHECKS) assert.ok(check in STRINGS.ja.check && check in STRINGS.en.check, check);
});

test('reasons format their arguments, and never throw on missing ones', () => {
  const item = { key: 'switch:sw-tool', check: 'switch', status: 'pass', code: 'pressed', reason: 'pressed 2',
    args: { sensor: 'sw-tool', channel: 'tool_change', presses: 2, age_s: 3.25 } };
  assert.equal(itemReason(item, 'en'), 'pressed 2 time(s), last 3.3 s ago');
  assert.equal(itemReason(item, 'ja'), '2 回押されました (最後は 3.3 秒前)');
  assert.equal(itemLabel(item, 'ja'), 'ボタン 工具交換 (sw-tool)');
  assert.equal(itemLabel(item, 'en'), 'Button tool change (sw-tool)');
  for (const lang of ['ja', 'en']) {
    for (const code of Object.keys(STRINGS[lang].reason)) {
      assert.equal(typeof itemReason({ code, args: {}, reason: 'x' }, lang), 'string', code);
    }
  }
  const heard = { check: 'beacon', code: 'heard', reason: '',
    args: { worker: 'W1', beacon: 'b-01', receivers: [{ receiver: 'R3', rssi_dbm: -63.4, rssi_max_dbm: -55 }] } };
  assert.equal(itemReason(heard, 'en'), 'heard: R3 -63 dBm (max -55 dBm)');
});

test('an unknown code shows the server English reason; unknown keys show themselves', () => {
  assert.equal(itemReason({ code: 'new_code', args: {}, reason: 'from the server' }, 'ja'), 'from the server');
  assert.equal(itemLabel({ key: 'x:y', check: 'new_check', args: {} }, 'ja'), 'x:y');
  assert.equal(commissioningText('xx')('start'), 'Start commissioning');
  assert.equal(commissioningText('ja')('nope'), 'nope');
});
