// The live page: one EventSource on /dashboard/stream (the HttpOnly cookie authenticates it),
// each event a full snapshot that feeds the charts' rolling history and the tables.
(() => {
  const D = window.KeelDash;
  const { COLORS, PALETTE, fmt, axis, isPow10, thresholdLine, TimeChart, $ } = D;
  // Two series (L1, L2) per cache: beyond four caches the chart stops being readable; the table has all.
  const MAX_CACHES = 4;
  const CACHE_WINDOW_S = 5;

  const state = {
    sloMs: 127,
    errorRateSlo: 0.01,
    intervalMs: 1000,
    events: 0,
    last: null,
    connection: 'connecting',
    lastEventAt: 0,
    prevStale: null,
  };

  const msAxis = (extra) => axis({ size: 60, values: (_u, vals) => vals.map((v) => fmt.ms(v)), ...extra });
  const logMsAxis = axis({ size: 60, values: (_u, vals) => vals.map((v) => (isPow10(v) ? fmt.ms(v) : '')) });
  const sloLines = {
    latency: thresholdLine(
      () => state.sloMs,
      (v) => `SLO ${v} ms`,
      COLORS.red,
    ),
    // The errors chart is in %, the objective a fraction.
    errors: thresholdLine(
      () => state.errorRateSlo * 100,
      (v) => `SLO ${fmt.pct(v, v < 1 ? 2 : 1)}`,
      COLORS.red,
    ),
  };

  const charts = {
    rps: new TimeChart($('chart-rps'), {
      series: [
        { label: 'req/s', color: COLORS.blue, fill: 'rgba(88, 166, 255, 0.10)' },
        { label: 'shed/s', color: COLORS.red },
      ],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [axis({ size: 50 })],
    }),
    latency: new TimeChart($('chart-latency'), {
      series: [
        { label: 'p50', color: COLORS.green, fmt: fmt.ms },
        { label: 'p95', color: COLORS.amber, fmt: fmt.ms },
        { label: 'p99', color: COLORS.pink, fmt: fmt.ms, width: 2 },
      ],
      scales: {
        y: {
          distr: 3,
          log: 10,
          range: (_u, min, max) =>
            window.uPlot.rangeLog(Math.max(0.01, Math.min(min || 1, 1)), Math.max(max || 0, state.sloMs * 1.6), 10, true),
        },
      },
      axes: [logMsAxis],
      plugins: [sloLines.latency],
    }),
    errors: new TimeChart($('chart-errors'), {
      series: [{ label: 'errors', color: COLORS.red, fmt: (v) => fmt.pct(v, 2), fill: 'rgba(248, 81, 73, 0.12)' }],
      // Room above the objective, so its line shows even while there are no errors.
      scales: { y: { range: (_u, _min, max) => [0, Math.max(state.errorRateSlo * 100 * 1.6, max * 1.2)] } },
      axes: [axis({ size: 50, values: (_u, vals) => vals.map((v) => `${v}%`) })],
      plugins: [sloLines.errors],
    }),
    loop: new TimeChart($('chart-loop'), {
      series: [
        { label: 'delay p50', color: COLORS.green, fmt: fmt.ms },
        { label: 'delay p99', color: COLORS.amber, fmt: fmt.ms },
        { label: 'utilisation', color: COLORS.purple, scale: 'pct', fmt: (v) => fmt.pct(v, 0), dash: [4, 3] },
      ],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(5, max * 1.2)] }, pct: { range: [0, 100] } },
      axes: [msAxis({}), axis({ scale: 'pct', side: 1, size: 44, grid: { show: false }, values: (_u, vals) => vals.map((v) => `${v}%`) })],
    }),
    memory: new TimeChart($('chart-memory'), {
      series: [
        { label: 'heap used', color: COLORS.blue, fmt: (v) => `${v.toFixed(1)} MB`, fill: 'rgba(88, 166, 255, 0.08)' },
        { label: 'heap total', color: COLORS.cyan, fmt: (v) => `${v.toFixed(1)} MB`, dash: [4, 3] },
        { label: 'RSS', color: COLORS.orange, fmt: (v) => `${v.toFixed(1)} MB` },
      ],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(16, max * 1.15)] } },
      axes: [axis({ size: 50 })],
    }),
    live: new TimeChart($('chart-live'), {
      series: [
        { label: 'connections', color: COLORS.blue, fmt: fmt.int },
        { label: 'subscriptions', color: COLORS.green, fmt: fmt.int, dash: [4, 3] },
        { label: 'rooms', color: COLORS.purple, fmt: fmt.int },
      ],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(5, max * 1.2)] } },
      axes: [axis({ size: 50 })],
    }),
    cache: null,
  };
  let cacheNames = '';
  const cacheHistory = new Map();

  /**
   * Each tier's own hit ratio, in %: L1 hits over all lookups, and L2 hits over the lookups that
   * reached L2 (the L1 misses: L2 hits plus misses). L2 hits over all lookups would shrink as L1
   * gets better while L2 answers just as well. null for a tier no lookup reached.
   */
  function hitRatios(l1, l2, misses) {
    const lookups = l1 + l2 + misses;
    const reachedL2 = l2 + misses;
    return [lookups > 0 ? (100 * l1) / lookups : null, reachedL2 > 0 ? (100 * l2) / reachedL2 : null];
  }

  /**
   * {@link hitRatios} over the last CACHE_WINDOW_S seconds, from the cumulative counters (the
   * all-time ratio would hide an outage that began a minute ago).
   */
  function tierRatios(c, t) {
    let h = cacheHistory.get(c.name);
    if (!h) {
      h = [];
      cacheHistory.set(c.name, h);
    }
    h.push({ t, l1: c.l1Hits, l2: c.l2Hits, misses: c.misses });
    while (h.length > 2 && (t - h[0].t > CACHE_WINDOW_S || h.length > 64)) h.shift();
    const a = h[0];
    const [l1, l2, misses] = [c.l1Hits - a.l1, c.l2Hits - a.l2, c.misses - a.misses];
    // No lookup in the window: the all-time ratios rather than a gap.
    return l1 + l2 + misses > 0 ? hitRatios(l1, l2, misses) : hitRatios(c.l1Hits, c.l2Hits, c.misses);
  }

  /** The cache chart has one series per cache, so it is rebuilt (history kept) when the set changes. */
  function cacheChart(names) {
    const key = names.join('\n');
    if (charts.cache && key === cacheNames) return charts.cache;
    const old = charts.cache;
    cacheNames = key;
    const chart = new TimeChart($('chart-cache'), {
      series: [
        ...names.flatMap((name, i) => [
          { label: `${name} L1`, color: PALETTE[i % PALETTE.length], fmt: (v) => fmt.pct(v) },
          { label: `${name} L2 (of L1 misses)`, color: PALETTE[i % PALETTE.length], fmt: (v) => fmt.pct(v), dash: [2, 3] },
        ]),
        { label: 'stale/s', color: COLORS.amber, scale: 'rate', dash: [4, 3] },
      ],
      scales: { y: { range: [0, 100] }, rate: { range: (_u, _min, max) => [0, Math.max(1, max * 1.2)] } },
      axes: [
        axis({ size: 44, values: (_u, vals) => vals.map((v) => `${v}%`) }),
        axis({ scale: 'rate', side: 1, size: 40, grid: { show: false } }),
      ],
    });
    if (old) {
      // Keep the timeline: earlier points of a cache that just appeared are gaps.
      chart.xs = old.xs.slice();
      chart.ys = chart.ys.map(() => old.xs.map(() => null));
      old.destroy();
    }
    charts.cache = chart;
    return chart;
  }

  function apply(snap) {
    state.events++;
    state.last = snap;
    state.sloMs = snap.sloMs;
    state.errorRateSlo = snap.errorRateSlo;
    state.intervalMs = snap.intervalMs;
    state.lastEventAt = Date.now();
    const t = snap.at / 1000;
    const m = snap.metrics;
    const w = m?.windows['10s'];
    const p = m?.process;

    if (m) {
      charts.rps.push(t, [w.rps, m.shed.last10s / 10]);
      charts.latency.push(
        t,
        [w.p50Ms, w.p95Ms, w.p99Ms].map((v) => (v > 0 ? v : null)),
      );
      charts.errors.push(t, [w.errorRate * 100]);
      charts.loop.push(t, [p.eventLoopDelayP50Ms, p.eventLoopDelayP99Ms, p.eventLoopUtilization * 100]);
      charts.memory.push(t, [p.heapUsedBytes / 1048576, p.heapTotalBytes / 1048576, p.rssBytes / 1048576]);
      const caches = m.cache.slice(0, MAX_CACHES);
      $('chart-cache').hidden = caches.length === 0;
      $('cache-empty').hidden = caches.length > 0;
      if (caches.length > 0) {
        const stale = caches.reduce((sum, c) => sum + c.stale, 0);
        const prev = state.prevStale;
        const rate = prev && t > prev.t ? Math.max(0, (stale - prev.stale) / (t - prev.t)) : 0;
        state.prevStale = { t, stale };
        cacheChart(caches.map((c) => c.name)).push(t, [...caches.flatMap((c) => tierRatios(c, t)), rate]);
      }
    }
    const live = snap.live;
    $('chart-live').hidden = !live;
    $('live-empty').hidden = Boolean(live);
    if (live) charts.live.push(t, [live.connections, live.subscriptions, live.rooms]);

    renderKpis(snap);
    D.renderWindows(m);
    D.renderHealth(snap.health, snap.health !== null || snap.errors.some((e) => e.source === 'health'));
    D.renderBreakers(m, snap.at);
    D.renderCaches(m);
    D.renderRoutes(m, snap.sloMs);
    D.renderSql(snap.slowSql, snap.slowSql !== null);
    renderStatus();
    $('foot-viewers').textContent =
      `${snap.viewers} viewer${snap.viewers === 1 ? '' : 's'} · every ${snap.intervalMs / 1000} s · ${charts.rps.length} of ${D.HISTORY} points kept`;
    $('foot-errors').textContent = snap.errors.map((e) => `${e.source}: ${e.message}`).join(' · ');
  }

  function renderKpis(snap) {
    const m = snap.metrics;
    const w = m?.windows['10s'];
    const p = m?.process;
    const w1 = m?.windows['1m'];
    D.setKpi('rps', w ? fmt.num(w.rps) : '—', w1 ? `1 min: ${fmt.num(w1.rps)}` : '');
    const over = w && w.p99Ms > snap.sloMs;
    D.setKpi('p99', w ? fmt.ms(w.p99Ms) : '—', w ? `SLO ${snap.sloMs} ms: ${over ? 'over' : 'ok'}` : '', over ? 'bad' : null);
    const err = w ? w.errorRate * 100 : null;
    const errSlo = snap.errorRateSlo * 100;
    D.setKpi(
      'err',
      w ? fmt.pct(err, 2) : '—',
      w1 ? `SLO ${fmt.pct(errSlo, errSlo < 1 ? 2 : 1)} · 1 min: ${fmt.pct(w1.errorRate * 100, 2)}` : '',
      err > errSlo ? 'bad' : err > errSlo / 10 ? 'warn' : null,
    );
    D.setKpi('shed', m ? fmt.int(m.shed.last10s) : '—', m ? `total ${fmt.int(m.shed.total)}` : '', m?.shed.last10s > 0 ? 'warn' : null);
    D.setKpi('inflight', p ? fmt.int(p.inFlight) : '—', p ? `${fmt.int(p.activeHandles)} active handles` : '');
    D.setKpi(
      'eld',
      p ? fmt.ms(p.eventLoopDelayP99Ms) : '—',
      p ? `ELU ${fmt.pct(p.eventLoopUtilization * 100, 0)}` : '',
      p && p.eventLoopDelayP99Ms > 100 ? 'bad' : p && p.eventLoopDelayP99Ms > 40 ? 'warn' : null,
    );
    D.setKpi('rss', p ? fmt.mb(p.rssBytes) : '—', p ? `heap ${Math.round(p.heapUsedBytes / 1048576)}/${fmt.mb(p.heapTotalBytes)}` : '');
    const live = snap.live;
    D.setKpi('live', live ? fmt.int(live.connections) : '—', live ? `${live.rooms} rooms · ${live.subscriptions} subs` : 'not configured');
  }

  function renderStatus() {
    const snap = state.last;
    const health = snap?.health;
    const healthPill = $('health-pill');
    if (!health) D.pill(healthPill, 'pill-unknown', 'health: n/a');
    else if (health.status === 'healthy') D.pill(healthPill, 'pill-ok', 'healthy');
    else D.pill(healthPill, health.status === 'unhealthy' ? 'pill-bad' : 'pill-warn', health.status);
    const conn = $('conn-pill');
    if (state.connection === 'live') D.pill(conn, 'pill-ok', 'live');
    else if (state.connection === 'stale') D.pill(conn, 'pill-warn', 'stale');
    else if (state.connection === 'connecting') D.pill(conn, 'pill-unknown', 'connecting…');
    else D.pill(conn, 'pill-bad', state.connection === 'expired' ? 'signed out' : 'disconnected');
    if (snap) $('updated').textContent = `updated ${new Date(snap.at).toLocaleTimeString()}`;
    D.renderBanner({ connection: state.connection, health });
  }

  function connect() {
    const source = new EventSource('/dashboard/stream');
    source.onopen = () => {
      state.connection = 'live';
      renderStatus();
    };
    source.onmessage = (event) => {
      state.connection = 'live';
      apply(JSON.parse(event.data));
    };
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        // The browser reconnects by itself (retry: from the server).
        state.connection = 'lost';
        renderStatus();
        return;
      }
      // CLOSED: the browser gave up on a non-200 answer. A 401 means the session ended; anything
      // else (503 when too many dashboards are open, a restart) is worth another try later.
      source.close();
      fetch('/dashboard/data', { credentials: 'same-origin' }).then(
        (res) => {
          state.connection = res.status === 401 ? 'expired' : 'lost';
          renderStatus();
          if (res.status !== 401) setTimeout(reconnect, 5000);
        },
        () => {
          state.connection = 'lost';
          renderStatus();
          setTimeout(reconnect, 5000);
        },
      );
    };
    return source;
  }

  // A stream that stops delivering without an error (a stalled proxy) shows as stale.
  setInterval(() => {
    if (state.connection === 'live' && Date.now() - state.lastEventAt > state.intervalMs * 3 + 1000) {
      state.connection = 'stale';
      renderStatus();
    }
  }, 1000);

  let source = connect();
  function reconnect() {
    source = connect();
  }

  // For tests and the curious: the rolling history lengths and the last snapshot.
  window.__dashboard = {
    get events() {
      return state.events;
    },
    get points() {
      return charts.rps.length;
    },
    get last() {
      return state.last;
    },
    get connection() {
      return state.connection;
    },
    lengths() {
      return Object.fromEntries(Object.entries(charts).map(([k, c]) => [k, c ? c.length : 0]));
    },
    plotted() {
      return Object.fromEntries(Object.entries(charts).map(([k, c]) => [k, c?.plot ? c.plot.data[0].length : 0]));
    },
    get source() {
      return source;
    },
    /** The value each objective line was last drawn at (null: not drawn yet). */
    sloLines() {
      return Object.fromEntries(Object.entries(sloLines).map(([k, p]) => [k, p.drawn]));
    },
    hitRatios,
  };
})();
