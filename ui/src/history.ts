// History: the membership size over time and the changes per period (from get_universe_history's events, newest
// first, and get_universe_turnover's figures), the events listed beside them, and an as_of picker that shows the
// members on a past date (get_universe with as_of).
import { call, type Detail, type Member } from "./api";
import { dataTable, diverging, type Period, type Point, stepLine } from "./charts";
import { busy, has, renderMembers, state } from "./core";
import { $, el } from "./dom";
import { day, percent, plural } from "./format";
import { notify } from "./notices";

interface HistoryEvent {
  effective_at: string;
  recorded_at: string | null;
  symbol: string;
  symbol_then?: string | null; // the ticker it traded under then, when another (FB beside META)
  action: "added" | "removed";
  reason: string | null;
  run_id: string | null;
}

interface HistoryPage {
  events: HistoryEvent[];
  next_cursor: string | null;
}

interface Turnover {
  since: string;
  until: string;
  additions: number;
  removals: number;
  size_start: number;
  size_end: number;
  one_way_turnover: number | null;
  turnover: number | null;
}

const PAGES = 5; // up to 500 changes charted; older ones are left out (and the chart says from when)
const LISTED = 100;

let loadedKey = "";
let seq = 0;
let events: HistoryEvent[] = [];
let complete = true;
let observer: ResizeObserver | null = null;
let lastWidth = 0;

/** After each render: reload the history when the universe (or its membership) changed. */
export function syncHistory(): void {
  const detail = state.data?.selected;
  const panel = $("history-panel");
  if (!detail || !has("get_universe_history")) {
    panel.hidden = true;
    loadedKey = "";
    return;
  }
  panel.hidden = false;
  $("as-of-row").hidden = !has("get_universe");
  const key = `${detail.universe.id}|${detail.universe.updated_at}|${detail.universe.asset_count}`;
  if (key === loadedKey) return;
  loadedKey = key;
  void load(detail).catch((err) => notify(`The history could not be loaded: ${err instanceof Error ? err.message : String(err)}`, "warn"));
}

async function load(detail: Detail): Promise<void> {
  const mine = ++seq;
  const uid = detail.universe.id;
  const all: HistoryEvent[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < PAGES; i++) {
    const page: HistoryPage = await call<HistoryPage>("get_universe_history", { universe_id: uid, limit: 100, ...(cursor ? { cursor } : {}) });
    all.push(...page.events);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  const turnover = has("get_universe_turnover") ? await call<Turnover>("get_universe_turnover", { universe_id: uid }) : null;
  if (mine !== seq) return;
  events = all;
  complete = cursor === null;
  draw(detail.universe.asset_count, turnover);
  if (!observer && "ResizeObserver" in window) {
    observer = new ResizeObserver(() => {
      const w = $("history-panel").clientWidth;
      if (Math.abs(w - lastWidth) > 8 && state.data?.selected) draw(state.data.selected.universe.asset_count, null);
    });
    observer.observe($("history-panel"));
  }
}

/** Sizes over time, walking back from today's size through the changes (newest first). */
export function sizes(current: number, newestFirst: HistoryEvent[]): Point[] {
  const points: Point[] = [{ at: new Date(), value: current }];
  let size = current;
  for (let i = 0; i < newestFirst.length; i++) {
    const e = newestFirst[i];
    const at = new Date(e.effective_at);
    // Several changes at one time make one step: the point is the size after the last of them.
    if (i === 0 || newestFirst[i - 1].effective_at !== e.effective_at) points.push({ at, value: size });
    size += e.action === "added" ? -1 : 1;
  }
  if (newestFirst.length) points.push({ at: new Date(new Date(newestFirst[newestFirst.length - 1].effective_at).getTime() - 1), value: size });
  return points.reverse();
}

function periodKey(at: Date, unit: "day" | "month" | "year"): string {
  const iso = at.toISOString();
  return unit === "day" ? iso.slice(0, 10) : unit === "month" ? iso.slice(0, 7) : iso.slice(0, 4);
}

function periods(oldestFirst: HistoryEvent[]): Period[] {
  if (!oldestFirst.length) return [];
  const span = Date.parse(oldestFirst[oldestFirst.length - 1].effective_at) - Date.parse(oldestFirst[0].effective_at);
  const unit = span > 4 * 365 * 86_400_000 ? "year" : span > 62 * 86_400_000 ? "month" : "day";
  const out = new Map<string, Period>();
  for (const e of oldestFirst) {
    const label = periodKey(new Date(e.effective_at), unit);
    const p = out.get(label) ?? { label, up: 0, down: 0 };
    if (e.action === "added") p.up += 1;
    else p.down += 1;
    out.set(label, p);
  }
  return [...out.values()];
}

let lastTurnover: Turnover | null = null;

function draw(current: number, turnover: Turnover | null): void {
  if (turnover) lastTurnover = turnover;
  lastWidth = $("history-panel").clientWidth;
  const width = Math.max(220, Math.floor(($("chart-size") as HTMLElement).clientWidth || 300));
  const empty = events.length === 0;
  $("history-empty").hidden = !empty;
  $("history-charts").hidden = empty;
  const t = lastTurnover;
  $("history-summary").textContent = t
    ? `Since ${day(t.since)}: ${plural(t.additions, "addition")} · ${plural(t.removals, "removal")} · one-way turnover ${percent(t.one_way_turnover)}`
    : "";
  $("history-summary").dataset.additions = String(t?.additions ?? "");
  $("history-summary").dataset.removals = String(t?.removals ?? "");
  if (empty) return;
  const points = sizes(current, events);
  $("chart-size").querySelector(".chart-body")!.replaceChildren(
    stepLine("size", points, width),
    dataTable("Members over time", ["Date", "Members"], points.map((p) => [p.at.toISOString().slice(0, 10), String(p.value)]), "size"),
  );
  const oldestFirst = [...events].reverse();
  const per = periods(oldestFirst);
  $("chart-turnover").querySelector(".chart-body")!.replaceChildren(
    diverging("turnover", per, Math.max(220, Math.floor(($("chart-turnover") as HTMLElement).clientWidth || 300))),
    dataTable("Changes per period", ["Period", "Added", "Removed"], per.map((p) => [p.label, String(p.up), String(p.down)]), "turnover"),
  );
  $("history-partial").hidden = complete;
  $("history-partial").textContent = complete ? "" : `Charted from ${day(events[events.length - 1].effective_at)}: older changes are not shown.`;
  $("history-events").querySelector("tbody")!.replaceChildren(
    ...events.slice(0, LISTED).map((e) =>
      el(
        "tr",
        { attrs: { "data-symbol": e.symbol, "data-action": e.action } },
        el("td", { text: day(e.effective_at) }),
        el("td", { text: e.symbol_then ? `${e.symbol} (then ${e.symbol_then})` : e.symbol }),
        el("td", {}, el("span", { className: `badge ${e.action}`, text: e.action })),
        el("td", { className: "wide-ok", text: e.reason ?? (e.run_id ? "rebalance" : "") }),
      ),
    ),
  );
  $("history-more").hidden = events.length <= LISTED;
  $("history-more").textContent = `The newest ${LISTED} of ${events.length}${complete ? "" : "+"} changes are listed.`;
}

// --- as_of ---------------------------------------------------------------------------------------------------------

export async function showAsOf(date: string): Promise<void> {
  const at = `${date}T23:59:59Z`;
  const page = await call<Detail>("get_universe", { universe_id: state.selectedId, as_of: at, limit: 200 });
  state.asOf = at;
  state.members = page.assets ?? ([] as Member[]);
  state.nextCursor = page.next_cursor;
  $("as-of-banner").hidden = false;
  $("as-of-text").textContent = `Members on ${date}: ${plural(page.universe.asset_count, "member")} (today: ${state.data?.selected?.universe.asset_count ?? 0}).`;
  $("as-of-banner").dataset.count = String(page.universe.asset_count);
  renderMembers();
}

export function clearAsOf(): void {
  state.asOf = null;
  state.members = state.data?.selected?.assets ?? [];
  state.nextCursor = state.data?.selected?.next_cursor ?? null;
  $("as-of-banner").hidden = true;
  renderMembers();
}

export function wireHistory(): void {
  const input = $("as-of") as HTMLInputElement;
  input.max = new Date().toISOString().slice(0, 10);
  const show = () => {
    if (!input.value) {
      input.focus();
      return;
    }
    void busy($("as-of-show") as HTMLButtonElement, "Loading the past members…", () => showAsOf(input.value));
  };
  $("as-of-show").addEventListener("click", show);
  input.addEventListener("keydown", (e) => e.key === "Enter" && show());
  $("as-of-clear").addEventListener("click", () => {
    clearAsOf();
    input.value = "";
    input.focus();
  });
}
