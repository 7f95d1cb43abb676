// Words and numbers for people: statuses, priorities, ages, countdowns, times.

export const STATUS_LABELS = {
  pending: 'Pending',
  in_review: 'In review',
  escalated: 'Escalated',
  decided: 'Decided',
};

export const PRIORITY_LABELS = { urgent: 'Urgent', high: 'High', normal: 'Normal', low: 'Low' };

export const CULPABILITIES = ['purposely', 'knowingly', 'recklessly', 'negligently', 'none'];

export const EVENT_LABELS = {
  case_submitted: 'Submitted',
  case_claimed: 'Claimed',
  case_released: 'Released',
  case_decided: 'Decided',
  case_escalated: 'Escalated',
  case_reopened: 'Reopened',
};

/** "4 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
  const d = Math.floor(hours / 24);
  return hours % 24 ? `${d} d ${hours % 24} h` : `${d} d`;
}

/** "14:05" (m:ss) under an hour, else like `duration`. */
export function countdown(ms) {
  if (ms <= 0) return '0:00';
  const s = Math.ceil(ms / 1000);
  if (s >= 3600) return duration(ms);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** An RFC 3339 time as "2026-12-02 03:31:05 UTC". */
export function utc(text) {
  if (!text) return '';
  const t = new Date(text);
  if (Number.isNaN(t.getTime())) return String(text);
  return `${t.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Microseconds since the epoch of an RFC 3339 time the server wrote (keeps its µs). */
export function micros(text) {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text || '');
  if (!match) return 0;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  const fraction = (match[2] || '').padEnd(6, '0').slice(0, 6);
  return seconds * 1000 + Number(fraction);
}

/** A user id shown short, or "you". */
export function who(userId, me, names) {
  if (!userId) return '—';
  if (me && userId === me.id) return 'you';
  if (names && names.get(userId)) return names.get(userId);
  return `user ${String(userId).slice(0, 8)}`;
}

export function percent(x) {
  return Number.isFinite(x) ? `${Math.round(x * 100)} %` : '';
}

export function number(n) {
  return Number.isFinite(n) ? n.toLocaleString('en') : '—';
}
