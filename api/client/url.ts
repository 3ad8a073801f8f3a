/** URLs of the API: paths with parameters, queries with repeated names, WebSocket addresses. */

export type QueryValue = string | number | boolean | null | undefined | readonly (string | number | boolean)[];

/** `/tasks/{task_id}` with `{task_id: "x"}` → `/tasks/x` (each value URL-encoded); a missing parameter throws. */
export function expandPath(path: string, params: Record<string, string> | undefined): string {
  return path.replace(/\{([a-z_]+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (typeof value !== "string" || value === "") throw new TypeError(`path parameter ${name} is required for ${path}`);
    return encodeURIComponent(value);
  });
}

/** `?a=1&label=x&label=y` from an object: arrays repeat the name, undefined and null are left out; "" when empty. */
export function queryString(query: Record<string, unknown> | undefined): string {
  if (!query) return "";
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    const values = Array.isArray(value) ? (value as unknown[]) : [value];
    for (const item of values) {
      if (item === undefined || item === null) continue;
      search.append(name, item instanceof Date ? item.toISOString() : String(item));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** The base URL and a path joined without a doubled or missing slash. The base may be relative ("" or "/api"). */
export function joinUrl(baseUrl: string, pathAndQuery: string): string {
  return baseUrl.replace(/\/+$/, "") + pathAndQuery;
}

/**
 * The absolute ws:// or wss:// address of a path: http → ws, https → wss. A relative base
 * is resolved against `location` (browsers); without one it cannot be.
 */
export function websocketUrl(baseUrl: string, pathAndQuery: string, location?: { href: string }): string {
  let absolute: URL;
  try {
    absolute = new URL(joinUrl(baseUrl, pathAndQuery));
  } catch {
    if (!location) throw new TypeError(`a relative baseUrl (${JSON.stringify(baseUrl)}) needs a page location to open a WebSocket`);
    absolute = new URL(joinUrl(baseUrl, pathAndQuery), location.href);
  }
  if (absolute.protocol === "http:") absolute.protocol = "ws:";
  else if (absolute.protocol === "https:") absolute.protocol = "wss:";
  return absolute.href;
}
