// The page's text parts: key figures, the degraded banner, and the tables. Everything is set with
// textContent (names, SQL and details come from the service and are never parsed as HTML).
(() => {
  const { fmt } = window.KeelDash;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  function setKpi(id, value, note, level) {
    $(`kpi-${id}`).textContent = value;
    $(`kpi-${id}-note`).textContent = note ?? '';
    const card = $(`kpi-${id}`).parentElement;
    card.classList.toggle('is-warn', level === 'warn');
    card.classList.toggle('is-bad', level === 'bad');
  }

  function pill(node, cls, text) {
    node.className = `pill ${cls}`;
    node.textContent = text;
  }

  const BREAKER = { closed: 'badge-ok', 'half-open': 'badge-warn', open: 'badge-bad', isolated: 'badge-off' };
  const CHECK = { up: 'badge-ok', down: 'badge-bad' };

  function ago(ms) {
    if (!Number.isFinite(ms) || ms < 0) return '—';
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  }

  /**
   * Keyed rows: a row is built once per key and updated in place, so an open <details> or a text
   * selection survives the next event; rows are re-ordered by moving nodes.
   */
  function keyedRows(tbody, items, key, build, update) {
    const rows = tbody.__rows ?? new Map();
    tbody.__rows = rows;
    const keep = new Set();
    for (const item of items) {
      const k = key(item);
      keep.add(k);
      let row = rows.get(k);
      if (!row) {
        row = build(item);
        rows.set(k, row);
      }
      update(row, item);
      tbody.append(row);
    }
    for (const [k, row] of rows) {
      if (!keep.has(k)) {
        row.remove();
        rows.delete(k);
      }
    }
  }

  /** A row of cells whose text is set by `update` through `row.cells`. */
  const cellsRow = (n) => el('tr', null, ...Array.from({ length: n }, () => el('td')));
  const setCells = (row, values, numFrom) => {
    values.forEach((v, i) => {
      const td = row.cells[i];
      if (v instanceof Node) {
        if (td.firstChild !== v) td.replaceChildren(v);
      } else if (td.textContent !== v) td.textContent = v;
      if (i >= numFrom) td.className = 'num';
    });
  };

  function empty(id, show) {
    $(id).hidden = !show;
  }

  function renderWindows(m) {
    const tbody = $('table-windows').tBodies[0];
    const items = m ? Object.entries(m.windows) : [];
    keyedRows(
      tbody,
      items,
      ([name]) => name,
      () => cellsRow(6),
      (row, [name, w]) => {
        setCells(row, [name, fmt.num(w.rps), fmt.pct(w.errorRate * 100, 2), fmt.ms(w.p50Ms), fmt.ms(w.p95Ms), fmt.ms(w.p99Ms)], 1);
      },
    );
  }

  function renderHealth(health, configured) {
    const tbody = $('table-health').tBodies[0];
    const items = health ? Object.entries(health.checks) : [];
    empty('health-empty', !configured);
    keyedRows(
      tbody,
      items,
      ([name]) => name,
      () => cellsRow(4),
      (row, [name, c]) => {
        const badge = el('span', { class: `badge ${CHECK[c.status] ?? 'badge-warn'}` }, c.status);
        const label = c.kind === 'optional' ? `${name} (optional)` : name;
        setCells(row, [label, badge, fmt.ms(c.latency_ms), c.detail ?? ''], 2);
        row.cells[3].className = 'muted';
      },
    );
  }

  function renderBreakers(m, now) {
    const items = m ? m.breakers : [];
    empty('breakers-empty', items.length === 0);
    keyedRows(
      $('table-breakers').tBodies[0],
      items,
      (b) => b.name,
      () => cellsRow(3),
      (row, b) => {
        const badge = el('span', { class: `badge ${BREAKER[b.state] ?? 'badge-warn'}` }, b.state);
        setCells(row, [b.name, badge, ago(now - b.since)], 2);
      },
    );
  }

  function renderCaches(m) {
    const items = m ? m.cache : [];
    empty('caches-empty', items.length === 0);
    keyedRows(
      $('table-caches').tBodies[0],
      items,
      (c) => c.name,
      () => cellsRow(8),
      (row, c) => {
        setCells(
          row,
          [
            c.name,
            fmt.pct(c.hitRatio * 100),
            fmt.int(c.l1Hits),
            fmt.int(c.l2Hits),
            fmt.int(c.misses),
            fmt.int(c.stale),
            fmt.int(c.loaderErrors),
            fmt.int(c.l2Errors),
          ],
          1,
        );
        row.cells[6].classList.toggle('over', c.loaderErrors > 0);
        row.cells[7].classList.toggle('over', c.l2Errors > 0);
      },
    );
  }

  function renderRoutes(m, sloMs) {
    const items = m ? [...m.routes].sort((a, b) => b.p99Ms - a.p99Ms).slice(0, 10) : [];
    empty('routes-empty', items.length === 0);
    keyedRows(
      $('table-routes').tBodies[0],
      items,
      (r) => `${r.method} ${r.route}`,
      () => cellsRow(6),
      (row, r) => {
        const over = r.p99Ms > sloMs;
        const verdict = el('span', { class: `badge ${over ? 'badge-bad' : 'badge-ok'}` }, over ? 'over SLO' : 'within');
        if (!row.cells[1].firstChild) row.cells[1].append(el('code', null, r.route));
        setCells(row, [r.method, row.cells[1].firstChild, fmt.int(r.count), fmt.ms(r.p50Ms), fmt.ms(r.p99Ms), verdict], 2);
        row.cells[0].className = 'method';
        row.cells[4].classList.toggle('over', over);
        row.cells[5].className = '';
      },
    );
  }

  function renderSql(list, configured) {
    const items = list ?? [];
    $('sql-empty').textContent = configured ? 'No statements have run yet.' : 'SQL statistics not configured.';
    empty('sql-empty', items.length === 0);
    keyedRows(
      $('table-sql').tBodies[0],
      items,
      (s) => s.name,
      (s) => {
        const row = cellsRow(7);
        row.__plan = el('pre');
        row.__sql = el('pre');
        row.__summary = el('summary');
        row.cells[6].append(
          el(
            'details',
            null,
            row.__summary,
            el('div', { class: 'pre-label' }, 'Query plan'),
            row.__plan,
            el('div', { class: 'pre-label' }, 'SQL'),
            row.__sql,
          ),
        );
        row.cells[0].append(el('code', null, s.name));
        return row;
      },
      (row, s) => {
        const cells = row.cells;
        const values = [fmt.int(s.count), fmt.ms(s.p50Ms), fmt.ms(s.p99Ms), fmt.ms(s.maxMs), fmt.ms(s.totalMs)];
        values.forEach((v, i) => {
          const td = cells[i + 1];
          td.className = 'num';
          if (td.textContent !== v) td.textContent = v;
        });
        const scans = s.plan.filter((line) => /\bSCAN\b/.test(line)).length;
        const summary =
          s.plan.length === 0 ? 'SQL' : `${s.plan.length} step${s.plan.length === 1 ? '' : 's'}${scans ? `, ${scans} scan` : ''}`;
        if (row.__summary.textContent !== summary) row.__summary.textContent = summary;
        const plan = s.plan.length ? s.plan.join('\n') : 'not available';
        if (row.__plan.textContent !== plan) row.__plan.textContent = plan;
        const sql = s.sql.replace(/\s+/g, ' ').trim();
        if (row.__sql.textContent !== sql) row.__sql.textContent = sql;
      },
    );
  }

  function renderBanner({ connection, health }) {
    const banner = $('banner');
    let level = null;
    let title = '';
    let text = '';
    if (connection === 'lost') {
      level = 'bad';
      title = 'Disconnected';
      text = 'The dashboard lost its connection to the service; retrying. Figures below are stale.';
    } else if (connection === 'expired') {
      level = 'bad';
      title = 'Signed out';
      text = 'The dashboard session ended. Open /dashboard?token=… again.';
    } else if (health && health.status !== 'healthy') {
      level = health.status === 'unhealthy' ? 'bad' : 'warn';
      title = health.status === 'unhealthy' ? 'Service unhealthy' : 'Service degraded';
      const failing = Object.entries(health.checks)
        .filter(([, c]) => c.status !== 'up')
        .map(([name, c]) => `${name} ${c.status}${c.detail ? ` (${c.detail})` : ''}`);
      text = failing.length ? failing.join(' · ') : health.shutting_down ? 'shutting down' : 'see health checks';
    }
    banner.hidden = level === null;
    if (level) {
      banner.className = `banner banner-${level}`;
      banner.dataset.level = level;
      $('banner-title').textContent = title;
      $('banner-text').textContent = text;
    }
  }

  Object.assign(window.KeelDash, {
    $,
    setKpi,
    pill,
    renderWindows,
    renderHealth,
    renderBreakers,
    renderCaches,
    renderRoutes,
    renderSql,
    renderBanner,
  });
})();
