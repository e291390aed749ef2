// Unit tests of the providers against a small stand-in for the Plume Open API on loopback
// (the real server is exercised by the Rust end-to-end suite through the real OpenClaw).

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { after, before, beforeEach, test } from "node:test";
import { catalog, imageCapabilities, videoCapabilities } from "../src/catalog.js";
import { imageContent, videoContent } from "../src/content.js";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Journal } from "../src/journal.js";
import { buildImageProvider, buildVideoProvider, IdempotencyKeys, resolveSettings } from "../src/providers.js";

interface Recorded {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** The stand-in: tasks finish after `finishAfterPolls` polls, with a scripted outcome. */
const state = {
  requests: [] as Recorded[],
  tasks: new Map<number, { status: number; key: string; polls: number }>(),
  outcome: { status: 3, error: null as null | { code: string; message: string } },
  finishAfterPolls: 1,
  createError: null as null | { code: string; message: string },
  /** The video's HEAD reports this many bytes (the file itself stays small). */
  videoLength: 0,
};
let server: Server;
let base = "";
const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");

function reply(res: import("node:http").ServerResponse, status: number, body: unknown, type = "application/json") {
  res.writeHead(status, { "content-type": type });
  res.end(typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body));
}

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("latin1");
      const url = new URL(req.url ?? "/", "http://x");
      state.requests.push({ method: req.method ?? "", path: url.pathname + url.search, headers: req.headers, body });
      const ok = (data: unknown) => reply(res, 200, { success: true, code: "OK", message: "ok", data });
      if (url.pathname === "/api/open/upload") return ok({ file_url: `${base}/files/uploads/u${state.requests.length}.png` });
      if (url.pathname === "/api/open/tasks" && req.method === "POST") {
        if (state.createError) return reply(res, 402, { success: false, ...state.createError });
        const key = String(req.headers["idempotency-key"] ?? "");
        for (const [id, t] of state.tasks) if (t.key === key) return ok({ id, status: t.status, credits_cost: 10 });
        const id = state.tasks.size + 1;
        state.tasks.set(id, { status: 1, key, polls: 0 });
        return ok({ id, status: 1, credits_cost: 10 });
      }
      const m = url.pathname.match(/^\/api\/open\/tasks\/(\d+)(\/cancel)?$/);
      if (m) {
        const task = state.tasks.get(Number(m[1]));
        if (!task) return reply(res, 404, { success: false, code: "TASK_NOT_FOUND", message: "no such task" });
        if (m[2]) {
          task.status = 6;
          return ok({ id: Number(m[1]), status: 6 });
        }
        task.polls += 1;
        if (task.status < 3 && task.polls >= state.finishAfterPolls) task.status = state.outcome.status;
        const done = task.status === 3;
        const wait = Number(url.searchParams.get("wait") ?? "0");
        const answer = () =>
          ok({
            id: Number(m[1]),
            status: task.status,
            credits_cost: 10,
            error: done ? null : state.outcome.error,
            result: done
              ? { imageUrl: `${base}/files/results/r.png`, mimeType: "image/png", parts: [{ videoUrl: `${base}/files/results/v.mp4`, mimeType: "video/mp4" }] }
              : null,
          });
        // A task still running holds the long poll a little, as the server does.
        return task.status < 3 ? setTimeout(answer, Math.min(wait * 1000, 200)) : answer();
      }
      if (url.pathname === "/files/results/r.png") return reply(res, 200, PNG, "image/png");
      if (url.pathname === "/files/results/v.mp4" && req.method === "HEAD" && state.videoLength) {
        res.writeHead(200, { "content-type": "video/mp4", "content-length": String(state.videoLength) });
        return res.end();
      }
      if (url.pathname === "/files/results/v.mp4") return reply(res, 200, Buffer.from("ftypmp42"), "video/mp4");
      reply(res, 404, { success: false, code: "NOT_FOUND", message: "no route" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});

after(() => server.close());

beforeEach(() => {
  state.requests = [];
  state.tasks.clear();
  state.outcome = { status: 3, error: null };
  state.finishAfterPolls = 1;
  state.createError = null;
  state.videoLength = 0;
});

const journalDir = mkdtempSync(join(tmpdir(), "plume-journal-"));

function providers(keys = new IdempotencyKeys()) {
  const settings = { apiBase: base, apiKey: "plume_sk_test", timeoutMs: 0, journalDir };
  const journal = new Journal(journalDir);
  return {
    image: buildImageProvider({ settings, keys, journal }),
    video: buildVideoProvider({ settings, keys, journal }),
  };
}

test("capabilities come from the catalog", () => {
  const caps = imageCapabilities();
  assert.equal(caps.edit.maxInputImagesByModel["remove-bg"], 1);
  assert.equal(caps.edit.maxInputImagesByModel["Banana2"], catalog.categories["Banana2"]!.maxInputImages);
  assert.deepEqual(caps.geometry.resolutionsByModel["remove-bg"], []);
  assert.deepEqual(caps.geometry.aspectRatiosByModel["Banana2"], catalog.categories["Banana2"]!.aspectRatios);
  const video = videoCapabilities();
  assert.deepEqual(video.capabilities.generate.supportedDurationSecondsByModel["seedance2-10s"], [10]);
  assert.deepEqual(video.capabilities.generate.supportedDurationSecondsByModel["veo"], catalog.categories["veo"]!.durations);
});

test("content has the client's defaults and shapes", () => {
  assert.deepEqual(imageContent("Banana2", { prompt: " a cat ", imageUrls: [] }), {
    prompt: "a cat",
    processing_mode: "text_to_image",
    imageUrls: [],
    generationConfig: { responseModalities: ["IMAGE"], imageConfig: { image_size: "2K", aspectRatio: "9:16" } },
  });
  assert.deepEqual(imageContent("remove-bg", { prompt: "remove the background", imageUrls: ["https://a/x.png"] }), {
    imageUrls: ["https://a/x.png"],
  });
  assert.throws(() => imageContent("remove-bg", { prompt: "x", imageUrls: [] }), /exactly 1/);
  assert.throws(() => imageContent("Banana2", { prompt: "x", imageUrls: [], resolution: "8K" }), /resolution 8K/);
  const veo = videoContent("veo", { prompt: "go", images: [{ url: "https://a/f.png", role: "first_frame" }] });
  assert.deepEqual(veo.imageUrls, ["https://a/f.png", "", ""]);
  assert.equal(veo.processing_mode, "image_to_video");
  const seedance = videoContent("seedance2", { prompt: "go", images: [], durationSeconds: 10 });
  assert.deepEqual(seedance.videoConfig, { model: "seedance2-10s", aspectRatio: "9:16" });
  assert.throws(() => videoContent("veo", { prompt: "go", images: [], durationSeconds: 7 }), /4, 6, 8 seconds/);
});

test("an image comes back as bytes, from one task created with an Idempotency-Key", async () => {
  const { image } = providers();
  const result = await image.generateImage({ model: "Banana2", prompt: "a red kite", aspectRatio: "16:9" });
  assert.deepEqual(result.images[0]!.buffer, PNG);
  assert.equal(result.images[0]!.mimeType, "image/png");
  const creates = state.requests.filter((r) => r.path === "/api/open/tasks");
  assert.equal(creates.length, 1);
  assert.match(String(creates[0]!.headers["idempotency-key"]), /^openclaw-[0-9a-f]{40}-0$/);
  const body = JSON.parse(creates[0]!.body);
  assert.equal(body.category, "Banana2");
  assert.equal(body.content.generationConfig.imageConfig.aspectRatio, "16:9");
  assert.ok(state.requests.some((r) => r.path.includes("?wait=")), "long polls");
});

test("a call that broke off reuses its key; a finished one does not", async () => {
  const keys = new IdempotencyKeys();
  const a = keys.keyFor(["Banana2", "a cat"], []);
  const retry = keys.keyFor(["Banana2", "a cat"], []);
  assert.equal(a.key, retry.key, "unresolved: the retry finds the same task");
  a.settle();
  const again = keys.keyFor(["Banana2", "a cat"], []);
  assert.notEqual(again.key, a.key, "asked again after an answer: a new task");
  const other = keys.keyFor(["Banana2", "a cat"], [{ buffer: Buffer.from("img") }]);
  assert.notEqual(other.key.slice(0, 49), a.key.slice(0, 49), "inputs are part of the key");
});

test("edit inputs are uploaded; remove-bg refuses a call without exactly one image", async () => {
  const { image } = providers();
  await image.generateImage({
    model: "remove-bg",
    prompt: "remove the background",
    inputImages: [{ buffer: PNG, mimeType: "image/png", fileName: "in.png" }],
  });
  assert.equal(state.requests.filter((r) => r.path === "/api/open/upload").length, 1);
  const create = JSON.parse(state.requests.find((r) => r.path === "/api/open/tasks")!.body);
  assert.equal(create.category, "remove-bg");
  assert.match(create.content.imageUrls[0], /\/files\/uploads\//);
  state.requests = [];
  await assert.rejects(image.generateImage({ model: "remove-bg", prompt: "remove the background" }), /exactly 1 input image/);
  await assert.rejects(image.generateImage({ model: "no-such-model", prompt: "x" }), /no image model no-such-model/);
  assert.equal(state.requests.length, 0, "nothing was sent for a refused call");
});

test("Plume's errors keep their code and say what to do", async () => {
  const { image } = providers();
  state.createError = { code: "INSUFFICIENT_CREDITS", message: "balance 3, needs 15" };
  await assert.rejects(image.generateImage({ model: "Banana2", prompt: "x" }), (err: Error & { code?: string }) => {
    assert.equal(err.code, "INSUFFICIENT_CREDITS");
    assert.match(err.message, /Top up your Plume credits at http:\/\/127\.0\.0\.1:\d+\//);
    return true;
  });
  state.createError = null;
  state.outcome = { status: 4, error: { code: "UPSTREAM_ERROR", message: "the prompt was refused" } };
  await assert.rejects(image.generateImage({ model: "Banana2", prompt: "y" }), /failed: the prompt was refused/);
});

test("a call that runs out of time cancels its task", async () => {
  const { image } = providers();
  state.finishAfterPolls = 1_000_000;
  await assert.rejects(image.generateImage({ model: "Banana2", prompt: "slow", timeoutMs: 1200 }), /did not finish in time/);
  assert.ok(state.requests.some((r) => r.path === "/api/open/tasks/1/cancel"), "cancelled");
  assert.equal(state.tasks.get(1)!.status, 6);
});

test("a video comes back as bytes with its URL; unknown models are refused", async () => {
  const { video } = providers();
  const result = await video.generateVideo({ model: "seedance2-5s", prompt: "waves" });
  assert.equal(result.videos[0]!.buffer!.toString(), "ftypmp42");
  assert.match(result.videos[0]!.url!, /v\.mp4$/);
  const create = JSON.parse(state.requests.find((r) => r.path === "/api/open/tasks")!.body);
  assert.equal(create.category, "seedance2");
  assert.equal(create.content.videoConfig.model, "seedance2-5s");
  await assert.rejects(video.generateVideo({ model: "sora", prompt: "x" }), /no video model sora/);
});

test("a waiting call is in the journal, and leaves it when it returns", async () => {
  const { image } = providers();
  state.finishAfterPolls = 3;
  const call = image.generateImage({ model: "Banana2", prompt: "a journaled kite" });
  const path = join(journalDir, "1.json");
  for (let i = 0; i < 50 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 20));
  const entry = JSON.parse(readFileSync(path, "utf8"));
  assert.equal(entry.plume_task_id, 1);
  assert.equal(entry.source_id, "image_generate:plume");
  assert.equal(entry.prompt, "a journaled kite");
  assert.equal(entry.pid, process.pid);
  assert.equal(entry.api_base, base);
  assert.equal(entry.apiKey, undefined, "no key in the journal");
  await call;
  assert.deepEqual(readdirSync(journalDir), []);
});

test("a video over 64 MB comes back as its URL, not downloaded", async () => {
  const { video } = providers();
  state.videoLength = 64 * 1024 * 1024 + 1;
  const result = await video.generateVideo({ model: "veo", prompt: "a long sunset" });
  assert.equal(result.videos[0]!.buffer, undefined);
  assert.match(result.videos[0]!.url!, /v\.mp4$/);
  assert.ok(!state.requests.some((r) => r.method === "GET" && r.path.endsWith("v.mp4")), "not fetched");
  state.requests = [];
  state.videoLength = 64 * 1024 * 1024;
  const small = await video.generateVideo({ model: "veo", prompt: "a short sunset" });
  assert.equal(small.videos[0]!.buffer!.toString(), "ftypmp42", "at the limit: bytes");
});

test("settings: plugin config, then environment, then the hosted service", () => {
  assert.equal(resolveSettings({ apiBase: "https://a.example" }, { PLUME_API_BASE: "https://b.example" }).apiBase, "https://a.example");
  assert.equal(resolveSettings({}, { PLUME_API_BASE: "https://b.example" }).apiBase, "https://b.example");
  assert.equal(resolveSettings(undefined, {}).apiBase, catalog.hostedApiBase);
  assert.equal(resolveSettings(undefined, { PLUME_API_KEY: " k " }).apiKey, "k");
});
