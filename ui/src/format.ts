// Number and date formats shared by the charts, the tables and the status explanations.

export function money(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const abs = Math.abs(value);
  for (const [size, unit] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]] as const) {
    if (abs >= size) return `$${(value / size).toFixed(abs / size >= 100 ? 0 : 1)}${unit}`;
  }
  return `$${value.toFixed(0)}`;
}

export function day(iso: string | null | undefined): string {
  return iso ? iso.slice(0, 10) : "";
}

export function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)} %`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

// Listing files write the share's description into the name ("Apple Inc. - Common Stock"): shown without it, as
// search results already are (services/schemas.py, AssetHit).
const BOILERPLATE = /\s*-?\s*(?:Class [A-Z] )?(?:Common Stock|Common Shares|Ordinary Shares)(?:,? (?:par value|\$).*)?$/i;

export function plainName(name: string | null | undefined): string {
  if (!name) return "";
  return name.replace(BOILERPLATE, "") || name;
}
