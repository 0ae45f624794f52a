// Traffic over a time range: totals, a uPlot chart of page views and visitors, top pages and
// top referrers. Loaded on demand (the chart library is the largest dependency).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useLayoutEffect, useRef } from 'preact/hooks';
import { api, qs, sitePath } from '../lib/api.js';
import { route, setQuery } from '../lib/router.js';
import { num, urlParts, hostOf, ms } from '../lib/format.js';
import { PageHeader, Segmented, ErrorNote, Spinner, Empty, useAsync, Bar, Card } from '../components/ui.jsx';

const RANGES = {
  '24h': { label: 'Last 24 hours', ms: 24 * 3600e3, interval: 'hour' },
  '7d': { label: 'Last 7 days', ms: 7 * 86400e3, interval: 'day' },
  '30d': { label: 'Last 30 days', ms: 30 * 86400e3, interval: 'day' },
};
const STEP = { hour: 3600e3, day: 86400e3 };

function referrerLabel(r) {
  const u = urlParts(r);
  const host = hostOf(r);
  return u.pathname && u.pathname !== '/' ? host + u.pathname : host;
}

/** Fills the buckets the server left out (no traffic) so the chart shows zeros, not a straight line. */
export function fillSeries(series, from, to, interval) {
  const step = STEP[interval];
  const pts = (series || []).map((p) => ({ t: ms(p.t), pv: Number(p.pageviews) || 0, v: Number(p.visitors) || 0 })).filter((p) => isFinite(p.t));
  pts.sort((a, b) => a.t - b.t);
  const anchor = pts.length ? pts[0].t : Math.floor(from / step) * step;
  const start = anchor - Math.floor((anchor - from) / step) * step;
  const byT = new Map(pts.map((p) => [p.t, p]));
  const xs = [];
  const pv = [];
  const vs = [];
  const aligned = pts.every((p) => (p.t - anchor) % step === 0);
  if (!aligned || (to - start) / step > 2000) {
    for (const p of pts) {
      xs.push(p.t / 1000);
      pv.push(p.pv);
      vs.push(p.v);
    }
    return [xs, pv, vs];
  }
  for (let t = start; t <= to; t += step) {
    const p = byT.get(t);
    xs.push(t / 1000);
    pv.push(p ? p.pv : 0);
    vs.push(p ? p.v : 0);
  }
  return [xs, pv, vs];
}

const hourFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric' });

function Chart({ data, interval }) {
  const ref = useRef(null);
  const readout = useRef(null);
  const plot = useRef(null);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const width = () => Math.max(280, el.clientWidth);
    const opts = {
      width: width(),
      height: 260,
      padding: [12, 12, 0, 0],
      cursor: { drag: { x: false, y: false } },
      legend: { show: false },
      hooks: {
        setCursor: [
          (u) => {
            const i = u.cursor.idx;
            const el = readout.current;
            if (!el) return;
            el.textContent =
              i == null
                ? ''
                : `${(interval === 'hour' ? hourFmt : dayFmt).format(data[0][i] * 1000)}: ${num(data[1][i])} page views, ${num(data[2][i])} visitors`;
          },
        ],
      },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
      axes: [
        {
          stroke: '#64748b',
          grid: { show: false },
          ticks: { stroke: '#e2e8f0' },
          values: interval === 'hour' ? '{HH}:{mm}' : '{MMM} {D}',
          space: 60,
        },
        { stroke: '#64748b', grid: { stroke: '#eef2f6' }, ticks: { show: false }, size: 44 },
      ],
      series: [
        { value: interval === 'hour' ? '{MMM} {D}, {HH}:{mm}' : '{WWW} {MMM} {D}' },
        { label: 'Page views', stroke: '#2563eb', width: 2, fill: 'rgba(37,99,235,0.08)', points: { show: false } },
        { label: 'Visitors', stroke: '#0d9488', width: 2, points: { show: false } },
      ],
    };
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => plot.current && plot.current.setSize({ width: width(), height: 260 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, [data, interval]);
  return (
    <>
      <div class="chart-legend">
        <span class="lg lg-pv">Page views</span>
        <span class="lg lg-v">Visitors</span>
        <span class="chart-readout muted" ref={readout} />
      </div>
      <div class="chart" ref={ref} role="img" aria-label="Page views and visitors over time" />
    </>
  );
}

function TopList({ title, items, render, empty, id }) {
  const max = items.length ? items[0].count : 0;
  return (
    <Card title={title} id={id}>
      {items.length ? (
        <table class="table table-top">
          <tbody>
            {items.slice(0, 10).map((it, i) => (
              <tr key={i}>
                <td class="top-label">
                  {render(it)}
                  <Bar value={it.count} max={max} />
                </td>
                <td class="c-num">{num(it.count)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted small pad">{empty}</p>
      )}
    </Card>
  );
}

export function Stats({ site }) {
  const q = route.value.query;
  const range = RANGES[q.range] ? q.range : '24h';
  const interval = q.interval === 'hour' || q.interval === 'day' ? q.interval : RANGES[range].interval;
  const res = useAsync(async () => {
    const to = Date.now();
    const from = to - RANGES[range].ms;
    const r = await api.get(sitePath(site.id, '/stats') + qs({ from: new Date(from).toISOString(), to: new Date(to).toISOString(), interval }));
    return { r, from, to };
  }, [site.id, range, interval]);
  const d = res.data;
  const s = d && d.r;
  const data = d ? fillSeries(s.series, d.from, d.to, interval) : null;
  return (
    <div class="page page-wide">
      <PageHeader title="Stats" sub={RANGES[range].label}>
        <Segmented
          name="range"
          label="Time range"
          value={range}
          onChange={(v) => setQuery({ range: v, interval: RANGES[v].interval }, { replace: true })}
          options={[
            { value: '24h', label: '24 h' },
            { value: '7d', label: '7 d' },
            { value: '30d', label: '30 d' },
          ]}
        />
        <Segmented
          name="interval"
          label="Bucket size"
          value={interval}
          onChange={(v) => setQuery({ interval: v }, { replace: true })}
          options={[
            { value: 'hour', label: 'Hourly' },
            { value: 'day', label: 'Daily' },
          ]}
        />
      </PageHeader>
      {res.error ? <ErrorNote error={res.error} onRetry={res.reload} /> : null}
      {!s && res.loading ? (
        <Spinner />
      ) : s ? (
        <>
          <div class="kpis" role="group" aria-label="Totals">
            <div class="kpi">
              <span class="kpi-value" data-testid="stat-pageviews">{num(s.pageviews)}</span>
              <span class="kpi-label">page views</span>
            </div>
            <div class="kpi">
              <span class="kpi-value" data-testid="stat-visitors">{num(s.visitors)}</span>
              <span class="kpi-label">visitors</span>
            </div>
            <div class="kpi">
              <span class="kpi-value">{num(s.sessions)}</span>
              <span class="kpi-label">sessions</span>
            </div>
            <div class="kpi">
              <span class="kpi-value">{s.sessions ? (s.pageviews / s.sessions).toFixed(1) : '—'}</span>
              <span class="kpi-label">pages / session</span>
            </div>
          </div>
          <Card title="Traffic" id="traffic" class={res.loading ? 'is-loading' : ''}>
            {data[0].length ? <Chart data={data} interval={interval} /> : <Empty title="No traffic in this range" icon="∅" />}
          </Card>
          <div class="two-col">
            <TopList
              id="top-pages"
              title="Top pages"
              items={s.top_pages || []}
              empty="No page views in this range."
              render={(p) => {
                const u = urlParts(p.url);
                return (
                  <span class="mono trunc" title={p.url}>
                    {u.path || p.url}
                  </span>
                );
              }}
            />
            <TopList
              id="top-refs"
              title="Top referrers"
              items={s.top_referrers || []}
              empty="No referrers in this range: visits were direct."
              render={(p) => (
                <span class="trunc" title={p.referrer}>
                  {p.referrer ? referrerLabel(p.referrer) : 'Direct'}
                </span>
              )}
            />
          </div>
        </>
      ) : null}
    </div>
  );
}
