// Adjudicator's WebSocket client: one module, no dependencies, usable by any page.
//
//   import { AdjudicatorClient, TokenKeeper } from '/app/client.js';
//   const tokens = new TokenKeeper({ tokens: { access_token, refresh_token } });
//   const client = new AdjudicatorClient({ tokens });
//   client.addEventListener('update', (e) => console.log(e.detail));
//   client.subscribe(['queue', 'stats'], { queue: { limit: 100 } });
//   client.connect();
//
// What it does for the page (docs/client.md has the whole contract):
// * the access token travels as a subprotocol (`adjudicator.v1`, `bearer.<token>`), never in
//   the URL, so it is never in a log or the browser's history;
// * an application `ping` every `heartbeat_interval_ms`; a `pong` not back within 5 s is a
//   miss, and 3 misses in a row close the socket and reconnect;
// * reconnects with exponential backoff and full jitter (0.5 s doubling to 30 s, reset once a
//   connection has been up for a minute), per close code: 4401 refreshes the access token once
//   and reconnects, 4403 stops and says why, 4429 and 1013 back off, 1001 reconnects at once;
// * resumes every subscription with `since` = the highest position it saw, and applies a fresh
//   `snapshot` instead when the server sends one;
// * renews the access token with the refresh token at 80 % of its life and hands the new one
//   to the server in band (`auth`), so a long session is never closed for expiry.
//
// Events (CustomEvent, the payload in `detail`): `state`, `welcome`, `subscribed`, `snapshot`,
// `update`, `error`, `closed`, `stopped`, `rtt`, and on the TokenKeeper `tokens` and
// `signedout`.

export const SUBPROTOCOL = 'adjudicator.v1';

/** Defaults; every one can be overridden in the constructor's options. */
export const DEFAULTS = Object.freeze({
  url: '/api/v1/ws',
  pongTimeoutMs: 5000,
  maxMissedPongs: 3,
  backoffBaseMs: 500,
  backoffCapMs: 30000,
  stableAfterMs: 60000,
  renewAtFraction: 0.8,
  // A socket that has not been welcomed by then (a half-open network, a frozen server) is
  // given up and tried again.
  connectTimeoutMs: 10000,
  // A token this close to its end is renewed before connecting rather than after.
  renewMarginMs: 5000,
});

/** Why a token refresh failed. `definitive`: the session is over (sign in again). */
export class TokenError extends Error {
  constructor(code, message, { status = 0, definitive = false, retryAfterMs = 0 } = {}) {
    super(message);
    this.name = 'TokenError';
    this.code = code;
    this.status = status;
    this.definitive = definitive;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The claims of a JWT, read without checking it (the server checks; we only schedule). */
export function jwtClaims(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const text = new TextDecoder().decode(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(text);
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** Full jitter: a random delay in [0, min(cap, base · 2^attempt)). */
export function backoffDelay(attempt, { backoffBaseMs, backoffCapMs } = DEFAULTS, random = Math.random) {
  const ceiling = Math.min(backoffCapMs, backoffBaseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * When to try a refresh again after it failed without an answer that ends the session: the
 * server's `Retry-After` if it gave one, else `wanted`, but never sooner than 1 s nor later than
 * 9 s. A retry 1 to 10 s after a use whose answer was lost gets that same answer again; sooner
 * it would look like a second holder racing (a reuse), later like a replay.
 */
export function refreshRetryDelay(error, wanted) {
  const asked = error && error.retryAfterMs ? error.retryAfterMs : wanted;
  return Math.min(9000, Math.max(1000, asked || 0));
}

/** Words a person understands for a close reason or an error code. */
export function describeReason(reason) {
  return REASONS[reason] || (reason ? String(reason).replace(/_/g, ' ') : 'the connection closed');
}

const REASONS = {
  too_many_connections:
    'Too many sessions are open for your account. Close a tab or window you no longer use; this one keeps trying.',
  kicked: 'This session was closed by an operator.',
  user_disabled: 'Your account has been disabled. Ask an administrator.',
  token_revoked: 'Your sign-in was revoked (signed out elsewhere, or the password changed). Please sign in again.',
  token_reused:
    'For safety your session was ended: its refresh token was used twice (another tab or a copied token). Please sign in again.',
  token_expired: 'Your session expired. Please sign in again.',
  token_invalid_signature: 'Your session is not valid. Please sign in again.',
  token_malformed: 'Your session is not valid. Please sign in again.',
  token_missing: 'You are not signed in.',
  token_wrong_type: 'Your session is not valid. Please sign in again.',
  user_unknown: 'Your account no longer exists.',
  heartbeat_timeout: 'The connection went quiet and was closed. Reconnecting.',
  pong_timeout: 'The server stopped answering. Reconnecting.',
  connect_timeout: 'The server did not answer in time. Retrying.',
  slow_consumer: 'The connection fell behind and was closed. Catching up.',
  message_rate: 'Too many messages were sent. Slowing down.',
  going_away: 'The server is restarting. Reconnecting.',
  protocol_error: 'The server did not understand this client. Reconnecting.',
  internal_error: 'The server failed. Reconnecting.',
  network: 'The server cannot be reached. Retrying.',
  browser_offline: 'This device is offline. Waiting for the network.',
  signed_out: 'Signed out.',
};

function emit(target, type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}

// ---- tokens ------------------------------------------------------------------------------

/**
 * Holds an access/refresh pair and renews it. One refresh runs at a time (per tab, and across
 * the tabs of this origin with the Web Locks API); a tab that rotated a pair tells the others
 * over a BroadcastChannel, so duplicated tabs sharing a refresh token do not trip the server's
 * reuse detection. `store` (optional) persists the pair: `{ load(), save(pair), clear() }`.
 */
export class TokenKeeper extends EventTarget {
  constructor({ tokens = null, store = null, refreshUrl = '/api/v1/auth/refresh', channel = 'adjudicator.tokens', fetch: fetchFn } = {}) {
    super();
    this.store = store;
    this.refreshUrl = refreshUrl;
    this.fetch = fetchFn || ((...a) => globalThis.fetch(...a));
    this.pair = tokens || (store && store.load()) || null;
    this.inflight = null;
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(channel) : null;
    if (this.channel) {
      this.channel.onmessage = (e) => this.adopt(e.data);
    }
  }

  get access() {
    return this.pair ? this.pair.access_token : null;
  }

  get refreshToken() {
    return this.pair ? this.pair.refresh_token : null;
  }

  /** When the access token ends, in ms since the epoch (server clock), or null. */
  accessExpiresAt() {
    const claims = this.access && jwtClaims(this.access);
    return claims && Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  }

  /** When the access token was issued, in ms since the epoch (server clock), or null. */
  accessIssuedAt() {
    const claims = this.access && jwtClaims(this.access);
    return claims && Number.isFinite(claims.iat) ? claims.iat * 1000 : null;
  }

  set(pair, { announce = true } = {}) {
    const old = this.pair;
    this.pair = { access_token: pair.access_token, refresh_token: pair.refresh_token };
    if (this.store) this.store.save(this.pair);
    if (announce && this.channel && old && old.refresh_token) {
      const oldJti = (jwtClaims(old.refresh_token) || {}).jti;
      if (oldJti) this.channel.postMessage({ type: 'rotated', old: oldJti, pair: this.pair });
    }
    emit(this, 'tokens', this.pair);
  }

  clear() {
    this.pair = null;
    if (this.store) this.store.clear();
  }

  /** Another tab rotated the refresh token this tab holds too: take its new pair. */
  adopt(message) {
    if (!message || message.type !== 'rotated' || !this.pair) return;
    const mine = (jwtClaims(this.pair.refresh_token) || {}).jti;
    if (mine && mine === message.old) this.set(message.pair, { announce: false });
  }

  /** Renews the pair once (calls made meanwhile share the answer). Throws a TokenError. */
  refresh() {
    if (!this.inflight) {
      const run = () => this.refreshOnce();
      const locked = typeof navigator !== 'undefined' && navigator.locks
        ? navigator.locks.request('adjudicator.refresh', run)
        : run();
      this.inflight = locked.finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  async refreshOnce() {
    const before = this.refreshToken;
    // Let a rotation another tab announced while we waited for the lock arrive first.
    await new Promise((r) => setTimeout(r, 0));
    if (!this.refreshToken) throw new TokenError('token_missing', 'no refresh token', { definitive: true });
    if (this.refreshToken !== before) return this.pair;
    let answer;
    try {
      answer = await this.fetch(this.refreshUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ refresh_token: this.refreshToken }),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (e) {
      throw new TokenError('network', 'the server cannot be reached', { definitive: false });
    }
    let body = null;
    try {
      body = await answer.json();
    } catch {
      body = null;
    }
    if (answer.ok && body && body.access_token && body.refresh_token) {
      this.set(body);
      return this.pair;
    }
    const code = (body && body.code) || `http_${answer.status}`;
    const detail = (body && body.detail) || answer.statusText || code;
    // 400/401/403: this refresh token will never work again (reused, revoked, expired, forged).
    const definitive = answer.status >= 400 && answer.status < 500 && answer.status !== 429 && answer.status !== 408;
    const retryAfterMs = Number(answer.headers.get('retry-after')) * 1000 || 0;
    const error = new TokenError(code, detail, { status: answer.status, definitive, retryAfterMs });
    if (definitive) emit(this, 'signedout', { reason: code, message: describeReason(code) });
    throw error;
  }
}

// ---- the client --------------------------------------------------------------------------

let nextRequest = 0;
const requestId = (prefix) => `${prefix}${(nextRequest += 1)}`;

/** How long a subscribe refused with `subscribe_rate` (5 a second per session) waits to go again. */
const SUBSCRIBE_RETRY_MS = 1000;

/**
 * One logical connection to the server's WebSocket, kept open across drops, restarts and
 * token renewals. States: `idle` → `connecting` → `connected`; after a drop `reconnecting`
 * (with `retryAt`); `offline` once it stopped for good or the device is offline.
 */
export class AdjudicatorClient extends EventTarget {
  constructor(options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    if (!this.options.tokens) throw new TypeError('AdjudicatorClient needs `tokens` (a TokenKeeper)');
    this.tokens = this.options.tokens;
    this.WebSocket = this.options.WebSocket || globalThis.WebSocket;
    this.state = 'idle';
    this.socket = null;
    this.sessionId = '';
    this.user = null;
    this.position = 0;
    this.rttMs = null;
    this.retryAt = null;
    this.stopReason = null;
    this.attempt = 0;
    this.refreshedSinceWelcome = false;
    this.subscriptions = new Map(); // request id → subscription
    this.byTopic = new Map(); // topic → subscription
    this.lastPosition = new Map(); // topic → highest position applied
    this.timers = { retry: null, ping: null, renew: null, stable: null, connect: null };
    this.pings = new Map(); // ping id → { sent, timer }
    this.missed = 0;
    this.skewMs = 0; // server clock − local clock, from pongs
    this.legacyQueue = false; // a server from before the queue window
    this.waitingForNetwork = false; // the browser says it is offline
    this.onTokens = () => this.sendAuth();
    this.tokens.addEventListener('tokens', this.onTokens);
    this.onOffline = () => this.deviceOffline();
    this.onOnline = () => this.deviceOnline();
    if (typeof window !== 'undefined') {
      window.addEventListener('offline', this.onOffline);
      window.addEventListener('online', this.onOnline);
    }
  }

  // -- public API --

  /** Opens the connection (once; it then keeps itself open until `close`). */
  connect() {
    if (this.state !== 'idle' && this.state !== 'offline') return;
    this.stopReason = null;
    this.attempt = 0;
    this.open('connecting');
  }

  /** Closes for good (sign-out, page left). */
  close(reason = 'signed_out') {
    this.stop({ code: 1000, reason, notify: false });
    if (typeof window !== 'undefined') {
      window.removeEventListener('offline', this.onOffline);
      window.removeEventListener('online', this.onOnline);
    }
    this.tokens.removeEventListener('tokens', this.onTokens);
  }

  /** Tries again now, after a stop or during a backoff. */
  reconnectNow() {
    clearTimeout(this.timers.retry);
    this.stopReason = null;
    if (this.socket) return;
    this.open(this.state === 'idle' ? 'connecting' : 'reconnecting');
  }

  /**
   * Subscribes to `topics` (sent now if connected, and again on every reconnect with `since`).
   * `queue` (for the `queue` topic): `{ limit, status }`, the server-side window.
   * `onSnapshot(detail)`, `onUpdate(detail)`: called for this subscription's messages (the
   * `snapshot` and `update` events fire too).
   * Returns a handle: `{ topics, position, update({queue}), close() }`.
   */
  subscribe(topics, { queue, onSnapshot, onUpdate } = {}) {
    const sub = {
      id: requestId('s'),
      topics: [...new Set(topics)],
      queue: queue || null,
      onSnapshot: onSnapshot || null,
      onUpdate: onUpdate || null,
      position: 0, // the highest position this set has seen; 0 = wants a snapshot
      update: (opts) => this.resubscribe(sub, opts),
      close: () => this.unsubscribe(sub),
    };
    for (const t of sub.topics) {
      const previous = this.byTopic.get(t);
      if (previous && previous !== sub) {
        previous.topics = previous.topics.filter((x) => x !== t);
        if (!previous.topics.length) this.subscriptions.delete(previous.id);
      }
      this.byTopic.set(t, sub);
    }
    this.subscriptions.set(sub.id, sub);
    this.sendSubscribe(sub, false);
    return sub;
  }

  /** Asks for fresh snapshots of a subscription, e.g. with new queue window options. */
  resubscribe(sub, { queue } = {}) {
    if (queue !== undefined) sub.queue = queue;
    sub.position = 0;
    for (const t of sub.topics) this.lastPosition.delete(t);
    this.sendSubscribe(sub, false);
  }

  unsubscribe(sub) {
    sub.onSnapshot = null;
    sub.onUpdate = null;
    if (!this.subscriptions.delete(sub.id)) return;
    for (const t of sub.topics) {
      if (this.byTopic.get(t) === sub) this.byTopic.delete(t);
      this.lastPosition.delete(t);
    }
    this.send({ type: 'unsubscribe', id: requestId('u'), topics: sub.topics });
  }

  // -- connection --

  open(state) {
    this.waitingForNetwork = false;
    clearTimeout(this.timers.retry);
    this.retryAt = null;
    this.setState(state);
    const expiresAt = this.tokens.accessExpiresAt();
    if (expiresAt !== null && expiresAt - this.serverNow() < this.options.renewMarginMs && !this.refreshedSinceWelcome) {
      // Do not knock with a token that is about to be refused.
      this.refreshedSinceWelcome = true;
      this.tokens.refresh().then(
        () => this.openSocket(),
        (e) => this.refreshFailed(e),
      );
      return;
    }
    this.openSocket();
  }

  openSocket() {
    if (this.stopReason || this.socket) return;
    const token = this.tokens.access;
    if (!token) {
      this.stop({ code: 4401, reason: 'token_missing' });
      return;
    }
    let socket;
    try {
      socket = new this.WebSocket(this.wsUrl(), [SUBPROTOCOL, `bearer.${token}`]);
    } catch (e) {
      this.dropped({ code: 1006, reason: 'network' });
      return;
    }
    this.socket = socket;
    clearTimeout(this.timers.connect);
    this.timers.connect = setTimeout(() => {
      if (this.socket === socket && this.state !== 'connected') this.abandon('connect_timeout');
    }, this.options.connectTimeoutMs);
    let lastError = null;
    socket.onmessage = (e) => this.onMessage(e.data);
    socket.onerror = () => {
      lastError = 'network';
    };
    socket.onclose = (e) => {
      if (this.socket !== socket) return;
      this.socket = null;
      // The reason is in the close frame; the `error` message before a 4xxx close says it too.
      const told = e.code >= 4000 ? this.closeReason : null;
      this.dropped({ code: e.code, reason: e.reason || told || lastError || 'network' });
    };
    this.closeReason = null;
  }

  wsUrl() {
    const url = new URL(this.options.url, typeof location !== 'undefined' ? location.href : undefined);
    if (url.protocol === 'http:') url.protocol = 'ws:';
    if (url.protocol === 'https:') url.protocol = 'wss:';
    return url.href;
  }

  /** The socket is gone: decide, from the close code, whether and when to try again. */
  dropped({ code, reason }) {
    clearTimeout(this.timers.connect);
    this.stopHeartbeat();
    clearTimeout(this.timers.stable);
    clearTimeout(this.timers.renew);
    const wasConnected = this.state === 'connected';
    this.sessionId = '';
    if (this.stopReason) return;
    if (code === 4403) {
      this.stop({ code, reason });
      return;
    }
    if (code === 4401) {
      if (this.refreshedSinceWelcome) {
        this.stop({ code, reason });
        return;
      }
      this.refreshedSinceWelcome = true;
      emit(this, 'closed', { code, reason, message: describeReason(reason), willRetry: true, retryInMs: 0 });
      this.setState('reconnecting');
      this.tokens.refresh().then(
        () => this.open('reconnecting'),
        (e) => this.refreshFailed(e, reason),
      );
      return;
    }
    let delay;
    if (code === 1001) {
      delay = backoffDelay(0, this.options); // at once, with jitter
    } else {
      delay = backoffDelay(this.attempt, this.options);
      this.attempt += 1;
    }
    if (typeof navigator !== 'undefined' && navigator.onLine === false) {
      emit(this, 'closed', { code, reason, message: describeReason(reason), willRetry: true, retryInMs: null });
      this.deviceOffline();
      return;
    }
    emit(this, 'closed', {
      code,
      reason,
      message: describeReason(reason),
      willRetry: true,
      retryInMs: delay,
      wasConnected,
    });
    this.retryAt = Date.now() + delay;
    this.setState('reconnecting');
    this.timers.retry = setTimeout(() => this.open('reconnecting'), delay);
  }

  refreshFailed(error, closeReason) {
    if (error && error.definitive) {
      this.stop({ code: 4401, reason: error.code || closeReason, signedOut: true });
      return;
    }
    // The server is unreachable or busy: try again later, like any drop.
    const delay = refreshRetryDelay(error, backoffDelay(this.attempt, this.options));
    this.attempt += 1;
    this.refreshedSinceWelcome = false;
    this.retryAt = Date.now() + delay;
    this.setState('reconnecting');
    this.timers.retry = setTimeout(() => this.open('reconnecting'), delay);
  }

  /** No more tries: 4403, a refresh that failed for good, or `close()`. */
  stop({ code, reason, notify = true, signedOut = false }) {
    this.stopReason = reason || 'stopped';
    for (const k of Object.keys(this.timers)) clearTimeout(this.timers[k]);
    this.stopHeartbeat();
    this.retryAt = null;
    this.sessionId = '';
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      try {
        socket.close(1000, 'client_closed');
      } catch {
        /* already closing */
      }
    }
    this.setState('offline', { reason: this.stopReason, code });
    if (notify) {
      emit(this, 'stopped', { code, reason: this.stopReason, message: describeReason(this.stopReason), signedOut });
    }
  }

  deviceOffline() {
    if (this.stopReason || this.state === 'idle') return;
    clearTimeout(this.timers.retry);
    this.retryAt = null;
    if (this.socket) return; // still open: the heartbeat decides
    this.waitingForNetwork = true;
    this.setState('offline', { reason: 'browser_offline' });
  }

  deviceOnline() {
    if (this.stopReason || this.socket || this.state === 'idle' || this.state === 'connected') return;
    this.attempt = 0;
    this.open('reconnecting');
  }

  setState(state, extra = {}) {
    const previous = this.state;
    this.state = state;
    emit(this, 'state', {
      state,
      previous,
      retryAt: this.retryAt,
      retryInMs: this.retryAt ? Math.max(0, this.retryAt - Date.now()) : null,
      attempt: this.attempt,
      sessionId: this.sessionId,
      ...extra,
    });
  }

  send(message) {
    if (!this.socket || this.socket.readyState !== 1 || this.state !== 'connected') return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  // -- messages --

  onMessage(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    switch (m.type) {
      case 'welcome':
        return this.onWelcome(m);
      case 'pong':
        return this.onPong(m);
      case 'subscribed':
        return emit(this, 'subscribed', m);
      case 'snapshot':
        return this.onSnapshot(m);
      case 'update':
        return this.onUpdate(m);
      case 'authenticated':
        return this.scheduleRenewal(m.token_expires_at);
      case 'unsubscribed':
        return undefined;
      case 'error':
        return this.onError(m);
      default:
        return undefined;
    }
  }

  onWelcome(m) {
    clearTimeout(this.timers.connect);
    this.sessionId = m.session_id || '';
    this.user = m.user || null;
    this.position = Math.max(this.position, m.position || 0);
    this.heartbeatMs = m.heartbeat_interval_ms || 30000;
    this.refreshedSinceWelcome = false;
    this.retryAt = null;
    this.setState('connected');
    emit(this, 'welcome', m);
    clearTimeout(this.timers.stable);
    this.timers.stable = setTimeout(() => {
      this.attempt = 0; // a stable minute: the next drop starts the backoff afresh
    }, this.options.stableAfterMs);
    this.startHeartbeat();
    this.scheduleRenewal(m.token_expires_at);
    for (const sub of this.subscriptions.values()) this.sendSubscribe(sub, true);
  }

  sendSubscribe(sub, resume) {
    const message = { type: 'subscribe', id: sub.id, topics: sub.topics };
    if (resume && sub.position > 0) message.since = sub.position;
    sub.resumed = message.since !== undefined; // what a retry after `subscribe_rate` repeats
    if (sub.queue && sub.topics.includes('queue') && !this.legacyQueue) message.queue = sub.queue;
    this.send(message);
  }

  onSnapshot(m) {
    const sub = this.byTopic.get(m.topic);
    if (!sub) return;
    this.lastPosition.set(m.topic, m.position);
    sub.position = Math.max(...sub.topics.map((t) => this.lastPosition.get(t) || 0));
    this.position = Math.max(this.position, m.position);
    const detail = { topic: m.topic, position: m.position, data: m.data, subscription: sub };
    emit(this, 'snapshot', detail);
    if (sub.onSnapshot) sub.onSnapshot(detail);
  }

  onUpdate(m) {
    const sub = this.byTopic.get(m.topic);
    if (!sub) return;
    const last = this.lastPosition.get(m.topic) || 0;
    if (m.position <= last) return; // seen already: never apply twice
    this.lastPosition.set(m.topic, m.position);
    sub.position = Math.max(sub.position, m.position);
    this.position = Math.max(this.position, m.position);
    const detail = { topic: m.topic, position: m.position, event: m.event, data: m.data, subscription: sub };
    emit(this, 'update', detail);
    if (sub.onUpdate) sub.onUpdate(detail);
  }

  onError(m) {
    const sub = m.id !== undefined ? this.subscriptions.get(m.id) : undefined;
    if (sub && m.code === 'bad_since') {
      // The server's history does not reach our position (a reset store): start afresh.
      this.resubscribe(sub);
      return;
    }
    if (sub && m.code === 'subscribe_rate') {
      // Too many subscribes at once (a burst of window changes): the server applied nothing of
      // this one. Send the set again in a moment, as it stands then, once however many were
      // refused; a reconnect before that subscribes it anyway.
      if (!sub.rateRetry) {
        sub.rateRetry = setTimeout(() => {
          sub.rateRetry = null;
          if (this.subscriptions.get(sub.id) === sub && this.state === 'connected') {
            this.sendSubscribe(sub, sub.resumed);
          }
        }, SUBSCRIBE_RETRY_MS);
      }
      return;
    }
    if (sub && m.code === 'bad_message' && sub.queue && !this.legacyQueue && /unknown field `queue`/.test(m.message || '')) {
      // A server from before the queue window: it sends the whole queue; the page windows it.
      this.legacyQueue = true;
      this.sendSubscribe(sub, sub.position > 0);
      return;
    }
    if (typeof m.id === 'string' && m.id.startsWith('a')) {
      // An in-band `auth` was refused: the server will close at expiry; renew again first.
      this.scheduleRenewalRetry();
    }
    if (m.code) this.closeReason = m.code; // the close that may follow carries it too
    emit(this, 'error', { id: m.id, code: m.code, message: m.message, subscription: sub });
  }

  // -- heartbeat --

  startHeartbeat() {
    this.stopHeartbeat();
    this.missed = 0;
    this.timers.ping = setInterval(() => this.ping(), this.heartbeatMs);
    this.ping(); // a first round trip at once: the RTT and the clock offset
  }

  stopHeartbeat() {
    clearInterval(this.timers.ping);
    for (const p of this.pings.values()) clearTimeout(p.timer);
    this.pings.clear();
  }

  ping() {
    const id = requestId('p');
    const sent = performance.now();
    if (!this.send({ type: 'ping', id })) return;
    const timer = setTimeout(() => {
      this.pings.delete(id);
      this.missed += 1;
      if (this.missed >= this.options.maxMissedPongs) this.abandon('pong_timeout');
    }, this.options.pongTimeoutMs);
    this.pings.set(id, { sent, wall: Date.now(), timer });
  }

  onPong(m) {
    const p = this.pings.get(m.id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pings.delete(m.id);
    this.missed = 0;
    this.rttMs = Math.round(performance.now() - p.sent);
    const serverTime = Date.parse(m.server_time);
    if (Number.isFinite(serverTime)) this.skewMs = serverTime - (p.wall + this.rttMs / 2);
    emit(this, 'rtt', { ms: this.rttMs });
  }

  /** The server stopped answering: drop the socket without waiting for its close handshake. */
  abandon(reason) {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.onclose = null;
    socket.onmessage = null;
    try {
      socket.close(4000, reason);
    } catch {
      /* closing already */
    }
    this.dropped({ code: 4000, reason });
  }

  // -- token renewal --

  serverNow() {
    return Date.now() + this.skewMs;
  }

  /** Renews at `renewAtFraction` of the token's life (from its `iat`, or from now). */
  scheduleRenewal(expiresAtText) {
    clearTimeout(this.timers.renew);
    const expiresAt = Date.parse(expiresAtText) || this.tokens.accessExpiresAt();
    if (!expiresAt) return;
    const issuedAt = this.tokens.accessIssuedAt() || this.serverNow();
    const life = Math.max(0, expiresAt - issuedAt);
    const renewAt = issuedAt + life * this.options.renewAtFraction;
    const delay = Math.max(0, renewAt - this.serverNow());
    this.timers.renew = setTimeout(() => this.renew(), delay);
  }

  scheduleRenewalRetry(error = null) {
    clearTimeout(this.timers.renew);
    const left = (this.tokens.accessExpiresAt() || 0) - this.serverNow();
    this.timers.renew = setTimeout(() => this.renew(), refreshRetryDelay(error, left / 4));
  }

  async renew() {
    try {
      await this.tokens.refresh(); // the `tokens` event sends `auth`
    } catch (e) {
      if (e && e.definitive) {
        this.stop({ code: 4401, reason: e.code, signedOut: true });
      } else {
        this.scheduleRenewalRetry(e);
      }
    }
  }

  /** Hands the current access token to the server in band. */
  sendAuth() {
    if (this.state !== 'connected') return;
    this.send({ type: 'auth', id: requestId('a'), token: this.tokens.access });
  }
}
