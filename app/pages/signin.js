// Sign in: username and password; refusals (wrong credentials, too many attempts, an invalid
// saved session) are shown in `#signin-error`.

import { h } from '../dom.js';
import { duration } from '../format.js';
import { signIn } from '../session.js';

export const title = 'Sign in';

export function mount(root, ctx) {
  const error = h('p', { id: 'signin-error', class: 'form-error', role: 'alert', hidden: !ctx.signinError }, ctx.signinError || '');
  const username = h('input', {
    id: 'signin-username',
    name: 'username',
    autocomplete: 'username',
    autocapitalize: 'none',
    spellcheck: 'false',
    required: true,
    maxlength: '64',
  });
  const password = h('input', {
    id: 'signin-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
    maxlength: '256',
  });
  const submit = h('button', { id: 'signin-submit', type: 'submit', class: 'button button-primary button-wide' }, 'Sign in');

  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };

  const form = h(
    'form',
    {
      id: 'signin-form',
      class: 'stack',
      novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        if (!username.value.trim() || !password.value) {
          fail('Enter your username and your password.');
          (username.value.trim() ? password : username).focus();
          return;
        }
        submit.disabled = true;
        submit.textContent = 'Signing in…';
        try {
          await signIn(username.value.trim(), password.value);
          password.value = '';
          await ctx.onSignedIn();
        } catch (p) {
          if (p.status === 429) {
            const wait = p.retryAfter ? ` Try again in ${duration(p.retryAfter * 1000)}.` : ' Try again later.';
            fail(`Too many failed attempts.${wait}`);
          } else if (p.status === 503) {
            const wait = p.retryAfter ? ` Try again in ${duration(p.retryAfter * 1000)}.` : ' Try again in a moment.';
            fail(`The server is busy.${wait}`);
          } else if (p.status === 401) {
            fail('The username or the password is wrong.');
          } else if (p.status === 0) {
            fail('The server cannot be reached. Check that it is running, then try again.');
          } else {
            fail(p.detail || 'Signing in failed.');
          }
          password.select();
          password.focus();
        } finally {
          submit.disabled = false;
          submit.textContent = 'Sign in';
        }
      },
    },
    h('div', { class: 'field' }, h('label', { for: 'signin-username' }, 'Username'), username),
    h('div', { class: 'field' }, h('label', { for: 'signin-password' }, 'Password'), password),
    error,
    submit,
  );

  root.append(
    h(
      'section',
      { id: 'signin-page', class: 'signin', 'aria-labelledby': 'signin-title' },
      h(
        'div',
        { class: 'card signin-card' },
        h('h1', { id: 'signin-title' }, 'Sign in'),
        h('p', { class: 'muted' }, 'Review machine-made mens rea assessments, audit decisions, run the service.'),
        form,
      ),
    ),
  );
  username.focus();
  return () => {};
}
