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

test('units, dates and speeds in each language; placeholders filled', async () => {
  const { displayName, formatDate, formatMinutesIn, speedLabel } = await import('../src/i18n.js');
  assert.equal(formatMinutesIn(12.46, 'ja'), '12.5分');
  assert.equal(formatMinutesIn(65, 'ja'), '1時間05分');
  assert.equal(formatMinutesIn(-3, 'en'), '-3.0 min');
  assert.equal(formatMinutesIn(119.8, 'en'), '2 h 00 min');
  assert.equal(formatDate('2023-02-08', 'ja'), '2023年2月8日(水)');
  assert.equal(formatDate('2023-02-08', 'en'), 'Wed 8 Feb 2023');
  assert.equal(speedLabel(600, 'ja'), '600倍');
  assert.equal(speedLabel(600, 'en'), '600x');
  assert.equal(translator('en')('fillingIn', { t: '10:42' }), 'This shift is still being recorded: data up to 10:42');
  assert.equal(displayName({ id: 'W1', name: 'Operator A', name_ja: '作業者A' }, 'ja'), '作業者A');
  assert.equal(displayName({ id: 'W1', name: 'Operator A' }, 'ja'), 'Operator A');
});
