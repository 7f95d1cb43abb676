// The connection indicator (`#connection`) and the message banner (`#notice`), on every page.

import { $, setText } from './dom.js';
import { countdown } from './format.js';

const LABELS = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
};

/** Shows a client's state, its session id, the next try's countdown and the last RTT. */
export function bindIndicator(client) {
  const box = $('#connection');
  const retry = $('#connection-retry');
  let ticker = null;

  const tick = () => {
    const left = client.retryAt ? client.retryAt - Date.now() : null;
    if (client.state === 'reconnecting' && left !== null && left > 0) {
      retry.hidden = false;
      setText(retry, `next try in ${left < 60000 ? `${Math.ceil(left / 1000)} s` : countdown(left)}`);
    } else if (client.state === 'reconnecting') {
      retry.hidden = false;
      setText(retry, 'trying now');
    } else {
      retry.hidden = true;
      setText(retry, '');
    }
  };

  const onState = () => {
    const state = client.state === 'idle' ? 'connecting' : client.state;
    box.dataset.state = state;
    box.dataset.sessionId = client.sessionId || '';
    let label = LABELS[state] || state;
    if (state === 'offline' && client.waitingForNetwork) label = 'Offline (no network)';
    setText($('#connection-label'), label);
    clearInterval(ticker);
    tick();
    if (state === 'reconnecting') ticker = setInterval(tick, 250);
  };
  const onRtt = () => {
    box.dataset.rttMs = String(client.rttMs ?? '');
    setText($('#connection-rtt'), client.rttMs === null ? '' : `RTT ${client.rttMs} ms`);
    $('#connection-rtt').title = 'Round-trip time of the last ping';
  };

  client.addEventListener('state', onState);
  client.addEventListener('welcome', onState);
  client.addEventListener('rtt', onRtt);
  onState();
  return () => {
    clearInterval(ticker);
    client.removeEventListener('state', onState);
    client.removeEventListener('welcome', onState);
    client.removeEventListener('rtt', onRtt);
    showSignedOut();
  };
}

/** The indicator with no session at all. */
export function showSignedOut() {
  const box = $('#connection');
  box.dataset.state = 'offline';
  box.dataset.sessionId = '';
  box.dataset.rttMs = '';
  setText($('#connection-label'), 'Not connected');
  $('#connection-retry').hidden = true;
  setText($('#connection-rtt'), '');
}

/** The banner: `reason` is the machine code (kept in `data-reason`), `text` the words. */
export const notice = {
  show(reason, text, { reconnect = null } = {}) {
    const box = $('#notice');
    box.dataset.reason = reason || '';
    setText($('#notice-text'), text);
    const button = $('#notice-reconnect');
    button.hidden = !reconnect;
    button.onclick = reconnect
      ? () => {
          notice.clear();
          reconnect();
        }
      : null;
    box.hidden = false;
  },
  /** Clears the banner (only if it shows one of `reasons`, when given). */
  clear(reasons = null) {
    const box = $('#notice');
    if (reasons && !reasons.includes(box.dataset.reason)) return;
    box.hidden = true;
    box.dataset.reason = '';
    setText($('#notice-text'), '');
  },
  get reason() {
    return $('#notice').dataset.reason;
  },
};
