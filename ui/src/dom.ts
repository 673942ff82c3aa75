// Small DOM helpers. Server data is only ever rendered with textContent, never as HTML.

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: { text?: string; className?: string; attrs?: Record<string, string> } = {},
  ...children: (Node | null)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.text !== undefined) node.textContent = props.text;
  if (props.className) node.className = props.className;
  for (const [k, v] of Object.entries(props.attrs ?? {})) node.setAttribute(k, v);
  for (const child of children) if (child) node.append(child);
  return node;
}

export function badge(status: string, text?: string): HTMLSpanElement {
  return el("span", { className: `badge ${status}`, text: text ?? status });
}

export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): (...args: A) => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return (...args: A) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function tickers(text: string): string[] {
  return [...new Set(text.split(/[\s,;]+/).map((s) => s.trim().toUpperCase()).filter(Boolean))];
}

/** Sort rows by a key; numbers numerically, text with locale-aware comparison, missing values last. */
export function sortRows<T>(rows: T[], key: keyof T, dir: 1 | -1): T[] {
  return [...rows].sort((a, b) => {
    const x = a[key] as unknown;
    const y = b[key] as unknown;
    if (x === y) return 0;
    if (x === null || x === undefined || x === "") return 1;
    if (y === null || y === undefined || y === "") return -1;
    if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
    return String(x).localeCompare(String(y), undefined, { numeric: true, sensitivity: "base" }) * dir;
  });
}

/** Wire sortable headers (th[data-sort] > button): click toggles ascending/descending, aria-sort shows it. */
export function sortable(table: HTMLTableElement, onSort: (key: string, dir: 1 | -1) => void): void {
  table.querySelectorAll<HTMLTableCellElement>("th[data-sort]").forEach((th) => {
    th.querySelector("button")?.addEventListener("click", () => {
      const dir: 1 | -1 = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      table.querySelectorAll("th[data-sort]").forEach((other) => other.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      onSort(th.dataset.sort!, dir);
    });
  });
}

/** Decode a file's bytes: UTF-8 (BOM dropped) when it is valid UTF-8, else Windows-1252, as spreadsheets write. */
export function decodeFile(bytes: Uint8Array): { text: string; encoding: string } {
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), encoding: "utf-8" };
  } catch {
    // A UTF-8 BOM in front of Windows-1252 text (spreadsheets do write that) would decode to "ï»¿": drop it.
    const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    return { text: new TextDecoder("windows-1252").decode(bytes.subarray(bom)), encoding: "windows-1252" };
  }
}

/** Click on the button, or Enter in one of the group's inputs. No <form>: a sandboxed View without allow-forms
 *  (what chat hosts give) has every form submission blocked before any submit event fires. */
export function onSubmit(group: HTMLElement, button: HTMLButtonElement, handler: () => void): void {
  button.addEventListener("click", handler);
  group.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.target as HTMLElement).tagName === "INPUT" && !button.disabled) {
      event.preventDefault();
      handler();
    }
  });
}
