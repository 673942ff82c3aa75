// Dashboard state and rendering: the universe list, the member table (sort, filter, select), errors and status.
import { call, type DashboardData, type Detail, type ErrorInfo, type ListedUniverse, type Member, ToolFailure, tellModel } from "./api";
import { renderComposition } from "./composition";
import { $, el, sortRows } from "./dom";
import { plainName } from "./format";
import { notify } from "./notices";
import { syncHistory } from "./history";
import { syncRules } from "./rules";
import { explain, statusCell } from "./status";

export const state = {
  data: null as DashboardData | null,
  selectedId: null as string | null,
  members: [] as Member[],
  nextCursor: null as string | null,
  // The dashboard's first universes, then the pages of list_universes the person asked for ("Load more").
  universes: [] as ListedUniverse[],
  universesCursor: null as string | null,
  memberSort: null as { key: keyof Member; dir: 1 | -1 } | null,
  universeSort: { key: "name" as keyof ListedUniverse, dir: 1 as 1 | -1 },
  checked: new Set<string>(),
  // Set while the member table shows a past date's members (the as_of picker): nothing there can be edited.
  asOf: null as string | null,
};

export const has = (tool: string): boolean => state.data?.tools.includes(tool) ?? false;

export function setStatus(text: string): void {
  $("status").textContent = text;
}

/** An action's result: a dismissable notice (and the status line). */
export function done(text: string, tone: "ok" | "warn" = "ok"): void {
  notify(text, tone);
}

export function showError(err: unknown): void {
  const info: ErrorInfo =
    err instanceof ToolFailure ? err.info : { code: "internal", message: err instanceof Error ? err.message : String(err) };
  $("error-message").textContent = info.message;
  $("error-hint").textContent = info.hint ?? "";
  $("error").dataset.code = info.code;
  $("error").hidden = false;
  $("app").setAttribute("aria-busy", "false");
  setStatus("Something went wrong");
}

export function clearError(): void {
  $("error").hidden = true;
}

/** Run an action with its button disabled and marked busy; errors land in the banner. */
export async function busy(button: HTMLButtonElement | null, label: string, fn: () => Promise<void>): Promise<void> {
  clearError();
  button?.setAttribute("aria-busy", "true");
  if (button) button.disabled = true;
  $("app").setAttribute("aria-busy", "true");
  setStatus(label);
  try {
    await fn();
  } catch (err) {
    showError(err);
  } finally {
    button?.removeAttribute("aria-busy");
    if (button) button.disabled = false;
    $("app").setAttribute("aria-busy", "false");
    // The "…ing" label is done: back to what is shown, unless a notice or an error has said something since.
    if ($("status").textContent === label) setStatus(shownLine());
  }
}

function shownLine(): string {
  const d = state.data?.selected;
  return d ? `${d.universe.name}: ${d.universe.asset_count} assets` : `${universeCount()} universes`;
}

/** Reload everything from the server (after each change), keeping the selection when it still exists. */
export async function refresh(universeId: string | null = state.selectedId): Promise<void> {
  const tool = has("get_dashboard_state") || !state.data ? "get_dashboard_state" : "open_universe_dashboard";
  const loaded = state.universes.length;
  render(await call<DashboardData>(tool, universeId ? { universe_id: universeId } : {}));
  // The state lists the first universes only: keep as many listed as the person had loaded before the change.
  if (loaded > state.universes.length) await loadMoreUniverses(loaded);
}

/** The next pages of universes after those listed (list_universes, default page size), until `atLeast` are. */
export async function loadMoreUniverses(atLeast = 0): Promise<void> {
  do {
    if (!state.universesCursor || !has("list_universes")) break;
    const page = await call<{ universes: ListedUniverse[]; next_cursor: string | null }>("list_universes", { cursor: state.universesCursor });
    const seen = new Set(state.universes.map((u) => u.id));
    state.universes = state.universes.concat(page.universes.filter((u) => !seen.has(u.id)));
    state.universesCursor = page.next_cursor;
  } while (state.universes.length < atLeast);
  renderUniverses();
}

export function render(data: DashboardData): void {
  state.data = data;
  state.universes = data.universes;
  state.universesCursor = data.universes_next_cursor ?? null;
  const detail = data.selected;
  if (detail?.universe.id !== state.selectedId) state.checked.clear();
  // A refresh of the universe being looked at on a past date keeps that date's members (and the banner); another
  // universe, or none, ends it.
  const keepAsOf = state.asOf !== null && detail !== null && detail?.universe.id === state.selectedId;
  state.selectedId = detail?.universe.id ?? null;
  if (!keepAsOf) {
    state.members = detail?.assets ?? [];
    state.asOf = null;
    $("as-of-banner").hidden = true;
    state.nextCursor = detail?.next_cursor ?? null;
  }
  // Hide what this server does not offer (read-only mode, toolsets) and what needs a selected universe.
  document.querySelectorAll<HTMLElement>("[data-needs-tool], [data-needs-universe]").forEach((node) => {
    const tool = node.dataset.needsTool;
    node.hidden = (tool !== undefined && !has(tool)) || (node.hasAttribute("data-needs-universe") && !detail);
  });
  // A dynamic universe's members are what its rules select: no manual adds (the server would refuse them).
  if (detail?.universe.kind === "dynamic") {
    $("add-form").hidden = true;
    $("import-form").hidden = true;
  }
  // First impression: with no universe at all, one card that leads to creating or finding one.
  const none = state.universes.length === 0 && !detail;
  $("empty").hidden = !none;
  $("universes-card").hidden = none; // the empty state says it: no empty list beside it
  $("empty-readonly").hidden = !data.read_only;
  $("bulk-panel").hidden = none || (!has("import_universe_csv") && !has("export_universe_csv"));
  $("app").classList.toggle("read-only", data.read_only);
  $("import-target").textContent = detail
    ? `Imports into “${detail.universe.name}”.`
    : "With no universe selected, an import creates a new universe named after the file.";
  renderUniverses();
  renderDetail(detail);
  renderComposition(detail ? data.composition : null);
  syncRules();
  syncHistory();
  $("app").setAttribute("aria-busy", "false");
  setStatus(shownLine());
  void tellModel(summary(data));
}

const universeCount = (): string => `${state.universes.length}${state.universesCursor ? "+" : ""}`;

function summary(data: DashboardData): string {
  const d = data.selected;
  if (!d) return `The dashboard shows ${universeCount()} universes; none selected.`;
  const counts = Object.entries(d.counts_by_status).map(([s, n]) => `${n} ${s}`).join(", ") || "empty";
  return `The user's dashboard shows universe "${d.universe.name}" (id ${d.universe.id}): ${d.universe.asset_count} assets (${counts}), out of ${universeCount()} universes.`;
}

export function renderUniverses(): void {
  const data = state.data;
  if (!data) return;
  const filter = ($("universe-filter") as HTMLInputElement).value.trim().toLowerCase();
  const rows = sortRows(
    state.universes.filter((u) => u.name.toLowerCase().includes(filter)),
    state.universeSort.key,
    state.universeSort.dir,
  );
  const body = $("universes").querySelector("tbody")!;
  body.replaceChildren(
    ...rows.map((u) => {
      const pick = el("button", { text: u.name, attrs: { type: "button", "data-universe": u.id } });
      const tr = el("tr", { attrs: { "data-id": u.id } }, el("td", {}, pick), el("td", { className: "num", text: String(u.asset_count) }));
      if (u.id === state.selectedId) tr.setAttribute("aria-current", "true");
      return tr;
    }),
  );
  $("universes-empty").hidden = state.universes.length > 0;
  // More universes than listed: a button that pages them in, or (without list_universes) a note saying so.
  const more = state.universesCursor !== null;
  $("universes-more").hidden = !more || !has("list_universes");
  $("universes-more-note").hidden = !more || has("list_universes");
  $("universes-more-note").textContent = `Only the first ${state.universes.length} universes are listed.`;
}

function renderDetail(detail: Detail | null): void {
  $("universe-panel").hidden = detail === null;
  if (!detail) return;
  $("universe-name").textContent = detail.universe.name;
  const dynamic = detail.universe.kind === "dynamic";
  $("universe-kind").textContent = dynamic ? "dynamic" : "static";
  $("universe-kind").title = dynamic ? "Kept up to date by its rules (see Rules)." : "Hand-picked: members change only when you change them.";
  $("universe-description").textContent = detail.universe.description ?? "";
  $("universe-description").hidden = !detail.universe.description;
  const counts = Object.entries(detail.counts_by_status).map(([s, n]) => `${n} ${s}`).join(" · ");
  $("universe-counts").textContent = `${detail.universe.asset_count} assets${counts ? ` — ${counts}` : ""}`;
  const rename = $("rename-name") as HTMLInputElement;
  if (document.activeElement !== rename) rename.value = detail.universe.name;
  $("confirm").hidden = true;
  renderMembers();
}

export function renderMembers(): void {
  const text = ($("asset-filter") as HTMLInputElement).value.trim().toLowerCase();
  const status = ($("status-filter") as HTMLSelectElement).value;
  let rows = state.members.filter(
    (m) =>
      (!status || m.validation_status === status || explain(m).key === status) &&
      (!text || [m.symbol, m.name, m.sector, m.exchange].some((v) => v?.toLowerCase().includes(text))),
  );
  if (state.memberSort) rows = sortRows(rows, state.memberSort.key, state.memberSort.dir);
  // Read-only (or a dynamic universe, which its rules keep): no selection boxes at all, not disabled ones.
  const canRemove = has("remove_assets_from_universe") && state.data?.selected?.universe.kind !== "dynamic" && !state.asOf;
  $("assets").querySelector("th.check")!.toggleAttribute("hidden", !canRemove);
  $("remove-selected").hidden = !canRemove;
  // A refresh must not take the keyboard's place away: the control focused in a member's row is focused again in
  // its new row (which also shows a status chip's reason again).
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const focusedRow = focused?.closest<HTMLElement>("#assets tbody tr[data-symbol]");
  const refocus = focusedRow && focused ? { symbol: focusedRow.dataset.symbol, chip: focused.matches("button.chip") } : null;
  $("assets").querySelector("tbody")!.replaceChildren(
    ...rows.map((m) => {
      const box = el("input", { attrs: { type: "checkbox", "data-symbol": m.symbol, "aria-label": `Select ${m.symbol}` } });
      box.checked = state.checked.has(m.symbol);
      const symbol = el("td", { text: m.symbol });
      if (m.former_symbol) symbol.append(el("span", { className: "former", text: ` (was ${m.former_symbol})` }));
      return el(
        "tr",
        { attrs: { "data-symbol": m.symbol } },
        canRemove ? el("td", { className: "check" }, box) : null,
        symbol,
        el("td", { text: plainName(m.name), attrs: m.name ? { title: m.name } : {} }),
        el("td", { className: "wide", text: m.sector ?? "" }),
        el("td", { className: "wide", text: m.exchange ?? "" }),
        el("td", {}, statusCell(m)),
      );
    }),
  );
  const total = state.asOf ? Number($("as-of-banner").dataset.count ?? 0) : (state.data?.selected?.universe.asset_count ?? 0);
  const empty = $("assets-empty");
  empty.hidden = rows.length > 0;
  empty.textContent = state.members.length ? "No member matches the filter." : "This universe has no members yet: add some below.";
  $("assets-shown").textContent = `${rows.length} shown of ${total}`;
  $("load-more").hidden = state.nextCursor === null;
  ($("remove-selected") as HTMLButtonElement).disabled = state.checked.size === 0;
  if (refocus?.symbol) {
    const row = [...$("assets").querySelectorAll<HTMLElement>("tbody tr[data-symbol]")].find((r) => r.dataset.symbol === refocus.symbol);
    row?.querySelector<HTMLElement>(refocus.chip ? "button.chip" : "input[type=checkbox]")?.focus();
  }
}
