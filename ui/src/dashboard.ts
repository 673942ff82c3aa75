// The universe dashboard View (an MCP App). Rendered by the host from open_universe_dashboard's result; every
// later action is a tool call through the host (see api.ts).
import { app, applyContext, type DashboardData, failureOf, ToolFailure } from "./api";
import { wireBulk } from "./bulk";
import { wireComposition } from "./composition";
import { clearError, refresh, render, setStatus, showError, state } from "./core";
import { $ } from "./dom";
import { wireEditor } from "./editor";
import { wireHistory } from "./history";
import { wireRules } from "./rules";
import { wireSearch } from "./search";

wireEditor();
wireSearch();
wireBulk();
wireComposition();
wireRules();
wireHistory();
$("error-close").addEventListener("click", clearError);

// Theme: the host's (applyContext), else the system's (CSS media query); the small toggle overrides either until the
// host sends a new theme.
function effectiveTheme(): "light" | "dark" {
  const set = document.documentElement.dataset.theme;
  if (set === "dark" || set === "light") return set;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}
function paintToggle(): void {
  // A host that sends a theme owns it (its own setting or toggle); with none, the View follows the system and offers
  // its own small toggle.
  $("theme-toggle").hidden = Boolean(app.getHostContext()?.theme);
  const dark = effectiveTheme() === "dark";
  $("theme-toggle").setAttribute("aria-pressed", String(dark));
  $("theme-toggle").setAttribute("aria-label", dark ? "Use the light theme" : "Use the dark theme");
}
$("theme-toggle").addEventListener("click", () => {
  const next = effectiveTheme() === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  document.documentElement.style.colorScheme = next;
  paintToggle();
});
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", paintToggle);

// The empty state's ways in.
$("empty-create").addEventListener("click", () => ($("create-name") as HTMLInputElement).focus());
$("empty-find").addEventListener("click", () => ($("search") as HTMLInputElement).focus());

// Listeners before connect(): the host sends tool-input and tool-result right after the handshake.
app.addEventListener("toolinput", (params) => {
  const id = params.arguments?.universe_id;
  if (typeof id === "string") state.selectedId = id;
});
app.addEventListener("toolresult", (result) => {
  const envelope = result.structuredContent as { success?: boolean; data?: DashboardData } | undefined;
  if (result.isError || !envelope?.success || !envelope.data) {
    const failure = new ToolFailure(failureOf(result));
    showError(failure);
    // A bad or foreign universe id: keep the error on screen and still show the person's own universes.
    if (["not_found", "invalid_argument"].includes(failure.info.code)) refresh(null).catch(() => undefined);
  } else {
    render(envelope.data);
  }
});
app.addEventListener("toolcancelled", (params) => {
  showError(new ToolFailure({ code: "cancelled", message: `The dashboard was not loaded: ${params.reason ?? "cancelled"}.` }));
});
app.addEventListener("hostcontextchanged", () => {
  applyContext(app.getHostContext());
  paintToggle();
});

app.connect().then(
  () => {
    applyContext(app.getHostContext());
    paintToggle();
    if (!state.data) setStatus("Waiting for data…");
  },
  (err) => showError(err),
);
