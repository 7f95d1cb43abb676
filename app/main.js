// The app's entry point: restores or starts a session, keeps one WebSocket client for it, and
// shows the page the URL's fragment names (`#/signin`, `#/queue`, `#/case/<id>`, `#/audit`,
// `#/ops`), allowed by the user's roles.

import { AdjudicatorClient, describeReason } from './client.js';
import { $, setText } from './dom.js';
import { api, signOut, tokens } from './session.js';
import { bindIndicator, notice, showSignedOut } from './status-bar.js';
import * as signinPage from './pages/signin.js';
import * as queuePage from './pages/queue.js';
import * as casePage from './pages/case.js';
import * as auditPage from './pages/audit.js';
import * as opsPage from './pages/ops.js';

const REVIEWERS = ['reviewer', 'senior_reviewer'];
const PAGES = {
  signin: { module: signinPage, roles: null },
  queue: { module: queuePage, roles: null },
  case: { module: casePage, roles: null },
  audit: { module: auditPage, roles: ['auditor', 'admin'] },
  ops: { module: opsPage, roles: ['admin'] },
};
/** Closes that end the session: the tokens are worthless now. */
const SESSION_ENDED = ['user_disabled', 'user_unknown'];
/** Closes worth a banner while the client reconnects on its own. */
const TRANSIENT = ['too_many_connections', 'going_away', 'slow_consumer', 'message_rate', 'heartbeat_timeout', 'pong_timeout'];

const app = {
  user: null,
  client: null,
  unbindIndicator: null,
  page: null, // { name, param, unmount }
  signinError: '',
  afterSignIn: '', // the page asked for before signing in
};

const has = (user, roles) => !!user && user.roles.some((r) => roles.includes(r));

/** Where a user lands: reviewers on the queue, auditors on the audit, admins on operations. */
function home(user) {
  if (has(user, REVIEWERS)) return 'queue';
  if (has(user, ['auditor'])) return 'audit';
  if (has(user, ['admin'])) return 'ops';
  return 'queue';
}

function parseHash() {
  const [, name = '', param = ''] = /^#\/?([^/]*)\/?(.*)$/.exec(location.hash) || [];
  return { name, param: decodeURIComponent(param) };
}

export function navigate(name, param = '') {
  const hash = `#/${name}${param ? `/${encodeURIComponent(param)}` : ''}`;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  let { name, param } = parseHash();
  if (!app.user) {
    if (name && name !== 'signin' && PAGES[name]) app.afterSignIn = location.hash;
    name = 'signin';
    param = '';
  } else if (!PAGES[name] || name === 'signin' || (PAGES[name].roles && !has(app.user, PAGES[name].roles))) {
    name = home(app.user);
    param = '';
  }
  const wanted = `#/${name}${param ? `/${param}` : ''}`;
  if (location.hash !== wanted) {
    history.replaceState(null, '', wanted);
  }
  if (app.page && app.page.name === name && app.page.param === param) return;
  if (app.page && app.page.unmount) app.page.unmount();
  const main = $('#main');
  main.replaceChildren();
  const context = {
    user: app.user,
    client: app.client,
    has: (roles) => has(app.user, roles),
    navigate,
    notice,
    signinError: app.signinError,
    onSignedIn: startSession,
  };
  app.signinError = '';
  const unmount = PAGES[name].module.mount(main, context, param);
  app.page = { name, param, unmount };
  document.title = `${PAGES[name].module.title || 'Adjudicator'} · Adjudicator`;
  for (const link of document.querySelectorAll('#nav a[data-nav]')) {
    if (link.dataset.nav === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function showAccount(user) {
  $('#account').hidden = !user;
  $('#nav').hidden = !user;
  setText($('#current-user'), user ? user.username : '');
  if (user) $('#current-user').title = user.display_name || user.username;
  for (const link of document.querySelectorAll('#nav a[data-nav]')) {
    const roles = PAGES[link.dataset.nav].roles;
    link.hidden = !user || (roles && !has(user, roles));
  }
}

/** Restores the session from the stored tokens (or after signing in) and connects. */
async function startSession() {
  let me;
  try {
    me = await api('/api/v1/me');
  } catch (problem) {
    if (problem.status === 0 || problem.status >= 500) {
      notice.show('network', 'The server cannot be reached. Retrying…');
      setTimeout(startSession, 3000);
      return;
    }
    endSession(null, `Your saved session is not valid (${problem.code}). Please sign in again.`);
    return;
  }
  notice.clear(['network']);
  app.user = me;
  showAccount(me);
  const client = new AdjudicatorClient({ tokens });
  app.client = client;
  app.unbindIndicator = bindIndicator(client);
  client.addEventListener('closed', (e) => {
    const { reason } = e.detail;
    if (TRANSIENT.includes(reason)) notice.show(reason, describeReason(reason));
  });
  client.addEventListener('welcome', (e) => {
    notice.clear([...TRANSIENT, 'network']);
    rolesMayHaveChanged(e.detail.user);
  });
  client.addEventListener('stopped', (e) => {
    const { reason, signedOut } = e.detail;
    if (signedOut || SESSION_ENDED.includes(reason)) {
      endSession(reason, describeReason(reason));
      return;
    }
    notice.show(reason, describeReason(reason), { reconnect: () => client.reconnectNow() });
  });
  client.connect();
  if (app.afterSignIn) {
    history.replaceState(null, '', app.afterSignIn);
    app.afterSignIn = '';
  }
  if (app.page) {
    app.page.unmount && app.page.unmount();
    app.page = null;
  }
  route();
}

/**
 * A welcome names the roles the session acts with; when they are not the ones the app knows (an
 * administrator changed them, the client renewed its token and reconnected), the app takes the
 * user again and shows only what the new roles open.
 */
async function rolesMayHaveChanged(welcomed) {
  if (!app.user || !welcomed || !Array.isArray(welcomed.roles)) return;
  const same = (a, b) => a.length === b.length && a.every((r) => b.includes(r));
  if (same(welcomed.roles, app.user.roles)) return;
  try {
    app.user = await api('/api/v1/me');
  } catch {
    app.user = { ...app.user, roles: welcomed.roles };
  }
  showAccount(app.user);
  if (app.page && app.page.unmount) app.page.unmount();
  app.page = null;
  route();
}

/** Forgets the session and shows the sign-in page with `message`. */
function endSession(reason, message) {
  if (app.client) app.client.close(reason || 'signed_out');
  if (app.unbindIndicator) app.unbindIndicator();
  app.client = null;
  app.unbindIndicator = null;
  tokens.clear();
  app.user = null;
  showAccount(null);
  showSignedOut();
  // A session that ended while in use says why in the banner; a stored session refused at
  // start says it on the sign-in form.
  if (reason && message) notice.show(reason, message);
  app.signinError = reason ? '' : message || '';
  if (app.page && app.page.unmount) app.page.unmount();
  app.page = null;
  navigate('signin');
}

async function onSignOut() {
  const client = app.client;
  app.client = null;
  if (client) client.close('signed_out');
  await signOut();
  notice.clear();
  endSession(null, '');
}

function boot() {
  $('#sign-out').addEventListener('click', onSignOut);
  $('#notice-dismiss').addEventListener('click', () => notice.clear());
  $('#skip-link').addEventListener('click', () => $('#main').focus());
  window.addEventListener('hashchange', route);
  tokens.addEventListener('signedout', (e) => {
    if (app.user) endSession(e.detail.reason, describeReason(e.detail.reason));
  });
  showSignedOut();
  if (tokens.access) startSession();
  else route();
}

boot();
