import { openApiDocument } from "./openapi.js";

/** An answer of the gateway: its body parsed when it is JSON, and its text. */
export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Sent as-is instead of JSON. */
  rawBody?: string | Buffer;
  token?: string | null;
  headers?: Record<string, string>;
  /**
   * Why this request is no operation of api/openapi.yaml (an unknown route, on purpose):
   * its response is then not checked against the document. Every other response is.
   */
  undocumented?: string;
}

/**
 * A small JSON client for the gateway's REST API. Every response is checked against
 * api/openapi.yaml (its operation, status, content type, required headers and body
 * schema): a response the document does not declare fails the request, and so the test.
 */
export class Api {
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
  ) {}

  /** The same client acting with another token. */
  as(token: string | undefined): Api {
    return new Api(this.baseUrl, token);
  }

  async request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? this.token : options.token;
    if (token) headers["authorization"] ??= `Bearer ${token}`;
    let body: string | Buffer | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    const response = await fetchOnLiveConnection(this.baseUrl + path, { method, headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    if ((response.headers.get("content-type") ?? "").includes("application/json") && text) parsed = JSON.parse(text);
    if (!options.undocumented) openApiDocument().check({ method, path, status: response.status, headers: response.headers, text });
    return { status: response.status, body: parsed as T, headers: response.headers, text };
  }

  get<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>("GET", path, options);
  }
  post<T = any>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>("POST", path, { ...options, body });
  }
  put<T = any>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>("PUT", path, { ...options, body });
  }
  delete<T = any>(path: string, options?: RequestOptions) {
    return this.request<T>("DELETE", path, options);
  }
}

/**
 * fetch, once more if it went out on a pooled keep-alive connection the gateway had
 * already closed as idle (undici: "other side closed"): the request never reached the
 * server. A test busy in synchronous work (parsing a large file) notices the close late.
 */
async function fetchOnLiveConnection(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === "UND_ERR_SOCKET" && cause.message === "other side closed") return fetch(url, init);
    throw error;
  }
}

let counter = 0;

export interface SignedUp {
  id: string;
  name: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
  /** The API acting as this user. */
  api: Api;
}

/** Registers a fresh user and logs in; fails loudly if either step does not succeed. */
export async function signUp(api: Api, name = "User"): Promise<SignedUp> {
  counter++;
  const email = `${name.toLowerCase().replace(/\W/g, "")}.${process.pid}.${Date.now()}.${counter}@example.com`;
  const password = "Passw0rd-long";
  const registered = await api.post("/auth/register", { name, email, password });
  if (registered.status !== 201) throw new Error(`register failed: ${registered.status} ${registered.text}`);
  return logIn(api, { id: registered.body.id, name, email, password });
}

export async function logIn(api: Api, user: { id: string; name: string; email: string; password: string }): Promise<SignedUp> {
  const login = await api.post("/auth/login", { email: user.email, password: user.password });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${login.text}`);
  return {
    ...user,
    accessToken: login.body.access_token,
    refreshToken: login.body.refresh_token,
    api: api.as(login.body.access_token),
  };
}
