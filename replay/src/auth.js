// Talking to a twin server that may require sign-in (twin_server.auth, docs/auth.md):
// every API call goes through `api()`, which sends the CSRF token on state-changing requests
// and turns a 401 into an `AuthRequired` error the page answers with its sign-in form.
// The pure helpers at the top run under `node --test`; the form needs a DOM.

export const CSRF_COOKIE = 'twin_csrf';
export const CSRF_HEADER = 'X-CSRF-Token';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The server asked for a sign-in (401), or the session has ended. */
export class AuthRequired extends Error {
  constructor(message = 'sign in first') {
    super(message);
    this.name = 'AuthRequired';
  }
}

/** An API answer that is not 2xx (other than 401): status and the server's `detail`. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status} ${detail}`);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
  }
}

/** Value of a cookie in a `document.cookie` string, or '' (values are URL-decoded). */
export function cookieValue(cookies, name) {
  for (const part of (cookies ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      try { return decodeURIComponent(part.slice(eq + 1).trim()); } catch { return part.slice(eq + 1).trim(); }
    }
  }
  return '';
}

/** Whether a request method changes state (and so must carry the CSRF token). */
export function needsCsrf(method) {
  return UNSAFE.has(String(method ?? 'GET').toUpperCase());
}

/** Fetch options with the CSRF header added for a state-changing method (when there is a token). */
export function withCsrf(opts = {}, cookies = '') {
  if (!needsCsrf(opts.method)) return opts;
  const token = cookieValue(cookies, CSRF_COOKIE);
  if (!token) return opts;
  return { ...opts, headers: { ...(opts.headers ?? {}), [CSRF_HEADER]: token } };
}

/**
 * The message key (see i18n.js) for a failed sign-in answer.
 * @returns {{key:string, retryS:number|null}}
 */
export function loginError(status, retryAfter) {
  if (status === 401) return { key: 'signInWrong', retryS: null };
  if (status === 429) {
    const s = Number(retryAfter);
    return { key: 'signInBlocked', retryS: Number.isFinite(s) && s > 0 ? Math.ceil(s) : null };
  }
  if (status === 422) return { key: 'signInMissing', retryS: null };
  return { key: 'signInFailed', retryS: null };
}

/**
 * Where a signed-in user may look: a worker only at their own page (timeline, or their own
 * replay `mine`), whatever the address asks.
 * @param {{view?:string, worker?:string}} wanted view state from the URL
 * @param {{role:string, worker:string|null}|null} user the signed-in user (null: auth is off)
 * @returns {{view?:string, worker?:string, forced:boolean}}
 */
export function allowedView(wanted, user) {
  if (!user || user.role !== 'worker') return { view: wanted.view, worker: wanted.worker, forced: false };
  const view = wanted.view === 'mine' ? 'mine' : 'worker';
  const forced = wanted.view !== view || wanted.worker !== user.worker;
  return { view, worker: user.worker, forced };
}

/** `fetch` a JSON API: CSRF on unsafe methods; 401 -> AuthRequired; other errors -> ApiError. */
export async function api(url, opts = {}) {
  const r = await fetch(url, withCsrf(opts, globalThis.document?.cookie ?? ''));
  if (r.status === 401) throw new AuthRequired();
  if (!r.ok) {
    let detail = '';
    try { detail = (await r.json()).detail; } catch { /* not JSON */ }
    throw new ApiError(r.status, typeof detail === 'string' ? detail : JSON.stringify(detail));
  }
  return r.status === 204 ? null : r.json();
}

/**
 * Who is signed in: the `/api/auth/me` answer, `null` when the server has no sign-in (auth off:
 * the route does not exist), or throws AuthRequired when sign-in is needed.
 */
export async function whoAmI() {
  const r = await fetch('/api/auth/me');
  if (r.status === 401) throw new AuthRequired();
  if (r.status === 404) return null;
  if (!r.ok) throw new ApiError(r.status, r.statusText);
  return r.json();
}

/** End the session (the CSRF header is required for it too). */
export async function signOut() {
  await api('/api/auth/logout', { method: 'POST' });
}

/**
 * Show the sign-in form (a `<dialog>`-like overlay in `root`) and resolve with the login answer
 * once the server accepts a name and password. Errors are shown in the form, in the page's
 * language (`t`).
 */
export function signInForm(root, t) {
  root.hidden = false;
  const form = root.querySelector('form');
  const msg = root.querySelector('.signin-msg');
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  msg.textContent = '';
  form.elements.name.focus();
  return new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const name = form.elements.name.value.trim();
      const password = form.elements.password.value;
      if (!name || !password) { msg.textContent = t('signInMissing'); return; }
      form.elements.submit.disabled = true;
      msg.textContent = t('signingIn');
      try {
        const r = await fetch('/api/auth/login', {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name, password }),
        });
        if (r.ok) {
          root.hidden = true;
          form.elements.password.value = '';
          resolve(await r.json());
          return;
        }
        const { key, retryS } = loginError(r.status, r.headers.get('Retry-After'));
        msg.textContent = retryS ? `${t(key)} (${retryS} ${t('seconds')})` : t(key);
      } catch {
        msg.textContent = t('signInFailed');
      } finally {
        form.elements.submit.disabled = false;
      }
    };
  });
}
