// Bulk operations: CSV/watchlist import with a progress bar, and CSV export through the host's downloadFile.
// Small imports are settled by the import call itself; large ones return a validation job, and the bar then
// follows get_job_status until the job ends.
import { app, call, ToolFailure, type UniverseSummary } from "./api";
import { busy, done, has, refresh, setStatus, state } from "./core";
import { $, decodeFile, el, sleep } from "./dom";

interface ExportPage {
  filename: string;
  csv_text: string;
  row_count: number;
  total_rows: number;
  next_cursor: string | null;
}

interface ImportRow {
  line: number;
  input: string;
  symbol: string | null;
  verdict: string;
  reason: string | null;
  candidates: string[];
}

interface ImportResult {
  universe: UniverseSummary;
  format: string;
  counts: Record<string, number>;
  rows: ImportRow[];
  rows_truncated: boolean;
  notes: string[];
  ignored_columns: string[];
  job_id: string | null;
}

// The statuses get_job_status reports (services/jobs.py, JobState) once a job has ended.
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** get_job_status's data (services/jobs.py, JobStatus): the fields the bar reads. */
interface JobStatus {
  status: string;
  counts: { total: number; processed: number };
}

function progress(value: number | null, max: number, text: string): void {
  const bar = $("import-progress") as HTMLProgressElement;
  bar.hidden = false;
  bar.max = Math.max(max, 1);
  if (value === null) bar.removeAttribute("value"); // indeterminate while the server works
  else bar.value = Math.min(value, bar.max);
  bar.setAttribute("aria-valuetext", text);
  $("import-status").textContent = text;
}

/** Poll get_job_status until the job ends, driving the bar with its processed/total counts. */
async function followJob(jobId: string, rows: number): Promise<{ done: number; total: number; status: string }> {
  for (;;) {
    const status = await call<JobStatus>("get_job_status", { job_id: jobId });
    const job = { done: status.counts.processed, total: status.counts.total, status: status.status };
    const percent = job.total ? Math.floor((job.done / job.total) * 100) : 0;
    progress(job.done, job.total, `Imported ${rows} rows; validating ${job.done} of ${job.total} new symbols (${percent} %)`);
    if (TERMINAL.has(job.status)) return job;
    await sleep(300);
  }
}

function renderReport(result: ImportResult): void {
  const problems = result.rows.filter((r) => r.verdict !== "added");
  const summary = Object.entries(result.counts).map(([k, n]) => `${n} ${k}`).join(", ");
  const notes = [...result.notes, ...(result.ignored_columns.length ? [`ignored columns: ${result.ignored_columns.join(", ")}`] : [])];
  const report = $("import-report");
  report.replaceChildren(
    el("p", { className: "report", text: `${result.format} file: ${summary}.${notes.length ? ` (${notes.join("; ")})` : ""}` }),
  );
  if (!problems.length) return;
  const rows = problems.slice(0, 100).map((r) =>
    el(
      "tr",
      { attrs: { "data-line": String(r.line) } },
      el("td", { text: String(r.line) }),
      el("td", { text: r.input }),
      el("td", { text: r.verdict }),
      el("td", { text: (r.reason ?? "") + (r.candidates.length ? ` — did you mean ${r.candidates.slice(0, 3).join(", ")}?` : "") }),
    ),
  );
  const head = el("tr", {}, ...["Line", "Input", "Verdict", "Why"].map((h) => el("th", { text: h, attrs: { scope: "col" } })));
  report.append(el("div", { className: "table-wrap" }, el("table", { className: "grid report" }, el("thead", {}, head), el("tbody", {}, ...rows))));
}

async function importText(text: string, fileName: string | null, note: string | null): Promise<void> {
  const mode = ($("import-mode") as HTMLSelectElement).value;
  const target = state.selectedId
    ? { universe_id: state.selectedId }
    : { name: (fileName ?? "Imported").replace(/\.[^.]+$/, "").slice(0, 200) || "Imported" };
  progress(null, 1, `Importing${fileName ? ` ${fileName}` : ""}…`);
  $("import-report").replaceChildren();
  const result = await call<ImportResult>("import_universe_csv", { csv_text: text, mode, ...target });
  if (note) result.notes.unshift(note);
  renderReport(result);
  const rows = Object.entries(result.counts).filter(([k]) => k !== "removed").reduce((sum, [, n]) => sum + n, 0);
  await refresh(result.universe.id);
  if (result.job_id && has("get_job_status")) {
    // Large file: the rows are in; the bar now follows the validation job until it ends.
    progress(0, 1, `Imported ${rows} rows; validating the new symbols…`);
    const job = await followJob(result.job_id, rows);
    await refresh(result.universe.id);
    progress(job.total, job.total, `Import complete: ${rows} rows, validation ${job.status} for ${job.total} symbols (100 %)`);
  } else {
    progress(rows, rows, `Import complete: ${rows} rows (100 %)`);
  }
  done(`Imported into ${result.universe.name}: ${Object.entries(result.counts).map(([k, n]) => `${n} ${k}`).join(" · ")}`);
}

export function wireBulk(): void {
  $("import").addEventListener("click", () => {
    const input = $("csv-file") as HTMLInputElement;
    const file = input.files?.[0] ?? null;
    const pasted = ($("csv-text") as HTMLTextAreaElement).value;
    void busy($("import") as HTMLButtonElement, "Importing…", async () => {
      try {
        if (file) {
          const max = state.data?.limits.csv_max_bytes ?? Infinity;
          if (file.size > max)
            throw new ToolFailure({ code: "limit_exceeded", message: `${file.name} is ${file.size.toLocaleString()} bytes; imports take at most ${max.toLocaleString()}.`, hint: "Split the file and import the parts." });
          const { text, encoding } = decodeFile(new Uint8Array(await file.arrayBuffer()));
          await importText(text, file.name, encoding === "utf-8" ? null : `read as ${encoding} (not valid UTF-8)`);
          input.value = "";
        } else if (pasted.trim()) {
          await importText(pasted, null, null);
        } else {
          throw new ToolFailure({ code: "invalid_argument", message: "Choose a file or paste some tickers first." });
        }
      } catch (err) {
        $("import-progress").hidden = true;
        $("import-status").textContent = "Import failed: nothing was changed.";
        throw err;
      }
    });
  });

  $("export").addEventListener("click", () => {
    void busy($("export") as HTMLButtonElement, "Exporting…", async () => {
      // The export comes a page at a time (each answer under 16 KB; the header on the first page only): joined in
      // order, the pages are exactly the whole file.
      const universeId = state.selectedId;
      let out = await call<ExportPage>("export_universe_csv", { universe_id: universeId });
      const parts = [out.csv_text];
      let rows = out.row_count;
      while (out.next_cursor) {
        setStatus(`Exporting… ${rows.toLocaleString()} of ${out.total_rows.toLocaleString()} rows`);
        out = await call<ExportPage>("export_universe_csv", { universe_id: universeId, cursor: out.next_cursor });
        parts.push(out.csv_text);
        rows += out.row_count;
      }
      const text = parts.join("");
      const box = $("export-text") as HTMLTextAreaElement;
      if (app.getHostCapabilities()?.downloadFile) {
        // A sandboxed View cannot download by itself; the host saves the file.
        await app.downloadFile({ contents: [{ type: "resource", resource: { uri: `file:///${out.filename}`, mimeType: "text/csv", text } }] });
        box.hidden = true;
      } else {
        box.value = text;
        box.hidden = false;
      }
      done(`Exported ${rows} rows to ${out.filename}`);
    });
  });
}
