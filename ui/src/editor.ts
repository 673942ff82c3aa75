// The editor: select, create, rename, add, remove and delete (with confirmation). Every action is one tool call,
// then a refresh, so the table always shows the server's state.
import { call, type Detail, type ListedUniverse, type Member, ToolFailure, type UniverseSummary } from "./api";
import { busy, done, loadMoreUniverses, refresh, renderMembers, renderUniverses, setStatus, state } from "./core";
import { $, onSubmit, sortable, tickers } from "./dom";

interface Report {
  results: { symbol: string; outcome: string; reason?: string | null; candidates?: string[] }[];
  counts: Record<string, number>;
}

/** "3 added · 1 rejected — ZI: did you mean GTM?" */
export function reportText(report: Report): string {
  const parts = Object.entries(report.counts).map(([outcome, n]) => `${n} ${outcome.replace("_", " ")}`);
  const rejected = report.results.filter((r) => r.outcome === "rejected");
  const why = rejected
    .slice(0, 5)
    .map((r) => (r.candidates?.length ? `${r.symbol}: did you mean ${r.candidates.slice(0, 3).join(", ")}?` : `${r.symbol}${r.reason ? ` (${r.reason})` : ""}`));
  return parts.join(" · ") + (why.length ? ` — ${why.join("; ")}` : "");
}

const tone = (report: Report) => (report.results.some((r) => r.outcome === "rejected") ? "warn" : "ok");

export function wireEditor(): void {
  $("universes").addEventListener("click", (event) => {
    const row = (event.target as HTMLElement).closest<HTMLTableRowElement>("tr[data-id]");
    if (row) void busy(null, "Loading…", () => refresh(row.dataset.id!));
  });
  sortable($("universes") as HTMLTableElement, (key, dir) => {
    state.universeSort = { key: key as keyof ListedUniverse, dir };
    renderUniverses();
  });
  sortable($("assets") as HTMLTableElement, (key, dir) => {
    state.memberSort = { key: key as keyof Member, dir };
    renderMembers();
  });
  $("universe-filter").addEventListener("input", renderUniverses);
  $("asset-filter").addEventListener("input", renderMembers);
  $("status-filter").addEventListener("change", renderMembers);

  onSubmit($("create-form"), $("create") as HTMLButtonElement, () => {
    const name = ($("create-name") as HTMLInputElement).value;
    const symbols = tickers(($("create-symbols") as HTMLInputElement).value);
    void busy($("create") as HTMLButtonElement, "Creating…", async () => {
      const made = await call<{ universe: UniverseSummary; report: Report }>("create_universe", symbols.length ? { name, symbols } : { name });
      ($("create-name") as HTMLInputElement).value = "";
      ($("create-symbols") as HTMLInputElement).value = "";
      await refresh(made.universe.id);
      done(`Created ${made.universe.name}` + (symbols.length ? `: ${reportText(made.report)}` : ""), symbols.length ? tone(made.report) : "ok");
    });
  });

  onSubmit($("rename-form"), $("rename") as HTMLButtonElement, () => {
    const name = ($("rename-name") as HTMLInputElement).value;
    void busy($("rename") as HTMLButtonElement, "Renaming…", async () => {
      await call("update_universe", { universe_id: state.selectedId, name });
      ($("rename-name") as HTMLInputElement).blur();
      await refresh();
      done(`Renamed to ${name.trim()}`);
    });
  });

  $("delete").addEventListener("click", () => {
    const u = state.data?.selected?.universe;
    if (!u) return;
    $("confirm-text").textContent = `Delete “${u.name}” with its ${u.asset_count} members and history? This cannot be undone.`;
    $("confirm").hidden = false;
    $("cancel-delete").focus();
  });
  $("cancel-delete").addEventListener("click", () => ($("confirm").hidden = true));
  $("confirm-delete").addEventListener("click", () => {
    const id = state.selectedId;
    void busy($("confirm-delete") as HTMLButtonElement, "Deleting…", async () => {
      const gone = await call<{ deleted: UniverseSummary }>("delete_universe", { universe_id: id });
      state.selectedId = null;
      await refresh(null);
      done(`Deleted ${gone.deleted.name}`);
    });
  });

  $("assets").addEventListener("change", (event) => {
    const box = event.target as HTMLInputElement;
    if (box.id === "select-all") {
      document.querySelectorAll<HTMLInputElement>("#assets tbody input[data-symbol]").forEach((b) => {
        b.checked = box.checked;
        if (box.checked) state.checked.add(b.dataset.symbol!);
        else state.checked.delete(b.dataset.symbol!);
      });
    } else if (box.dataset.symbol) {
      if (box.checked) state.checked.add(box.dataset.symbol);
      else state.checked.delete(box.dataset.symbol);
    }
    ($("remove-selected") as HTMLButtonElement).disabled = state.checked.size === 0;
  });
  $("remove-selected").addEventListener("click", () => {
    const symbols = [...state.checked];
    void busy($("remove-selected") as HTMLButtonElement, "Removing…", async () => {
      await call("remove_assets_from_universe", { universe_id: state.selectedId, symbols });
      state.checked.clear();
      ($("select-all") as HTMLInputElement).checked = false;
      await refresh();
      done(`Removed ${symbols.join(", ")}`);
    });
  });

  $("universes-more").addEventListener("click", () => {
    void busy($("universes-more") as HTMLButtonElement, "Loading universes…", async () => {
      await loadMoreUniverses();
      setStatus(`${state.universes.length} universes listed`);
    });
  });

  $("load-more").addEventListener("click", () => {
    void busy($("load-more") as HTMLButtonElement, "Loading…", async () => {
      const page = await call<Detail>("get_universe", { universe_id: state.selectedId, cursor: state.nextCursor, limit: 200, ...(state.asOf ? { as_of: state.asOf } : {}) });
      state.members = state.members.concat(page.assets ?? []);
      state.nextCursor = page.next_cursor;
      renderMembers();
      setStatus(`${state.members.length} members loaded`);
    });
  });
}

/** Add tickers to the selected universe (from the add form or a search result); returns the report's summary. */
export async function addSymbols(symbols: string[], button: HTMLButtonElement | null): Promise<void> {
  await busy(button, "Adding…", async () => {
    if (!state.selectedId) throw new ToolFailure({ code: "invalid_argument", message: "Select or create a universe first." });
    const added = await call<{ report: Report }>("add_assets_to_universe", { universe_id: state.selectedId, symbols });
    await refresh();
    done(reportText(added.report), tone(added.report));
  });
}
