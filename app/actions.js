// What a user may do to a case (claim, release, decide), the buttons for it, and the dialog
// that records a decision or shows a 409 `version_conflict` with the case as it is now.
// The server decides in the end; these rules only choose which buttons to show.

import { h, replace } from './dom.js';
import { CULPABILITIES, STATUS_LABELS, countdown, percent, who } from './format.js';
import { api } from './session.js';

const REVIEWERS = ['reviewer', 'senior_reviewer'];
const has = (user, roles) => !!user && user.roles.some((r) => roles.includes(r));
const leaseLeft = (c, now) => (c.claim_expires_at ? Date.parse(c.claim_expires_at) - now : 0);

/** The actions `user` may take on `c` now: `{ claim: label|null, release, decide }`. */
export function allowedActions(c, user, now = Date.now()) {
  const mine = !!user && c.claimed_by === user.id;
  const expired = c.adjudication_status === 'in_review' && leaseLeft(c, now) <= 0;
  let claim = null;
  if (c.adjudication_status === 'pending' && has(user, REVIEWERS)) claim = 'Claim';
  else if (c.adjudication_status === 'escalated' && has(user, ['senior_reviewer'])) claim = 'Claim';
  else if (c.adjudication_status === 'in_review' && mine && !expired) claim = 'Renew claim';
  else if (expired && has(user, REVIEWERS)) claim = 'Claim';
  return {
    claim,
    release: c.adjudication_status === 'in_review' && (mine || has(user, ['admin'])),
    decide: c.adjudication_status === 'in_review' && mine && !expired,
  };
}

/** The action buttons of a case; `run(kind)` is called on click. */
export function actionButtons(c, user, run) {
  const allowed = allowedActions(c, user);
  const label = c.subject_ref;
  return [
    allowed.claim &&
      h('button', { type: 'button', class: 'button button-primary', dataset: { action: 'claim' }, 'aria-label': `${allowed.claim}: ${label}`, onclick: () => run('claim') }, allowed.claim),
    allowed.decide &&
      h('button', { type: 'button', class: 'button button-primary', dataset: { action: 'decide' }, 'aria-label': `Decide: ${label}`, onclick: () => run('decide') }, 'Decide'),
    allowed.release &&
      h('button', { type: 'button', class: 'button', dataset: { action: 'release' }, 'aria-label': `Release: ${label}`, onclick: () => run('release') }, 'Release'),
  ].filter(Boolean);
}

/** A server's field message ("is required for amend") as a sentence shown beside its field. */
export function besideTheField(message) {
  const text = String(message).replace(/^is /, '').replace(/\.$/, '');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

/**
 * The decision/conflict dialog of a page. `onCase(c)` receives every case the server answers
 * (so the page shows it before the push arrives); `notice` shows refusals.
 */
export function createCaseDialog({ user, onCase, notice }) {
  let retry = null; // what "Retry" does after a conflict
  let current = null; // the case the form is for

  const title = h('h2', { id: 'decision-title' }, 'Decide');
  const summary = h('p', { class: 'muted', id: 'decision-summary' });
  const conflictBody = h('div');
  const conflictRetry = h('button', { type: 'button', id: 'conflict-retry', class: 'button button-primary' }, 'Retry');
  const conflict = h(
    'div',
    { id: 'conflict', class: 'conflict', role: 'alert', hidden: true },
    h('p', { class: 'conflict-title' }, 'This case changed since you last saw it. This is how it stands now:'),
    conflictBody,
    h('div', { class: 'button-row' }, conflictRetry),
  );
  conflictRetry.addEventListener('click', () => retry && retry());

  const decision = h(
    'select',
    { id: 'decision', name: 'decision', 'aria-describedby': 'decision-error' },
    h('option', { value: 'confirm' }, 'Confirm the assessment'),
    h('option', { value: 'amend' }, 'Amend the culpability'),
    h('option', { value: 'reject' }, 'Reject the assessment'),
    h('option', { value: 'escalate' }, 'Escalate to a senior reviewer'),
  );
  const culpability = h(
    'select',
    { id: 'final-culpability', name: 'final_culpability', 'aria-describedby': 'final-culpability-hint final-culpability-error' },
    h('option', { value: '' }, 'Choose…'),
    CULPABILITIES.map((c) => h('option', { value: c }, c)),
  );
  const notes = h('textarea', { id: 'notes', name: 'notes', rows: '4', maxlength: '4000', 'aria-describedby': 'notes-hint notes-error' });
  const notesHint = h('p', { class: 'hint', id: 'notes-hint' }, '');
  const culpabilityField = h(
    'div',
    { class: 'field', hidden: true },
    h('label', { for: 'final-culpability' }, 'Final culpability'),
    culpability,
    h('p', { class: 'hint', id: 'final-culpability-hint' }, 'Must differ from the assessed one.'),
    h('p', { class: 'field-error', id: 'final-culpability-error', dataset: { errorFor: 'final_culpability' } }),
  );
  const formError = h('p', { class: 'form-error', dataset: { errorFor: 'form' }, role: 'alert' });
  const submit = h('button', { type: 'submit', id: 'decision-submit', class: 'button button-primary' }, 'Record decision');
  const cancel = h('button', { type: 'button', class: 'button button-quiet', onclick: () => close() }, 'Cancel');

  const syncFields = () => {
    culpabilityField.hidden = decision.value !== 'amend';
    notesHint.textContent = decision.value === 'confirm' ? 'Notes (optional for confirm).' : `Notes are required to ${decision.value}.`;
  };
  decision.addEventListener('change', syncFields);

  const form = h(
    'form',
    { id: 'decision-form', class: 'stack', novalidate: true, onsubmit: (e) => { e.preventDefault(); decide(current && current.version); } },
    h('div', { class: 'field' }, h('label', { for: 'decision' }, 'Decision'), decision, h('p', { class: 'field-error', id: 'decision-error', dataset: { errorFor: 'decision' } })),
    culpabilityField,
    h('div', { class: 'field' }, h('label', { for: 'notes' }, 'Notes'), notes, notesHint, h('p', { class: 'field-error', id: 'notes-error', dataset: { errorFor: 'notes' } })),
    formError,
    h('div', { class: 'button-row' }, submit, cancel),
  );

  const dialog = h('dialog', { id: 'case-dialog', class: 'dialog', 'aria-labelledby': 'decision-title' }, title, summary, conflict, form);
  dialog.addEventListener('close', () => {
    retry = null;
  });

  function clearErrors() {
    for (const el of dialog.querySelectorAll('[data-error-for]')) el.textContent = '';
    for (const el of dialog.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  function showErrors(problem) {
    let placed = false;
    for (const { field, message } of problem.errors) {
      const slot = dialog.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
      if (slot) {
        slot.textContent = besideTheField(message);
        const input = form.elements.namedItem(field);
        if (input) input.setAttribute('aria-invalid', 'true');
        placed = true;
      }
    }
    if (!placed) formError.textContent = problem.detail;
    const invalid = form.querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus();
  }

  function showConflict(problem, again) {
    const now = problem.current;
    if (now) {
      current = now;
      onCase(now);
      replace(
        conflictBody,
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Status'),
          h('dd', {}, STATUS_LABELS[now.adjudication_status] || now.adjudication_status),
          h('dt', {}, 'Claimed by'),
          h('dd', {}, now.claimed_by ? who(now.claimed_by, user) : 'nobody'),
          now.claim_expires_at && h('dt', {}, 'Lease left'),
          now.claim_expires_at && h('dd', {}, countdown(Date.parse(now.claim_expires_at) - Date.now())),
          now.decision && h('dt', {}, 'Decision'),
          now.decision && h('dd', {}, now.decision),
          h('dt', {}, 'Version'),
          h('dd', {}, String(now.version)),
        ),
      );
    }
    retry = () => again(current && current.version);
    conflictRetry.textContent = form.hidden ? 'Retry with the current version' : 'Submit again against this version';
    conflict.hidden = false;
    conflictRetry.focus();
  }

  async function decide(version) {
    clearErrors();
    conflict.hidden = true;
    const body = { decision: decision.value, notes: notes.value };
    if (decision.value === 'amend' && culpability.value) body.final_culpability = culpability.value;
    submit.disabled = true;
    try {
      const after = await api(`/api/v1/cases/${current.id}/decision`, { method: 'POST', body, ifMatch: version });
      onCase(after);
      close();
    } catch (problem) {
      if (problem.code === 'version_conflict') showConflict(problem, decide);
      else if (problem.errors && problem.errors.length) showErrors(problem);
      else formError.textContent = problem.detail;
    } finally {
      submit.disabled = false;
    }
  }

  function open(c, mode) {
    current = c;
    clearErrors();
    conflict.hidden = true;
    form.hidden = mode !== 'decide';
    form.dataset.caseId = c.id;
    title.textContent = mode === 'decide' ? `Decide: ${c.subject_ref}` : c.subject_ref;
    summary.textContent = `Assessed ${c.assessment.culpability} with ${percent(c.assessment.confidence)} confidence.`;
    if (mode === 'decide') {
      decision.value = 'confirm';
      culpability.value = '';
      notes.value = '';
      syncFields();
    }
    if (!dialog.open) dialog.showModal();
    if (mode === 'decide') decision.focus();
  }

  function close() {
    if (dialog.open) dialog.close();
  }

  /** Claims or releases (with `If-Match`), or opens the decision form. */
  async function run(kind, c) {
    if (kind === 'decide') {
      open(c, 'decide');
      return;
    }
    const command = async (version) => {
      try {
        const after = await api(`/api/v1/cases/${c.id}/${kind}`, { method: 'POST', ifMatch: version });
        onCase(after);
        close();
        return after;
      } catch (problem) {
        if (problem.code === 'version_conflict') {
          open(current || c, 'conflict');
          showConflict(problem, command);
        } else {
          close();
          notice.show(problem.code, `Could not ${kind} “${c.subject_ref}”: ${problem.detail}`);
        }
        return null;
      }
    };
    current = c;
    return command(c.version);
  }

  return { element: dialog, run, close };
}
