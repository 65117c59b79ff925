/*
 * ParachuteMarkdown: a small, dependency-free, safe Markdown -> HTML renderer for chat replies.
 *   window.ParachuteMarkdown.render(text) -> HTML string (never throws; all input text is escaped,
 *   raw HTML is shown as text).
 * Blocks: fenced code (``` or ~~~, optional language -> class="language-x"; an unterminated fence
 *   runs to the end of the text, for streaming), ATX headings (# .. ######), paragraphs (line
 *   breaks -> <br>), bullet (- * +) and ordered (1. 1)) lists nested by indentation, blockquotes
 *   (>), horizontal rules (--- *** ___), GFM tables (in <div class="table-wrap">; column alignment
 *   as class="align-left|center|right", since the page's CSP forbids inline styles).
 * Inline: `code`, **bold**, __bold__, *italic*, _italic_, ***both***, ~~strike~~, [text](url),
 *   bare http(s):// autolinks, backslash escapes.
 * Links: only http(s):, mailto: and relative ('/' or '#') URLs become <a>; anything else is text.
 */
(function () {
  'use strict';

  var MAX_DEPTH = 8; // nesting limit for lists/blockquotes; deeper content renders as paragraphs
  var ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  var PUNCT = /[!-\/:-@\[-`{-~]/;
  var WORD = /[\p{L}\p{N}_]/u;
  var AUTO = /https?:\/\/[^\s<>"'`\u0000]+/y;
  var HEADING = /^ {0,3}(#{1,6})(?:[ \t]+([\s\S]*))?$/;
  var QUOTE = /^ {0,3}>/;
  var LIST = /^([-*+]|\d{1,9}[.)])([ \t]+|$)/;
  // Emphasis rules, applied in order to escaped text in which code spans, links and escapes are
  // already opaque placeholders. Each regex scans at most to the next marker: no backtracking blowup.
  var EMPH = [
    [/()\*\*\*(?!\s)([^*]*?[^\s*])\*\*\*/g, '<strong><em>', '</em></strong>', '***'],
    [/()\*\*(?!\s)((?:[^*]|\*(?!\*))*?[^\s*])\*\*/g, '<strong>', '</strong>', '**'],
    [/(^|[^\p{L}\p{N}_])__(?!\s)((?:[^_]|_(?!_))*?[^\s_])__(?![\p{L}\p{N}_])/gu, '<strong>', '</strong>', '__'],
    [/()~~(?!\s)([^~]*?[^\s~])~~/g, '<del>', '</del>', '~~'],
    [/()\*(?!\s)([^*]*?[^\s*])\*/g, '<em>', '</em>', '*'],
    [/(^|[^\p{L}\p{N}_])_(?!\s)([^_]*?[^\s_])_(?![\p{L}\p{N}_])/gu, '<em>', '</em>', '_']
  ];

  function esc(s) { s = String(s); return /[&<>"']/.test(s) ? s.replace(/[&<>"']/g, function (c) { return ESC[c]; }) : s; }
  function isBlank(line) { return line.trim() === ''; }
  function wsEnd(line) { for (var i = 0; line[i] === ' ' || line[i] === '\t'; i++); return i; }
  function lead(line) { return line[wsEnd(line)] || ''; } // cheap pre-check before block regexes
  function indentOf(line) {
    var n = 0;
    for (var i = 0; i < line.length; i++) {
      if (line[i] === ' ') n++; else if (line[i] === '\t') n += 4; else break;
    }
    return n;
  }
  // Drop up to `cols` columns of leading whitespace (tabs count as 4).
  function dedent(line, cols) {
    var ind = indentOf(line);
    return (ind > cols ? ' '.repeat(ind - cols) : '') + line.slice(wsEnd(line));
  }

  // ---- links ---------------------------------------------------------------------------------
  function safeHref(url) {
    // `//host` and `/\host` name another site: not relative.
    return /^(?:https?:\/\/|mailto:)/i.test(url) || /^(?:\/(?![\/\\])|#)/.test(url) ? url : null;
  }
  function anchor(href, html) {
    var ext = /^https?:/i.test(href) ? ' target="_blank"' : '';
    return '<a href="' + esc(href) + '"' + ext + ' rel="noopener noreferrer">' + html + '</a>';
  }
  // Parse "url)" or "url "title")" starting at p (just after "]("). Brackets end the URL, which
  // keeps scans of separate link attempts disjoint (linear time).
  function linkDest(src, p) {
    var lim = Math.min(src.length, p + 2048), depth = 0, k, start;
    while (p < lim && (src[p] === ' ' || src[p] === '\t')) p++;
    for (start = k = p; k < lim; k++) {
      var ch = src[k];
      if (ch === '(') depth++;
      else if (ch === ')') { if (depth === 0) break; depth--; }
      else if (ch === '[' || ch === ']' || /\s/.test(ch)) break;
    }
    var url = src.slice(start, k);
    while (k < lim && (src[k] === ' ' || src[k] === '\t')) k++;
    if (src[k] === '"') {
      var q = src.indexOf('"', k + 1);
      if (q < 0 || q >= lim) return null;
      for (k = q + 1; k < lim && (src[k] === ' ' || src[k] === '\t'); k++);
    }
    return url && src[k] === ')' ? { url: url, end: k + 1 } : null;
  }
  // Trailing punctuation is not part of a bare URL; nor is an unbalanced closing parenthesis.
  function trimUrl(u) {
    var open = 0, close = 0, e = u.length;
    for (var k = 0; k < e; k++) { if (u[k] === '(') open++; else if (u[k] === ')') close++; }
    while (e > 0) {
      var ch = u[e - 1];
      if ('.,;:!?*_~\''.indexOf(ch) >= 0) e--;
      else if (ch === ')' && close > open) { e--; close--; }
      else break;
    }
    return u.slice(0, e);
  }
  function findTicks(src, j, run) {
    while ((j = src.indexOf('`', j)) >= 0) {
      var r = 1;
      while (src[j + r] === '`') r++;
      if (r === run) return j;
      j += r;
    }
    return -1;
  }

  // ---- inline --------------------------------------------------------------------------------
  function inline(src, noLinks) {
    if (!/[\\`\[*_~:\n]/.test(src)) return esc(src); // fast path: nothing to format
    var store = [], out = '', seg = 0, i = 0, n = src.length, closeBr = -1, failedBr = -1, noTick = {};
    function put(html) { return '\u0000' + (store.push(html) - 1) + '\u0000'; }
    function emit(html, next) { out += esc(src.slice(seg, i)) + put(html); i = seg = next; }
    function restore(s) {
      return s.indexOf('\u0000') < 0 ? s : s.replace(/\u0000(\d+)\u0000/g, function (m, k) { return restore(store[+k]); });
    }
    function emph(s) {
      for (var r = 0; r < EMPH.length; r++) {
        if (s.indexOf(EMPH[r][3]) < 0) continue;
        s = s.replace(EMPH[r][0], function (m, pre, body) {
          return pre + put(EMPH[r][1] + emph(body) + EMPH[r][2]);
        });
      }
      return s;
    }
    while (i < n) {
      var c = src[i];
      if (c === '\\' && i + 1 < n && PUNCT.test(src[i + 1])) { emit(esc(src[i + 1]), i + 2); continue; }
      if (c === '`') {
        var run = 1;
        while (src[i + run] === '`') run++;
        var k = noTick[run] ? -1 : findTicks(src, i + run, run);
        if (k < 0) { noTick[run] = true; i += run; continue; }
        var code = src.slice(i + run, k).replace(/\n/g, ' ');
        if (code.length > 2 && code[0] === ' ' && code[code.length - 1] === ' ' && code.trim()) code = code.slice(1, -1);
        emit('<code>' + esc(code) + '</code>', k + run);
        continue;
      }
      if (c === '[' && !noLinks) {
        if (closeBr < i) { closeBr = src.indexOf(']', i + 1); if (closeBr < 0) closeBr = n; }
        if (closeBr < n && closeBr > i + 1 && closeBr !== failedBr && src[closeBr + 1] === '(') {
          var dest = linkDest(src, closeBr + 2), href = dest && safeHref(dest.url);
          if (href) { emit(anchor(href, inline(src.slice(i + 1, closeBr), true)), dest.end); continue; }
          failedBr = closeBr;
        }
      }
      if (c === 'h' && !noLinks && (i === 0 || !WORD.test(src[i - 1]))) {
        AUTO.lastIndex = i;
        var m = AUTO.exec(src), url = m ? trimUrl(m[0]) : '';
        if (url.length > url.indexOf('//') + 2) { emit(anchor(url, esc(url)), i + url.length); continue; }
      }
      i++;
    }
    out = emph(out + esc(src.slice(seg)));
    if (out.indexOf('\n') >= 0) out = out.replace(/\n/g, '<br>\n');
    return store.length ? restore(out) : out;
  }

  // ---- block helpers -------------------------------------------------------------------------
  function fenceOpen(line) {
    if ('`~'.indexOf(lead(line) || 'x') < 0) return null;
    var m = /^ {0,3}(`{3,}|~{3,})([\s\S]*)/.exec(line);
    if (!m || (m[1][0] === '`' && m[2].indexOf('`') >= 0)) return null;
    var lang = (m[2].trim().split(/\s+/)[0] || '').replace(/[^A-Za-z0-9_+-]/g, '').slice(0, 32);
    return { ch: m[1][0], len: m[1].length, indent: indentOf(line), lang: lang };
  }
  function isFenceClose(line, f) {
    var m = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
    return !!m && m[1][0] === f.ch && m[1].length >= f.len;
  }
  function heading(line) { return lead(line) === '#' ? HEADING.exec(line) : null; }
  function isQuote(line) { return lead(line) === '>' && QUOTE.test(line); }
  function isHr(line) {
    var k = wsEnd(line), c = line[k], count = 0;
    if ((c !== '-' && c !== '*' && c !== '_') || indentOf(line) > 3) return false;
    for (; k < line.length; k++) {
      if (line[k] === c) count++; else if (line[k] !== ' ' && line[k] !== '\t') return false;
    }
    return count >= 3;
  }
  function listItem(line) {
    if ('-*+0123456789'.indexOf(lead(line) || 'x') < 0) return null;
    var rest = line.slice(wsEnd(line)), m = LIST.exec(rest);
    if (!m) return null;
    var ind = indentOf(line), pad = m[2].length, ordered = /\d/.test(m[1][0]);
    return {
      indent: ind, ordered: ordered, start: ordered ? parseInt(m[1], 10) : 1,
      content: ind + m[1].length + (pad >= 1 && pad <= 4 ? pad : 1), text: rest.slice(m[0].length)
    };
  }
  function splitRow(line) {
    var s = line.trim(), cells = [], cur = '';
    if (s[0] === '|') s = s.slice(1);
    if (s[s.length - 1] === '|' && s[s.length - 2] !== '\\') s = s.slice(0, -1);
    for (var i = 0; i < s.length; i++) {
      if (s[i] === '\\' && s[i + 1] === '|') { cur += '|'; i++; }
      else if (s[i] === '|') { cells.push(cur.trim()); cur = ''; }
      else cur += s[i];
    }
    cells.push(cur.trim());
    return cells;
  }
  function isSep(line) {
    return line.indexOf('|') >= 0 && line.indexOf('-') >= 0 &&
      splitRow(line).every(function (c) { return /^:?-+:?$/.test(c); });
  }
  function tableStart(lines, i) {
    return lines[i].indexOf('|') >= 0 && i + 1 < lines.length && isSep(lines[i + 1]) &&
      splitRow(lines[i]).length === splitRow(lines[i + 1]).length;
  }
  function interrupts(lines, i) {
    var l = lines[i], it;
    return !!(fenceOpen(l) || heading(l) || isHr(l) || isQuote(l) ||
      ((it = listItem(l)) && (!it.ordered || it.start === 1)) || tableStart(lines, i));
  }

  // ---- blocks --------------------------------------------------------------------------------
  function table(lines, i) {
    var aligns = splitRow(lines[i + 1]).map(function (c) {
      var l = c[0] === ':', r = c[c.length - 1] === ':';
      return l && r ? 'center' : r ? 'right' : l ? 'left' : '';
    });
    function row(cells, tag) {
      var h = '<tr>';
      for (var k = 0; k < aligns.length; k++) {
        h += '<' + tag + (aligns[k] ? ' class="align-' + aligns[k] + '"' : '') + '>' +
          inline(cells[k] || '') + '</' + tag + '>';
      }
      return h + '</tr>';
    }
    var html = '<div class="table-wrap"><table><thead>' + row(splitRow(lines[i]), 'th') + '</thead><tbody>';
    for (i += 2; i < lines.length && !isBlank(lines[i]) && lines[i].indexOf('|') >= 0; i++) {
      html += row(splitRow(lines[i]), 'td');
    }
    return { html: html + '</tbody></table></div>', next: i };
  }

  function list(lines, i, depth) {
    var first = listItem(lines[i]), base = first.indent, n = lines.length, items = [], loose = false, j;
    while (i < n) {
      var it = listItem(lines[i]);
      if (!it || it.ordered !== first.ordered || isHr(lines[i])) break;
      var body = [it.text];
      // The item owns following lines indented past its marker, and blank lines between them.
      for (i++; i < n;) {
        if (isBlank(lines[i])) {
          for (j = i; j < n && isBlank(lines[j]); j++);
          if (j >= n || indentOf(lines[j]) <= base) break;
          for (loose = true; i < j; i++) body.push('');
        } else if (indentOf(lines[i]) > base) {
          body.push(dedent(lines[i++], it.content));
        } else break;
      }
      items.push(body);
      if (i < n && isBlank(lines[i])) {
        for (j = i; j < n && isBlank(lines[j]); j++);
        var nx = j < n ? listItem(lines[j]) : null;
        if (!nx || nx.ordered !== first.ordered || isHr(lines[j])) break;
        loose = true;
        i = j;
      }
    }
    var tag = first.ordered ? 'ol' : 'ul';
    var html = '<' + tag + (first.ordered && first.start !== 1 ? ' start="' + first.start + '"' : '') + '>';
    for (j = 0; j < items.length; j++) html += '<li>' + blocks(items[j], depth + 1, !loose) + '</li>';
    return { html: html + '</' + tag + '>', next: i };
  }

  function blocks(lines, depth, tight) {
    var html = '', i = 0, n = lines.length, deep = depth >= MAX_DEPTH, line, f, m, r;
    while (i < n) {
      line = lines[i];
      if (isBlank(line)) { i++; continue; }
      if ((f = fenceOpen(line))) {
        var code = [];
        for (i++; i < n && !isFenceClose(lines[i], f); i++) code.push(f.indent ? dedent(lines[i], f.indent) : lines[i]);
        i++; // closing fence; an unterminated fence simply runs to the end
        html += '<pre><code' + (f.lang ? ' class="language-' + f.lang + '"' : '') + '>' + esc(code.join('\n')) + '</code></pre>';
      } else if ((m = heading(line))) {
        var t = (m[2] || '').trim(), e = t.length;
        while (e > 0 && t[e - 1] === '#') e--;
        if (e === 0 || t[e - 1] === ' ' || t[e - 1] === '\t') t = t.slice(0, e).trim();
        html += '<h' + m[1].length + '>' + inline(t) + '</h' + m[1].length + '>';
        i++;
      } else if (isHr(line)) {
        html += '<hr>';
        i++;
      } else if (!deep && isQuote(line)) {
        var q = [];
        while (i < n && isQuote(lines[i])) q.push(lines[i++].replace(/^ {0,3}> ?/, ''));
        html += '<blockquote>' + blocks(q, depth + 1, false) + '</blockquote>';
      } else if (!deep && listItem(line)) {
        r = list(lines, i, depth);
        html += r.html;
        i = r.next;
      } else if (tableStart(lines, i)) {
        r = table(lines, i);
        html += r.html;
        i = r.next;
      } else {
        var para = [line.trim()];
        for (i++; i < n && !isBlank(lines[i]) && !interrupts(lines, i); i++) para.push(lines[i].trim());
        var inner = inline(para.join('\n'));
        html += tight ? inner : '<p>' + inner + '</p>';
      }
    }
    return html;
  }

  function render(text) {
    var src = '';
    try {
      src = text == null ? '' : String(text);
      return blocks(src.replace(/\r\n?/g, '\n').replace(/\u0000/g, '\uFFFD').split('\n'), 0, false);
    } catch (err) {
      try { return src ? '<p>' + esc(src).replace(/\n/g, '<br>') + '</p>' : ''; } catch (err2) { return ''; }
    }
  }

  window.ParachuteMarkdown = { render: render };
})();
