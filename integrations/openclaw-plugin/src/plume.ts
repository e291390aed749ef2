// The Plume Open API as the plugin uses it (docs/spec/API.md): upload an input image, create
// a task with an Idempotency-Key, wait for it with `?wait=` long polls, cancel it, download
// its result. Every failure becomes a PlumeError carrying Plume's error code.

/** A Plume error: the API's `code` (INSUFFICIENT_CREDITS, VALIDATION_ERROR, …) and message. */
export class PlumeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "PlumeError";
    this.code = code;
  }
}

/** The task statuses (API.md): 3 and above are terminal. */
export const SUCCESS = 3;
export const TERMINAL = 3;

export interface TaskView {
  id: number;
  status: number;
  category: string;
  credits_cost?: number;
  result?: unknown;
  error?: { code?: string; message?: string } | null;
}

export interface PlumeClientOptions {
  apiBase: string;
  apiKey: string;
  /** Longest single long poll, in seconds (the server caps `?wait=` at 30). */
  maxWaitSeconds?: number;
  fetch?: typeof fetch;
}

/** Largest result the plugin downloads into memory (OpenClaw's own media cap is smaller). */
const MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024;

export class PlumeClient {
  readonly apiBase: string;
  private readonly apiKey: string;
  private readonly maxWaitSeconds: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: PlumeClientOptions) {
    this.apiBase = options.apiBase.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.maxWaitSeconds = options.maxWaitSeconds ?? 30;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** Sends one request and unwraps the `{"success", "code", "message", "data"}` envelope. */
  private async call(
    path: string,
    init: RequestInit & { timeoutMs?: number } = {},
  ): Promise<unknown> {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${this.apiKey}`);
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.apiBase}${path}`, {
        ...init,
        headers,
        signal: AbortSignal.timeout(init.timeoutMs ?? 60_000),
      });
    } catch (err) {
      throw new PlumeError(
        "NETWORK_ERROR",
        `Plume at ${this.apiBase} could not be reached: ${(err as Error).message}`,
      );
    }
    const text = await response.text();
    let body: { success?: boolean; code?: string; message?: string; data?: unknown };
    try {
      body = JSON.parse(text);
    } catch {
      throw new PlumeError(
        "INTERNAL_ERROR",
        `Plume answered HTTP ${response.status} without JSON: ${text.slice(0, 200)}`,
      );
    }
    if (!response.ok || body.success !== true) {
      throw new PlumeError(
        body.code ?? "INTERNAL_ERROR",
        body.message ?? `Plume answered HTTP ${response.status}`,
      );
    }
    return body.data;
  }

  /** Stores an input image; returns the URL a task's `imageUrls` may name. */
  async upload(buffer: Buffer, mimeType: string, fileName: string): Promise<string> {
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(buffer)], { type: mimeType }), fileName);
    const data = (await this.call("/api/open/upload", { method: "POST", body: form })) as {
      file_url?: string;
    };
    if (typeof data?.file_url !== "string") {
      throw new PlumeError("INTERNAL_ERROR", "Plume's upload answer has no file_url");
    }
    return data.file_url;
  }

  /** Creates a task; the same `idempotencyKey` within 24 hours returns the first task. */
  async create(category: string, content: unknown, idempotencyKey: string): Promise<TaskView> {
    return (await this.call("/api/open/tasks", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": idempotencyKey },
      body: JSON.stringify({ category, content }),
    })) as TaskView;
  }

  /** One task; with `waitSeconds`, held until its status changes or that time passes. */
  async get(id: number, waitSeconds = 0): Promise<TaskView> {
    const wait = Math.max(0, Math.min(Math.floor(waitSeconds), this.maxWaitSeconds));
    const query = wait > 0 ? `?wait=${wait}` : "";
    return (await this.call(`/api/open/tasks/${id}${query}`, {
      timeoutMs: (wait + 30) * 1000,
    })) as TaskView;
  }

  /** Cancels a task that is not terminal (credits come back). */
  async cancel(id: number): Promise<void> {
    await this.call(`/api/open/tasks/${id}/cancel`, { method: "POST" });
  }

  /** A file's size from a HEAD request (0 when it cannot be told). */
  async size(url: string): Promise<number> {
    try {
      const head = await this.fetchImpl(url, { method: "HEAD", signal: AbortSignal.timeout(10_000) });
      return Number(head.headers.get("content-length") ?? "0") || 0;
    } catch {
      return 0;
    }
  }

  /** Downloads a result file. */
  async download(url: string, timeoutMs: number): Promise<{ buffer: Buffer; mimeType: string }> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new PlumeError("NETWORK_ERROR", `the result ${url} could not be fetched: ${(err as Error).message}`);
    }
    if (!response.ok) {
      throw new PlumeError("INTERNAL_ERROR", `the result ${url} answered HTTP ${response.status}`);
    }
    const length = Number(response.headers.get("content-length") ?? "0");
    if (length > MAX_DOWNLOAD_BYTES) {
      throw new PlumeError("INTERNAL_ERROR", `the result is ${length} bytes, more than this plugin holds`);
    }
    const buffer = Buffer.from(await response.arrayBuffer());
    const mimeType = response.headers.get("content-type")?.split(";")[0]?.trim() || "application/octet-stream";
    return { buffer, mimeType };
  }

  /**
   * Waits until the task is terminal or `deadline` (epoch ms) passes, with long polls.
   * Success returns the task; failure, timeout and cancel throw its error. When the wait
   * runs out, or anything else goes wrong while waiting, the task is cancelled (and
   * refunded) before the error propagates: OpenClaw cannot cancel a call itself, and a
   * task nobody waits for should not run on and be charged.
   */
  async waitFor(task: TaskView, deadline: number): Promise<TaskView> {
    let current = task;
    try {
      for (;;) {
        if (current.status >= TERMINAL) break;
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          throw new PlumeError(
            "TIMEOUT",
            `Plume task #${task.id} did not finish in time; it was cancelled and refunded`,
          );
        }
        current = await this.get(task.id, Math.max(1, Math.ceil(remaining / 1000)));
      }
    } catch (err) {
      await this.cancel(task.id).catch(() => undefined);
      throw err;
    }
    if (current.status === SUCCESS) return current;
    throw new PlumeError(
      current.error?.code ?? "TASK_FAILED",
      `Plume task #${task.id} ${statusWord(current.status)}: ${current.error?.message ?? "no reason given"}`,
    );
  }
}

function statusWord(status: number): string {
  switch (status) {
    case 4:
      return "failed";
    case 5:
      return "timed out";
    case 6:
      return "was cancelled";
    default:
      return `ended with status ${status}`;
  }
}
