// Tether manager UI. Plain JavaScript, no library, no build step.
//
// Security rules this file keeps (the page's Content-Security-Policy
// enforces the first two):
//  - every value from the server is rendered with textContent, never as
//    markup (Trusted Types make every HTML-parsing sink throw);
//  - no inline script or style: styles are set through element.style;
//  - the token lives in sessionStorage (this tab only) and is sent in the
//    Authorization header, never in a URL or a cookie (credentials: 'omit').
'use strict';

(function () {
  const TOKEN_KEY = 'tether.manager.token';
  const WINDOW = 180; // seconds of history in the charts
  const PALETTE = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#4f46e5', '#65a30d', '#db2777', '#0d9488'];
  const nf = new Intl.NumberFormat();
  const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

  const st = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    role: '',
    group: null,        // the group this instance is in (snapshot.group), if any
    stream: null,       // AbortController of the live feed
    retries: 0,
    lastAudit: 0,
    cards: new Map(),   // balancer name -> card
    noticeTimer: 0,
  };

  const $ = (sel, root) => (root || document).querySelector(sel);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const clone = (id) => $('#' + id).content.firstElementChild.cloneNode(true);

  // ---- API ---------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + st.token, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const err = new Error((data && data.error) || (res.status + ' ' + res.statusText));
      err.status = res.status;
      throw err;
    }
    return data;
  }

  const memberPath = (b, r) => '/api/v1/balancers/' + encodeURIComponent(b) + '/members/' + encodeURIComponent(r);

  // ---- sign in -----------------------------------------------------------

  function showLogin(message) {
    $('#app').hidden = true;
    $('#login').hidden = false;
    $('#signout').hidden = true;
    $('#role').hidden = true;
    setConn('off', 'signed out');
    const e = $('#login-error');
    e.textContent = message || '';
    e.hidden = !message;
    $('#token').focus();
  }

  async function signIn(token) {
    st.token = token;
    try {
      await api('GET', '/api/v1/balancers');
    } catch (err) {
      st.token = '';
      showLogin(err.status === 401 ? 'This token was refused.' : 'The manager could not be reached: ' + err.message);
      return;
    }
    try {
      st.role = (await api('GET', '/api/v1/whoami')).role;
    } catch (_) {
      st.role = 'read-only';
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $('#login').hidden = true;
    $('#app').hidden = false;
    $('#signout').hidden = false;
    const role = $('#role');
    role.textContent = st.role === 'read-only' ? 'read-only' : 'read-write';
    role.hidden = false;
    document.body.dataset.role = st.role;
    connect();
  }

  function signOut(message) {
    if (st.stream) st.stream.abort();
    st.stream = null;
    st.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    for (const c of st.cards.values()) c.root.remove();
    st.cards.clear();
    $('#audit tbody').replaceChildren();
    $('#audit-empty').hidden = false;
    st.lastAudit = 0;
    showLogin(message);
  }

  // ---- live feed (server-sent events read with fetch) -------------------

  function setConn(state, text) {
    $('#conn').dataset.state = state;
    $('#conn-text').textContent = text;
  }

  async function connect() {
    if (st.stream) st.stream.abort();
    const ctl = new AbortController();
    st.stream = ctl;
    setConn('connecting', 'connecting…');
    let res;
    try {
      res = await fetch('/api/v1/events?after=' + st.lastAudit, {
        headers: { Authorization: 'Bearer ' + st.token, Accept: 'text/event-stream' },
        cache: 'no-store', credentials: 'omit', signal: ctl.signal,
      });
    } catch (_) {
      if (!ctl.signal.aborted) retry(ctl);
      return;
    }
    if (res.status === 401) { signOut('The token was refused; sign in again.'); return; }
    if (!res.ok || !res.body) { retry(ctl); return; }
    setConn('live', 'live');
    st.retries = 0;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          onEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (_) { /* connection lost */ }
    if (!ctl.signal.aborted) retry(ctl, true);
  }

  function retry(ctl, soon) {
    if (st.stream !== ctl) return;
    const delay = soon && st.retries === 0 ? 200 : Math.min(10000, 500 * 2 ** st.retries);
    st.retries++;
    setConn('retry', 'reconnecting…');
    setTimeout(() => { if (st.stream === ctl && st.token) connect(); }, delay);
  }

  function onEvent(block) {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    let v;
    try { v = JSON.parse(data); } catch (_) { return; }
    if (event === 'snapshot') renderSnapshot(v);
    else if (event === 'audit') addAudit(v);
  }

  // ---- balancers ---------------------------------------------------------

  // renderGroup shows the group of instances this one is in, if any:
  // who is reachable, and whether this instance has the group's state.
  function renderGroup(g) {
    st.group = g || null;
    $('#group').hidden = !g;
    if (!g) return;
    let summary = 'this is ' + g.instance + ' · ';
    if (g.alone) summary += 'alone: no other instance reachable, serving with the state it has';
    else if (g.synced) summary += "synced: changes through any instance apply on every one; session counts are the group's";
    else summary += "not synced yet: the group's state has not arrived";
    $('#group-summary').textContent = summary;
    $('#group').dataset.state = g.alone ? 'alone' : (g.synced ? 'synced' : 'syncing');
    const tbody = $('#group-instances tbody');
    tbody.replaceChildren();
    for (const i of g.instances) {
      const tr = el('tr');
      tr.dataset.health = i.health;
      const since = i.since ? new Date(i.since).toLocaleTimeString() : '';
      const counts = i.self ? 'this instance' : (i.last_tallies ? 'received ' + new Date(i.last_tallies).toLocaleTimeString() : 'none yet');
      const health = el('td', 'health', i.health);
      health.dataset.health = i.health;
      tr.append(el('td', '', i.name + (i.self ? ' (this one)' : '')), el('td', 'muted', i.addr), health, el('td', 'muted', since), el('td', 'muted', counts));
      tbody.append(tr);
    }
  }

  function renderSnapshot(snap) {
    renderGroup(snap.group);
    const t = Date.parse(snap.time) / 1000;
    const seen = new Set();
    for (const b of snap.balancers) {
      seen.add(b.name);
      let card = st.cards.get(b.name);
      if (!card) {
        card = newCard(b.name);
        st.cards.set(b.name, card);
        $('#balancers').append(card.root);
      }
      updateCard(card, b, t);
    }
    for (const [name, card] of st.cards) {
      if (!seen.has(name)) { card.root.remove(); st.cards.delete(name); }
    }
  }

  function newCard(name) {
    const root = clone('tpl-balancer');
    root.dataset.balancer = name;
    $('.b-name', root).textContent = name;
    const card = { name, root, rows: new Map(), series: new Map(), colors: 0, lastT: 0 };
    $('.add-form', root).addEventListener('submit', (ev) => { ev.preventDefault(); addMember(card, ev.target); });
    return card;
  }

  function updateCard(card, b, t) {
    const root = card.root;
    $('.b-sessions', root).textContent = b.sessions === 'replicated' ? 'replicated sessions' : 'local sessions';
    $('.b-method', root).textContent = b.method;
    $('.b-drain', root).textContent = 'idle window ' + b.drain_idle + (b.drain_stop ? ' · stop when drained' : '');
    const un = $('.b-untracked', root);
    un.hidden = !b.untracked_sessions;
    un.textContent = b.untracked_sessions ? nf.format(b.untracked_sessions) + ' sessions were not tracked (tracking limit reached): live counts are lower bounds.' : '';

    const seen = new Set();
    let rps = 0; let live = 0; let up = 0;
    for (const m of b.members) {
      seen.add(m.route);
      let s = card.series.get(m.route);
      if (!s) {
        s = { color: PALETTE[card.colors++ % PALETTE.length], rps: [], live: [], prev: null };
        card.series.set(m.route, s);
      }
      let rate = 0;
      if (s.prev && t > s.prev.t && m.requests >= s.prev.requests) rate = (m.requests - s.prev.requests) / (t - s.prev.t);
      if (s.prev) push(s.rps, t, rate); // the first reading has no rate yet
      s.prev = { t, requests: m.requests };
      push(s.live, t, m.live_sessions);
      rps += rate; live += m.live_sessions; if (m.healthy) up++;

      let row = card.rows.get(m.route);
      if (!row) {
        row = newRow(card, m.route, s.color);
        card.rows.set(m.route, row);
        $('.members tbody', root).append(row);
      }
      updateRow(row, m, rate);
    }
    for (const [route, row] of card.rows) {
      if (!seen.has(route)) { row.remove(); card.rows.delete(route); card.series.delete(route); }
    }
    $('.b-rps', root).textContent = nf1.format(rps);
    $('.b-live', root).textContent = nf.format(live);
    $('.b-up', root).textContent = up + '/' + b.members.length;
    renderLegend(card);
    drawChart($('.c-rps', root), card, 'rps', t);
    drawChart($('.c-sessions', root), card, 'live', t);
  }

  function push(points, t, v) {
    points.push({ t, v });
    while (points.length && points[0].t < t - WINDOW - 5) points.shift();
  }

  function renderLegend(card) {
    const ul = $('.legend', card.root);
    const items = [];
    for (const [route, s] of card.series) {
      const li = el('li');
      const sw = el('span', 'swatch');
      sw.style.background = s.color;
      li.append(sw, el('span', '', route));
      items.push(li);
    }
    ul.replaceChildren(...items);
  }

  function newRow(card, route, color) {
    const row = clone('tpl-member');
    row.dataset.route = route;
    $('.swatch', row).style.background = color;
    $('.m-route', row).textContent = route;
    for (const btn of row.querySelectorAll('button[data-act]')) {
      btn.setAttribute('aria-label', btn.textContent + ' ' + route);
      btn.addEventListener('click', () => act(card, route, btn.dataset.act, row));
    }
    $('.m-weight-input', row).addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') act(card, route, 'weight', row);
    });
    return row;
  }

  function updateRow(row, m, rate) {
    row.dataset.state = m.state;
    const u = $('.m-url', row);
    u.textContent = m.url;
    u.title = m.url;
    const badge = $('.m-state', row);
    badge.textContent = m.state;
    badge.dataset.state = m.state;
    $('.m-announced', row).hidden = !m.announced;
    const h = $('.m-health', row);
    h.textContent = m.slow_start ? m.health + ' · warming ' + Math.round(m.slow_start.share * 100) + '%' : m.health;
    h.dataset.health = m.health;
    h.title = m.health_reason || '';
    const refused = $('.m-refused', row);
    refused.hidden = !m.ajp_refused;
    refused.textContent = m.ajp_refused ? nf.format(m.ajp_refused) + ' refused: AJP secret?' : '';
    $('.m-weight', row).textContent = m.weight;
    const wi = $('.m-weight-input', row);
    if (document.activeElement !== wi) wi.placeholder = m.weight;
    $('.m-inflight', row).textContent = nf.format(m.in_flight) + (m.queued > 0 ? ' +' + nf.format(m.queued) + ' queued' : '');
    if (rate !== null) $('.m-rps', row).textContent = nf1.format(rate);
    $('.m-requests', row).textContent = nf.format(m.requests);
    $('.m-live', row).textContent = nf.format(m.live_sessions);
    // In a group the count is the group's; say how many this instance sees.
    $('.m-live', row).title = st.group ? nf.format(m.local_sessions || 0) + ' seen by this instance, ' + nf.format(m.live_sessions) + ' by the group' : '';

    const bar = $('.bar', row);
    const text = $('.m-drain', row);
    if (m.drain) {
      bar.hidden = false;
      bar.classList.toggle('done', m.drain.remaining === 0);
      $('.fill', bar).style.width = Math.round(m.drain.progress * 100) + '%';
      text.textContent = drainText(m.drain);
    } else {
      bar.hidden = true;
      text.textContent = m.state === 'stopped' ? 'stopped' : '—';
    }
    const cwd = $('.m-cwd', row);
    cwd.hidden = !m.created_while_draining;
    cwd.textContent = m.created_while_draining
      ? nf.format(m.created_while_draining) + ' sessions created while draining (users pinned again)' : '';

    const ro = st.role === 'read-only';
    for (const btn of row.querySelectorAll('button[data-act]')) {
      const a = btn.dataset.act;
      btn.disabled = ro || (a === 'enable' && m.state === 'active') || (a === 'drain' && m.state === 'draining') ||
        (a === 'stop' && m.state === 'stopped');
    }
    wi.disabled = ro;
  }

  function drainText(d) {
    let s;
    if (d.remaining === 0) s = 'drained: no live session left';
    else {
      s = nf.format(d.remaining) + ' of ' + nf.format(d.start_sessions) + ' sessions left';
      if (d.estimated_empty) s += ' · empty in ~' + ago(Date.parse(d.estimated_empty) - Date.now());
      else if (d.empty_by) s += ' · empty by ' + new Date(d.empty_by).toLocaleTimeString() + ' at the latest';
    }
    if (!d.exact) s += ' · at least: counting since ' + new Date(d.counting_since).toLocaleTimeString() + ', users who have not come back since are not seen yet';
    return s;
  }

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 90) return s + 's';
    if (s < 5400) return Math.round(s / 60) + 'm';
    return nf1.format(s / 3600) + 'h';
  }

  // ---- actions -----------------------------------------------------------

  async function act(card, route, action, row) {
    let body;
    switch (action) {
      case 'enable': body = { state: 'active' }; break;
      case 'drain': body = { state: 'draining' }; break;
      case 'stop':
        if (!window.confirm('Stop ' + route + '? It takes no traffic at all, not even its own sessions.')) return;
        body = { state: 'stopped' };
        break;
      case 'weight': {
        const input = $('.m-weight-input', row);
        const w = Number(input.value);
        if (!input.value || !Number.isInteger(w)) { notice('Type a weight from 1 to 1000 first.', 'error'); return; }
        body = { weight: w };
        input.value = '';
        break;
      }
      case 'remove': return removeMember(card, route);
      default: return;
    }
    try {
      const res = await api('PATCH', memberPath(card.name, route), body);
      updateRow(row, res.member, null); // the rate stays until the next snapshot
      notice(describe(res.audit));
    } catch (err) {
      notice(err.message, 'error');
    }
  }

  async function removeMember(card, route) {
    if (!window.confirm('Remove ' + route + ' from ' + card.name + '?')) return;
    const path = memberPath(card.name, route);
    try {
      notice(describe((await api('DELETE', path)).audit));
    } catch (err) {
      if (err.status !== 409 || !window.confirm(err.message + '\n\nRemove it anyway?')) { notice(err.message, 'error'); return; }
      try {
        notice(describe((await api('DELETE', path + '?force=true')).audit));
      } catch (err2) { notice(err2.message, 'error'); }
    }
  }

  async function addMember(card, form) {
    const f = new FormData(form);
    const body = { route: f.get('route').trim(), url: f.get('url').trim(), weight: Number(f.get('weight')) || 1, state: f.get('state') };
    try {
      const res = await api('POST', '/api/v1/balancers/' + encodeURIComponent(card.name) + '/members', body);
      form.reset();
      notice(describe(res.audit));
    } catch (err) {
      notice(err.message, 'error');
    }
  }

  function notice(text, kind) {
    const n = $('#notice');
    n.textContent = text;
    n.dataset.kind = kind || 'ok';
    n.hidden = false;
    clearTimeout(st.noticeTimer);
    st.noticeTimer = setTimeout(() => { n.hidden = true; }, kind === 'error' ? 9000 : 4000);
  }

  // ---- audit log ---------------------------------------------------------

  function change(e) {
    const b = e.before || {};
    const a = e.after || {};
    switch (e.action) {
      case 'add': return 'added ' + a.url + ' (' + a.state + ', weight ' + a.weight + ')';
      case 'remove': return 'removed ' + b.url + ' (was ' + b.state + ')';
      case 'forget': return 'run-time change forgotten';
    }
    const parts = [];
    if (a.state) parts.push((b.state || '?') + ' → ' + a.state);
    if (a.weight) parts.push('weight ' + (b.weight || '?') + ' → ' + a.weight);
    return parts.join(', ');
  }

  function describe(e) {
    return e.balancer + '/' + e.member + ': ' + change(e);
  }

  function addAudit(e) {
    if (e.id <= st.lastAudit) return;
    st.lastAudit = e.id;
    const tr = el('tr');
    tr.dataset.id = e.id;
    const when = el('td', 'when', new Date(e.time).toLocaleTimeString());
    when.title = e.time;
    const who = el('td', 'who');
    who.append(el('div', '', e.actor + (e.operator ? ' · ' + e.operator : '')));
    if (e.instance) who.append(el('div', 'muted', 'through ' + e.instance));
    if (e.remote) who.append(el('div', 'muted', e.remote));
    tr.append(when, who, el('td', '', e.balancer + (e.member ? '/' + e.member : '')), el('td', 'change', change(e)), el('td', 'muted', e.reason || ''));
    const tbody = $('#audit tbody');
    tbody.prepend(tr);
    while (tbody.children.length > 300) tbody.lastElementChild.remove();
    $('#audit-empty').hidden = true;
  }

  // ---- charts ------------------------------------------------------------

  // niceMax returns the top of a 4-step axis above v, with round steps.
  function niceMax(v) {
    const raw = Math.max(v, 1) / 4;
    const p = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) return 4 * Math.max(m * p, 0.25);
    return 40 * p;
  }

  function drawChart(canvas, card, key, now) {
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const pad = { l: 44, r: 10, t: 8, b: 20 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    // The window grows with the history, from 30s to WINDOW.
    let first = now;
    for (const s of card.series.values()) if (s[key].length) first = Math.min(first, s[key][0].t);
    const span = Math.min(WINDOW, Math.max(30, Math.floor((now - first) / 10) * 10));
    const t0 = now - span;
    let max = 0;
    for (const s of card.series.values()) for (const p of s[key]) if (p.t >= t0) max = Math.max(max, p.v);
    max = niceMax(max);
    const x = (t) => pad.l + ((t - t0) / span) * pw;
    const y = (v) => pad.t + ph - (v / max) * ph;

    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#637083';
    g.strokeStyle = '#e8ecf2';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i;
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(pad.l, yy); g.lineTo(w - pad.r, yy); g.stroke();
      g.fillText(nf1.format(v), pad.l - 6, yy);
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (const back of [span, Math.round(span / 2), 0]) {
      const label = back === 0 ? 'now' : '-' + (back >= 60 && back % 60 === 0 ? back / 60 + 'm' : back + 's');
      g.textAlign = back === span ? 'left' : back === 0 ? 'right' : 'center';
      g.fillText(label, x(now - back), h - pad.b + 5);
    }
    g.save();
    g.beginPath(); g.rect(pad.l, pad.t - 2, pw, ph + 4); g.clip();
    g.lineWidth = 1.8;
    g.lineJoin = 'round';
    for (const s of card.series.values()) {
      const pts = s[key].filter((p) => p.t >= t0 - 2);
      if (!pts.length) continue;
      g.strokeStyle = s.color;
      g.beginPath();
      pts.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.v)) : g.moveTo(x(p.t), y(p.v))));
      g.stroke();
    }
    g.restore();
  }

  // ---- start -------------------------------------------------------------

  $('#login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('#token');
    const token = input.value.trim();
    input.value = '';
    if (token) signIn(token);
  });
  $('#signout').addEventListener('click', () => signOut());
  window.addEventListener('resize', () => {
    for (const card of st.cards.values()) {
      const now = card.series.size ? Math.max(...[...card.series.values()].map((s) => (s.prev ? s.prev.t : 0))) : 0;
      drawChart($('.c-rps', card.root), card, 'rps', now);
      drawChart($('.c-sessions', card.root), card, 'live', now);
    }
  });

  if (st.token) signIn(st.token); else showLogin();
})();
