// Action results as notices: a line each ("3 added · 1 rejected — did you mean AAPL?"), kept until dismissed, the
// newest first, at most four. The status line in the header repeats the last one for screen readers.
import { $, el } from "./dom";

export type Tone = "ok" | "warn" | "error" | "info";
let seq = 0;

export function notify(text: string, tone: Tone = "ok"): HTMLElement {
  const box = $("notices");
  const id = `notice-${++seq}`;
  const close = el("button", { text: "×", className: "ghost icon", attrs: { type: "button", "aria-label": "Dismiss this notice" } });
  const item = el("div", { className: `notice ${tone}`, attrs: { id, "data-tone": tone } }, el("span", { text, className: "notice-text" }), close);
  close.addEventListener("click", () => {
    const next = item.nextElementSibling ?? item.previousElementSibling;
    item.remove();
    // Keep keyboard focus somewhere sensible: the next notice's close button, or the page.
    (next?.querySelector("button") as HTMLButtonElement | null)?.focus();
  });
  box.prepend(item);
  while (box.children.length > 4) box.lastElementChild?.remove();
  $("status").textContent = text;
  return item;
}

export function clearNotices(): void {
  $("notices").replaceChildren();
}
