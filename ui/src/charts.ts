// Charts drawn as SVG with d3-scale and d3-shape (scales, ticks and paths; no DOM library, no network). Every chart
// comes with a table of the same numbers: the SVG is aria-hidden, the table (visually hidden) is what a screen reader
// reads, and the tests read both. Colours are CSS variables, so the charts follow the theme without a redraw.
import { scaleBand, scaleLinear, scaleUtc } from "d3-scale";
import { area, line } from "d3-shape";
import { el } from "./dom";

const SVG = "http://www.w3.org/2000/svg";

export interface Datum {
  label: string;
  value: number;
  /** The value as shown (e.g. "$1.2T"); default: the number. */
  shown?: string;
  /** Extra class on the bar (e.g. a status colour). */
  tone?: string;
}

function svgEl<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(width: number, height: number, name: string): SVGSVGElement {
  return svgEl("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    "aria-hidden": "true",
    focusable: "false",
    class: "chart-svg",
    "data-chart": name,
  });
}

/** A visually hidden table with the chart's numbers (what a screen reader reads instead of the picture). */
export function dataTable(caption: string, head: string[], rows: string[][], name: string): HTMLElement {
  // Wrapped: a table ignores overflow, so a hidden one would still widen the page at phone widths.
  return el("div", { className: "sr-only" }, el(
    "table",
    { className: "chart-table", attrs: { "data-table": name } },
    el("caption", { text: caption }),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h, attrs: { scope: "col" } })))),
    el(
      "tbody",
      {},
      ...rows.map((r) => el("tr", {}, ...r.map((c, i) => (i === 0 ? el("th", { text: c, attrs: { scope: "row" } }) : el("td", { text: c }))))),
    ),
  ));
}

function fit(text: string, px: number, charPx = 7): string {
  const max = Math.max(4, Math.floor(px / charPx));
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Horizontal bars, one row each: the label above its bar, the value at the bar's end. Fits any width. */
export function barList(name: string, data: Datum[], width: number): SVGSVGElement {
  const rowH = 34;
  const height = Math.max(rowH, data.length * rowH);
  const svg = frame(width, height, name);
  const valueRoom = 64;
  const max = Math.max(1, ...data.map((d) => d.value));
  const x = scaleLinear().domain([0, max]).range([0, Math.max(10, width - valueRoom)]);
  const y = scaleBand().domain(data.map((_, i) => String(i))).range([0, height]).paddingInner(0);
  data.forEach((d, i) => {
    const top = y(String(i)) ?? 0;
    const g = svgEl("g", { transform: `translate(0,${top})`, "data-label": d.label, "data-value": d.value });
    g.append(svgEl("text", { x: 0, y: 12, class: "chart-label" }, fit(d.label, width)));
    const w = d.value > 0 ? Math.max(2, x(d.value)) : 0;
    g.append(svgEl("rect", { x: 0, y: 17, width: w, height: 11, rx: 2, class: `chart-bar ${d.tone ?? ""}`.trim() }));
    g.append(svgEl("text", { x: w + 6, y: 27, class: "chart-value" }, d.shown ?? String(d.value)));
    svg.append(g);
  });
  return svg;
}

/** Vertical columns over labelled slots (the market-cap bands), each with its count on top. */
export function columns(name: string, data: Datum[], width: number, height = 150): SVGSVGElement {
  const svg = frame(width, height, name);
  const bottom = 20;
  const top = 16;
  const x = scaleBand().domain(data.map((d) => d.label)).range([0, width]).padding(0.2);
  const max = Math.max(1, ...data.map((d) => d.value));
  const y = scaleLinear().domain([0, max]).range([height - bottom, top]);
  svg.append(svgEl("line", { x1: 0, x2: width, y1: height - bottom + 0.5, y2: height - bottom + 0.5, class: "chart-axis" }));
  for (const d of data) {
    const left = x(d.label) ?? 0;
    const g = svgEl("g", { "data-label": d.label, "data-value": d.value });
    const h = height - bottom - y(d.value);
    g.append(svgEl("rect", { x: left, y: y(d.value), width: x.bandwidth(), height: Math.max(d.value ? 2 : 0, h), rx: 2, class: `chart-bar ${d.tone ?? ""}`.trim() }));
    g.append(svgEl("text", { x: left + x.bandwidth() / 2, y: y(d.value) - 4, class: "chart-value", "text-anchor": "middle" }, d.shown ?? String(d.value)));
    g.append(svgEl("text", { x: left + x.bandwidth() / 2, y: height - 5, class: "chart-label", "text-anchor": "middle" }, fit(d.label, x.bandwidth() + 8, 6.5)));
    svg.append(g);
  }
  return svg;
}

export interface Point {
  at: Date;
  value: number;
}

/** A step line of a value over time (membership size), with its area, time ticks and a marker per change. */
export function stepLine(name: string, points: Point[], width: number, height = 160): SVGSVGElement {
  const svg = frame(width, height, name);
  const left = 34;
  const bottom = 22;
  const start = points[0]?.at ?? new Date();
  const end = points[points.length - 1]?.at ?? new Date();
  // At least a day wide; a history of a day or two (every change at creation, say) is labelled by its dates, since
  // time ticks inside one day read as ":10" and ".500".
  const dayMs = 86_400_000;
  const stop = end.getTime() - start.getTime() >= dayMs ? end : new Date(start.getTime() + dayMs);
  const short = stop.getTime() - start.getTime() <= 2 * dayMs;
  const x = scaleUtc().domain([start, stop]).range([left, width - 8]);
  const max = Math.max(1, ...points.map((p) => p.value));
  const y = scaleLinear().domain([0, max]).nice().range([height - bottom, 8]);
  for (const t of y.ticks(4)) {
    svg.append(svgEl("line", { x1: left, x2: width - 8, y1: y(t), y2: y(t), class: "chart-grid" }));
    svg.append(svgEl("text", { x: left - 6, y: y(t) + 4, class: "chart-tick", "text-anchor": "end" }, String(t)));
  }
  const ticks = short ? [start, stop] : x.ticks(Math.max(2, Math.floor(width / 110)));
  const fmt = short ? (d: Date) => d.toISOString().slice(0, 10) : x.tickFormat(ticks.length);
  ticks.forEach((t, i) => {
    // The two dates of a short history sit at the chart's edges: anchored inwards so neither is cut off.
    const anchor = short ? (i === 0 ? "start" : "end") : "middle";
    svg.append(svgEl("text", { x: x(t), y: height - 6, class: "chart-tick", "text-anchor": anchor }, fmt(t)));
  });
  const shape = { x: (p: Point) => x(p.at), y: (p: Point) => y(p.value) };
  const stepped: Point[] = [];
  points.forEach((p, i) => {
    if (i > 0) stepped.push({ at: p.at, value: points[i - 1].value });
    stepped.push(p);
  });
  svg.append(svgEl("path", { d: area<Point>().x(shape.x).y0(height - bottom).y1(shape.y)(stepped) ?? "", class: "chart-area" }));
  svg.append(svgEl("path", { d: line<Point>().x(shape.x).y(shape.y)(stepped) ?? "", class: "chart-line" }));
  for (const p of points) svg.append(svgEl("circle", { cx: x(p.at), cy: y(p.value), r: 3, class: "chart-dot", "data-value": p.value }));
  return svg;
}

export interface Period {
  label: string;
  up: number; // additions, drawn above the axis
  down: number; // removals, drawn below it
}

/** Additions above and removals below a middle axis, one slot per period. */
export function diverging(name: string, periods: Period[], width: number, height = 150): SVGSVGElement {
  const svg = frame(width, height, name);
  const bottom = 18;
  const x = scaleBand().domain(periods.map((p) => p.label)).range([0, width]).padding(0.25);
  const max = Math.max(1, ...periods.map((p) => Math.max(p.up, p.down)));
  const y = scaleLinear().domain([-max, max]).range([height - bottom - 14, 16]);
  svg.append(svgEl("line", { x1: 0, x2: width, y1: y(0) + 0.5, y2: y(0) + 0.5, class: "chart-axis" }));
  const every = Math.max(1, Math.ceil(periods.length / Math.max(1, Math.floor(width / 56))));
  periods.forEach((p, i) => {
    const left = x(p.label) ?? 0;
    const g = svgEl("g", { "data-label": p.label, "data-up": p.up, "data-down": p.down });
    const mid = left + x.bandwidth() / 2;
    if (p.up) {
      g.append(svgEl("rect", { x: left, y: y(p.up), width: x.bandwidth(), height: y(0) - y(p.up), class: "chart-bar added" }));
      if (x.bandwidth() >= 14) g.append(svgEl("text", { x: mid, y: y(p.up) - 4, class: "chart-value", "text-anchor": "middle" }, `+${p.up}`));
    }
    if (p.down) {
      g.append(svgEl("rect", { x: left, y: y(0) + 1, width: x.bandwidth(), height: y(-p.down) - y(0), class: "chart-bar removed" }));
      if (x.bandwidth() >= 14) g.append(svgEl("text", { x: mid, y: y(-p.down) + 13, class: "chart-value", "text-anchor": "middle" }, `−${p.down}`));
    }
    if (i % every === 0) g.append(svgEl("text", { x: left + x.bandwidth() / 2, y: height - 4, class: "chart-tick", "text-anchor": "middle" }, p.label));
    svg.append(g);
  });
  return svg;
}
