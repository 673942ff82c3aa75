// The View's only way out: tool calls through the host (App.callServerTool). No fetch, no network of its own.
import { App, type McpUiHostContext, applyDocumentTheme, applyHostFonts, applyHostStyleVariables } from "@modelcontextprotocol/ext-apps";

export interface UniverseSummary {
  id: string;
  name: string;
  description: string | null;
  kind?: "static" | "dynamic";
  asset_count: number;
  created_at: string;
  updated_at: string;
}

/** A universe as the dashboard lists it (list_universes pages carry these fields and more). */
export interface ListedUniverse {
  id: string;
  name: string;
  asset_count: number;
  updated_at: string;
}

export interface Member {
  symbol: string;
  name: string | null;
  sector: string | null;
  exchange: string | null;
  validation_status: string;
  validation_source: string | null;
  position: number | null;
  added_at: string | null;
  industry?: string | null;
  market_cap?: number | null;
  last_validated_at?: string | null;
  listing_status?: "listed" | "delisted";
  delisted_on?: string | null;
  former_symbol?: string | null;
  renamed_on?: string | null;
}

export interface RunInfo {
  id: string;
  trigger: string;
  period: string | null;
  rules_version: number;
  data_as_of: string | null;
  started_at: string;
  size_before: number;
  size_after: number;
  additions: number;
  removals: number;
  turnover: number | null;
}

export type Rule = { field: string; op: string; value: unknown } | { all: Rule[] } | { any: Rule[] } | { not: Rule };

export interface Definition {
  rules: Rule;
  rules_version: number;
  rebalance: "daily" | "weekly" | "monthly" | "quarterly" | null;
  include: string[];
  exclude: string[];
  next_rebalance_at: string | null;
  last_run: RunInfo | null;
}

export interface Composition {
  members: number;
  partial: boolean;
  market_cap: number;
  sectors: { name: string; count: number; market_cap: number }[];
  industries: { name: string; count: number }[];
  market_caps: { label: string; min: number | null; max: number | null; count: number }[];
  validation: Record<string, number>;
  listing: Record<string, number>;
}

export interface Detail {
  universe: UniverseSummary;
  counts_by_status: Record<string, number>;
  assets: Member[] | null;
  next_cursor: string | null;
  as_of?: string | null;
  delisted_members?: { symbol: string; delisted_on: string | null; reason: string | null }[];
  definition?: Definition | null;
}

export interface DashboardData {
  universes: ListedUniverse[];
  more_universes: boolean;
  universes_next_cursor: string | null;
  selected: Detail | null;
  composition?: Composition | null;
  tools: string[];
  read_only: boolean;
  limits: { csv_max_bytes: number; csv_max_rows: number; max_symbols_per_call: number; max_inline_validation: number };
}

export interface ErrorInfo {
  code: string;
  message: string;
  hint?: string | null;
  details?: Record<string, unknown>;
}

interface Envelope<T> {
  success: boolean;
  data: T | null;
  message: string;
  error?: ErrorInfo | null;
}

/** A tool answered with an error envelope (or the host refused the call): shown in the View's error banner. */
export class ToolFailure extends Error {
  constructor(public info: ErrorInfo) {
    super(info.message);
  }
}

export const app = new App({ name: "universe-dashboard", version: "0.1.0" }, {});

export function applyContext(ctx: McpUiHostContext | undefined): void {
  if (ctx?.theme) applyDocumentTheme(ctx.theme);
  if (ctx?.styles?.variables) applyHostStyleVariables(ctx.styles.variables);
  if (ctx?.styles?.css?.fonts) applyHostFonts(ctx.styles.css.fonts);
}

function textOf(content: unknown): string {
  if (!Array.isArray(content)) return "";
  return content.map((c) => (c && c.type === "text" ? String(c.text) : "")).join(" ").slice(0, 500);
}

/** The envelope's error, or a generic one built from the result's text. */
export function failureOf(result: { structuredContent?: unknown; content?: unknown }): ErrorInfo {
  const env = result.structuredContent as Envelope<unknown> | undefined;
  return env?.error ?? { code: "internal", message: textOf(result.content) || "The tool call failed." };
}

export async function call<T>(name: string, args: Record<string, unknown>): Promise<T> {
  let result;
  try {
    result = await app.callServerTool({ name, arguments: args });
  } catch (err) {
    // Transport or host refusal: the call never reached a tool.
    throw new ToolFailure({
      code: "unavailable",
      message: `The host could not run ${name}: ${err instanceof Error ? err.message : String(err)}`,
      hint: "Check the connection to the server and try again.",
    });
  }
  const env = result.structuredContent as Envelope<T> | undefined;
  if (result.isError || !env?.success) throw new ToolFailure(failureOf(result));
  return env.data as T;
}

export async function tellModel(text: string): Promise<void> {
  if (!app.getHostCapabilities()?.updateModelContext) return;
  try {
    await app.updateModelContext({ content: [{ type: "text", text }] });
  } catch {
    // Model context is a courtesy to the chat; the dashboard works without it.
  }
}
