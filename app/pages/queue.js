// The queue: live statistics, status filters, and the server's queue window (subscribed over
// the WebSocket with `queue: {limit, status}`), with priority, age, claim holder and lease
// countdown per case, and the claim / release / decide actions. New cases are announced in
// the ARIA live region `#queue-announcer`.

import { actionButtons, createCaseDialog } from '../actions.js';
import { $$, h, replace, setText } from '../dom.js';
import { PRIORITY_LABELS, STATUS_LABELS, countdown, duration, number, percent, who } from '../format.js';
import { OPEN_STATUSES, QueueWindow } from '../queue-model.js';
import { api } from '../session.js';
import { userNames } from '../timeline.js';

export const title = 'Queue';

const PAGE = 100;
const MAX_LIMIT = 1000;
const REFILL_EVERY_MS = 2000;
const ANNOUNCE_AFTER_MS = 1200;

export function mount(root, ctx) {
  const { client, user } = ctx;
  const model = new QueueWindow({ limit: PAGE, statuses: OPEN_STATUSES });
  const cards = new Map(); // case id → element
  const fresh = new Map(); // case id → time it arrived (for the "new" mark)
  let pendingAnnouncements = [];
  let announceTimer = null;
  let lastRefill = 0;
  let refillTimer = null;
  let names = new Map(); // user id → username (administrators only)

  // -- the page's skeleton --
  const stat = (key, label) =>
    h('div', { class: `stat stat-${key}` }, h('span', { class: 'stat-label' }, label), h('span', { class: 'stat-value', dataset: { stat: key } }, '—'));
  const stats = h(
    'section',
    { id: 'stats', class: 'stats', 'aria-label': 'Queue statistics' },
    stat('pending', 'Pending'),
    stat('in_review', 'In review'),
    stat('escalated', 'Escalated'),
    stat('decided', 'Decided'),
  );
  const filters = h(
    'fieldset',
    { class: 'filters' },
    h('legend', {}, 'Show'),
    OPEN_STATUSES.map((s) =>
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'status-filter', value: s, checked: true, onchange: () => changeFilters() }), STATUS_LABELS[s]),
    ),
  );
  const total = h('span', { id: 'queue-total' }, '—');
  const shown = h('span', { id: 'queue-shown' }, '0');
  const list = h('ol', { id: 'queue-list', class: 'case-list', 'aria-label': 'Cases in queue order' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No case matches. New cases appear here as they arrive.');
  const loading = h('p', { class: 'muted', id: 'queue-loading' }, 'Loading the queue…');
  const more = h('button', { type: 'button', id: 'queue-more', class: 'button', hidden: true, onclick: () => showMore() }, 'Show more');
  const announcer = h('div', { id: 'queue-announcer', class: 'sr-only', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const dialog = createCaseDialog({ user, notice: ctx.notice, onCase: (c) => apply('local', c) });

  const page = h(
    'section',
    { id: 'queue-page', class: 'page', 'aria-labelledby': 'queue-title' },
    h('div', { class: 'page-head' }, h('h1', { id: 'queue-title' }, 'Queue'), h('p', { class: 'muted count' }, 'Showing ', shown, ' of ', total)),
    stats,
    filters,
    loading,
    list,
    empty,
    more,
    announcer,
    dialog.element,
  );
  root.append(page);

  // -- rendering --
  const now = () => Date.now();

  function card(c) {
    const claimText = c.claimed_by
      ? h(
          'span',
          {},
          who(c.claimed_by, user, names),
          ' · ',
          h('span', { class: 'lease', dataset: { countdownTo: c.claim_expires_at } }, countdown(Date.parse(c.claim_expires_at) - now())),
          ' left',
        )
      : 'nobody';
    const el = h(
      'li',
      {
        class: `case case-${c.adjudication_status} priority-${c.priority}${fresh.has(c.id) ? ' is-new' : ''}`,
        dataset: {
          caseId: c.id,
          status: c.adjudication_status,
          version: c.version,
          priority: c.priority,
          expired: c.claim_expires_at && Date.parse(c.claim_expires_at) <= now() ? 'true' : null,
        },
      },
      h(
        'div',
        { class: 'case-head' },
        h('span', { class: `badge badge-${c.priority}` }, PRIORITY_LABELS[c.priority] || c.priority),
        h('a', { class: 'case-title', href: `#/case/${c.id}`, dataset: { action: 'open' } }, c.subject_ref),
        h('span', { class: `status status-${c.adjudication_status}` }, STATUS_LABELS[c.adjudication_status] || c.adjudication_status),
      ),
      h('p', { class: 'case-excerpt' }, c.excerpt),
      h(
        'dl',
        { class: 'case-meta' },
        h('div', {}, h('dt', {}, 'Assessed'), h('dd', {}, `${c.assessment.culpability} · ${percent(c.assessment.confidence)}`)),
        h('div', {}, h('dt', {}, 'Age'), h('dd', { dataset: { ageFrom: c.submitted_at }, title: c.submitted_at }, duration(now() - Date.parse(c.submitted_at)))),
        h('div', {}, h('dt', {}, 'Claim'), h('dd', {}, claimText)),
      ),
      h('div', { class: 'case-actions' }, actionButtons(c, user, (kind) => dialog.run(kind, c))),
    );
    return el;
  }

  /** Puts the list's elements in the window's order, re-rendering only changed cases. */
  function render() {
    const visible = model.visible();
    const keep = new Set(visible.map((c) => c.id));
    for (const [id, el] of cards) {
      if (!keep.has(id)) {
        el.remove();
        cards.delete(id);
      }
    }
    let previous = null;
    for (const c of visible) {
      let el = cards.get(c.id);
      if (!el || el.dataset.version !== String(c.version) || el.dataset.stale) {
        const next = card(c);
        if (el) el.replaceWith(next);
        el = next;
        cards.set(c.id, el);
      }
      const wanted = previous ? previous.nextSibling : list.firstChild;
      if (wanted !== el) list.insertBefore(el, wanted);
      previous = el;
    }
    loading.hidden = model.ready;
    empty.hidden = !model.ready || visible.length > 0;
    setText(total, number(model.total));
    setText(shown, number(visible.length));
    more.hidden = !(model.total > visible.length && model.limit < MAX_LIMIT);
  }

  /** Ages and lease countdowns, every second; a lease that runs out changes the buttons. */
  const ticker = setInterval(() => {
    const t = now();
    for (const el of $$('[data-age-from]', list)) setText(el, duration(t - Date.parse(el.dataset.ageFrom)));
    let changed = false;
    for (const el of $$('[data-countdown-to]', list)) {
      const left = Date.parse(el.dataset.countdownTo) - t;
      setText(el, left > 0 ? countdown(left) : 'expired');
      const item = el.closest('li');
      if (left <= 0 && item && !item.dataset.expired) {
        item.dataset.expired = 'true';
        item.dataset.stale = 'true';
        changed = true;
      }
    }
    for (const [id, at] of fresh) if (t - at > 10000) fresh.delete(id);
    if (changed) render();
  }, 1000);

  // -- the live window --
  function windowOptions() {
    return { limit: model.limit, status: model.statuses };
  }

  const subscription = client.subscribe(['queue', 'stats'], {
    queue: windowOptions(),
    onSnapshot: ({ topic, data }) => {
      if (topic === 'queue' && model.statuses.length) {
        model.applySnapshot(data);
        render();
      } else if (topic === 'stats') {
        showStats(data);
      }
    },
    onUpdate: ({ topic, data, event }) => {
      if (topic === 'queue') apply(event, data);
      else if (topic === 'stats') showStats(data);
    },
  });

  function apply(event, c) {
    const { change, announced } = model.applyUpdate(event, c);
    if (announced) {
      fresh.set(c.id, now());
      pendingAnnouncements.push(c);
      clearTimeout(announceTimer);
      announceTimer = setTimeout(announce, ANNOUNCE_AFTER_MS);
    }
    if (change !== 'none') render();
    scheduleRefill();
  }

  function announce() {
    const arrived = pendingAnnouncements;
    pendingAnnouncements = [];
    if (!arrived.length) return;
    const first = arrived[0];
    const what = `${first.subject_ref}, ${first.priority} priority`;
    announcer.textContent = arrived.length === 1 ? `New case: ${what}.` : `${arrived.length} new cases, the first: ${what}.`;
  }

  function showStats(s) {
    for (const key of ['pending', 'in_review', 'escalated', 'decided']) setText(stats.querySelector(`[data-stat="${key}"]`), number(s[key]));
    model.applyStats(s);
    render();
    scheduleRefill();
  }

  /** When decided cases emptied part of the window, ask for a fresh one (not too often). */
  function scheduleRefill() {
    if (!model.needsRefill() || refillTimer) return;
    const wait = Math.max(0, lastRefill + REFILL_EVERY_MS - now());
    refillTimer = setTimeout(() => {
      refillTimer = null;
      if (!model.needsRefill()) return;
      lastRefill = now();
      subscription.update({ queue: windowOptions() });
    }, wait);
  }

  function changeFilters() {
    const statuses = $$('input[name="status-filter"]', filters)
      .filter((i) => i.checked)
      .map((i) => i.value);
    model.statuses = statuses;
    if (!statuses.length) {
      model.applySnapshot({ cases: [], total: 0, next: null });
      render();
      empty.textContent = 'Choose at least one status to show.';
      return;
    }
    empty.textContent = 'No case matches. New cases appear here as they arrive.';
    model.ready = false;
    render();
    subscription.update({ queue: windowOptions() });
  }

  function showMore() {
    model.limit = Math.min(MAX_LIMIT, model.limit + PAGE);
    subscription.update({ queue: windowOptions() });
  }

  render();
  userNames(api, user).then((n) => {
    names = n;
    if (!n.size) return;
    for (const el of cards.values()) el.dataset.stale = 'true';
    render();
  });

  return () => {
    clearInterval(ticker);
    clearTimeout(announceTimer);
    clearTimeout(refillTimer);
    subscription.close();
    dialog.close();
    replace(root);
  };
}
