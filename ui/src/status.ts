// Status that explains itself: a member that is pending, unknown, invalid, delisted or renamed shows why and since
// when on hover or keyboard focus (a tooltip) and on tap or click (a row below it), with the action that fixes it.
import { call, type Member } from "./api";
import { busy, has, refresh, state } from "./core";
import { $, badge, el } from "./dom";
import { day } from "./format";
import { notify } from "./notices";

export interface Explained {
  key: string; // the chip: valid | pending | unknown | invalid | delisted | renamed
  reason: string;
  date: string; // "since 2026-12-02", "" when unknown
}

export function explain(m: Member): Explained {
  const delisted = state.data?.selected?.delisted_members?.find((d) => d.symbol === m.symbol);
  if (m.listing_status === "delisted") {
    const on = m.delisted_on ?? delisted?.delisted_on ?? null;
    const why = delisted?.reason ? ` ${delisted.reason.replace(/\.$/, "")}.` : "";
    return { key: "delisted", reason: `${m.symbol} stopped trading${on ? ` on ${on}` : ""}.${why} It can no longer be traded.`, date: on ? `delisted ${on}` : "" };
  }
  if (m.former_symbol) {
    return {
      key: "renamed",
      reason: `${m.former_symbol} was renamed to ${m.symbol}: the member is the same security and exports use ${m.symbol}.`,
      date: m.renamed_on ? `renamed ${m.renamed_on}` : "",
    };
  }
  const checked = m.last_validated_at ? `checked ${day(m.last_validated_at)}` : m.added_at ? `added ${day(m.added_at)}` : "";
  switch (m.validation_status) {
    case "pending":
      return { key: "pending", reason: `No source could confirm ${m.symbol} yet; the server checks it again in the background.`, date: checked };
    case "unknown":
      return { key: "unknown", reason: `${m.symbol} was added without validation, so nothing says yet whether it exists.`, date: checked };
    case "invalid":
      return { key: "invalid", reason: `${m.validation_source ?? "A source"} says ${m.symbol} is not a valid ticker.`, date: checked };
    default:
      return { key: "valid", reason: `Confirmed by ${m.validation_source ?? "a source"}.`, date: checked };
  }
}

const tip = (): HTMLElement => $("tip");

function showTip(chip: HTMLElement, e: Explained): void {
  const t = tip();
  t.replaceChildren(el("strong", { text: e.key }), document.createTextNode(` ${e.reason}`));
  if (e.date) t.append(el("span", { className: "tip-date", text: ` (${e.date})` }));
  t.hidden = false;
  const r = chip.getBoundingClientRect();
  const width = Math.min(320, document.documentElement.clientWidth - 16);
  t.style.width = `${width}px`;
  t.style.left = `${Math.max(8, Math.min(r.left + window.scrollX, document.documentElement.clientWidth - width - 8))}px`;
  t.style.top = `${r.bottom + window.scrollY + 6}px`;
}

function hideTip(): void {
  tip().hidden = true;
}

/** The status cell: a plain badge for a valid member, a button with a tooltip and an explanation row otherwise. */
export function statusCell(m: Member): HTMLElement {
  const e = explain(m);
  if (e.key === "valid") {
    const b = badge("valid");
    b.title = `${e.reason}${e.date ? ` (${e.date})` : ""}`;
    return b;
  }
  const chip = el("button", {
    className: `badge chip ${e.key}`,
    text: e.key,
    attrs: { type: "button", "aria-expanded": "false", "aria-describedby": "tip", "data-status": e.key, "aria-label": `${m.symbol}: ${e.key}, explain` },
  });
  chip.addEventListener("mouseenter", () => showTip(chip, e));
  chip.addEventListener("focus", () => showTip(chip, e));
  // The pointer leaving (or the page scrolling under a still pointer) leaves a reason shown for keyboard focus.
  chip.addEventListener("mouseleave", () => document.activeElement !== chip && hideTip());
  // Focus moving on hides it; the whole window or frame losing focus (the chip still its document's focus) does not.
  chip.addEventListener("blur", () => document.activeElement !== chip && hideTip());
  chip.addEventListener("keydown", (ev) => ev.key === "Escape" && hideTip());
  chip.addEventListener("click", () => toggleExplanation(chip, m, e));
  return chip;
}

function toggleExplanation(chip: HTMLButtonElement, m: Member, e: Explained): void {
  const row = chip.closest("tr")!;
  const open = row.nextElementSibling?.classList.contains("explain") ? (row.nextElementSibling as HTMLTableRowElement) : null;
  hideTip();
  if (open) {
    open.remove();
    chip.setAttribute("aria-expanded", "false");
    return;
  }
  chip.setAttribute("aria-expanded", "true");
  const actions = el("div", { className: "row wrap" });
  const cols = row.children.length;
  const box = el(
    "tr",
    { className: "explain", attrs: { "data-explains": m.symbol } },
    el("td", { attrs: { colspan: String(cols) } }, el("p", { className: "explain-text", text: `${e.reason}${e.date ? ` (${e.date})` : ""}` }), actions),
  );
  row.after(box);
  fixes(m, e, actions);
}

function fixes(m: Member, e: Explained, actions: HTMLElement): void {
  if (state.asOf) return; // a past date's members: nothing to fix there
  const dynamic = state.data?.selected?.universe.kind === "dynamic";
  const button = (text: string, handler: (b: HTMLButtonElement) => void, cls = "") => {
    const b = el("button", { text, className: cls, attrs: { type: "button", "data-fix": text.split(" ")[0].toLowerCase() } });
    b.addEventListener("click", () => handler(b));
    actions.append(b);
    return b;
  };
  if (e.key === "renamed") {
    actions.append(el("span", { className: "muted", text: "Nothing to fix." }));
    return;
  }
  if ((e.key === "pending" || e.key === "unknown") && has("validate_symbols")) {
    button("Re-validate", (b) =>
      void busy(b, "Checking…", async () => {
        const out = await call<{ verdicts: { symbol: string; status: string; reason?: string }[] }>("validate_symbols", { symbols: [m.symbol] });
        const v = out.verdicts[0];
        await refresh();
        notify(`${m.symbol}: ${v?.status ?? "unknown"}${v?.reason ? ` — ${v.reason}` : ""}`, v?.status === "valid" ? "ok" : "warn");
      }),
    );
  }
  if (dynamic) {
    if (e.key === "delisted" || e.key === "invalid")
      actions.append(el("span", { className: "muted", text: "A dynamic universe drops it at its next rebalance (see Rules)." }));
    return;
  }
  if (has("validate_symbols") && has("add_assets_to_universe") && has("remove_assets_from_universe")) {
    // Candidates come from validate_symbols (a rename's new ticker, typo neighbours: APPL -> AAPL), for a ticker that
    // is wrong or not confirmed.
    // They arrive after the other fixes are drawn: a slot keeps them in their place (after re-validate).
    const slot = el("span", { className: "row wrap slot" });
    actions.append(slot);
    void call<{ verdicts: { candidates?: string[] }[] }>("validate_symbols", { symbols: [m.symbol] }).then(
      (out) => {
        for (const candidate of (out.verdicts[0]?.candidates ?? []).slice(0, 3)) {
          const b = button(`Replace with ${candidate}`, (b) =>
            void busy(b, "Replacing…", async () => {
              await call("add_assets_to_universe", { universe_id: state.selectedId, symbols: [candidate] });
              await call("remove_assets_from_universe", { universe_id: state.selectedId, symbols: [m.symbol] });
              await refresh();
              notify(`Replaced ${m.symbol} with ${candidate}`);
            }),
          );
          slot.append(b);
        }
      },
      () => undefined,
    );
  }
  if (has("remove_assets_from_universe")) {
    button(
      `Remove ${m.symbol}`,
      (b) =>
        void busy(b, "Removing…", async () => {
          await call("remove_assets_from_universe", { universe_id: state.selectedId, symbols: [m.symbol] });
          await refresh();
          notify(`Removed ${m.symbol}`);
        }),
      "danger",
    );
  }
  if (has("search_assets")) {
    button("Find a replacement", () => {
      const search = $("search") as HTMLInputElement;
      search.value = m.name ?? m.symbol;
      search.dispatchEvent(new Event("input"));
      search.focus();
    }, "ghost");
  }
}
