/* Parachute UI: the only script. Pages arrive complete from the server; this adds the
   live parts, talking to the same public HTTP API the mobile app uses:
   - the API key (when the auth mode asks this browser for one): kept in sessionStorage,
     sent as X-API-Key on every request, pages loaded with it and written in place;
   - chat: send, stream the reply (fetch + ReadableStream), re-attach to a running turn
     after a reload (replayed from its start, so waiting prompts show again) and after a
     dropped connection (with Last-Event-ID), inline prompts, abort, archive;
   - devices & keys, settings: forms saved through the API, errors next to the field. */
(function () {
  'use strict';
  var KEY = 'parachute.apiKey';
  var P = (window.Parachute = window.Parachute || {});
  /* Kept on the shared object: a page written in place runs this script again, and the
     next load must stop the streams of the page it replaces. */
  P.leaving = P.leaving || [];
  P.loads = P.loads || 0;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'class') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function $(id) { return document.getElementById(id); }
  function show(node, text) { if (!node) return; node.textContent = text; node.hidden = !text; }

  P.key = function () { return sessionStorage.getItem(KEY); };
  P.headers = function (extra) {
    var h = Object.assign({ Accept: 'application/json' }, extra || {});
    var k = P.key();
    if (k) h['X-API-Key'] = k;
    return h;
  };
  /* The API's error text: `detail` is a string, or a list of {loc, msg}. */
  P.detail = function (data, fallback) {
    if (data && typeof data.detail === 'string') return data.detail;
    if (data && Array.isArray(data.detail) && data.detail.length) return data.detail[0].msg;
    return fallback || 'Something went wrong.';
  };
  P.api = function (method, path, body) {
    var opts = { method: method, headers: P.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
    if (body !== undefined) opts.body = JSON.stringify(body);
    return fetch(path, opts).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (data) {
        if (r.status === 401 && P.key()) { sessionStorage.removeItem(KEY); location.reload(); }
        return { status: r.status, ok: r.ok, data: data };
      });
    }, function () {
      return { status: 0, ok: false, data: { detail: 'Parachute did not answer. Is it still running?' } };
    });
  };

  /* With a key, pages are fetched with it and written in place (a browser navigation
     cannot carry the header). Streams of the page being left are stopped first. */
  P.load = function (url, push, fromPrompt) {
    var n = ++P.loads;
    return fetch(url, { headers: P.headers({ Accept: 'text/html' }) }).then(function (r) {
      if (n !== P.loads) return r.status; // a later click won
      if (r.status === 401) {
        // The key was revoked or is wrong: forget it; the prompt asks again.
        sessionStorage.removeItem(KEY);
        if (!fromPrompt) location.href = url;
        return r.status;
      }
      return r.text().then(function (html) {
        if (n !== P.loads) return r.status;
        P.leaving.forEach(function (f) { try { f(); } catch (e) { /* already gone */ } });
        P.leaving = [];
        if (push) history.pushState({}, '', url);
        document.open();
        document.write(html);
        document.close();
        return r.status;
      });
    }, function () {
      // Parachute did not answer: let the browser try, and show what it gets.
      if (n === P.loads && !fromPrompt) location.href = url;
      return 0;
    });
  };
  P.onLeave = function (f) { P.leaving.push(f); };
  P.go = function (url) { if (P.key()) P.load(url, true); else location.href = url; };

  function keyedNavigation() {
    if (!P.key()) return;
    document.addEventListener('click', function (e) {
      var a = e.target.closest && e.target.closest('a[href]');
      if (!a || a.target || e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      var u = new URL(a.getAttribute('href'), location.href);
      if (u.origin !== location.origin || u.pathname.indexOf('/ui/') !== 0 || u.pathname.indexOf('/ui/assets/') === 0) return;
      // A link within the page (#…) stays a link within the page.
      if (u.hash && u.pathname === location.pathname && u.search === location.search) return;
      e.preventDefault();
      P.load(u.href, true);
    });
    document.addEventListener('submit', function (e) {
      var f = e.target;
      if (e.defaultPrevented || (f.method || 'get').toLowerCase() !== 'get') return;
      var u = new URL(f.getAttribute('action') || location.href, location.href);
      if (u.origin !== location.origin || u.pathname.indexOf('/ui/') !== 0) return;
      e.preventDefault();
      u.search = new URLSearchParams(new FormData(f)).toString();
      P.load(u.href, true);
    });
    var shown = location.pathname + location.search;
    window.addEventListener('popstate', function () {
      if (location.pathname + location.search === shown) return; // only the #fragment moved
      P.load(location.href, false);
    });
  }

  function keyPrompt() {
    var form = $('key-form'), input = $('api-key'), err = $('key-error');
    function tryKey(k) {
      sessionStorage.setItem(KEY, k);
      return P.load(location.href, false, true).then(function (status) {
        if (status === 401) {
          sessionStorage.removeItem(KEY);
          show(err, 'This key was not accepted. Check it, or create a new one.');
          input.focus();
        }
      });
    }
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var k = input.value.trim();
      if (!k) { show(err, 'Enter an API key.'); return; }
      show(err, '');
      tryKey(k);
    });
    if (P.key()) tryKey(P.key()); else input.focus();
  }

  /* ---------- chat ---------- */

  function md(node, text) {
    node.innerHTML = window.ParachuteMarkdown ? window.ParachuteMarkdown.render(text) : '';
    if (!window.ParachuteMarkdown) node.textContent = text;
  }

  function briefInput(input) {
    if (!input || typeof input !== 'object') return '';
    var v = input.file_path || input.path || input.command || input.pattern || input.url || input.description || '';
    v = String(v);
    return v.length > 80 ? v.slice(0, 77) + '…' : v;
  }

  function chatPage() {
    var root = document.querySelector('.chat');
    if (!root) return;
    var list = $('messages'), form = $('composer'), ta = $('message');
    var sendBtn = $('send'), abortBtn = $('abort'), status = $('turn-status');
    var sid = root.dataset.session || null;
    var busy = false, controller = null, stopWanted = false;

    list.querySelectorAll('.md').forEach(function (n) { md(n, n.textContent); });
    function scroll() { var last = list.lastElementChild; if (last && last.scrollIntoView) last.scrollIntoView({ block: 'end' }); }
    scroll();

    function setBusy(b) {
      busy = b;
      sendBtn.disabled = b;
      abortBtn.hidden = !b;
      root.dataset.streaming = b ? '1' : '0';
    }
    function setStatus(t, cls) { status.textContent = t || ''; status.className = 'status ' + (cls || 'muted'); }

    function newTurn() {
      var li = el('li', { class: 'msg assistant' });
      var bubble = el('div', { class: 'bubble' });
      li.appendChild(bubble);
      list.appendChild(li);
      return { li: li, body: bubble, text: null, thinking: null, tools: {}, gotText: false, lastId: null };
    }

    /* A turn replayed after the page loaded: it is placed once its user message is known. */
    function replayTurn() {
      var t = newTurn();
      t.li.remove();
      t.replay = true;
      return t;
    }
    function place(turn, userText) {
      if (turn.li.isConnected) return;
      var users = list.querySelectorAll('li.msg.user');
      var lastUser = users[users.length - 1];
      if (userText !== undefined && lastUser && lastUser.innerText.trim() === userText.trim()) {
        // The stored part of this turn is replaced by its replay.
        while (lastUser.nextElementSibling) lastUser.nextElementSibling.remove();
      } else if (userText !== undefined) {
        list.appendChild(el('li', { class: 'msg user' })).appendChild(el('div', { class: 'bubble' }, userText));
      }
      list.appendChild(turn.li);
    }

    function toolCard(turn, tool) {
      var d = el('details', { class: 'tool', 'data-tool-id': tool.id || '' });
      var s = el('summary');
      s.appendChild(el('strong', {}, tool.name || 'tool'));
      var brief = briefInput(tool.input);
      if (brief) s.appendChild(el('span', { class: 'muted' }, ' ' + brief));
      d.appendChild(s);
      d.appendChild(el('pre', { class: 'tool-input' }, JSON.stringify(tool.input, null, 2)));
      turn.body.appendChild(d);
      turn.tools[tool.id] = d;
      turn.text = null;
    }

    function questionForm(turn, ev) {
      var f = el('form', { class: 'prompt question', 'data-prompt-tool': String(ev.requestId || '').split('-q-').pop() });
      (ev.questions || []).forEach(function (q, i) {
        var fs = el('fieldset');
        fs.appendChild(el('legend', {}, q.question || q.header || 'Question'));
        (q.options || []).forEach(function (o, j) {
          var id = 'q' + i + '-' + j + '-' + Math.random().toString(36).slice(2, 7);
          var lab = el('label', { for: id, class: 'option' });
          var inp = el('input', { type: q.multiSelect ? 'checkbox' : 'radio', name: 'q' + i, value: o.label, id: id });
          lab.appendChild(inp);
          lab.appendChild(document.createTextNode(' ' + o.label + (o.description ? ' — ' + o.description : '')));
          fs.appendChild(lab);
        });
        var oid = 'q' + i + '-other-' + Math.random().toString(36).slice(2, 7);
        fs.appendChild(el('label', { for: oid }, 'Or your own answer'));
        fs.appendChild(el('input', { type: 'text', id: oid, name: 'q' + i + '-other' }));
        f.appendChild(fs);
      });
      var btn = el('button', { type: 'submit', class: 'primary' }, 'Answer');
      f.appendChild(btn);
      var err = el('p', { class: 'field-error', role: 'alert' }); err.hidden = true;
      f.appendChild(err);
      f.addEventListener('submit', function (e) {
        e.preventDefault();
        var answers = {};
        (ev.questions || []).forEach(function (q, i) {
          var picked = Array.prototype.map.call(f.querySelectorAll('input[name="q' + i + '"]:checked'), function (x) { return x.value; });
          var other = f.querySelector('input[name="q' + i + '-other"]').value.trim();
          if (other) picked.push(other);
          answers[q.question] = picked.join(', ');
        });
        btn.disabled = true;
        P.api('POST', '/api/chat/' + encodeURIComponent(ev.sessionId || sid) + '/answer', { request_id: ev.requestId, answers: answers })
          .then(function (r) {
            if (r.ok) { f.replaceWith(el('p', { class: 'prompt done muted' }, 'Answered.')); setStatus(''); }
            else { btn.disabled = false; show(err, P.detail(r.data)); }
          });
      });
      turn.body.appendChild(f);
      turn.text = null;
    }

    function permissionCard(turn, ev) {
      var box = el('div', { class: 'prompt permission', role: 'group', 'aria-label': 'Permission request', 'data-prompt-tool': String(ev.id || '').split('-p-').pop() });
      var what = ev.filePath || briefInput(ev.input) || '';
      box.appendChild(el('p', {}, 'Claude asks to use ' + (ev.toolName || 'a tool') + (what ? ' on ' + what : '') + '.'));
      if (ev.input) box.appendChild(el('pre', { class: 'tool-input' }, JSON.stringify(ev.input, null, 2)));
      var allow = el('button', { type: 'button', class: 'primary' }, 'Allow');
      var deny = el('button', { type: 'button', class: 'danger' }, 'Deny');
      var err = el('p', { class: 'field-error', role: 'alert' }); err.hidden = true;
      function decide(kind) {
        allow.disabled = deny.disabled = true;
        P.api('POST', '/api/chat/' + encodeURIComponent(sid) + '/permissions/' + kind, { requestId: ev.id })
          .then(function (r) {
            if (r.ok) { box.replaceWith(el('p', { class: 'prompt done muted' }, kind === 'grant' ? 'Allowed.' : 'Denied.')); setStatus(''); }
            else { allow.disabled = deny.disabled = false; show(err, P.detail(r.data)); }
          });
      }
      allow.addEventListener('click', function () { decide('grant'); });
      deny.addEventListener('click', function () { decide('deny'); });
      var row = el('div', { class: 'actions' });
      row.appendChild(allow); row.appendChild(deny);
      box.appendChild(row); box.appendChild(err);
      turn.body.appendChild(box);
      turn.text = null;
    }

    function adopt(id) {
      if (!id || id === 'pending' || id === sid) return;
      sid = id;
      root.dataset.session = id;
      if (stopWanted && busy) { stopWanted = false; sendStop(); }
      var path = '/ui/chat/' + encodeURIComponent(id);
      if (location.pathname !== path) history.replaceState({}, '', path);
      // A new chat became a session: its options are set, and the list shows it.
      var fs = document.querySelector('fieldset.options');
      if (fs) fs.hidden = true;
      var ul = document.querySelector('.session-list');
      if (ul && !ul.querySelector('a[href="' + path + '"]')) {
        var empty = ul.querySelector('.empty');
        if (empty) empty.remove();
        var li = el('li');
        var a = el('a', { href: path, 'aria-current': 'page' });
        var first = list.querySelector('li.msg.user .bubble');
        a.appendChild(el('span', { class: 'title' }, first ? first.textContent.slice(0, 80) : 'New chat'));
        a.appendChild(el('span', { class: 'muted when' }, 'now'));
        li.appendChild(a);
        ul.insertBefore(li, ul.firstChild);
      }
    }

    function handle(turn, ev) {
      if (turn.replay && !turn.li.isConnected && ['session', 'prompt_metadata', 'user_message', 'init', 'model'].indexOf(ev.type) < 0) place(turn);
      switch (ev.type) {
        case 'session': adopt(ev.sessionId); break;
        case 'user_message': if (turn.replay) place(turn, ev.content || ''); break;
        case 'text':
          if (!turn.text) { turn.text = el('div', { class: 'md' }); turn.body.appendChild(turn.text); }
          md(turn.text, ev.content || '');
          if (!turn.gotText) { turn.gotText = true; turn.li.dataset.firstTextAt = String(Date.now()); }
          setStatus('');
          break;
        case 'thinking':
          if (!turn.thinking) {
            turn.thinking = el('details', { class: 'thinking' });
            turn.thinking.appendChild(el('summary', {}, 'Thinking'));
            turn.thinking.appendChild(el('pre'));
            turn.body.appendChild(turn.thinking);
          }
          turn.thinking.lastChild.textContent = ev.content || '';
          break;
        case 'tool_use':
          // A question is shown as its own form (the next event), not as a tool call.
          if (ev.tool && ev.tool.name !== 'AskUserQuestion') toolCard(turn, ev.tool);
          turn.thinking = null;
          turn.text = null;
          break;
        case 'tool_result': {
          var d = turn.tools[ev.toolUseId];
          // A prompt about this tool call was answered (here, or on another device).
          turn.body.querySelectorAll('[data-prompt-tool="' + CSS.escape(ev.toolUseId || '') + '"]').forEach(function (f) {
            f.replaceWith(el('p', { class: 'prompt done muted' }, 'Answered.'));
          });
          if (d) {
            var c = String(ev.content || '');
            d.appendChild(el('pre', { class: 'tool-result' + (ev.isError ? ' error' : '') }, c.length > 8000 ? c.slice(0, 8000) + '\n…' : c));
            if (ev.isError) d.classList.add('failed');
          }
          break;
        }
        case 'user_question': questionForm(turn, ev); setStatus('Claude is waiting for your answer.'); break;
        case 'permission_request': permissionCard(turn, ev); setStatus('Claude is waiting for your decision.'); break;
        case 'retrying': setStatus('The model API is busy; retrying (attempt ' + ev.attempt + ' of ' + ev.maxRetries + ')…'); break;
        case 'warning': setStatus(ev.message || ''); break;
        case 'error':
          turn.body.appendChild(el('p', { class: 'error', role: 'alert' }, ev.error || 'The turn failed.'));
          return 'end';
        case 'session_unavailable':
          turn.body.appendChild(el('p', { class: 'error', role: 'alert' }, ev.message || 'This chat cannot be resumed.'));
          return 'end';
        case 'aborted': setStatus('Stopped.'); return 'end';
        case 'done':
          adopt(ev.sessionId);
          if (!turn.gotText && ev.response) { turn.text = el('div', { class: 'md' }); turn.body.appendChild(turn.text); md(turn.text, ev.response); }
          setStatus('');
          return 'end';
        default: break;
      }
      return null;
    }

    /* Reads an SSE response; resolves to whether the turn ended. `turn.lastId` keeps
       the last event id, to re-attach with Last-Event-ID if the connection drops. */
    function consume(response, turn) {
      if (!response.ok || !response.body) {
        return response.json().catch(function () { return null; }).then(function (data) {
          if (response.status === 404 && turn.lastId !== null) return true; // the turn is over
          handle(turn, { type: 'error', error: P.detail(data, 'Parachute answered ' + response.status + '.') });
          return true;
        });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buf = '';
      var ended = false;
      function block(b) {
        var id = null, data = [];
        b.split('\n').forEach(function (line) {
          if (line.indexOf('id:') === 0) id = line.slice(3).trim();
          else if (line.indexOf('data:') === 0) data.push(line.slice(5).replace(/^ /, ''));
        });
        if (id !== null) turn.lastId = id;
        if (!data.length) return;
        var ev;
        try { ev = JSON.parse(data.join('\n')); } catch (e) { return; }
        if (handle(turn, ev) === 'end') ended = true;
        scroll();
      }
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) return;
          // Normalised over the whole buffer, so a \r\n split across reads is one break.
          buf = (buf + decoder.decode(r.value, { stream: true })).replace(/\r\n/g, '\n');
          var i;
          while ((i = buf.indexOf('\n\n')) >= 0) { block(buf.slice(0, i)); buf = buf.slice(i + 2); }
          if (ended) { reader.cancel().catch(function () {}); return; }
          return pump();
        });
      }
      return pump().then(function () { return ended; });
    }

    /* Runs a stream to its end; a connection that drops mid-turn is re-attached (up to
       three times) from the last event seen, with Last-Event-ID. */
    function run(promise, turn) {
      setBusy(true);
      var tries = 0;
      function attempt(p) {
        return p
          .then(function (r) { return consume(r, turn); })
          .then(function (ended) {
            if (ended || !sid || tries >= 3) {
              if (!ended) handle(turn, { type: 'error', error: 'The connection to Parachute was lost.' });
              return;
            }
            tries += 1;
            var headers = P.headers({ Accept: 'text/event-stream' });
            if (turn.lastId !== null) headers['Last-Event-ID'] = turn.lastId;
            return attempt(stream('/api/chat/' + encodeURIComponent(sid) + '/stream', { headers: headers }));
          });
      }
      return attempt(promise)
        .catch(function (e) {
          if (e && e.name === 'AbortError') return;
          handle(turn, { type: 'error', error: 'The connection to Parachute was lost.' });
        })
        .then(function () { setBusy(false); controller = null; stopWanted = false; ta.focus(); });
    }

    function stream(url, opts) {
      controller = new AbortController();
      opts.signal = controller.signal;
      return fetch(url, opts);
    }
    P.onLeave(function () { if (controller) controller.abort(); });

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var text = ta.value.trim();
      if (!text || busy) return;
      var body = { message: text, sessionId: sid || 'new' };
      if (!sid) {
        var opt = function (id) { var n = $(id); return n && n.value ? n.value : undefined; };
        body.trustLevel = opt('trust'); body.workspaceId = opt('workspace'); body.model = opt('model');
        var fs = document.querySelector('fieldset.options');
        if (fs) fs.disabled = true;
      }
      ta.value = '';
      list.appendChild(el('li', { class: 'msg user' })).appendChild(el('div', { class: 'bubble' }, text));
      var turn = newTurn();
      setStatus('Waiting for Claude…');
      run(stream('/api/chat', {
        method: 'POST',
        headers: P.headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
        body: JSON.stringify(body)
      }), turn);
    });
    ta.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    function sendStop() {
      abortBtn.disabled = true;
      P.api('POST', '/api/chat/' + encodeURIComponent(sid) + '/abort').then(function (r) {
        abortBtn.disabled = false;
        // 404: the turn had already ended.
        setStatus(r.ok ? 'Stopping…' : (r.status === 404 ? '' : P.detail(r.data)));
      });
    }
    abortBtn.addEventListener('click', function () {
      // Before the new chat has its id, the stop is sent as soon as it does.
      if (!sid) { stopWanted = true; setStatus('Stopping…'); return; }
      sendStop();
    });

    /* A turn still running after the page loaded (a reload, another device's turn):
       its events are replayed from the start in place of its stored part, so prompts
       still waiting are shown again; a dropped connection then resumes with Last-Event-ID. */
    if (sid && root.dataset.active === '1') {
      setStatus('Claude is still answering…');
      run(stream('/api/chat/' + encodeURIComponent(sid) + '/stream', { headers: P.headers({ Accept: 'text/event-stream' }) }), replayTurn());
    }

    /* Archive / unarchive from the list. */
    document.querySelectorAll('[data-session-action]').forEach(function (b) {
      b.addEventListener('click', function () {
        b.disabled = true;
        P.api('POST', '/api/chat/' + encodeURIComponent(b.dataset.id) + '/' + b.dataset.sessionAction).then(function (r) {
          if (r.ok) { var li = b.closest('li'); if (li) li.remove(); }
          else { b.disabled = false; setStatus(P.detail(r.data), 'field-error'); }
        });
      });
    });
    if (!busy) ta.focus();
  }

  /* ---------- devices & keys ---------- */

  function modulesApprovals() {
    var list = $('modules');
    if (!list) return;
    list.addEventListener('click', function (e) {
      var b = e.target.closest && e.target.closest('[data-approve-module]');
      if (!b) return;
      var name = b.dataset.approveModule;
      var li = b.closest('li');
      b.disabled = true;
      show($('modules-error'), ''); show($('modules-done'), '');
      var body = { trust_level: $('module-level-' + name).value, hash: b.dataset.hash };
      P.api('POST', '/api/modules/' + encodeURIComponent(name) + '/approve', body).then(function (r) {
        if (!r.ok) {
          b.disabled = false;
          show($('modules-error'), P.detail(r.data));
          return;
        }
        li.remove();
        var en = $('modules-enabled');
        if (en) en.textContent = en.textContent === 'Enabled: none' ? 'Enabled: ' + name : en.textContent + ', ' + name;
        show($('modules-done'), name + ' is enabled, at trust level ' + r.data.module.approved_trust_level + '.');
      });
    });
  }

  function approvalsPage() {
    modulesApprovals();
    var list = $('pairing');
    if (!list) return;
    list.addEventListener('click', function (e) {
      var b = e.target.closest && e.target.closest('[data-approve], [data-deny]');
      if (!b) return;
      var li = b.closest('li');
      var id = b.dataset.approve || b.dataset.deny;
      var who = li.querySelector('strong').textContent;
      var approve = !!b.dataset.approve;
      var body = approve ? { trust_level: $('level-' + id).value } : undefined;
      li.querySelectorAll('button').forEach(function (x) { x.disabled = true; });
      show($('pairing-error'), ''); show($('pairing-done'), '');
      P.api('POST', '/api/bots/pairing/' + encodeURIComponent(id) + (approve ? '/approve' : '/deny'), body).then(function (r) {
        if (!r.ok) {
          li.querySelectorAll('button').forEach(function (x) { x.disabled = false; });
          show($('pairing-error'), P.detail(r.data));
          return;
        }
        li.remove();
        show($('pairing-done'), approve
          ? who + ' can now chat, at trust level ' + r.data.request.approvedTrustLevel + '.'
          : who + ' was denied.');
      });
    });
  }

  function keysPage() {
    var form = $('create-key');
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var label = $('key-label').value.trim();
      if (!label) { show($('create-error'), 'Give the device a name.'); return; }
      show($('create-error'), '');
      P.api('POST', '/api/auth/keys', { label: label, qr: true }).then(function (r) {
        if (!r.ok) { show($('create-error'), P.detail(r.data)); return; }
        var d = r.data;
        $('new-key-value').textContent = d.key;
        $('new-key-server').textContent = 'Server: ' + d.server_url + (d.reachable_from_lan ? '' : ' (this machine only: set the host to 0.0.0.0 for phones to reach it)');
        $('new-key-qr').src = 'data:image/svg+xml;base64,' + btoa(unescape(encodeURIComponent(d.qr_svg)));
        $('new-key').hidden = false;
        $('key-label').value = '';
        var ul = $('keys');
        if (!ul) { var none = $('no-keys'); ul = el('ul', { class: 'keys', id: 'keys' }); if (none) none.replaceWith(ul); }
        var li = el('li', { class: 'key-row', 'data-key-id': d.id });
        var main = el('div', { class: 'key-main' });
        main.appendChild(el('strong', {}, d.label));
        main.appendChild(el('span', { class: 'muted' }, ' ' + d.id));
        li.appendChild(main);
        li.appendChild(el('div', { class: 'muted' }, 'Created just now · last used never'));
        li.appendChild(el('button', { type: 'button', class: 'danger', 'data-revoke': d.id }, 'Revoke'));
        ul.appendChild(li);
      });
    });
    document.addEventListener('click', function (e) {
      var b = e.target.closest && e.target.closest('[data-revoke]');
      if (!b) return;
      // Two steps instead of a dialog: the first click asks, the second revokes.
      if (b.dataset.confirming !== '1') { b.dataset.confirming = '1'; b.textContent = 'Revoke: sure?'; return; }
      b.disabled = true;
      P.api('DELETE', '/api/auth/keys/' + encodeURIComponent(b.dataset.revoke)).then(function (r) {
        if (r.ok) b.closest('li').remove();
        else { b.disabled = false; show($('revoke-error'), P.detail(r.data)); }
      });
    });
    $('auth-mode').addEventListener('submit', function (e) {
      e.preventDefault();
      show($('mode-saved'), ''); show($('mode-error'), '');
      P.api('PUT', '/api/auth/settings', { require_auth: $('mode').value }).then(function (r) {
        if (r.ok) show($('mode-saved'), 'Saved: ' + r.data.require_auth + '.');
        else show($('mode-error'), P.detail(r.data));
      });
    });
  }

  /* ---------- settings ---------- */

  function settingsPage() {
    var form = $('settings');
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var values = {};
      form.querySelectorAll('.field input').forEach(function (i) {
        show($('err-' + i.name), '');
        i.removeAttribute('aria-invalid');
        if (i.value !== i.dataset.initial) values[i.name] = i.value.trim();
      });
      show($('settings-saved'), ''); show($('settings-error'), '');
      if (!Object.keys(values).length) { show($('settings-saved'), 'Nothing changed.'); return; }
      P.api('PUT', '/api/settings', { values: values }).then(function (r) {
        if (r.ok) {
          Object.keys(values).forEach(function (k) { form.querySelector('input[name="' + k + '"]').dataset.initial = values[k]; });
          show($('settings-saved'), 'Saved. Restart Parachute for the change to take effect.');
        } else if (r.status === 422 && Array.isArray(r.data.detail)) {
          r.data.detail.forEach(function (d) {
            var key = d.loc[d.loc.length - 1];
            var input = form.querySelector('input[name="' + key + '"]');
            if (input) { input.setAttribute('aria-invalid', 'true'); show($('err-' + key), d.msg); }
            else show($('settings-error'), d.msg);
          });
          var bad = form.querySelector('[aria-invalid="true"]');
          if (bad) bad.focus();
        } else show($('settings-error'), P.detail(r.data));
      });
    });
    credentialForm();
    var login = $('login-item');
    if (login) {
      login.addEventListener('change', function () {
        show($('err-login-item'), '');
        var want = login.checked;
        P.api('PUT', '/api/desktop/login-item', { enabled: want }).then(function (r) {
          if (!r.ok) { login.checked = !want; show($('err-login-item'), P.detail(r.data)); }
        });
      });
    }
  }

  /* The write-only credential form (Settings, and the first-run page). */
  function credentialForm() {
    var cred = $('credential');
    if (!cred) return;
    cred.addEventListener('submit', function (e) {
      e.preventDefault();
      var t = $('token');
      show($('err-token'), '');
      if (!t.value.trim()) { show($('err-token'), 'Paste a token or key first.'); return; }
      P.api('PUT', '/api/settings/claude-credential', { token: t.value.trim() }).then(function (r) {
        t.value = '';
        if (r.ok) $('credential-state').textContent = 'Set: ' + (r.data.kind === 'api_key' ? 'API key' : 'OAuth token') + ' (in the ' + r.data.location + ').';
        else show($('err-token'), P.detail(r.data));
      });
    });
    $('clear-credential').addEventListener('click', function () {
      P.api('DELETE', '/api/settings/claude-credential').then(function (r) {
        if (r.ok) $('credential-state').textContent = r.data.set ? 'Still set in the server\'s environment (' + r.data.kind + ').' : 'Not set: chats cannot run until it is.';
        else show($('err-token'), P.detail(r.data));
      });
    });
  }

  function start() {
    var page = document.body && document.body.dataset.page;
    if (page === 'key-prompt') { keyPrompt(); return; }
    keyedNavigation();
    if (page === 'chat') chatPage();
    else if (page === 'keys') keysPage();
    else if (page === 'approvals') approvalsPage();
    else if (page === 'settings') settingsPage();
    else if (page === 'setup') credentialForm();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
