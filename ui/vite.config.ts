// One self-contained HTML file per page: `INPUT=dashboard.html vite build`, then `INPUT=host.html vite build`
// (vite-plugin-singlefile takes one entry per build). OUT_DIR lets the freshness check build into a temp dir.
import { resolve } from "node:path";
import { defineConfig } from "vite";
import { viteSingleFile } from "vite-plugin-singlefile";

const input = process.env.INPUT;
if (!input) throw new Error("set INPUT=<page>.html");

export default defineConfig({
  root: resolve(import.meta.dirname, "src"),
  logLevel: "warn",
  plugins: [viteSingleFile()],
  build: {
    outDir: process.env.OUT_DIR ?? resolve(import.meta.dirname, "../server/static"),
    emptyOutDir: false,
    // Keep light-dark() and modern CSS as written: Lightning CSS would otherwise lower it to media queries.
    cssTarget: ["chrome123", "firefox120", "safari17.5"],
    // No modulepreload polyfill: it is dead code in a single file, and the View should contain no fetch at all.
    modulePreload: { polyfill: false },
    rollupOptions: { input: resolve(import.meta.dirname, "src", input) },
  },
});
