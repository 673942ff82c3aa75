// The page at / : a minimal MCP Apps host for people outside a chat client. It connects to /mcp on its own origin,
// renders the dashboard tool's ui:// View in a sandboxed iframe (opaque origin: no access to this page, its
// storage or the network) and proxies the View's tool calls, refusing tools that are not visible to apps.
// With auth on, it asks for a token and sends it only as an Authorization header: never in the URL.
// Not a production multi-server host: the spec wants a sandbox proxy on a separate origin for that.
import {
  AppBridge,
  PostMessageTransport,
  RESOURCE_MIME_TYPE,
  getToolUiResourceUri,
  type McpUiResourceCsp,
} from "@modelcontextprotocol/ext-apps/app-bridge";
import { Client, StreamableHTTPClientTransport, type Tool } from "@modelcontextprotocol/client";

const TOOL = "open_universe_dashboard";
const HOST_INFO = { name: "universe-mcp-page", version: "0.1.0" };
const params = new URLSearchParams(location.search);
const $ = (id: string) => document.getElementById(id)!;
let theme: "light" | "dark" =
  params.get("theme") === "dark" || (params.get("theme") !== "light" && matchMedia("(prefers-color-scheme: dark)").matches)
    ? "dark"
    : "light";
let bridge: AppBridge | null = null;
let client: Client | null = null;

function log(line: string): void {
  const pre = $("log");
  pre.textContent = `${pre.textContent}${new Date().toISOString().slice(11, 23)} ${line}\n`.slice(-20000);
}

function status(text: string): void {
  $("host-status").textContent = text;
}

function applyTheme(): void {
  document.documentElement.dataset.theme = theme;
  $("theme").setAttribute("aria-label", theme === "dark" ? "Use the light theme" : "Use the dark theme");
  $("theme").setAttribute("aria-pressed", String(theme === "dark"));
}

const visibility = (t?: Tool): string[] =>
  ((t?._meta?.ui as { visibility?: string[] } | undefined)?.visibility) ?? ["model", "app"];

/** The spec's CSP for a View from its _meta.ui.csp: nothing beyond inline code unless the server lists domains. */
function viewCsp(csp: McpUiResourceCsp | undefined): string {
  const list = (xs?: string[]) => (xs?.length ? xs.join(" ") : "");
  const res = list(csp?.resourceDomains);
  return [
    "default-src 'none'",
    `script-src 'unsafe-inline' ${res}`.trim(),
    `style-src 'unsafe-inline' ${res}`.trim(),
    `img-src data: ${res}`.trim(),
    `font-src ${res || "'none'"}`,
    `connect-src ${list(csp?.connectDomains) || "'none'"}`,
    `frame-src ${list(csp?.frameDomains) || "'none'"}`,
    "object-src 'none'",
    "base-uri 'none'",
  ].join("; ");
}

function isUnauthorized(err: unknown): boolean {
  const data = (err as { data?: { status?: number }; code?: number } | null) ?? {};
  return data.data?.status === 401 || data.code === 401 || /\b401\b|unauthori[sz]ed/i.test(String(err));
}

function saveFile(name: string, mimeType: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: mimeType }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function start(token: string | null): Promise<void> {
  await bridge?.close().catch(() => undefined);
  await client?.close().catch(() => undefined);
  $("frame-host").replaceChildren();
  status("Connecting…");
  client = new Client(HOST_INFO, {
    capabilities: { extensions: { "io.modelcontextprotocol/ui": { mimeTypes: [RESOURCE_MIME_TYPE] } } },
    versionNegotiation: { mode: "auto" },
  });
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.href), { requestInit: { headers } }));
    await render(client);
    $("token-form").hidden = true;
  } catch (err) {
    if (isUnauthorized(err)) {
      status(token ? "That token was not accepted." : "Sign in with an access token.");
      $("token-form").hidden = false;
      ($("token") as HTMLInputElement).focus();
      return;
    }
    status(`Could not reach the server: ${err instanceof Error ? err.message : String(err)}`);
    log(`error ${String(err)}`);
  }
}

async function render(mcp: Client): Promise<void> {
  const { tools } = await mcp.listTools();
  $("model-tools").textContent = tools.filter((t) => visibility(t).includes("model")).map((t) => t.name).join(", ");
  const tool = tools.find((t) => t.name === TOOL);
  const uri = tool && getToolUiResourceUri(tool);
  if (!tool || !uri) throw new Error(`the server does not offer ${TOOL}`);
  const content = (await mcp.readResource({ uri })).contents[0];
  if (!content || content.mimeType !== RESOURCE_MIME_TYPE || !("text" in content)) throw new Error(`${uri} is not an MCP App`);
  const csp = (content._meta?.ui as { csp?: McpUiResourceCsp } | undefined)?.csp;
  // The meta CSP must sit in <head> (a CSP meta in <body> is ignored); the iframe also inherits this page's CSP.
  const html = content.text.replace(/<head(\s[^>]*)?>/i, (m) => `${m}<meta http-equiv="Content-Security-Policy" content="${viewCsp(csp)}">`);

  const iframe = document.createElement("iframe");
  iframe.title = "Universe dashboard";
  iframe.setAttribute("sandbox", "allow-scripts"); // opaque origin, no same-origin access, no downloads, no popups
  $("frame-host").append(iframe);

  const toolArgs: Record<string, unknown> = params.get("universe") ? { universe_id: params.get("universe") } : {};
  log(`tools/call ${TOOL}`);
  const result = mcp.callTool({ name: TOOL, arguments: toolArgs });
  const b = new AppBridge(
    null,
    HOST_INFO,
    { serverTools: {}, logging: {}, downloadFile: {}, updateModelContext: { text: {} } },
    {
      hostContext: {
        // ?theme=none: a host that sends no theme (the View then follows the system, with its own toggle).
        ...(params.get("theme") === "none" ? {} : { theme }),
        platform: "web",
        displayMode: "inline",
        availableDisplayModes: ["inline"],
        containerDimensions: { maxHeight: 100_000 },
        toolInfo: { tool },
      },
    },
  );
  bridge = b;
  b.oncalltool = async (call, extra) => {
    const target = tools.find((t) => t.name === call.name);
    // The spec: a host MUST refuse tools whose visibility does not include "app".
    if (!target || !visibility(target).includes("app")) throw new Error(`tool ${call.name} is not callable from the app`);
    log(`tools/call ${call.name}`);
    return mcp.callTool(call, { signal: extra.mcpReq.signal });
  };
  b.onupdatemodelcontext = async (p) => {
    $("model-context").textContent = (p.content ?? []).map((c) => (c.type === "text" ? c.text : "")).join(" ");
    return {};
  };
  b.ondownloadfile = async ({ contents }) => {
    for (const item of contents) {
      if (item.type === "resource" && "text" in item.resource) {
        const name = decodeURIComponent(item.resource.uri.split("/").pop() || "export.csv");
        saveFile(name, item.resource.mimeType ?? "text/plain", item.resource.text);
        log(`download ${name}`);
      }
    }
    return {};
  };
  b.addEventListener("sizechange", ({ height }) => {
    if (height !== undefined) iframe.style.height = `${Math.ceil(height) + 2}px`;
  });
  b.addEventListener("initialized", () => {
    // Nothing goes to the View before it is initialised; tool-input precedes tool-result.
    void b.sendToolInput({ arguments: toolArgs });
    result.then(
      (r) => {
        void b.sendToolResult(r);
        status(r.isError ? "The dashboard reported an error." : "Connected");
      },
      (err) => {
        void b.sendToolCancelled({ reason: String(err) });
        status(`Error: ${String(err)}`);
      },
    );
  });
  await b.connect(new PostMessageTransport(iframe.contentWindow!, iframe.contentWindow!));
  iframe.srcdoc = html; // load the View only once the bridge listens
}

$("theme").addEventListener("click", () => {
  theme = theme === "dark" ? "light" : "dark";
  applyTheme();
  void bridge?.sendHostContextChange({ theme });
});
$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("token") as HTMLInputElement;
  const token = input.value.trim();
  input.value = "";
  if (token) void start(token);
});

// The developer panel (tools offered to the model, the View's model context, the call log) only when asked for.
$("debug").hidden = params.get("debug") !== "1";
applyTheme();
void start(null);
