import assert from 'node:assert/strict';
import { test } from 'node:test';

import { STRINGS, machineName, translator } from '../src/i18n.js';

test('both languages define the same keys, and every task name', () => {
  assert.deepEqual(Object.keys(STRINGS.ja).sort(), Object.keys(STRINGS.en).sort());
  const ja = translator('ja');
  assert.equal(ja('tool_change'), '工具交換');
  assert.equal(translator('en')('jig_change'), 'Jig change');
  assert.equal(translator('xx')('play'), 'Play');
  assert.equal(ja('no_such_key'), 'no_such_key');
});

test('machine names follow the language', () => {
  const m = { id: 'M3', name: 'NC lathe No. 3', name_ja: 'NC旋盤 3号機' };
  assert.equal(machineName(m, 'ja'), 'NC旋盤 3号機');
  assert.equal(machineName(m, 'en'), 'NC lathe No. 3');
  assert.equal(machineName({ id: 'M9' }, 'ja'), 'M9');
});
