// The two OpenClaw providers: `plume` for images (generation, and remove-bg /
// remove-watermark as one-image edit models) and `plume` for video. One call = one Plume
// task: inputs are uploaded, the task is created with an Idempotency-Key, waited for with
// long polls, cancelled (refunded) if the call runs out of time, and its result returned
// as bytes (a video may come back as its URL when it is too large to hold).

import { createHash } from "node:crypto";
import {
  catalog,
  IMAGE_CATEGORIES,
  imageCapabilities,
  resolveVideoModel,
  VIDEO_MODELS,
  videoCapabilities,
} from "./catalog.js";
import { imageContent, videoContent, type VideoImage } from "./content.js";
import { defaultJournalDir, Journal } from "./journal.js";
import { PlumeClient, PlumeError, type TaskView } from "./plume.js";

/** Where the plugin finds its server and key. */
export interface Settings {
  apiBase: string;
  apiKey?: string;
  /** Default time for one call when OpenClaw gives none. */
  timeoutMs: number;
  /** Where waiting calls are recorded (see journal.ts). */
  journalDir: string;
}

const DEFAULT_IMAGE_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_VIDEO_TIMEOUT_MS = 30 * 60_000;
/** Videos larger than this come back as their URL (OpenClaw delivers the link). */
const MAX_VIDEO_BYTES_IN_MEMORY = 64 * 1024 * 1024;

/** Settings from the plugin's config, then PLUME_API_BASE / PLUME_API_KEY, then defaults. */
export function resolveSettings(
  config: Record<string, unknown> | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const text = (v: unknown) => (typeof v === "string" && v.trim() ? v.trim() : undefined);
  const timeout = typeof config?.timeoutMs === "number" && config.timeoutMs >= 1000 ? config.timeoutMs : 0;
  return {
    apiBase: text(config?.apiBase) ?? text(env.PLUME_API_BASE) ?? catalog.hostedApiBase,
    apiKey: text(config?.apiKey) ?? text(env.PLUME_API_KEY),
    timeoutMs: timeout,
    journalDir: text(config?.journalDir) ?? defaultJournalDir(env),
  };
}

/** Input media as OpenClaw hands it: bytes, or (video) a URL. */
interface SourceAsset {
  buffer?: Buffer;
  url?: string;
  mimeType?: string;
  fileName?: string;
  role?: string;
}

/**
 * The Idempotency-Key for a call: the same request (model, prompt, options, the inputs'
 * SHA-256) gives the same key while a call for it is unresolved, so OpenClaw retrying a call
 * that broke off (a network error, a restart of the call) finds the task already made and
 * is not charged twice. OpenClaw gives no per-call id, so once a call has an answer the
 * next identical request counts up and makes a new task: asking twice for "a cat" draws two.
 */
export class IdempotencyKeys {
  private readonly generation = new Map<string, number>();

  keyFor(parts: unknown[], inputs: SourceAsset[]): { key: string; settle: () => void } {
    const hash = createHash("sha256");
    hash.update(JSON.stringify(parts));
    for (const input of inputs) {
      hash.update("\0");
      hash.update(input.buffer ?? input.url ?? "");
    }
    const digest = hash.digest("hex").slice(0, 40);
    const n = this.generation.get(digest) ?? 0;
    return {
      key: `openclaw-${digest}-${n}`,
      settle: () => {
        this.generation.set(digest, Math.max(this.generation.get(digest) ?? 0, n + 1));
      },
    };
  }
}

/** Plume's error in OpenClaw's shape: an Error whose message names the code and what to do. */
export function toOpenClawError(err: unknown, settings: Settings): Error {
  if (!(err instanceof PlumeError)) return err instanceof Error ? err : new Error(String(err));
  const portal = settings.apiBase.replace(/\/+$/, "") + "/";
  const advice: Record<string, string> = {
    INSUFFICIENT_CREDITS: ` Top up your Plume credits at ${portal} and try again; nothing was charged.`,
    CREDITS_ACCOUNT_NOT_FOUND: ` Register on the Plume Platform at ${portal} first.`,
    UNAUTHORIZED: ` The Plume API key is invalid: create a new one at ${portal} and set it as PLUME_API_KEY.`,
  };
  const error = new Error(`Plume ${err.code}: ${err.message}${advice[err.code] ?? ""}`);
  (error as Error & { code?: string }).code = err.code;
  return error;
}

interface CallContext {
  settings: Settings;
  keys: IdempotencyKeys;
  journal?: Journal;
  fetch?: typeof fetch;
}

function clientFor(ctx: CallContext): PlumeClient {
  if (!ctx.settings.apiKey) {
    throw new PlumeError(
      "UNAUTHORIZED",
      "no Plume API key: set PLUME_API_KEY or plugins.entries.plume.config.apiKey",
    );
  }
  return new PlumeClient({
    apiBase: ctx.settings.apiBase,
    apiKey: ctx.settings.apiKey,
    maxWaitSeconds: catalog.maxWaitSeconds,
    fetch: ctx.fetch,
  });
}

async function uploadAll(client: PlumeClient, inputs: SourceAsset[]): Promise<string[]> {
  const urls: string[] = [];
  for (const [i, input] of inputs.entries()) {
    if (input.buffer) {
      const name = input.fileName ?? `input-${i + 1}`;
      urls.push(await client.upload(input.buffer, input.mimeType ?? "application/octet-stream", name));
    } else if (input.url) {
      urls.push(input.url);
    } else {
      throw new PlumeError("VALIDATION_ERROR", `input ${i + 1} has neither bytes nor a URL`);
    }
  }
  return urls;
}

/**
 * Creates the task and waits for it; the key is settled once the outcome is known. While it
 * waits the task is in the journal, so `plume` can deliver it if this process dies.
 */
async function run(
  ctx: CallContext,
  client: PlumeClient,
  call: { category: string; sourceId: string; prompt: string },
  content: Record<string, unknown>,
  key: { key: string; settle: () => void },
  timeoutMs: number,
): Promise<TaskView> {
  const deadline = Date.now() + timeoutMs;
  const task = await client.create(call.category, content, key.key);
  ctx.journal?.start({
    plume_task_id: task.id,
    api_base: client.apiBase,
    category: call.category,
    source_id: call.sourceId,
    prompt: call.prompt,
    started_at_ms: Date.now(),
    pid: process.pid,
  });
  try {
    return await client.waitFor(task, deadline);
  } finally {
    key.settle();
    ctx.journal?.end(task.id);
  }
}

export interface ImageRequest {
  model: string;
  prompt: string;
  timeoutMs?: number;
  count?: number;
  aspectRatio?: string;
  resolution?: string;
  inputImages?: SourceAsset[];
}

export function buildImageProvider(ctx: CallContext) {
  return {
    id: "plume",
    label: "Plume",
    defaultModel: "Banana2",
    defaultTimeoutMs: ctx.settings.timeoutMs || DEFAULT_IMAGE_TIMEOUT_MS,
    models: IMAGE_CATEGORIES,
    capabilities: imageCapabilities(),
    isConfigured: () => Boolean(ctx.settings.apiKey),
    async generateImage(req: ImageRequest) {
      try {
        const category = req.model?.trim() || "Banana2";
        if (!IMAGE_CATEGORIES.includes(category)) {
          throw new PlumeError(
            "VALIDATION_ERROR",
            `plume has no image model ${category}; it has ${IMAGE_CATEGORIES.join(", ")}`,
          );
        }
        if ((req.count ?? 1) > 1) {
          throw new PlumeError("VALIDATION_ERROR", "plume makes one image per call");
        }
        const inputs = req.inputImages ?? [];
        const client = clientFor(ctx);
        // Check the request before uploading anything.
        const placeholders = inputs.map((_, i) => `https://placeholder.invalid/${i}`);
        const shape = { prompt: req.prompt, aspectRatio: req.aspectRatio, resolution: req.resolution };
        imageContent(category, { ...shape, imageUrls: placeholders });
        const key = ctx.keys.keyFor([category, shape], inputs);
        const urls = await uploadAll(client, inputs);
        const content = imageContent(category, { ...shape, imageUrls: urls });
        const timeoutMs = req.timeoutMs ?? (ctx.settings.timeoutMs || DEFAULT_IMAGE_TIMEOUT_MS);
        const deadline = Date.now() + timeoutMs;
        const call = { category, sourceId: "image_generate:plume", prompt: req.prompt };
        const task = await run(ctx, client, call, content, key, timeoutMs);
        const result = task.result as { imageUrl?: string; mimeType?: string } | null;
        if (!result?.imageUrl) throw new PlumeError("INTERNAL_ERROR", `task #${task.id} has no image`);
        const file = await client.download(result.imageUrl, Math.max(10_000, deadline - Date.now()));
        const mimeType = result.mimeType ?? file.mimeType;
        return {
          images: [{ buffer: file.buffer, mimeType, fileName: `plume-${task.id}.${mimeType.split("/")[1] ?? "png"}` }],
          model: category,
          metadata: { plumeTaskId: task.id, creditsCost: task.credits_cost },
        };
      } catch (err) {
        throw toOpenClawError(err, ctx.settings);
      }
    },
  };
}

export interface VideoRequest {
  model: string;
  prompt: string;
  timeoutMs?: number;
  aspectRatio?: string;
  durationSeconds?: number;
  inputImages?: SourceAsset[];
  inputVideos?: SourceAsset[];
}

export function buildVideoProvider(ctx: CallContext) {
  const { capabilities, catalogByModel } = videoCapabilities();
  return {
    id: "plume",
    label: "Plume",
    defaultModel: "veo",
    defaultTimeoutMs: ctx.settings.timeoutMs || DEFAULT_VIDEO_TIMEOUT_MS,
    models: VIDEO_MODELS,
    capabilities,
    catalogByModel,
    isConfigured: () => Boolean(ctx.settings.apiKey),
    async generateVideo(req: VideoRequest) {
      try {
        const resolved = resolveVideoModel(req.model?.trim() || "veo");
        if (!resolved) {
          throw new PlumeError(
            "VALIDATION_ERROR",
            `plume has no video model ${req.model}; it has ${VIDEO_MODELS.join(", ")}`,
          );
        }
        if ((req.inputVideos ?? []).length > 0) {
          throw new PlumeError("VALIDATION_ERROR", "plume does not take input videos");
        }
        const inputs = req.inputImages ?? [];
        const client = clientFor(ctx);
        const shape = {
          prompt: req.prompt,
          model: resolved.model,
          aspectRatio: req.aspectRatio,
          durationSeconds: req.durationSeconds,
        };
        const images = (urls: string[]): VideoImage[] =>
          inputs.map((input, i) => ({ url: urls[i]!, role: input.role }));
        videoContent(resolved.category, { ...shape, images: images(inputs.map((_, i) => `https://placeholder.invalid/${i}`)) });
        const key = ctx.keys.keyFor([resolved, shape, inputs.map((i) => i.role ?? "")], inputs);
        const urls = await uploadAll(client, inputs);
        const content = videoContent(resolved.category, { ...shape, images: images(urls) });
        const timeoutMs = req.timeoutMs ?? (ctx.settings.timeoutMs || DEFAULT_VIDEO_TIMEOUT_MS);
        const deadline = Date.now() + timeoutMs;
        const call = { category: resolved.category, sourceId: "video_generate:plume", prompt: req.prompt };
        const task = await run(ctx, client, call, content, key, timeoutMs);
        const part = (task.result as { parts?: { videoUrl?: string; mimeType?: string }[] } | null)?.parts?.[0];
        if (!part?.videoUrl) throw new PlumeError("INTERNAL_ERROR", `task #${task.id} has no video`);
        const mimeType = part.mimeType ?? "video/mp4";
        const metadata = { plumeTaskId: task.id, creditsCost: task.credits_cost };
        if ((await client.size(part.videoUrl)) > MAX_VIDEO_BYTES_IN_MEMORY) {
          const link: { buffer?: Buffer; url: string; mimeType: string } = { url: part.videoUrl, mimeType };
          return { videos: [link], model: resolved.model ?? resolved.category, metadata };
        }
        const file = await client.download(part.videoUrl, Math.max(30_000, deadline - Date.now()));
        return {
          videos: [{ buffer: file.buffer, url: part.videoUrl, mimeType, fileName: `plume-${task.id}.mp4` }],
          model: resolved.model ?? resolved.category,
          metadata,
        };
      } catch (err) {
        throw toOpenClawError(err, ctx.settings);
      }
    },
  };
}
