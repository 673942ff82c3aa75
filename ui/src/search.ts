// Asset search (search_assets, as you type) and live validation of the tickers typed into the add box
// (validate_symbols). Each has a loading state; stale answers are dropped by a sequence number.
import { call, ToolFailure } from "./api";
import { has, showError, state } from "./core";
import { $, badge, debounce, el, onSubmit, tickers } from "./dom";
import { addSymbols } from "./editor";

interface Asset {
  symbol: string;
  name?: string;
  exchange?: string;
  sector?: string;
  validation_status?: string; // left out when valid (search results send only what is not the usual)
}

// Fields that do not apply are left out of a verdict (no nulls, no empty candidate list).
interface Verdict {
  symbol: string;
  status: string;
  source?: string;
  reason?: string;
  candidates?: string[];
  profile?: Record<string, unknown>;
}

let searchSeq = 0;
let checkSeq = 0;

function spinner(text: string): HTMLElement {
  return el("span", {}, el("span", { className: "spinner", attrs: { "aria-hidden": "true" } }), document.createTextNode(` ${text}`));
}

async function search(query: string): Promise<void> {
  const seq = ++searchSeq;
  const stateLine = $("search-state");
  const list = $("search-results");
  if (!query) {
    stateLine.replaceChildren();
    list.replaceChildren();
    return;
  }
  stateLine.replaceChildren(spinner("Searching…"));
  list.setAttribute("aria-busy", "true");
  try {
    const page = await call<{ assets: Asset[] }>("search_assets", { query, limit: 10 });
    if (seq !== searchSeq) return;
    stateLine.textContent = page.assets.length ? `${page.assets.length} match(es)` : `Nothing matches “${query}”.`;
    const canAdd = has("add_assets_to_universe") && state.selectedId !== null && state.data?.selected?.universe.kind !== "dynamic";
    list.replaceChildren(
      ...page.assets.filter((a, i, all) => all.findIndex((b) => b.symbol === a.symbol) === i).map((a) => {
        const add = el("button", { text: "Add", className: "ghost", attrs: { type: "button", "data-add": a.symbol } });
        add.hidden = !canAdd || state.members.some((m) => m.symbol === a.symbol);
        add.addEventListener("click", () => void addSymbols([a.symbol], add));
        return el(
          "li",
          { attrs: { "data-symbol": a.symbol } },
          el("span", {}, el("strong", { text: a.symbol }), document.createTextNode(` ${a.name ?? ""}`)),
          el("span", { className: "row" }, badge(a.validation_status ?? "valid"), add),
        );
      }),
    );
  } catch (err) {
    if (seq !== searchSeq) return;
    stateLine.textContent = "Search failed.";
    showError(err);
  } finally {
    if (seq === searchSeq) list.removeAttribute("aria-busy");
  }
}

function verdictText(v: Verdict): string {
  const name = typeof v.profile?.name === "string" ? ` (${v.profile.name})` : "";
  if (v.status === "valid") return `${v.symbol}: valid${name}`;
  if (v.status === "invalid")
    return `${v.symbol}: invalid` + (v.candidates?.length ? ` — did you mean ${v.candidates.slice(0, 3).join(", ")}?` : "");
  return `${v.symbol}: ${v.status}${v.reason ? ` (${v.reason})` : ""}`;
}

async function check(text: string): Promise<void> {
  const seq = ++checkSeq;
  const box = $("verdicts");
  const limit = state.data?.limits.max_inline_validation ?? 50;
  const symbols = tickers(text).slice(0, limit);
  if (!symbols.length || !has("validate_symbols")) {
    box.replaceChildren();
    return;
  }
  box.setAttribute("aria-busy", "true");
  box.replaceChildren(...symbols.map((s) => el("span", { className: "badge checking", attrs: { "data-verdict": s } }, spinner(`${s}: checking…`))));
  try {
    const result = await call<{ verdicts: Verdict[] }>("validate_symbols", { symbols });
    if (seq !== checkSeq) return;
    // Share-class spellings (BRK-B, BRK/B, brk.b) come back as one symbol: show it once.
    const seen = new Set<string>();
    const verdicts = result.verdicts.filter((v) => !seen.has(v.symbol) && Boolean(seen.add(v.symbol)));
    box.replaceChildren(...verdicts.map((v) => {
      const b = badge(v.status, verdictText(v));
      b.dataset.verdict = v.symbol;
      return b;
    }));
  } catch (err) {
    if (seq !== checkSeq) return;
    // A junk ticker fails the whole call with invalid_argument naming each one: show that inline, not as a banner.
    const message = err instanceof ToolFailure ? err.info.message : String(err);
    box.replaceChildren(el("span", { className: "badge invalid", text: message }));
  } finally {
    if (seq === checkSeq) box.removeAttribute("aria-busy");
  }
}

export function wireSearch(): void {
  const runSearch = debounce((q: string) => void search(q), 250);
  $("search").addEventListener("input", (e) => runSearch((e.target as HTMLInputElement).value.trim()));
  const runCheck = debounce((t: string) => void check(t), 350);
  $("add-symbols").addEventListener("input", (e) => runCheck((e.target as HTMLInputElement).value));
  onSubmit($("add-form"), $("add") as HTMLButtonElement, () => {
    const input = $("add-symbols") as HTMLInputElement;
    const symbols = tickers(input.value);
    if (!symbols.length) return;
    void addSymbols(symbols, $("add") as HTMLButtonElement).then(() => {
      if ($("error").hidden) {
        input.value = "";
        $("verdicts").replaceChildren();
      }
    });
  });
}
