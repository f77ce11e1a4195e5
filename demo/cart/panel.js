// The panel of `tether demo` on the cart page: it calls the demo's control
// API (/demo/api/, same origin, through the balancer) to kill, drain and
// restart nodes, and shows each node's process and balancer state. Data is
// written with textContent only.
(function () {
  'use strict';
  const panel = document.getElementById('demo-panel');
  if (!panel) return;
  const token = panel.dataset.token;
  const me = panel.dataset.node;
  const status = document.getElementById('panel-status');

  function say(text) { status.textContent = text; }

  async function act(route, action) {
    say(action + ' ' + route + '…');
    const resp = await fetch('/demo/api/nodes/' + encodeURIComponent(route) + '/' + action, {
      method: 'POST', headers: { 'X-Demo-Token': token },
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) { say(action + ' ' + route + ' failed: ' + (body.error || resp.status)); return false; }
    return true;
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    if (cls) { const s = document.createElement('span'); s.className = 'pill ' + cls; s.textContent = text; td.appendChild(s); }
    else td.textContent = text;
    return td;
  }

  function button(label, route, action, cls) {
    const b = document.createElement('button');
    b.type = 'button'; b.className = 'small ' + (cls || 'secondary'); b.textContent = label;
    b.addEventListener('click', async () => { if (await act(route, action)) refresh(); });
    return b;
  }

  async function refresh() {
    const resp = await fetch('/demo/api/info', { cache: 'no-store' });
    if (!resp.ok) { say('the demo control API answered ' + resp.status); return; }
    const info = await resp.json();
    document.getElementById('manager-link').href = info.manager_url;
    const rows = document.getElementById('nodes');
    rows.replaceChildren();
    for (const n of info.nodes) {
      const tr = document.createElement('tr');
      if (n.route === me) tr.className = 'me';
      tr.appendChild(cell(n.route + (n.route === me ? ' (you)' : '')));
      tr.appendChild(cell(n.running ? 'running, pid ' + n.pid : (n.killed ? 'killed' : 'stopped'), n.running ? 'active' : 'killed'));
      const m = n.member || {};
      tr.appendChild(cell((m.state || '?') + (m.healthy === false ? ', down' : ''), m.healthy === false ? 'down' : (m.state || '')));
      tr.appendChild(cell(m.live_sessions === undefined ? '' : String(m.live_sessions)));
      const c = n.cluster;
      if (!c) tr.appendChild(cell(''));
      else if (c.majority) tr.appendChild(cell('majority; owns ' + c.owned + ', ' + c.leased + ' leased', 'active'));
      else tr.appendChild(cell('no majority (' + c.no_majority + ' refused)', 'down'));
      const td = document.createElement('td');
      if (n.running) td.appendChild(button('kill', n.route, 'kill', 'danger'));
      else td.appendChild(button('restart', n.route, 'restart'));
      if (m.state === 'active') td.appendChild(button('drain', n.route, 'drain', 'warn'));
      else if (m.state) td.appendChild(button('enable', n.route, 'enable'));
      tr.appendChild(td);
      rows.appendChild(tr);
    }
  }

  document.getElementById('kill-me').addEventListener('click', async () => {
    if (await act(me, 'kill')) {
      say('Killed ' + me + ' (SIGKILL). Add an item or reload: another node takes your session over, cart intact.');
      refresh();
    }
  });
  document.getElementById('drain-me').addEventListener('click', async () => {
    if (await act(me, 'drain')) {
      say('Draining ' + me + ': your next request moves your session to another node.');
      refresh();
    }
  });
  refresh();
  setInterval(refresh, 2000);
})();
