// The universe dashboard View (an MCP App). Rendered by the host from open_universe_dashboard's result; every
// later action is a tool call through the host (see api.ts).
import { app, applyContext, type DashboardData, failureOf, ToolFailure } from "./api";
import { wireBulk } from "./bulk";
import { clearError, refresh, render, setStatus, showError, state } from "./core";
import { $ } from "./dom";
import { wireEditor } from "./editor";
import { wireSearch } from "./search";

wireEditor();
wireSearch();
wireBulk();
$("error-close").addEventListener("click", clearError);

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
app.addEventListener("hostcontextchanged", () => applyContext(app.getHostContext()));

app.connect().then(
  () => {
    applyContext(app.getHostContext());
    if (!state.data) setStatus("Waiting for data…");
  },
  (err) => showError(err),
);
