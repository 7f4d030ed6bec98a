"""The CSS and JavaScript inlined into every picture (kept here so the package needs no data files).

Nothing here loads anything: no fonts, images or scripts from elsewhere; colours are the
Tableau 10 palette for operator families and GitHub-like tints for diff states.
"""

SVG_CSS = """
.ms-picture .page{fill:#fff}
.ms-picture text{font-size:11px;fill:#57606a}
.ms-picture .t1{font-size:12.5px;font-weight:600;fill:#1f2328}
.ms-picture .t2{font-size:11px;fill:#424a53}
.ms-picture .t3{font-size:11px;fill:#6e7781}
.ms-picture .layer .box{fill:#fff;stroke:#afb8c1;stroke-width:1.2}
.ms-picture .layer.input .box{fill:#f6f8fa;stroke:#6e7781;stroke-dasharray:4 3}
.ms-picture .layer .accent{fill:#bab0ac}
.ms-picture .cat-conv .accent{fill:#4e79a7}
.ms-picture .cat-dense .accent{fill:#e15759}
.ms-picture .cat-norm .accent{fill:#76b7b2}
.ms-picture .cat-act .accent{fill:#f28e2b}
.ms-picture .cat-pool .accent{fill:#59a14f}
.ms-picture .cat-merge .accent{fill:#b07aa1}
.ms-picture .cat-shape .accent{fill:#9c755f}
.ms-picture .layer.head .box{stroke:#1f2328;stroke-width:2.4}
.ms-picture .chip rect{fill:#57606a}
.ms-picture .chip text{font-size:9.5px;font-weight:700;fill:#fff;letter-spacing:.04em}
.ms-picture .chip.headchip rect{fill:#1f2328}
.ms-picture .edge{fill:none;stroke:#8c959f;stroke-width:1.4}
.ms-picture .arrowhead{fill:#8c959f}
.ms-picture .frame rect{fill:#f6f8fa;stroke:#d0d7de}
.ms-picture .frame.depth2 rect{fill:#eef1f4}
.ms-picture .frame.depth3 rect{fill:#e6eaef}
.ms-picture .frame.depth4 rect{fill:#dde3e9}
.ms-picture .frame text{font-size:11px;font-weight:600;fill:#57606a}
.ms-picture .frame.removed rect{fill:#fff5f5;stroke:#cf222e;stroke-dasharray:5 4}
.ms-picture .frame.detached rect{fill:#fbfbfc;stroke:#afb8c1;stroke-dasharray:5 4}
.ms-picture.treemap .layer .box{fill:#dbe7f3;stroke:#4e79a7;stroke-width:1}
.ms-picture.treemap .layer.head .box{fill:#f9d9da;stroke:#1f2328;stroke-width:2.2}
.ms-picture .cell{fill:#fff;fill-opacity:.55;stroke:#4e79a7;stroke-opacity:.45}
.ms-picture .celltext{font-size:10.5px;fill:#424a53}
.ms-picture.diff .layer .accent{display:none}
.ms-picture.diff .layer .box,.ms-picture.diff.treemap .layer .box{fill:#f6f8fa;stroke:#d0d7de}
.ms-picture.diff .layer text{fill:#8c959f}
.ms-picture.diff .layer .t1{fill:#6e7781}
.ms-picture.diff .layer.input text{fill:#57606a}
.ms-picture.diff .layer[class*="state-"]:not(.state-same) text{fill:#424a53}
.ms-picture.diff .layer[class*="state-"]:not(.state-same) .t1{fill:#1f2328}
.ms-picture .layer .chip text{fill:#fff !important}
.ms-picture .layer.state-added .box{fill:#dafbe1 !important;stroke:#1a7f37 !important;stroke-width:2.2}
.ms-picture .layer.state-removed .box{fill:#ffebe9 !important;stroke:#cf222e !important;stroke-width:2.2;stroke-dasharray:6 3}
.ms-picture .layer.state-renamed .box{fill:#ddf4ff !important;stroke:#0969da !important;stroke-width:2.2}
.ms-picture .layer.state-reshaped .box{fill:#ffe7d1 !important;stroke:#d1570a !important;stroke-width:2.4}
.ms-picture .layer.state-changed .box{fill:#fff8c5 !important;stroke:#bf8700 !important;stroke-width:2.2}
.ms-picture .state-added .chip.state rect{fill:#1a7f37}
.ms-picture .state-removed .chip.state rect{fill:#cf222e}
.ms-picture .state-renamed .chip.state rect{fill:#0969da}
.ms-picture .state-reshaped .chip.state rect{fill:#d1570a}
.ms-picture .state-changed .chip.state rect{fill:#9a6700}
"""

PAGE_CSS = """
*{box-sizing:border-box}
html,body{margin:0;height:100%}
body{display:flex;flex-direction:column;font:13px/1.45 'Segoe UI','Helvetica Neue',Arial,'Liberation Sans','DejaVu Sans',sans-serif;color:#1f2328;background:#f6f8fa}
header.top{display:flex;align-items:center;gap:16px;padding:10px 16px;background:#fff;border-bottom:1px solid #d0d7de}
.heading{min-width:0;flex:1}
h1{margin:0;font-size:16px;font-weight:650;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.facts{color:#57606a;font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tools{display:flex;align-items:center;gap:6px;flex:none}
.tools input{width:240px;padding:5px 9px;border:1px solid #d0d7de;border-radius:6px;font:inherit}
.tools input:focus{outline:2px solid #0969da;outline-offset:-1px}
.tools button{min-width:34px;padding:5px 9px;border:1px solid #d0d7de;border-radius:6px;background:#f6f8fa;font:inherit;cursor:pointer}
.tools button:hover{background:#eaeef2}
#found{color:#57606a;font-size:12px;min-width:64px;text-align:right}
main{flex:1;display:flex;min-height:0}
.canvas{flex:1;overflow:auto;background:#fff;cursor:grab;position:relative}
.canvas.dragging{cursor:grabbing}
.canvas svg{display:block;margin:0 auto}
aside#panel{width:430px;flex:none;overflow:auto;border-left:1px solid #d0d7de;background:#fff;padding:14px 16px}
aside h2{font-size:15px;margin:0 0 2px;word-break:break-all}
aside h3{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#57606a;margin:16px 0 6px}
aside .sub{color:#57606a;margin:0 0 10px}
aside .notes{margin:8px 0;padding:0 0 0 18px;color:#57606a}
aside button.back{float:right;border:1px solid #d0d7de;background:#f6f8fa;border-radius:6px;padding:2px 9px;cursor:pointer;font:inherit}
dl.props{display:grid;grid-template-columns:auto 1fr;gap:3px 12px;margin:8px 0}
dl.props dt{color:#57606a}
dl.props dd{margin:0;word-break:break-all}
table.tensors{width:100%;border-collapse:collapse;font-size:12px;margin-bottom:12px}
table.tensors th{text-align:left;color:#57606a;font-weight:600;border-bottom:1px solid #d0d7de;padding:3px 6px 3px 0}
table.tensors td{border-bottom:1px solid #eaeef2;padding:4px 6px 4px 0;vertical-align:top}
table.tensors td.key,table.tensors td.other{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:11.5px;overflow-wrap:anywhere}
table.tensors td.num{white-space:nowrap;font-variant-numeric:tabular-nums}
table.tensors tr.rowlink{cursor:pointer}
table.tensors tr.rowlink:hover td{background:#f6f8fa}
ul.layers{list-style:none;margin:0;padding:0}
ul.layers li{display:flex;gap:8px;align-items:baseline;padding:3px 6px;border-radius:5px;cursor:pointer}
ul.layers li:hover{background:#f3f4f6}
ul.layers li .op{color:#57606a;font-size:12px;margin-left:auto;white-space:nowrap}
ul.layers li .nm{word-break:break-all}
.badge{display:inline-block;font-size:10px;font-weight:700;letter-spacing:.04em;padding:1px 7px;border-radius:9px;background:#1f2328;color:#fff;vertical-align:2px}
i.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px;border:1px solid #afb8c1;background:#f6f8fa}
.state-added i{background:#2da44e;border-color:#1a7f37 !important}
.state-removed i{background:#e5534b;border-color:#cf222e !important}
.state-renamed i{background:#388bfd;border-color:#0969da !important}
.state-reshaped i{background:#f0883e;border-color:#d1570a !important}
.state-changed i{background:#e3b341;border-color:#bf8700 !important}
.state-same i{background:#eaeef2;border-color:#afb8c1 !important}
i.sw.none{visibility:hidden}
section.summary{display:flex;align-items:center;gap:24px;padding:8px 16px;background:#fff;border-bottom:1px solid #d0d7de}
section.summary .verdict{margin:0;font-size:14px;font-weight:600;flex:1}
table.counts{border-collapse:collapse;font-size:12px}
table.counts caption{display:none}
table.counts tbody{display:flex;gap:14px}
table.counts tr{display:flex;align-items:center;gap:6px}
table.counts th{font-weight:400;color:#424a53;white-space:nowrap}
table.counts th i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-2px;border:1px solid}
table.counts td{font-weight:700;font-variant-numeric:tabular-nums}
#tip{position:fixed;z-index:10;max-width:460px;pointer-events:none;background:#1f2328;color:#f6f8fa;border-radius:7px;padding:8px 10px;font-size:12px;box-shadow:0 6px 20px rgba(0,0,0,.25)}
#tip b{color:#fff}
#tip .k{font-family:ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:11px;color:#d0d7de;word-break:break-all}
#tip .m{color:#afb8c1}
.ms-picture .layer{cursor:pointer}
.ms-picture .layer:hover .box{filter:drop-shadow(0 2px 4px rgba(31,35,40,.25))}
.ms-picture .layer:focus{outline:none}
.ms-picture .layer.selected .box,.ms-picture .layer:focus-visible .box{stroke:#0969da !important;stroke-width:3 !important}
body.searching .ms-picture .layer:not(.match){opacity:.28}
.ms-picture .layer.match .box{stroke:#8250df;stroke-width:2.6}
.ms-picture .edge.lit{stroke:#0969da;stroke-width:2.2}
"""

PAGE_JS = r"""
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('ms-data').textContent);
  var layers = data.layers;
  var canvas = document.getElementById('canvas');
  var svg = canvas.querySelector('svg');
  var panel = document.getElementById('panel');
  var tip = document.getElementById('tip');
  var search = document.getElementById('search');
  var found = document.getElementById('found');
  var W = parseFloat(svg.getAttribute('width')), H = parseFloat(svg.getAttribute('height'));
  var scale = 1, selected = -1, matches = [], cursor = -1;
  var LABELS = {added: 'added', removed: 'removed', renamed: 'renamed', reshaped: 'reshaped / retyped',
                changed: 'values changed', same: 'unchanged'};

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }
  function shape(s) { return s == null ? '?' : (s.length ? s.join('\u00d7') : 'scalar'); }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function bytes(n) {
    var u = ['B', 'KiB', 'MiB', 'GiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }
  function node(i) { return document.getElementById('n' + i); }

  function tensorTable(layer) {
    if (!layer.tensors.length) { return '<p class="sub">No tensors: this operator has no parameters.</p>'; }
    var structural = layer.tensors.some(function (t) { return t.structural; });
    var diff = layer.tensors.some(function (t) { return t.state; });
    var head = '<tr><th>' + esc(data.key_column) + '</th>' + (structural ? '<th>structural name</th>' : '') +
      '<th>shape</th><th>dtype</th>' + (diff ? '<th>change</th>' : '') + '</tr>';
    var rows = layer.tensors.map(function (t) {
      return '<tr class="tensor' + (t.state ? ' state-' + t.state : '') + '"><td class="key">' + esc(t.key) +
        (t.alias_of ? ' <span class="sub">= ' + esc(t.alias_of) + '</span>' : '') + '</td>' +
        (structural ? '<td class="other">' + esc((t.structural || []).join(', ') || '\u2014') + '</td>' : '') +
        '<td class="num">' + shape(t.shape) + '</td><td>' + esc(t.dtype) + '</td>' +
        (diff ? '<td>' + (t.state ? '<i class="sw"></i>' + esc(LABELS[t.state]) : '') +
          (t.detail ? '<div class="sub">' + esc(t.detail) + '</div>' : '') + '</td>' : '') + '</tr>';
    }).join('');
    return '<table class="tensors"><thead>' + head + '</thead><tbody>' + rows + '</tbody></table>';
  }

  function detail(i) {
    var l = layers[i];
    var props = [['operator', l.op + (l.summary ? ' (' + l.summary + ')' : '')]];
    if (l.path && l.path !== l.name) { props.push(['block', l.path]); }
    props.push(['output shape', l.shape ? shape(l.shape) : 'unknown']);
    props.push(['parameters', num(l.params) + (l.bytes ? ' (' + bytes(l.bytes) + ')' : '')]);
    if (l.state) { props.push(['change', LABELS[l.state]]); }
    return '<button type="button" class="back" data-back>All layers</button>' +
      '<h2>' + esc(l.name) + (l.head ? ' <span class="badge">HEAD</span>' : '') + '</h2>' +
      '<p class="sub">' + (l.kind === 'input' ? 'model input' : (l.ghost ? 'only in A: removed' : 'layer')) + '</p>' +
      '<dl class="props">' + props.map(function (p) {
        return '<dt>' + esc(p[0]) + '</dt><dd>' + esc(p[1]) + '</dd>';
      }).join('') + '</dl>' + (l.head && data.head ? '<p class="sub">Head: ' + esc(data.head) + '</p>' : '') +
      '<h3>Tensors (' + l.tensors.length + ')</h3>' + tensorTable(l);
  }

  function overview() {
    var html = '';
    if (data.diff) {
      var rows = data.diff.tensors;
      html += '<h2>What changed</h2><p class="sub">' + esc(data.diff.a) + ' \u2192 ' + esc(data.diff.b) +
        '<br>compared by ' + esc(data.diff.scheme) + '</p>';
      if (rows.length) {
        html += '<table class="tensors"><thead><tr><th>change</th><th>tensor</th><th>detail</th></tr></thead><tbody>' +
          rows.slice(0, 500).map(function (r) {
            return '<tr class="rowlink state-' + r.state + '" data-key="' + esc(r.b || r.a) + '"><td><i class="sw"></i>' +
              esc(LABELS[r.state]) + '</td><td class="key">' + esc(r.b || r.a) + '</td><td>' + esc(r.detail || '') + '</td></tr>';
          }).join('') + '</tbody></table>' + (rows.length > 500 ? '<p class="sub">and ' + (rows.length - 500) + ' more</p>' : '');
      } else {
        html += '<p class="sub">Every tensor is unchanged.</p>';
      }
    } else {
      html += '<h2>Layers</h2><p class="sub">Click or hover a layer to see its tensors.</p>';
    }
    if (data.head) { html += '<p class="sub"><span class="badge">HEAD</span> ' + esc(data.head) + '</p>'; }
    if (data.notes.length) {
      html += '<ul class="notes">' + data.notes.map(function (n) { return '<li>' + esc(n) + '</li>'; }).join('') + '</ul>';
    }
    html += (data.diff ? '<h3>Layers</h3>' : '') + '<ul class="layers">' + layers.map(function (l, i) {
      return '<li data-index="' + i + '" class="' + (l.state ? 'state-' + l.state : '') + '">' +
        (data.diff ? '<i class="sw' + (l.state ? '' : ' none') + '"></i>' : '') + '<span class="nm">' + esc(l.name) + '</span>' +
        (l.head ? ' <span class="badge">HEAD</span>' : '') + '<span class="op">' + esc(l.op || (l.tensors.length + (l.tensors.length === 1 ? ' tensor' : ' tensors'))) +
        '</span></li>';
    }).join('') + '</ul>';
    panel.innerHTML = html;
  }

  function light(i, on) {
    var edges = svg.querySelectorAll('.edge[data-from="n' + i + '"],.edge[data-to="n' + i + '"]');
    for (var k = 0; k < edges.length; k++) { edges[k].classList.toggle('lit', on); }
  }

  function select(i, scroll) {
    if (selected >= 0 && node(selected)) { node(selected).classList.remove('selected'); light(selected, false); }
    selected = i;
    if (i < 0) { overview(); return; }
    var g = node(i);
    if (g) {
      g.classList.add('selected');
      light(i, true);
      if (scroll) { g.scrollIntoView({block: 'center', inline: 'center'}); }
    }
    panel.innerHTML = detail(i);
    panel.scrollTop = 0;
  }

  function showTip(i, event) {
    var l = layers[i];
    var list = l.tensors.slice(0, 12).map(function (t) {
      return '<div class="k">' + esc(t.key) + ' <span class="m">' + shape(t.shape) + ' ' + esc(t.dtype) + '</span></div>';
    }).join('');
    if (l.tensors.length > 12) { list += '<div class="m">\u2026 ' + (l.tensors.length - 12) + ' more</div>'; }
    tip.innerHTML = '<b>' + esc(l.name) + '</b> <span class="m">' + esc(l.op) + '</span><br>' +
      '<span class="m">output ' + (l.shape ? shape(l.shape) : '?') + ' \u00b7 ' + num(l.params) + ' params</span>' +
      (list ? '<div style="margin-top:4px">' + list + '</div>' : '');
    tip.hidden = false;
    moveTip(event);
  }
  function moveTip(event) {
    var x = event.clientX + 16, y = event.clientY + 16;
    var r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) { x = event.clientX - r.width - 16; }
    if (y + r.height > window.innerHeight - 8) { y = Math.max(8, event.clientY - r.height - 16); }
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }

  var groups = svg.querySelectorAll('g.layer');
  Array.prototype.forEach.call(groups, function (g) {
    var i = parseInt(g.getAttribute('data-index'), 10);
    g.addEventListener('click', function (e) { e.stopPropagation(); select(i, false); });
    g.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(i, false); }
    });
    g.addEventListener('mouseenter', function (e) { light(i, true); showTip(i, e); });
    g.addEventListener('mousemove', moveTip);
    g.addEventListener('mouseleave', function () { if (i !== selected) { light(i, false); } tip.hidden = true; });
  });

  panel.addEventListener('click', function (e) {
    var target = e.target.closest('[data-index],[data-back],[data-key]');
    if (!target) { return; }
    if (target.hasAttribute('data-back')) { select(-1); return; }
    if (target.hasAttribute('data-index')) { select(parseInt(target.getAttribute('data-index'), 10), true); return; }
    var key = target.getAttribute('data-key');
    for (var i = 0; i < layers.length; i++) {
      if (layers[i].tensors.some(function (t) { return t.key === key; })) { select(i, true); return; }
    }
  });

  function setScale(s, keepCenter) {
    s = Math.max(0.05, Math.min(4, s));
    var cx = (canvas.scrollLeft + canvas.clientWidth / 2) / scale, cy = (canvas.scrollTop + canvas.clientHeight / 2) / scale;
    scale = s;
    svg.style.width = (W * s) + 'px'; svg.style.height = (H * s) + 'px';
    if (keepCenter !== false) {
      canvas.scrollLeft = cx * s - canvas.clientWidth / 2; canvas.scrollTop = cy * s - canvas.clientHeight / 2;
    }
  }
  function fit() { return Math.min(1, (canvas.clientWidth - 16) / W, (canvas.clientHeight - 16) / H); }
  document.querySelectorAll('[data-zoom]').forEach(function (b) {
    b.addEventListener('click', function () {
      var z = b.getAttribute('data-zoom');
      setScale(z === 'in' ? scale * 1.25 : z === 'out' ? scale / 1.25 : z === 'fit' ? fit() : 1);
    });
  });
  canvas.addEventListener('wheel', function (e) {
    if (!e.ctrlKey && !e.metaKey) { return; }
    e.preventDefault();
    setScale(scale * (e.deltaY < 0 ? 1.15 : 1 / 1.15));
  }, {passive: false});
  var drag = null;
  canvas.addEventListener('pointerdown', function (e) {
    if (e.button !== 0 || e.target.closest('g.layer')) { return; }
    drag = {x: e.clientX, y: e.clientY, left: canvas.scrollLeft, top: canvas.scrollTop, moved: false};
    canvas.classList.add('dragging');
  });
  window.addEventListener('pointermove', function (e) {
    if (!drag) { return; }
    drag.moved = drag.moved || Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3;
    canvas.scrollLeft = drag.left - (e.clientX - drag.x); canvas.scrollTop = drag.top - (e.clientY - drag.y);
  });
  window.addEventListener('pointerup', function () {
    if (drag && !drag.moved) { select(-1); }
    drag = null; canvas.classList.remove('dragging');
  });

  function haystack(l) {
    return (l.name + ' ' + l.op + ' ' + (l.path || '') + ' ' + l.tensors.map(function (t) {
      return t.key + ' ' + (t.structural || []).join(' ');
    }).join(' ')).toLowerCase();
  }
  var hay = layers.map(haystack);
  search.addEventListener('input', function () {
    var q = search.value.trim().toLowerCase();
    matches = [];
    cursor = -1;
    Array.prototype.forEach.call(groups, function (g) {
      var i = parseInt(g.getAttribute('data-index'), 10);
      var hit = q !== '' && hay[i].indexOf(q) >= 0;
      g.classList.toggle('match', hit);
      if (hit) { matches.push(i); }
    });
    document.body.classList.toggle('searching', q !== '');
    found.textContent = q === '' ? '' : matches.length + ' found';
  });
  search.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && matches.length) {
      cursor = (cursor + (e.shiftKey ? matches.length - 1 : 1)) % matches.length;
      select(matches[cursor], true);
      found.textContent = (cursor + 1) + ' of ' + matches.length;
    } else if (e.key === 'Escape') {
      search.value = ''; search.dispatchEvent(new Event('input')); search.blur();
    }
  });
  document.addEventListener('keydown', function (e) {
    if (e.target === search) { return; }
    if (e.key === '/') { e.preventDefault(); search.focus(); search.select(); }
    else if (e.key === 'Escape') { select(-1); }
    else if (e.key === '+' || e.key === '=') { setScale(scale * 1.25); }
    else if (e.key === '-') { setScale(scale / 1.25); }
    else if (e.key === '0') { setScale(fit()); }
    else if (e.key === '1') { setScale(1); }
  });

  overview();
  if (data.diff) {  // open on the first change, so the report shows it at once
    for (var c = 0; c < layers.length; c++) {
      if (layers[c].state && layers[c].state !== 'same' && node(c)) { node(c).scrollIntoView({block: 'center'}); break; }
    }
  }
  if (W > canvas.clientWidth) { setScale(Math.max(0.45, (canvas.clientWidth - 16) / W), false); }
  else { setScale(1, false); }
})();
"""
