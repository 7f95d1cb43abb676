// The signed-in session: where the tokens live, signing in and out, and HTTP calls to the API
// with the access token (renewed and retried once when it has expired).
//
// Tokens live in this tab's sessionStorage under `adjudicator.session` and nowhere else
// (docs/security.md says why): they survive a reload, not the closing of the tab.

import { TokenKeeper, TokenError } from './client.js';

export const STORAGE_KEY = 'adjudicator.session';

/** The TokenKeeper's store: sessionStorage, one JSON object. */
export const sessionStore = {
  load() {
    try {
      const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
      if (value && typeof value.access_token === 'string' && typeof value.refresh_token === 'string') {
        return { access_token: value.access_token, refresh_token: value.refresh_token };
      }
    } catch {
      /* not JSON: treated as no session */
    }
    return null;
  },
  save(pair) {
    sessionStorage.setItem(
      STORAGE_KEY,
      JSON.stringify({ access_token: pair.access_token, refresh_token: pair.refresh_token }),
    );
  },
  clear() {
    sessionStorage.removeItem(STORAGE_KEY);
  },
};

export const tokens = new TokenKeeper({ store: sessionStore });

/** An error answer of the API (a problem document), or a failure to reach it. */
export class ApiProblem extends Error {
  constructor(status, body, retryAfter) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.name = 'ApiProblem';
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? 'network' : `http_${status}`);
    this.detail = (body && body.detail) || this.message;
    this.errors = (body && Array.isArray(body.errors) && body.errors) || [];
    this.current = (body && body.current) || null;
    this.retryAfter = retryAfter;
  }
}

async function problemOf(answer) {
  let body = null;
  try {
    body = await answer.json();
  } catch {
    body = null;
  }
  const retryAfter = Number(answer.headers.get('retry-after')) || null;
  return new ApiProblem(answer.status, body, retryAfter);
}

/**
 * Calls the API. `body` (an object) is sent as JSON; `ifMatch` as `If-Match: "<version>"`.
 * Answers the parsed JSON (or the Response with `raw`), or throws an ApiProblem. A 401
 * `token_expired` or `token_revoked` renews the tokens and tries once more.
 */
export async function api(path, { method = 'GET', body, ifMatch, raw = false, auth = true } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (ifMatch !== undefined && ifMatch !== null) headers['if-match'] = `"${ifMatch}"`;
    if (auth && tokens.access) headers.authorization = `Bearer ${tokens.access}`;
    let answer;
    try {
      answer = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      throw new ApiProblem(0, { code: 'network', detail: 'The server cannot be reached.' }, null);
    }
    if (answer.ok) {
      if (raw) return answer;
      if (answer.status === 204) return null;
      return answer.json();
    }
    const problem = await problemOf(answer);
    // An expired token, or one voided by a change of roles, is renewed with the refresh token;
    // a login that was revoked fails that refresh and signs out.
    if (auth && attempt === 0 && problem.status === 401 && ['token_expired', 'token_revoked'].includes(problem.code)) {
      try {
        await tokens.refresh();
      } catch (e) {
        throw e instanceof TokenError ? new ApiProblem(401, { code: e.code, detail: e.message }, null) : e;
      }
      continue;
    }
    throw problem;
  }
}

/** Signs in; stores the pair. Throws an ApiProblem (401 invalid_credentials, 429 with the wait). */
export async function signIn(username, password) {
  const pair = await api('/api/v1/auth/login', {
    method: 'POST',
    body: { username, password },
    auth: false,
  });
  tokens.set(pair, { announce: false });
  return pair;
}

/** Revokes the tokens on the server (best effort) and forgets them here. */
export async function signOut() {
  const access = tokens.access;
  const refresh = tokens.refreshToken;
  tokens.clear();
  if (!access) return;
  try {
    await fetch('/api/v1/auth/logout', {
      method: 'POST',
      headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
      body: JSON.stringify(refresh ? { refresh_token: refresh } : {}),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    /* unreachable server: the tokens are forgotten here and expire there */
  }
}
