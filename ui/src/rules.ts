// The rules editor of dynamic universes: conditions built from lists (field, operator, value; sectors and industries
// from list_sectors), the JSON beside them for those who want it, a live preview from screen_assets, the schedule and
// pins, then create (create_universe with rules) or save (update_universe), and a rebalance preview (dry run) with an
// explicit apply (rebalance_universe).
import { call, type Definition, type Rule, ToolFailure } from "./api";
import { busy, has, refresh, state } from "./core";
import { $, debounce, el, tickers } from "./dom";
import { day, money, plural } from "./format";
import { notify } from "./notices";

interface Cond {
  field: string;
  op: string;
  value: unknown;
}

const TEXT = ["eq", "ne", "in", "not_in", "contains"];
const VOCAB = ["eq", "ne", "in", "not_in"];
const NUMBER = ["gte", "gt", "lte", "lt", "between", "eq", "ne"];
// The fields and operators screen_assets takes (services/screening.py FIELDS).
const FIELDS: Record<string, { label: string; ops: string[] }> = {
  sector: { label: "Sector", ops: VOCAB },
  industry: { label: "Industry", ops: [...VOCAB, "contains"] },
  market_cap: { label: "Market cap", ops: NUMBER },
  index: { label: "Index", ops: VOCAB },
  country: { label: "Country", ops: [...VOCAB, "contains"] },
  exchange: { label: "Exchange", ops: [...VOCAB, "contains"] },
  asset_type: { label: "Asset type", ops: VOCAB },
  ipo_year: { label: "IPO year", ops: NUMBER },
  name: { label: "Name", ops: TEXT },
  symbol: { label: "Ticker", ops: TEXT },
};
const OPS: Record<string, string> = {
  eq: "is",
  ne: "is not",
  in: "is one of",
  not_in: "is none of",
  contains: "contains",
  gte: "at least",
  gt: "more than",
  lte: "at most",
  lt: "less than",
  between: "between",
};
const CAPS = [1e8, 3e8, 1e9, 2e9, 5e9, 1e10, 5e10, 1e11, 2e11, 5e11, 1e12, 2e12, 3e12, 4e12];
const YEARS = Array.from({ length: 2026 - 1980 + 1 }, (_, i) => 2026 - i);
const FIXED: Record<string, string[]> = {
  index: ["S&P 500", "S&P 100", "NASDAQ 100", "DOW JONES"],
  exchange: ["NASDAQ", "NYSE", "NYSE Arca", "NYSE American"],
  asset_type: ["stock", "etf", "adr", "fund", "preferred", "unit", "warrant"],
  country: ["United States", "Canada", "United Kingdom", "Germany", "France", "Netherlands", "Switzerland", "Japan", "China", "Israel", "Ireland"],
};

let sectors: { sector: string; industries: { industry: string }[] }[] | null = null;
let conds: Cond[] = [];
let mode: "create" | "edit" = "create";
let previewSeq = 0;

function choices(field: string): string[] {
  if (field === "sector") return (sectors ?? []).map((s) => s.sector);
  if (field === "industry") {
    // Industries under the sectors the rules already pick, else every one.
    const picked = conds.filter((c) => c.field === "sector").flatMap((c) => (Array.isArray(c.value) ? c.value : [c.value])).map(String);
    const within = (sectors ?? []).filter((s) => !picked.length || picked.includes(s.sector));
    return [...new Set(within.flatMap((s) => s.industries.map((i) => i.industry)))].sort();
  }
  return FIXED[field] ?? [];
}

const numeric = (field: string) => field === "market_cap" || field === "ipo_year";
const numbers = (field: string) => (field === "market_cap" ? CAPS : YEARS);
const numberLabel = (field: string, n: number) => (field === "market_cap" ? money(n) : String(n));

function select(label: string, options: [string, string][], value: string, attrs: Record<string, string> = {}): HTMLSelectElement {
  const s = el("select", { attrs: { "aria-label": label, ...attrs } });
  s.append(...options.map(([v, text]) => el("option", { text, attrs: { value: v } })));
  s.value = value;
  return s;
}

function defaultValue(field: string, op: string): unknown {
  if (numeric(field)) {
    const first = field === "market_cap" ? 1e10 : 2000;
    return op === "between" ? [first, field === "market_cap" ? 1e12 : 2026] : first;
  }
  const list = choices(field);
  if (op === "in" || op === "not_in") return list.slice(0, 1);
  return list[0] ?? "";
}

/** The value: picked from a list where there is one (its change handler is syncValue), typed words otherwise. */
function valueControl(c: Cond, i: number): HTMLElement {
  const label = `Value of condition ${i + 1}`;
  if (numeric(c.field)) {
    const opts = numbers(c.field).map((n) => [String(n), numberLabel(c.field, n)] as [string, string]);
    if (c.op === "between") {
      const [lo, hi] = (Array.isArray(c.value) ? c.value : [c.value, c.value]) as number[];
      const a = select(`${label}: from`, opts, String(lo), { "data-part": "low" });
      const b = select(`${label}: to`, opts, String(hi), { "data-part": "high" });
      return el("span", { className: "row" }, a, el("span", { text: "and" }), b);
    }
    return select(label, opts, String(c.value));
  }
  const list = choices(c.field);
  if (list.length && c.op !== "contains") {
    if (c.op === "in" || c.op === "not_in") {
      const s = select(label, list.map((v) => [v, v]), "", { multiple: "", size: "4" });
      const picked = new Set((Array.isArray(c.value) ? c.value : [c.value]).map(String));
      for (const o of s.options) o.selected = picked.has(o.value);
      return s;
    }
    return select(label, list.map((v) => [v, v]), String(c.value));
  }
  // Names, tickers and "contains": words, not JSON.
  const input = el("input", { attrs: { "aria-label": label, placeholder: c.op === "in" || c.op === "not_in" ? "values, comma-separated" : "value" } });
  input.value = Array.isArray(c.value) ? c.value.join(", ") : String(c.value ?? "");
  input.addEventListener("input", () => {
    c.value = c.op === "in" || c.op === "not_in" ? input.value.split(",").map((v) => v.trim()).filter(Boolean) : input.value;
    changed();
  });
  return input;
}

function renderConds(): void {
  const list = $("rules-conditions");
  list.replaceChildren(
    ...conds.map((c, i) => {
      const field = select(`Field of condition ${i + 1}`, Object.entries(FIELDS).map(([k, f]) => [k, f.label]), c.field, { "data-role": "field" });
      const op = select(`Operator of condition ${i + 1}`, FIELDS[c.field].ops.map((o) => [o, OPS[o]]), c.op, { "data-role": "op" });
      field.addEventListener("change", () => {
        c.field = field.value;
        c.op = FIELDS[c.field].ops[0];
        c.value = defaultValue(c.field, c.op);
        renderConds();
        changed();
      });
      op.addEventListener("change", () => {
        const wasList = Array.isArray(c.value);
        c.op = op.value;
        if (wasList !== (c.op === "in" || c.op === "not_in" || c.op === "between") || numeric(c.field)) c.value = defaultValue(c.field, c.op);
        renderConds();
        changed();
      });
      const remove = el("button", { text: "×", className: "ghost icon", attrs: { type: "button", "aria-label": `Remove condition ${i + 1}` } });
      remove.addEventListener("click", () => {
        conds.splice(i, 1);
        renderConds();
        changed();
      });
      const value = valueControl(c, i);
      // The value selects read their own value (not document.activeElement) when changed from a script or a test.
      const selects = value instanceof HTMLSelectElement ? [value] : [...value.querySelectorAll("select")];
      selects.forEach((s) => s.addEventListener("change", () => syncValue(c, value)));
      return el("li", { className: "row wrap cond", attrs: { "data-index": String(i) } }, field, op, value, remove);
    }),
  );
}

function syncValue(c: Cond, node: HTMLElement): void {
  const selects = node instanceof HTMLSelectElement ? [node] : [...node.querySelectorAll("select")];
  if (!selects.length) return;
  if (c.op === "between") c.value = selects.map((s) => Number(s.value));
  else if (selects[0].multiple) c.value = [...selects[0].selectedOptions].map((o) => o.value);
  else c.value = numeric(c.field) ? Number(selects[0].value) : selects[0].value;
  changed();
}

/** The rule tree the conditions make: one condition alone, or all/any of them. */
export function currentRules(): Rule | null {
  if (!conds.length) return null;
  const list = conds.map((c) => ({ field: c.field, op: c.op, value: c.value }));
  if (list.length === 1) return list[0];
  return ($("rules-join") as HTMLSelectElement).value === "any" ? { any: list } : { all: list };
}

const runPreview = debounce(() => void preview(), 300);

function changed(): void {
  const rules = currentRules();
  $("rules-json").textContent = rules ? JSON.stringify(rules, null, 2) : "";
  $("rules-join-row").hidden = conds.length < 2;
  runPreview();
}

async function preview(): Promise<void> {
  const seq = ++previewSeq;
  const rules = currentRules();
  const out = $("rules-preview");
  if (!rules) {
    out.textContent = "Add a condition to see what it selects.";
    return;
  }
  out.setAttribute("aria-busy", "true");
  try {
    const page = await call<{ total: number; total_capped: boolean; assets: { symbol: string; name?: string; market_cap?: number }[]; data_as_of: string | null }>(
      "screen_assets",
      { rules, limit: 8 },
    );
    if (seq !== previewSeq) return;
    const total = page.total_capped ? `More than ${page.total.toLocaleString("en-US")}` : page.total.toLocaleString("en-US");
    out.replaceChildren(
      el("p", {}, el("strong", { text: total, attrs: { id: "rules-count", "data-total": String(page.total) } }), document.createTextNode(` ${page.total === 1 ? "security matches" : "securities match"}${page.data_as_of ? ` (listings of ${page.data_as_of})` : ""}.`)),
      el("ul", { className: "results compact" }, ...page.assets.map((a) => el("li", { attrs: { "data-symbol": a.symbol } }, el("strong", { text: a.symbol }), el("span", { text: ` ${a.name ?? ""}` }), el("span", { className: "muted", text: a.market_cap ? money(a.market_cap) : "" })))),
    );
  } catch (err) {
    if (seq !== previewSeq) return;
    out.replaceChildren(el("p", { className: "badge invalid", text: err instanceof ToolFailure ? err.info.message : String(err) }));
  } finally {
    if (seq === previewSeq) out.removeAttribute("aria-busy");
  }
}

function parseRules(rules: Rule | undefined): { join: "all" | "any"; list: Cond[] } | null {
  if (!rules) return { join: "all", list: [] };
  if ("field" in rules) return { join: "all", list: [{ ...rules }] };
  const group = "all" in rules ? rules.all : "any" in rules ? rules.any : null;
  if (!group || !group.every((r) => "field" in r)) return null; // nested: the JSON shows it, the builder cannot
  return { join: "all" in rules ? "all" : "any", list: group.map((r) => ({ ...(r as Cond) })) };
}

async function ensureSectors(): Promise<void> {
  if (sectors || !has("list_sectors")) return;
  const data = await call<{ sectors: { sector: string; industries: { industry: string }[] }[] }>("list_sectors", {});
  sectors = data.sectors;
}

/** Open the editor: for a new dynamic universe, or on the selected dynamic universe's definition. */
export async function openRules(forNew: boolean): Promise<void> {
  const def: Definition | null | undefined = forNew ? null : state.data?.selected?.definition;
  mode = def ? "edit" : "create";
  $("rules-panel").hidden = false;
  $("rules-title").textContent = mode === "edit" ? `Rules (version ${def!.rules_version})` : "A universe from rules";
  $("rules-create-row").hidden = mode === "edit" || !has("create_universe");
  $("rules-name-row").hidden = $("rules-create-row").hidden;
  $("rules-edit-row").hidden = mode === "create" || !has("update_universe");
  $("rebalance").hidden = mode === "create" || !has("rebalance_universe");
  $("rebalance-result").replaceChildren();
  $("rebalance-apply").hidden = true;
  ($("rules-schedule") as HTMLSelectElement).value = def?.rebalance ?? "";
  ($("rules-include") as HTMLInputElement).value = def?.include.join(", ") ?? "";
  ($("rules-exclude") as HTMLInputElement).value = def?.exclude.join(", ") ?? "";
  $("rules-next").textContent = def
    ? `${def.rebalance ? `Rebalanced ${def.rebalance}` : "Rebalanced only on request"}${def.next_rebalance_at ? `; next ${day(def.next_rebalance_at)}` : ""}${def.last_run ? `; last ${day(def.last_run.started_at)} (${def.last_run.additions} in, ${def.last_run.removals} out)` : ""}.`
    : "";
  await ensureSectors();
  const parsed = parseRules(def?.rules);
  $("rules-nested").hidden = parsed !== null;
  $("rules-builder").hidden = parsed === null;
  conds = parsed?.list ?? [];
  if (!conds.length && mode === "create") conds = [{ field: "sector", op: "eq", value: choices("sector")[0] ?? "" }];
  ($("rules-join") as HTMLSelectElement).value = parsed?.join ?? "all";
  renderConds();
  changed();
  if (parsed === null) $("rules-json").textContent = JSON.stringify(def?.rules, null, 2);
}

/** After each render: the panel follows the selected universe (open on a dynamic one, closed on a static one). */
export function syncRules(): void {
  const detail = state.data?.selected;
  const dynamic = detail?.universe.kind === "dynamic";
  $("open-rules").hidden = !has("screen_assets") || !has("create_universe");
  if (dynamic && has("screen_assets")) {
    if (mode !== "edit" || $("rules-panel").dataset.universe !== detail!.universe.id || $("rules-panel").hidden) {
      $("rules-panel").dataset.universe = detail!.universe.id;
      void openRules(false).catch((err) => notify(String(err), "error"));
    }
  } else if (mode === "edit") {
    $("rules-panel").hidden = true;
    delete $("rules-panel").dataset.universe;
  }
}

function pins(id: string): string[] {
  return tickers(($(id) as HTMLInputElement).value);
}

interface Change {
  symbol: string;
  name?: string | null;
  reason: string;
}

interface Rebalance {
  dry_run: boolean;
  size_before: number;
  size_after: number;
  additions: Change[];
  removals: Change[];
  addition_count: number;
  removal_count: number;
  unchanged: number;
  truncated: boolean;
}

function changeList(title: string, kind: string, changes: Change[], count: number): HTMLElement {
  return el(
    "div",
    { className: `changes ${kind}` },
    el("h4", { text: `${title} (${count})` }),
    count ? null : el("p", { className: "muted", text: "None." }),
    el(
      "ul",
      { attrs: { "data-changes": kind } },
      ...changes.map((c) => el("li", { attrs: { "data-symbol": c.symbol } }, el("strong", { text: c.symbol }), el("span", { className: "muted", text: ` ${c.reason}` }))),
    ),
  );
}

export function wireRules(): void {
  $("rules-add").addEventListener("click", () => {
    conds.push({ field: "market_cap", op: "gte", value: 1e10 });
    renderConds();
    changed();
    ($("rules-conditions").lastElementChild?.querySelector("select") as HTMLSelectElement | null)?.focus();
  });
  $("rules-join").addEventListener("change", changed);
  $("open-rules").addEventListener("click", () => void busy($("open-rules") as HTMLButtonElement, "Opening the rules editor…", () => openRules(true)).then(() => ($("rules-name") as HTMLInputElement).focus()));
  $("empty-rules").addEventListener("click", () => void busy(null, "Opening the rules editor…", () => openRules(true)).then(() => ($("rules-name") as HTMLInputElement).focus()));
  $("rules-close").addEventListener("click", () => {
    $("rules-panel").hidden = true;
  });

  $("rules-create").addEventListener("click", () => {
    const name = ($("rules-name") as HTMLInputElement).value.trim();
    const rules = currentRules();
    void busy($("rules-create") as HTMLButtonElement, "Creating…", async () => {
      if (!name) throw new ToolFailure({ code: "invalid_argument", message: "Name the universe first." });
      if (!rules) throw new ToolFailure({ code: "invalid_argument", message: "Add at least one condition." });
      const schedule = ($("rules-schedule") as HTMLSelectElement).value;
      const made = await call<{ universe: { id: string; name: string; asset_count: number } }>("create_universe", { name, rules, ...(schedule ? { rebalance: schedule } : {}) });
      ($("rules-name") as HTMLInputElement).value = "";
      const include = pins("rules-include");
      const exclude = pins("rules-exclude");
      if (include.length || exclude.length) await call("update_universe", { universe_id: made.universe.id, include, exclude });
      mode = "create";
      await refresh(made.universe.id);
      notify(`Created ${made.universe.name}: ${plural(made.universe.asset_count, "member")} from its rules`);
    });
  });

  $("rules-save").addEventListener("click", () => {
    const rules = currentRules();
    void busy($("rules-save") as HTMLButtonElement, "Saving the rules…", async () => {
      if (!rules) throw new ToolFailure({ code: "invalid_argument", message: "Add at least one condition." });
      const schedule = ($("rules-schedule") as HTMLSelectElement).value;
      await call("update_universe", {
        universe_id: state.selectedId,
        rules,
        rebalance: schedule || "none",
        include: pins("rules-include"),
        exclude: pins("rules-exclude"),
      });
      mode = "create"; // reopened on the saved definition by the refresh
      await refresh();
      notify("Rules saved: the members follow at the next rebalance (preview it below).", "info");
    });
  });

  $("rebalance-preview").addEventListener("click", () => {
    void busy($("rebalance-preview") as HTMLButtonElement, "Previewing the rebalance…", async () => {
      const r = await call<Rebalance>("rebalance_universe", { universe_id: state.selectedId, dry_run: true });
      $("rebalance-result").replaceChildren(
        el("p", { attrs: { id: "rebalance-summary" }, text: `Would add ${r.addition_count}, remove ${r.removal_count}, keep ${r.unchanged}: ${r.size_before} → ${r.size_after} members.` }),
        el("div", { className: "changes-grid" }, changeList("Join", "added", r.additions, r.addition_count), changeList("Leave", "removed", r.removals, r.removal_count)),
        r.truncated ? el("p", { className: "muted", text: "Only the first changes are listed; the counts are complete." }) : document.createTextNode(""),
      );
      $("rebalance-apply").hidden = !(r.addition_count || r.removal_count);
    });
  });
  $("rebalance-apply").addEventListener("click", () => {
    void busy($("rebalance-apply") as HTMLButtonElement, "Rebalancing…", async () => {
      const r = await call<Rebalance>("rebalance_universe", { universe_id: state.selectedId, dry_run: false });
      $("rebalance-result").replaceChildren();
      $("rebalance-apply").hidden = true;
      mode = "create";
      await refresh();
      notify(`Rebalanced: ${r.addition_count} added · ${r.removal_count} removed · ${r.size_after} members`);
    });
  });
}
