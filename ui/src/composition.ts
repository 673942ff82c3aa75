// "What it is made of": sectors (by members or by market cap), the largest industries, market-cap bands and the
// members' statuses, from get_dashboard_state's composition (counted over every member by the server).
import type { Composition } from "./api";
import { barList, columns, dataTable, type Datum } from "./charts";
import { $ } from "./dom";
import { money, plural } from "./format";

let current: Composition | null = null;
let observer: ResizeObserver | null = null;
let lastWidth = 0;

function figureWidth(id: string): number {
  const node = $(id);
  return Math.max(200, Math.floor(node.clientWidth || 300));
}

function place(id: string, chart: SVGSVGElement, table: HTMLElement): void {
  $(id).querySelector(".chart-body")!.replaceChildren(chart, table);
}

export function renderComposition(data: Composition | null | undefined): void {
  current = data ?? null;
  const card = $("composition");
  card.hidden = !current || current.members === 0;
  if (!current || current.members === 0) return;
  draw(current);
  if (!observer && "ResizeObserver" in window) {
    // Redraw at the new width only (the charts' heights follow their rows, so this cannot loop).
    observer = new ResizeObserver(() => {
      const w = card.clientWidth;
      if (current && Math.abs(w - lastWidth) > 8) draw(current);
    });
    observer.observe(card);
  }
}

function draw(c: Composition): void {
  lastWidth = $("composition").clientWidth;
  const byCap = ($("sector-by-cap") as HTMLInputElement).checked;
  const sectors: Datum[] = c.sectors.map((s) => ({
    label: s.name,
    value: byCap ? s.market_cap : s.count,
    shown: byCap ? money(s.market_cap) : String(s.count),
  }));
  if (byCap) sectors.sort((a, b) => b.value - a.value);
  place(
    "chart-sectors",
    barList("sectors", sectors, figureWidth("chart-sectors")),
    dataTable(
      "Members and market cap by sector",
      ["Sector", "Members", "Market cap"],
      c.sectors.map((s) => [s.name, String(s.count), money(s.market_cap)]),
      "sectors",
    ),
  );

  const industries = c.industries.map((i) => ({ label: i.name, value: i.count }));
  place(
    "chart-industries",
    barList("industries", industries, figureWidth("chart-industries")),
    dataTable("Largest industries by members", ["Industry", "Members"], c.industries.map((i) => [i.name, String(i.count)]), "industries"),
  );
  $("industries-empty").hidden = industries.length > 0;

  const bandName = (b: Composition["market_caps"][number]): string =>
    b.label === "Unknown" ? "Unknown" : `${b.label} (${b.min === null ? "under" : money(b.min)}${b.min !== null && b.max !== null ? "–" : b.max === null ? "+" : " "}${b.max === null ? "" : money(b.max)})`;
  place(
    "chart-caps",
    columns("caps", c.market_caps.map((b) => ({ label: b.label, value: b.count, tone: b.label === "Unknown" ? "muted" : "" })), figureWidth("chart-caps")),
    dataTable("Members by market-cap band", ["Band", "Members"], c.market_caps.map((b) => [bandName(b), String(b.count)]), "caps"),
  );

  const order = ["valid", "pending", "unknown", "invalid"];
  const validation = Object.entries(c.validation).sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
  const listing = Object.entries(c.listing).filter(([k, n]) => k === "listed" || n > 0);
  const statuses: Datum[] = [
    ...validation.map(([k, n]) => ({ label: k, value: n, tone: k })),
    ...listing.map(([k, n]) => ({ label: k, value: n, tone: k === "listed" ? "valid" : k })),
  ];
  place(
    "chart-status",
    barList("status", statuses, figureWidth("chart-status")),
    dataTable(
      "Members by validation and listing status",
      ["Status", "Kind", "Members"],
      [...validation.map(([k, n]) => [k, "validation", String(n)]), ...listing.map(([k, n]) => [k, "listing", String(n)])],
      "status",
    ),
  );

  $("composition-summary").textContent =
    `${plural(c.members, "member")} · ${money(c.market_cap)} combined market cap` + (c.partial ? " · charted from the first members only" : "");
}

export function wireComposition(): void {
  for (const id of ["sector-by-count", "sector-by-cap"]) $(id).addEventListener("change", () => current && draw(current));
}
