// Operations (admins): the live WebSocket sessions with a kick button, the limiter's figures,
// and live numbers read from `/metrics` (sessions, messages per second, projection lag,
// append p99), refreshed every few seconds.

import { h, replace, setText } from '../dom.js';
import { duration, number, utc } from '../format.js';
import { figures, liveNumbers } from '../metrics.js';
import { api } from '../session.js';

export const title = 'Operations';

const POLL_MS = 2000;
/** The second scrape comes sooner, so that rates show at once. */
const FIRST_POLL_MS = 500;

const LIMIT_LABELS = {
  connected_sessions: 'Connected sessions',
  connected_users: 'Connected users',
  tracked_ips: 'IPs tracked by the connect limiter',
  max_connections: 'Connection limit (node)',
  max_connections_per_user: 'Connection limit (per user)',
  connect_attempts_per_ip: 'Connect attempts per IP per window',
  connect_window_seconds: 'Connect window',
  draining: 'Draining',
};

export function mount(root, ctx) {
  const { client } = ctx;
  let previous = null;
  let stopped = false;
  let scrapes = 0;
  let timer = null;

  const metric = (key, label, unit) =>
    h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), h('span', { class: 'stat-value', dataset: { metric: key } }, '—'), unit ? h('span', { class: 'stat-unit muted' }, unit) : null);
  const metrics = h(
    'section',
    { id: 'ops-metrics', class: 'stats', 'aria-label': 'Live numbers' },
    metric('sessions', 'Sessions'),
    metric('messages_per_second', 'Messages / s', 'in + out'),
    metric('projection_lag', 'Projection lag', 'events'),
    metric('append_p99', 'Append p99'),
  );
  const sessionsBody = h('tbody');
  const sessions = h(
    'table',
    { id: 'sessions', class: 'table' },
    h('caption', { class: 'sr-only' }, 'Live WebSocket sessions'),
    h('thead', {}, h('tr', {}, ['User', 'IP', 'Connected', 'Last seen', 'Topics', ''].map((t) => h('th', { scope: 'col' }, t)))),
    sessionsBody,
  );
  const sessionsNote = h('p', { class: 'muted', 'aria-live': 'polite' });
  const limits = h('dl', { id: 'limits', class: 'facts' });
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });

  root.append(
    h(
      'section',
      { id: 'ops-page', class: 'page', 'aria-labelledby': 'ops-title' },
      h('div', { class: 'page-head' }, h('h1', { id: 'ops-title' }, 'Operations'), h('p', { class: 'muted' }, `Refreshed every ${POLL_MS / 1000} s.`)),
      problem,
      metrics,
      h(
        'div',
        { class: 'ops-layout' },
        h('section', { class: 'card', 'aria-labelledby': 'sessions-title' }, h('h2', { id: 'sessions-title' }, 'Live sessions'), h('div', { class: 'table-wrap' }, sessions), sessionsNote),
        h('section', { class: 'card', 'aria-labelledby': 'limits-title' }, h('h2', { id: 'limits-title' }, 'Limits'), limits),
      ),
    ),
  );

  async function kick(s, button) {
    button.disabled = true;
    try {
      await api(`/api/v1/admin/sessions/${s.id}`, { method: 'DELETE' });
      setText(sessionsNote, `Closed the session of ${s.username} (${s.ip}).`);
    } catch (p) {
      setText(sessionsNote, p.status === 404 ? 'That session had already closed.' : `Could not close it: ${p.detail}`);
    }
    refresh();
  }

  function showSessions(list) {
    const now = Date.now();
    replace(
      sessionsBody,
      list.map((s) => {
        const mine = s.id === client.sessionId;
        const button = h('button', { type: 'button', class: 'button button-danger', dataset: { action: 'kick' }, 'aria-label': `Kick ${s.username}${mine ? ' (this tab)' : ''}` }, 'Kick');
        button.addEventListener('click', () => kick(s, button));
        return h(
          'tr',
          { dataset: { sessionId: s.id } },
          h('td', { dataset: { label: 'User' } }, s.username, mine ? h('span', { class: 'muted' }, ' (this tab)') : null),
          h('td', { dataset: { label: 'IP' } }, s.ip),
          h('td', { dataset: { label: 'Connected' }, title: utc(s.connected_at) }, `${duration(now - Date.parse(s.connected_at))} ago`),
          h('td', { dataset: { label: 'Last seen' }, title: utc(s.last_seen_at) }, `${duration(now - Date.parse(s.last_seen_at))} ago`),
          h('td', { dataset: { label: 'Topics' } }, (s.topics || []).join(', ') || '—'),
          h('td', {}, button),
        );
      }),
    );
    if (!list.length) sessionsBody.append(h('tr', {}, h('td', { colspan: '6', class: 'muted' }, 'No session is open.')));
  }

  function showLimits(l) {
    replace(
      limits,
      Object.entries(l).map(([k, v]) => [
        h('dt', {}, LIMIT_LABELS[k] || k.replace(/_/g, ' ')),
        h('dd', { dataset: { limit: k } }, k === 'connect_window_seconds' ? duration(v * 1000) : typeof v === 'boolean' ? (v ? 'yes' : 'no') : number(v)),
      ]),
    );
  }

  async function showMetrics() {
    const answer = await fetch('/metrics', { cache: 'no-store', credentials: 'omit' });
    if (!answer.ok) throw new Error(`/metrics answered ${answer.status}`);
    const now = figures(await answer.text());
    scrapes += 1;
    const live = liveNumbers(previous, now);
    previous = now;
    setText(metrics.querySelector('[data-metric="sessions"]'), number(live.sessions));
    setText(metrics.querySelector('[data-metric="messages_per_second"]'), live.messagesPerSecond === null ? '…' : live.messagesPerSecond.toFixed(1));
    setText(metrics.querySelector('[data-metric="projection_lag"]'), number(live.projectionLag));
    const p99 = metrics.querySelector('[data-metric="append_p99"]');
    setText(p99, live.appendP99Seconds === null ? '—' : `${(live.appendP99Seconds * 1000).toFixed(2)} ms`);
    p99.title = `99th percentile of append durations, ${live.p99Scope}`;
  }

  async function refresh() {
    clearTimeout(timer);
    const results = await Promise.allSettled([
      api('/api/v1/admin/sessions').then((r) => showSessions(r.sessions || [])),
      api('/api/v1/admin/limits').then(showLimits),
      showMetrics(),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    problem.hidden = !failed;
    problem.textContent = failed ? `Some figures could not be read: ${failed.reason.detail || failed.reason.message}` : '';
    if (!stopped) timer = setTimeout(refresh, scrapes < 2 ? FIRST_POLL_MS : POLL_MS);
  }
  refresh();

  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
