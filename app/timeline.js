// A case's history (its events, oldest first, in the audit event shape) as a timeline:
// one `li` per event with `data-event-type` and `data-position`: who, when, what, notes.

import { h } from './dom.js';
import { EVENT_LABELS, percent, utc, who } from './format.js';

function details(e, me, names) {
  const d = e.data || {};
  switch (e.type) {
    case 'case_submitted':
      return [
        `Assessed ${d.assessment ? `${d.assessment.culpability} (${percent(d.assessment.confidence)})` : ''}, priority ${d.priority || 'normal'}.`,
        d.assessment && d.assessment.rationale ? h('blockquote', {}, d.assessment.rationale) : null,
      ];
    case 'case_claimed':
      return [`Lease until ${utc(d.lease_expires_at)}.`];
    case 'case_released':
      return [d.reason === 'lease_expired' ? `The lease of ${who(d.reviewer_id, me, names)} ran out.` : `Released by ${who(e.user_id, me, names)}.`];
    case 'case_decided':
      return [
        `${d.decision}${d.final_culpability ? `: ${d.final_culpability}` : ''}.`,
        d.notes ? h('blockquote', {}, d.notes) : null,
      ];
    case 'case_escalated':
      return [d.notes ? h('blockquote', {}, d.notes) : null];
    case 'case_reopened':
      return [d.reason ? h('blockquote', {}, d.reason) : null];
    default:
      return [];
  }
}

/** The `li` elements of a history. */
export function timelineItems(events, me, names) {
  return events.map((e) =>
    h(
      'li',
      { class: `event event-${e.type}`, dataset: { eventType: e.type, position: e.position } },
      h(
        'div',
        { class: 'event-head' },
        h('strong', {}, EVENT_LABELS[e.type] || e.type),
        ' by ',
        h('span', { class: 'event-who' }, who(e.user_id, me, names)),
        h('time', { datetime: e.recorded_at, class: 'muted' }, utc(e.recorded_at)),
      ),
      h('div', { class: 'event-body' }, details(e, me, names)),
      h('p', { class: 'event-meta muted' }, `position ${e.position} · version ${e.version}`),
    ),
  );
}

/** User names for ids, for admins (others see "you" or a short id). */
export async function userNames(api, user) {
  const names = new Map();
  if (!user.roles.includes('admin')) return names;
  try {
    const { users } = await api('/api/v1/users');
    for (const u of users || []) names.set(u.id, u.username);
  } catch {
    /* names are a nicety */
  }
  return names;
}
