// Plume's categories and their limits, read from catalog.json: generated from plume-core's
// tables (`cargo run -p plume-core --example catalog`), never written by hand. The OpenClaw
// capabilities and the task content are derived from it here.

import { readFileSync } from "node:fs";

export interface CategoryEntry {
  kind: "image" | "edit" | "video";
  prompt: boolean;
  minInputImages: number;
  maxInputImages: number;
  processingModes: string[];
  timeLimitSeconds: number;
  pollIntervalSeconds: number;
  sizes?: string[];
  aspectRatios?: string[];
  defaultSize?: string;
  defaultAspectRatio?: string;
  durations?: number[];
  defaultDuration?: number;
  models?: string[];
  defaultModel?: string;
}

export interface Catalog {
  hostedApiBase: string;
  maxPromptChars: number;
  maxWaitSeconds: number;
  categories: Record<string, CategoryEntry>;
}

export const catalog: Catalog = JSON.parse(
  readFileSync(new URL("./catalog.json", import.meta.url), "utf8"),
);

/** The categories of one kind, by name. */
function categoriesOf(kinds: string[]): [string, CategoryEntry][] {
  return Object.entries(catalog.categories).filter(([, c]) => kinds.includes(c.kind));
}

export const IMAGE_CATEGORIES = categoriesOf(["image", "edit"]).map(([name]) => name);
export const VIDEO_CATEGORIES = categoriesOf(["video"]).map(([name]) => name);

/**
 * A video model id: the category itself (`veo`, `seedance2`) or one of its models
 * (`veo3.1`, `seedance2-10s`). Returns the category and the Plume model, or undefined.
 */
export function resolveVideoModel(model: string): { category: string; model?: string } | undefined {
  for (const [name, entry] of categoriesOf(["video"])) {
    if (model === name) return { category: name };
    if (entry.models?.includes(model)) return { category: name, model };
  }
  return undefined;
}

export const VIDEO_MODELS = categoriesOf(["video"]).flatMap(([name, entry]) => [
  name,
  ...(entry.models ?? []),
]);

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

/** OpenClaw's `capabilities` for the image provider, per model from the catalog. */
export function imageCapabilities() {
  const entries = categoriesOf(["image", "edit"]);
  const generating = entries.filter(([, c]) => c.kind === "image");
  const maxInputs = Math.max(...entries.map(([, c]) => c.maxInputImages));
  return {
    generate: { maxCount: 1, supportsSize: false, supportsAspectRatio: true, supportsResolution: true },
    edit: {
      enabled: true,
      maxCount: 1,
      maxInputImages: maxInputs,
      maxInputImagesByModel: Object.fromEntries(entries.map(([n, c]) => [n, c.maxInputImages])),
      supportsSize: false,
      supportsAspectRatio: true,
      supportsResolution: true,
    },
    geometry: {
      aspectRatios: unique(generating.flatMap(([, c]) => c.aspectRatios ?? [])),
      aspectRatiosByModel: Object.fromEntries(entries.map(([n, c]) => [n, c.aspectRatios ?? []])),
      resolutions: unique(generating.flatMap(([, c]) => c.sizes ?? [])),
      resolutionsByModel: Object.fromEntries(entries.map(([n, c]) => [n, c.sizes ?? []])),
    },
  };
}

/** OpenClaw's `capabilities` for the video provider, and its per-model catalog. */
export function videoCapabilities() {
  const entries = categoriesOf(["video"]);
  const byModel = VIDEO_MODELS.map((model) => {
    const { category, model: plumeModel } = resolveVideoModel(model)!;
    const entry = catalog.categories[category]!;
    // A seedance model fixes the duration ("seedance2-10s"); veo models take any of veo's.
    const durations =
      plumeModel && category === "seedance2"
        ? [entry.durations![entry.models!.indexOf(plumeModel)]!]
        : entry.durations ?? [];
    return { model, entry, durations };
  });
  const mode = (images: boolean) => ({
    maxVideos: 1,
    ...(images ? { maxInputImages: Math.max(...entries.map(([, c]) => c.maxInputImages)) } : {}),
    maxDurationSeconds: Math.max(...entries.flatMap(([, c]) => c.durations ?? [])),
    supportedDurationSecondsByModel: Object.fromEntries(byModel.map((m) => [m.model, m.durations])),
    aspectRatios: unique(entries.flatMap(([, c]) => c.aspectRatios ?? [])),
    supportsAspectRatio: true,
    supportsSize: false,
    supportsResolution: false,
  });
  return {
    capabilities: {
      generate: mode(false),
      imageToVideo: {
        enabled: true,
        ...mode(true),
        maxInputImagesByModel: Object.fromEntries(byModel.map((m) => [m.model, m.entry.maxInputImages])),
      },
      videoToVideo: { enabled: false },
    },
    catalogByModel: Object.fromEntries(
      byModel.map((m) => [
        m.model,
        {
          capabilities: {
            generate: { maxVideos: 1, supportedDurationSeconds: m.durations, aspectRatios: m.entry.aspectRatios ?? [], supportsAspectRatio: true },
            imageToVideo: {
              enabled: m.entry.maxInputImages > 0,
              maxVideos: 1,
              maxInputImages: m.entry.maxInputImages,
              supportedDurationSeconds: m.durations,
              aspectRatios: m.entry.aspectRatios ?? [],
              supportsAspectRatio: true,
            },
            videoToVideo: { enabled: false },
          },
        },
      ]),
    ),
  };
}
