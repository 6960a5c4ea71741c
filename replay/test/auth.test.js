import assert from 'node:assert/strict';
import { test } from 'node:test';

import { allowedView, cookieValue, loginError, needsCsrf, withCsrf } from '../src/auth.js';
import { STRINGS } from '../src/i18n.js';

test('the CSRF token is read from its cookie and sent only on state-changing requests', () => {
  const cookies = 'a=1; twin_csrf=abc%2Fdef; other=x';
  assert.equal(cookieValue(cookies, 'twin_csrf'), 'abc/def');
  assert.equal(cookieValue('', 'twin_csrf'), '');
  assert.equal(cookieValue('xtwin_csrf=1', 'twin_csrf'), '');
  for (const m of ['POST', 'put', 'PATCH', 'DELETE']) assert.ok(needsCsrf(m));
  for (const m of ['GET', 'HEAD', undefined]) assert.ok(!needsCsrf(m));
  const post = withCsrf({ method: 'POST', headers: { 'Content-Type': 'application/json' } }, cookies);
  assert.deepEqual(post.headers, { 'Content-Type': 'application/json', 'X-CSRF-Token': 'abc/def' });
  assert.deepEqual(withCsrf({ method: 'DELETE' }, cookies).headers, { 'X-CSRF-Token': 'abc/def' });
  assert.deepEqual(withCsrf({}, cookies), {});  // a GET carries nothing extra
  assert.deepEqual(withCsrf({ method: 'POST' }, 'a=1'), { method: 'POST' });  // auth off: no cookie
});

test('a worker may only look at their own page', () => {
  const w1 = { role: 'worker', worker: 'W1' };
  assert.deepEqual(allowedView({ view: 'worker', worker: 'W1' }, w1), { view: 'worker', worker: 'W1', forced: false });
  assert.deepEqual(allowedView({ view: 'worker', worker: 'W2' }, w1), { view: 'worker', worker: 'W1', forced: true });
  assert.deepEqual(allowedView({}, w1), { view: 'worker', worker: 'W1', forced: true });
  // Their own replay, never someone else's.
  assert.deepEqual(allowedView({ view: 'mine', worker: 'W1' }, w1), { view: 'mine', worker: 'W1', forced: false });
  assert.deepEqual(allowedView({ view: 'mine', worker: 'W2' }, w1), { view: 'mine', worker: 'W1', forced: true });
  const sup = { role: 'supervisor', worker: null };
  assert.deepEqual(allowedView({ view: 'worker', worker: 'W2' }, sup), { view: 'worker', worker: 'W2', forced: false });
  assert.deepEqual(allowedView({}, null), { view: undefined, worker: undefined, forced: false });
});

test('sign-in errors have a message in both languages', () => {
  assert.equal(loginError(401).key, 'signInWrong');
  assert.deepEqual(loginError(429, '61.2'), { key: 'signInBlocked', retryS: 62 });
  assert.deepEqual(loginError(429, null), { key: 'signInBlocked', retryS: null });
  assert.equal(loginError(500).key, 'signInFailed');
  for (const key of ['signIn', 'signOut', 'userName', 'password', 'signInWrong', 'signInBlocked', 'signInMissing',
    'signInFailed', 'signingIn', 'seconds', 'signedInAs', 'forbidden', 'onlyOwnPage', 'myReplay', 'myTasks']) {
    assert.ok(STRINGS.ja[key] && STRINGS.en[key], `missing string ${key}`);
    assert.notEqual(STRINGS.ja[key], STRINGS.en[key]);
  }
});
