import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { byId, el, swatch } from './dom.js';
import { bitRate, bytes, clock, exact, packetRate } from './format.js';

/** One stacked series of the traffic chart (bit/s per step) with its totals over the range. */
export interface ChartSeries {
  key: string;
  label: string;
  colour: string;
  /** bit/s per time of ChartData.times (0 where the API had no point). */
  bitsPerSecond: number[];
  packetsPerSecond: number[];
  totals: { bytes: number; packets: number; bitsPerSecond: number; packetsPerSecond: number };
  /** What clicking its legend entry does (split an experiment by activity), if anything. */
  action?: { label: string; run: () => void };
}

export interface ChartData {
  /** Step starts, seconds since the epoch. */
  times: number[];
  stepSeconds: number;
  series: ChartSeries[];
  /** Start (s) of the first provisional step, or null. */
  provisionalFrom: number | null;
}

const HEIGHT = 320;

/**
 * The stacked bit/s chart (uPlot, bundled), its legend (buttons: keyboard and screen readers
 * reach every entry), a tooltip that names each series' value at the cursor (also driven by the
 * arrow keys), and a table of the same totals for those who cannot read a chart.
 */
export class TrafficChart {
  private plot: uPlot | undefined;
  private data: ChartData | undefined;
  private readonly target = byId('chart');
  private readonly tooltip = byId('tooltip');
  private index: number | null = null;

  constructor() {
    this.target.addEventListener('keydown', (e) => this.key(e));
    this.target.addEventListener('mouseleave', () => this.hideTooltip());
    this.target.addEventListener('blur', () => this.hideTooltip());
    window.addEventListener('resize', () => this.plot?.setSize({ width: this.width(), height: HEIGHT }));
  }

  private width(): number {
    return Math.max(320, this.target.clientWidth || 800);
  }

  render(data: ChartData, title: string): void {
    this.data = data;
    this.target.setAttribute('aria-label', `${title}: stacked chart of bit/s over time; the legend and the table below give the totals`);
    const stacked: number[][] = [];
    let below = data.times.map(() => 0);
    for (const s of data.series) {
      below = below.map((v, i) => v + (s.bitsPerSecond[i] ?? 0));
      stacked.push(below);
    }
    // uPlot draws in order: the top of the stack first so lower bands paint over nothing.
    const order = data.series.map((_, i) => i).reverse();
    const opts: uPlot.Options = {
      width: this.width(),
      height: HEIGHT,
      legend: { show: false },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [{}, { size: 90, values: (_u, splits) => splits.map((v) => bitRate(v)) }],
      series: [
        {},
        ...order.map((i) => ({
          label: data.series[i]!.label,
          stroke: data.series[i]!.colour,
          fill: data.series[i]!.colour,
          width: 1,
          points: { show: false },
        })),
      ],
      hooks: {
        setCursor: [(u) => this.showTooltip(u.cursor.idx ?? null)],
        draw: [(u) => this.drawProvisional(u)],
      },
    };
    const aligned: uPlot.AlignedData = [data.times, ...order.map((i) => stacked[i]!)];
    this.plot?.destroy();
    this.plot = new uPlot(opts, aligned, this.target);
    this.index = null;
    this.hideTooltip();
    this.legend(data);
    this.table(data, title);
  }

  private drawProvisional(u: uPlot): void {
    const from = this.data?.provisionalFrom;
    if (from === null || from === undefined) return;
    // The line into the first provisional point already shows it: shade from the step before.
    const x = Math.max(u.bbox.left, u.valToPos(from - (this.data?.stepSeconds ?? 0), 'x', true));
    const right = u.bbox.left + u.bbox.width;
    if (x >= right) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.fillStyle = 'rgba(255, 255, 255, 0.55)';
    ctx.fillRect(x, u.bbox.top, right - x, u.bbox.height);
    ctx.strokeStyle = '#555';
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillStyle = '#333';
    ctx.font = `${12 * devicePixelRatio}px sans-serif`;
    ctx.fillText('provisional', x + 4, u.bbox.top + 14 * devicePixelRatio);
    ctx.restore();
  }

  private key(e: KeyboardEvent): void {
    const d = this.data;
    if (!d || !this.plot || d.times.length === 0) return;
    const last = d.times.length - 1;
    let i = this.index ?? last;
    if (e.key === 'ArrowLeft') i = Math.max(0, i - 1);
    else if (e.key === 'ArrowRight') i = Math.min(last, i + 1);
    else if (e.key === 'Home') i = 0;
    else if (e.key === 'End') i = last;
    else if (e.key === 'Escape') return this.hideTooltip();
    else return;
    e.preventDefault();
    this.plot.setCursor({ left: this.plot.valToPos(d.times[i]!, 'x'), top: HEIGHT / 4 });
    this.showTooltip(i);
  }

  private showTooltip(i: number | null): void {
    const d = this.data;
    if (i === null || !d || d.times[i] === undefined) return this.hideTooltip();
    this.index = i;
    const t = d.times[i]!;
    const provisional = d.provisionalFrom !== null && t >= d.provisionalFrom;
    const lines = d.series.map((s) =>
      el(
        'li',
        { 'data-key': s.key, 'data-bps': String(s.bitsPerSecond[i] ?? 0) },
        swatch(s.colour),
        `${s.label}: ${bitRate(s.bitsPerSecond[i] ?? 0)}, ${packetRate(s.packetsPerSecond[i] ?? 0)}`,
      ),
    );
    this.tooltip.replaceChildren(
      el(
        'strong',
        { 'data-time': String(t) },
        `${clock(t * 1000)} (${d.stepSeconds} s step)${provisional ? ', provisional: the bucket is still open' : ''}`,
      ),
      el('ul', {}, ...lines),
    );
    this.tooltip.classList.remove('idle');
  }

  private hideTooltip(): void {
    this.tooltip.classList.add('idle');
  }

  private legend(d: ChartData): void {
    const items = d.series.map((s) => {
      const text = `${s.label}: ${bytes(s.totals.bytes)}, average ${bitRate(s.totals.bitsPerSecond)}`;
      const sw = swatch(s.colour);
      const attrs = { 'data-key': s.key, 'data-bytes': String(s.totals.bytes), 'data-packets': String(s.totals.packets) };
      if (!s.action) return el('li', attrs, sw, text);
      const button = el('button', { type: 'button', title: s.action.label, 'aria-label': `${text}. ${s.action.label}` }, sw, text);
      const run = s.action.run;
      button.addEventListener('click', () => run());
      return el('li', attrs, button);
    });
    byId('legend').replaceChildren(...items);
  }

  private table(d: ChartData, title: string): void {
    const table = byId<HTMLTableElement>('traffic-table');
    const rows = d.series.map((s) =>
      el(
        'tr',
        { 'data-key': s.key },
        el('th', { scope: 'row' }, s.label),
        el('td', { class: 'num' }, exact(s.totals.bytes)),
        el('td', { class: 'num' }, exact(s.totals.packets)),
        el('td', { class: 'num' }, bitRate(s.totals.bitsPerSecond)),
        el('td', { class: 'num' }, packetRate(s.totals.packetsPerSecond)),
      ),
    );
    table.replaceChildren(
      el('caption', {}, title),
      el(
        'thead',
        {},
        el('tr', {}, ...['series', 'bytes', 'packets', 'average bit/s', 'average packets/s'].map((h) => el('th', { scope: 'col' }, h))),
      ),
      el('tbody', {}, ...rows),
    );
  }
}
