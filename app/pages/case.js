// One case: its fields, the actions the user may take, and its full history as a timeline,
// live over the `case:<id>` topic.

import { actionButtons, createCaseDialog } from '../actions.js';
import { h, replace, setText } from '../dom.js';
import { PRIORITY_LABELS, STATUS_LABELS, countdown, percent, utc, who } from '../format.js';
import { api } from '../session.js';
import { timelineItems, userNames } from '../timeline.js';

export const title = 'Case';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function mount(root, ctx, id) {
  const { client, user } = ctx;
  const page = h('section', { id: 'case-page', class: 'page', dataset: { caseId: id }, 'aria-labelledby': 'case-title' });
  root.append(page);
  if (!UUID.test(id)) {
    page.append(h('h1', { id: 'case-title' }, 'No such case'), h('p', {}, `“${id}” is not a case id.`));
    return () => {};
  }

  let current = null;
  let names = new Map();
  let historyTimer = null;
  let lease = null;
  const heading = h('h1', { id: 'case-title' }, 'Case');
  const status = h('span', { id: 'case-status', class: 'status' }, '…');
  const facts = h('dl', { class: 'facts case-facts' });
  const excerpt = h('blockquote', { class: 'excerpt' });
  const actions = h('div', { class: 'case-actions' });
  const timeline = h('ol', { id: 'case-timeline', class: 'timeline', 'aria-label': 'History, oldest first' });
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const dialog = createCaseDialog({ user, notice: ctx.notice, onCase: (c) => show(c) });

  page.append(
    h('p', {}, h('a', { href: '#/queue', class: 'back' }, '← Back to the queue')),
    h('div', { class: 'page-head' }, heading, status),
    problem,
    h('div', { class: 'case-layout' }, h('div', { class: 'card' }, excerpt, facts, actions), h('div', { class: 'card' }, h('h2', {}, 'History'), timeline)),
    dialog.element,
  );

  function fact(label, value) {
    return value === null || value === undefined || value === '' ? [] : [h('dt', {}, label), h('dd', {}, value)];
  }

  function show(c) {
    if (!c || (current && Number(current.version) > Number(c.version))) return;
    current = c;
    setText(heading, c.subject_ref);
    setText(status, STATUS_LABELS[c.adjudication_status] || c.adjudication_status);
    status.className = `status status-${c.adjudication_status}`;
    status.dataset.status = c.adjudication_status;
    page.dataset.version = c.version;
    setText(excerpt, c.excerpt);
    lease = c.claim_expires_at ? h('span', { dataset: { countdownTo: c.claim_expires_at } }, countdown(Date.parse(c.claim_expires_at) - Date.now())) : null;
    replace(
      facts,
      fact('Priority', PRIORITY_LABELS[c.priority] || c.priority),
      fact('Assessed culpability', c.assessment.culpability),
      fact('Confidence', percent(c.assessment.confidence)),
      fact('Rationale', c.assessment.rationale),
      fact('Submitted', utc(c.submitted_at)),
      fact('Claimed by', c.claimed_by ? who(c.claimed_by, user, names) : null),
      fact('Lease left', lease),
      fact('Decision', c.decision),
      fact('Final culpability', c.final_culpability),
      fact('Reviewer', c.reviewer_id ? who(c.reviewer_id, user, names) : null),
      fact('Reviewer notes', c.reviewer_notes),
      fact('Decided', c.decided_at ? utc(c.decided_at) : null),
      fact('Version', String(c.version)),
    );
    replace(actions, actionButtons(c, user, (kind) => dialog.run(kind, current)));
    scheduleHistory();
  }

  async function loadHistory() {
    try {
      const events = await api(`/api/v1/cases/${id}/history`);
      replace(timeline, timelineItems(events, user, names));
    } catch (p) {
      problem.textContent = p.status === 404 ? 'There is no such case.' : `The history could not be loaded: ${p.detail}`;
      problem.hidden = false;
    }
  }

  function scheduleHistory() {
    clearTimeout(historyTimer);
    historyTimer = setTimeout(loadHistory, 100);
  }

  const ticker = setInterval(() => {
    if (!lease || !current) return;
    const left = Date.parse(current.claim_expires_at) - Date.now();
    setText(lease, left > 0 ? countdown(left) : 'expired');
    if (left <= 0 && !lease.dataset.expired) {
      lease.dataset.expired = 'true';
      replace(actions, actionButtons(current, user, (kind) => dialog.run(kind, current)));
    }
  }, 1000);

  const topic = `case:${id.toLowerCase()}`;
  const onMessage = ({ data }) => data && show(data);
  const subscription = client.subscribe([topic], { onSnapshot: onMessage, onUpdate: onMessage });

  (async () => {
    names = await userNames(api, user);
    try {
      show(await api(`/api/v1/cases/${id}`));
    } catch (p) {
      problem.textContent = p.status === 404 ? 'There is no such case.' : `The case could not be loaded: ${p.detail}`;
      problem.hidden = false;
      setText(status, p.status === 404 ? 'not found' : 'unavailable');
    }
  })();

  return () => {
    clearInterval(ticker);
    clearTimeout(historyTimer);
    subscription.close();
    dialog.close();
  };
}
