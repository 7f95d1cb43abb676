// The audit (auditors, admins): any case's history; the queue as it stood at a chosen instant
// or position; the hash chains' verification; and the NDJSON export, fetched with the access
// token and handed to the browser as a download.

import { h, replace, setText } from '../dom.js';
import { PRIORITY_LABELS, STATUS_LABELS, number, utc } from '../format.js';
import { api } from '../session.js';
import { timelineItems, userNames } from '../timeline.js';

export const title = 'Audit';

/** `<input type=datetime-local>` text read as UTC, to RFC 3339. */
export function localInputToUtc(value) {
  if (!value) return null;
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  const t = new Date(`${withSeconds}Z`);
  return Number.isNaN(t.getTime()) ? null : t.toISOString();
}

/** Now (UTC) as `<input type=datetime-local step=1>` text. */
function utcInputValue(date = new Date()) {
  return date.toISOString().slice(0, 19);
}

export function mount(root, ctx) {
  const { client, user } = ctx;
  let names = new Map();
  let head = 0;
  let asOfMode = 'position';

  // -- a case's history --
  const caseId = h('input', { id: 'audit-case-id', name: 'case-id', placeholder: '01a2…-uuid', spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'audit-case-error' });
  const caseError = h('p', { class: 'field-error', id: 'audit-case-error', role: 'alert' });
  const history = h('ol', { id: 'audit-history', class: 'timeline', 'aria-label': 'The case’s history, oldest first' });
  const loadCase = async () => {
    const id = caseId.value.trim().toLowerCase();
    caseError.textContent = '';
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) {
      caseError.textContent = 'Enter a case id (a UUID).';
      caseId.setAttribute('aria-invalid', 'true');
      caseId.focus();
      return;
    }
    caseId.removeAttribute('aria-invalid');
    try {
      const events = await api(`/api/v1/cases/${id}/history`);
      replace(history, timelineItems(events, user, names));
      if (!events.length) caseError.textContent = 'This case has no history.';
    } catch (p) {
      replace(history);
      caseError.textContent = p.status === 404 ? 'There is no case with this id.' : p.detail;
    }
  };
  const caseCard = h(
    'section',
    { class: 'card', 'aria-labelledby': 'audit-case-title' },
    h('h2', { id: 'audit-case-title' }, 'A case’s history'),
    h(
      'form',
      { class: 'inline-form', onsubmit: (e) => { e.preventDefault(); loadCase(); } },
      h('div', { class: 'field grow' }, h('label', { for: 'audit-case-id' }, 'Case id'), caseId, caseError),
      h('button', { id: 'audit-case-load', type: 'submit', class: 'button button-primary' }, 'Show history'),
    ),
    history,
  );

  // -- the queue as of --
  const when = h('input', { id: 'asof-datetime', type: 'datetime-local', step: '1', value: utcInputValue() });
  const position = h('input', { id: 'asof-position', type: 'number', min: '1', step: '1', inputmode: 'numeric' });
  const slider = h('input', { id: 'asof-slider', type: 'range', min: '1', max: '1', step: '1', 'aria-label': 'Position in the event log' });
  const label = h('p', { id: 'asof-label', class: 'muted', 'aria-live': 'polite' }, 'Choose an instant or a position.');
  const asofError = h('p', { class: 'field-error', role: 'alert' });
  const asofList = h('ol', { id: 'asof-queue', class: 'compact-list', 'aria-labelledby': 'asof-label' });
  const headNote = h('span', { class: 'muted' });
  when.addEventListener('input', () => {
    asOfMode = 'instant';
  });
  position.addEventListener('input', () => {
    asOfMode = 'position';
    if (position.value) slider.value = position.value;
  });
  slider.addEventListener('input', () => {
    asOfMode = 'position';
    position.value = slider.value;
  });
  slider.addEventListener('change', () => loadAsOf());

  async function loadAsOf() {
    asofError.textContent = '';
    let param;
    let named;
    if (asOfMode === 'instant') {
      param = localInputToUtc(when.value);
      if (!param) {
        asofError.textContent = 'Enter a date and time (UTC).';
        when.focus();
        return;
      }
      named = utc(param);
    } else {
      const p = Number(position.value);
      if (!Number.isInteger(p) || p < 1) {
        asofError.textContent = 'Enter a position from 1 on.';
        position.focus();
        return;
      }
      param = String(p);
      named = `position ${number(p)}`;
    }
    setText(label, `Loading the queue as of ${named}…`);
    try {
      const { cases } = await api(`/api/v1/audit/queue?as_of=${encodeURIComponent(param)}`);
      replace(
        asofList,
        cases.map((c) =>
          h(
            'li',
            { dataset: { caseId: c.id, status: c.adjudication_status } },
            h('span', { class: `badge badge-${c.priority}` }, PRIORITY_LABELS[c.priority] || c.priority),
            h('a', { href: `#/case/${c.id}` }, c.subject_ref),
            h('span', { class: `status status-${c.adjudication_status}` }, STATUS_LABELS[c.adjudication_status] || c.adjudication_status),
          ),
        ),
      );
      asofList.dataset.asOf = param;
      setText(label, `The queue as of ${named}: ${number(cases.length)} case${cases.length === 1 ? '' : 's'} not yet decided.`);
    } catch (p) {
      setText(label, 'Choose an instant or a position.');
      asofError.textContent = p.detail;
    }
  }

  const asofCard = h(
    'section',
    { class: 'card', 'aria-labelledby': 'asof-title' },
    h('h2', { id: 'asof-title' }, 'The queue as it stood'),
    h(
      'form',
      { class: 'stack', onsubmit: (e) => { e.preventDefault(); loadAsOf(); } },
      h('div', { class: 'field' }, h('label', { for: 'asof-datetime' }, 'At an instant (UTC)'), when),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'asof-position' }, 'Or at a position ', headNote),
        h('div', { class: 'slider-row' }, slider, position),
      ),
      asofError,
      h('div', { class: 'button-row' }, h('button', { id: 'asof-load', type: 'submit', class: 'button button-primary' }, 'Show the queue')),
    ),
    label,
    asofList,
  );

  // -- chain verification --
  const verifyResult = h('div', { id: 'verify-result', 'aria-live': 'polite' });
  const verifyRun = h('button', { id: 'verify-run', type: 'button', class: 'button button-primary' }, 'Verify every chain');
  verifyRun.addEventListener('click', async () => {
    verifyRun.disabled = true;
    verifyResult.removeAttribute('data-ok');
    replace(verifyResult, h('p', { class: 'muted' }, 'Verifying…'));
    try {
      const r = await api('/api/v1/audit/verify');
      verifyResult.dataset.ok = String(!!r.ok);
      const failures = r.failures || [];
      replace(
        verifyResult,
        h(
          'p',
          { class: r.ok ? 'ok' : 'bad' },
          r.ok ? 'Every hash chain is intact: ' : 'Broken chains found: ',
          `${number(r.streams_checked)} streams, ${number(r.events_checked)} events checked.`,
        ),
        failures.length ? h('ul', { class: 'failures' }, failures.map((f) => h('li', {}, typeof f === 'string' ? f : JSON.stringify(f)))) : null,
      );
    } catch (p) {
      verifyResult.dataset.ok = 'false';
      replace(verifyResult, h('p', { class: 'bad' }, `The verification failed: ${p.detail}`));
    } finally {
      verifyRun.disabled = false;
    }
  });
  const verifyCard = h(
    'section',
    { class: 'card', 'aria-labelledby': 'verify-title' },
    h('h2', { id: 'verify-title' }, 'Hash chains'),
    h('p', { class: 'muted' }, 'Recomputes every stream’s SHA-256 chain: any edited, removed or reordered event shows here.'),
    verifyRun,
    verifyResult,
  );

  // -- export --
  const exportStatus = h('p', { id: 'export-status', class: 'muted', 'aria-live': 'polite' });
  const exportLink = h('a', { id: 'export-download', class: 'button', href: '/api/v1/audit/export', download: 'adjudicator-export.ndjson' }, 'Download the NDJSON export');
  let blobUrl = null;
  exportLink.addEventListener('click', async (e) => {
    if (exportLink.dataset.ready === 'true') {
      delete exportLink.dataset.ready; // the second, programmatic click downloads the blob
      return;
    }
    e.preventDefault();
    setText(exportStatus, 'Preparing the export…');
    try {
      const answer = await api('/api/v1/audit/export', { raw: true });
      const blob = await answer.blob();
      if (blobUrl) URL.revokeObjectURL(blobUrl);
      blobUrl = URL.createObjectURL(new Blob([blob], { type: 'application/x-ndjson' }));
      const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
      exportLink.download = `adjudicator-export-${stamp}.ndjson`;
      exportLink.href = blobUrl;
      exportLink.dataset.ready = 'true';
      exportLink.click();
      const lines = (await blob.text()).split('\n').filter(Boolean).length;
      setText(exportStatus, `Exported ${number(lines)} events (${number(Math.ceil(blob.size / 1024))} KB).`);
    } catch (p) {
      setText(exportStatus, `The export failed: ${p.detail || p.message}`);
    }
  });
  const exportCard = h(
    'section',
    { class: 'card', 'aria-labelledby': 'export-title' },
    h('h2', { id: 'export-title' }, 'Export'),
    h('p', { class: 'muted' }, 'Every event, one JSON object a line, with its hashes.'),
    exportLink,
    exportStatus,
  );

  root.append(
    h(
      'section',
      { id: 'audit-page', class: 'page', 'aria-labelledby': 'audit-title' },
      h('div', { class: 'page-head' }, h('h1', { id: 'audit-title' }, 'Audit')),
      h('div', { class: 'grid' }, caseCard, asofCard, verifyCard, exportCard),
    ),
  );

  // -- the head position, live --
  const setHead = (p) => {
    if (!Number.isFinite(p) || p <= 0) return;
    const follow = !position.value || Number(position.value) === head;
    head = p;
    slider.max = String(p);
    position.max = String(p);
    setText(headNote, `(1 to ${number(p)})`);
    if (follow) {
      position.value = String(p);
      slider.value = String(p);
    }
  };
  const onStats = ({ data, position }) => data && setHead(data.position || position);
  const subscription = client.subscribe(['stats'], { onSnapshot: onStats, onUpdate: onStats });
  api('/api/v1/stats').then((s) => setHead(s.position), () => {});
  userNames(api, user).then((n) => {
    names = n;
  });

  return () => {
    subscription.close();
    if (blobUrl) URL.revokeObjectURL(blobUrl);
  };
}
