// Rolling time-series charts on uPlot: a bounded client-side history per chart (HISTORY points),
// sized to their card, redrawn once per event.
(() => {
  const HISTORY = 300;
  const COLORS = {
    blue: '#58a6ff',
    green: '#3fb950',
    amber: '#d29922',
    red: '#f85149',
    purple: '#a371f7',
    cyan: '#39c5cf',
    pink: '#db61a2',
    orange: '#f0883e',
  };
  const PALETTE = [COLORS.blue, COLORS.green, COLORS.purple, COLORS.cyan, COLORS.pink, COLORS.orange, COLORS.amber];
  const HEIGHT = 190;

  const two = (n) => String(n).padStart(2, '0');
  const clock = (t) => {
    const d = new Date(t * 1000);
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  };

  const fmt = {
    int(v) {
      if (v === null || v === undefined || !Number.isFinite(v)) return '—';
      if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
      if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
      return String(Math.round(v));
    },
    num(v) {
      if (v === null || v === undefined || !Number.isFinite(v)) return '—';
      const a = Math.abs(v);
      if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
      if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
      if (a >= 100) return v.toFixed(0);
      if (a >= 10) return v.toFixed(1);
      return v.toFixed(2);
    },
    ms(v) {
      if (v === null || v === undefined || !Number.isFinite(v)) return '—';
      if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
      if (v >= 100) return `${v.toFixed(0)} ms`;
      if (v >= 10) return `${v.toFixed(1)} ms`;
      if (v >= 1) return `${v.toFixed(2)} ms`;
      return `${(v * 1000).toFixed(0)} µs`;
    },
    pct(v, digits = 1) {
      if (v === null || v === undefined || !Number.isFinite(v)) return '—';
      return `${v.toFixed(digits)} %`;
    },
    mb(bytes) {
      if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
      return `${(bytes / 1048576).toFixed(bytes >= 1048576 * 100 ? 0 : 1)} MB`;
    },
  };

  const axis = (extra) => ({
    stroke: '#8b949e',
    font: '11px system-ui, sans-serif',
    grid: { stroke: 'rgba(240, 246, 252, 0.06)', width: 1 },
    ticks: { stroke: 'rgba(240, 246, 252, 0.12)', width: 1, size: 4 },
    ...extra,
  });

  const isPow10 = (v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;

  /**
   * Draws a dashed horizontal objective line with its label on scale `y`. The plugin's `drawn`
   * is the value last drawn inside the plot (null before), so tests can see the line is there.
   */
  function thresholdLine(getValue, label, color) {
    const plugin = {
      drawn: null,
      hooks: {
        draw: [
          (u) => {
            const value = getValue();
            if (!Number.isFinite(value)) return;
            const y = u.valToPos(value, 'y', true);
            if (!Number.isFinite(y) || y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
            const dpr = window.devicePixelRatio || 1;
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = color;
            ctx.lineWidth = 1.5 * dpr;
            ctx.setLineDash([6 * dpr, 4 * dpr]);
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.fillStyle = color;
            ctx.font = `600 ${11 * dpr}px system-ui, sans-serif`;
            ctx.textAlign = 'right';
            ctx.fillText(label(value), u.bbox.left + u.bbox.width - 6 * dpr, y - 5 * dpr);
            ctx.restore();
            plugin.drawn = value;
          },
        ],
      },
    };
    return plugin;
  }

  /**
   * One chart: `series` is [{ label, color, scale?, fmt?, width? }]; values pushed in that order.
   * Options: `scales`, `axes` (uPlot axes after x), `plugins`.
   */
  class TimeChart {
    constructor(el, spec) {
      this.el = el;
      this.spec = spec;
      this.xs = [];
      this.ys = spec.series.map(() => []);
      this.plot = null;
    }

    get length() {
      return this.xs.length;
    }

    push(t, values) {
      this.xs.push(t);
      for (let i = 0; i < this.ys.length; i++) {
        const v = values[i];
        this.ys[i].push(v === undefined || v === null || !Number.isFinite(v) ? null : v);
      }
      if (this.xs.length > HISTORY) {
        this.xs.shift();
        for (const y of this.ys) y.shift();
      }
      this.draw();
    }

    draw() {
      if (!this.plot) {
        if (this.el.clientWidth === 0) return;
        this.#create();
      }
      this.plot.setData([this.xs, ...this.ys]);
      this.#legendToLatest();
    }

    /** With no cursor over the chart, the legend shows the newest values instead of dashes. */
    #legendToLatest() {
      const u = this.plot;
      if (u && !(u.cursor.left >= 0) && this.xs.length > 0) u.setLegend({ idx: this.xs.length - 1 });
    }

    destroy() {
      this.resize?.disconnect();
      this.plot?.destroy();
      this.plot = null;
    }

    #create() {
      const { spec } = this;
      const opts = {
        width: this.el.clientWidth,
        height: spec.height ?? HEIGHT,
        // A right-hand axis needs room for the last time label, which centres on the plot's edge.
        padding: [8, (spec.axes ?? []).some((a) => a.side === 1) ? 24 : 8, 0, 0],
        cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
        legend: { live: true },
        scales: { x: { time: true }, ...spec.scales },
        axes: [axis({ space: 80, values: (_u, vals) => vals.map(clock) }), ...(spec.axes ?? [axis({})])],
        series: [
          { value: (_u, v) => (v === null ? '—' : clock(v)) },
          ...spec.series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: s.width ?? 1.6,
            scale: s.scale ?? 'y',
            spanGaps: false,
            fill: s.fill,
            dash: s.dash,
            points: { show: false },
            value: (_u, v) => (v === null ? '—' : (s.fmt ?? fmt.num)(v)),
          })),
        ],
        plugins: spec.plugins ?? [],
        hooks: { setCursor: [() => this.#legendToLatest()] },
      };
      this.plot = new window.uPlot(opts, [this.xs, ...this.ys], this.el);
      this.resize = new ResizeObserver(() => {
        const width = this.el.clientWidth;
        if (this.plot && width > 0 && width !== this.plot.width) this.plot.setSize({ width, height: this.plot.height });
      });
      this.resize.observe(this.el);
    }
  }

  window.KeelDash = { HISTORY, COLORS, PALETTE, fmt, axis, isPow10, thresholdLine, TimeChart };
})();
