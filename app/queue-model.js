// The queue window the page shows: the first `limit` matching cases in the server's queue
// order, kept current by updates. Pure logic, no DOM.
//
// The server orders the queue by priority (urgent first), then submission time, then id, and
// windows the `queue` snapshot (`{cases, total, next}`); updates are not windowed, so this
// model inserts, moves and drops cases itself. A server from before the queue window sends the
// whole queue as an array: then the model holds every case and shows the first `limit`.

import { micros } from './format.js';

export const OPEN_STATUSES = ['pending', 'in_review', 'escalated'];
const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };

/** The server's queue order. */
export function compareCases(a, b) {
  const p = (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9);
  if (p) return p;
  const t = micros(a.submitted_at) - micros(b.submitted_at);
  if (t) return t;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class QueueWindow {
  constructor({ limit = 100, statuses = OPEN_STATUSES } = {}) {
    this.limit = limit;
    this.statuses = [...statuses];
    this.cases = [];
    this.total = 0;
    this.next = null;
    this.complete = true; // every matching case is held
    this.holdsAll = false; // the legacy whole-queue snapshot
    this.ready = false;
  }

  matches(c) {
    return c && c.adjudication_status !== 'decided' && this.statuses.includes(c.adjudication_status);
  }

  /** A `queue` snapshot's data: `{cases, total, next}`, or (older servers) an array. */
  applySnapshot(data) {
    if (Array.isArray(data)) {
      this.holdsAll = true;
      this.cases = data.filter((c) => this.matches(c)).sort(compareCases);
      this.total = this.cases.length;
      this.next = null;
      this.complete = true;
    } else {
      const cases = (data && Array.isArray(data.cases) ? data.cases : []).filter((c) => this.matches(c));
      this.holdsAll = false;
      this.cases = cases.sort(compareCases);
      this.total = Number.isFinite(data && data.total) ? data.total : this.cases.length;
      this.next = (data && data.next) || null;
      this.complete = !this.next && this.total <= this.cases.length;
    }
    this.ready = true;
  }

  /** The live `stats` give the exact number of matching cases. */
  applyStats(stats) {
    if (!stats || this.holdsAll) return;
    const total = this.statuses.reduce((n, s) => n + (Number(stats[s]) || 0), 0);
    if (!Number.isFinite(total)) return;
    this.total = total;
    if (total <= this.cases.length) this.complete = true;
  }

  /**
   * One `queue` update (the case after `event`). Answers what changed for the page:
   * `{ change: 'none'|'added'|'changed'|'removed', announced }`, `announced` when a new case
   * entered the queue.
   */
  applyUpdate(event, c) {
    if (!c || !c.id) return { change: 'none', announced: false };
    const at = this.cases.findIndex((x) => x.id === c.id);
    if (at >= 0 && Number(this.cases[at].version) >= Number(c.version)) return { change: 'none', announced: false };
    if (at >= 0) this.cases.splice(at, 1);
    const announced = event === 'case_submitted' && this.matches(c);
    if (!this.matches(c)) {
      if (this.holdsAll) this.total = this.cases.length;
      return { change: at >= 0 ? 'removed' : 'none', announced: false };
    }
    const place = this.insertionPoint(c);
    const beyond = !this.complete && !this.holdsAll && place >= this.cases.length;
    if (beyond) {
      // It sorts after the last case we hold, and there are cases in between we do not have
      // (the `stats` update that follows counts it in the total).
      return { change: at >= 0 ? 'removed' : 'none', announced };
    }
    this.cases.splice(place, 0, c);
    if (this.holdsAll) {
      this.total = this.cases.length;
    } else if (this.cases.length > this.limit) {
      this.cases.length = this.limit;
      this.complete = false;
    }
    return { change: at >= 0 ? 'changed' : 'added', announced };
  }

  insertionPoint(c) {
    let lo = 0;
    let hi = this.cases.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareCases(this.cases[mid], c) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The cases to show, in order. */
  visible() {
    return this.holdsAll ? this.cases.slice(0, this.limit) : this.cases;
  }

  /** The window lost cases that the server still has beyond it: time for a fresh snapshot. */
  needsRefill() {
    return this.ready && !this.holdsAll && !this.complete && this.cases.length < Math.min(this.limit, this.total);
  }

  get(id) {
    return this.cases.find((c) => c.id === id) || null;
  }
}
