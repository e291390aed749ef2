// Task content for an OpenClaw request, as API.md's content table shapes it and with the
// same defaults as the `plume` client (plume-core's build.rs): modes from the images given,
// 2K and 9:16, veo's three slots, seedance's model from the duration. The limits come from
// the catalog; the server validates everything again.

import { catalog, type CategoryEntry } from "./catalog.js";
import { PlumeError } from "./plume.js";

function entryOf(category: string): CategoryEntry {
  const entry = catalog.categories[category];
  if (!entry) throw new PlumeError("VALIDATION_ERROR", `Plume has no category ${category}`);
  return entry;
}

function oneOf(value: string | undefined, allowed: string[] | undefined, what: string, category: string) {
  if (value === undefined) return undefined;
  if (!allowed?.includes(value)) {
    throw new PlumeError(
      "VALIDATION_ERROR",
      `${category} does not take ${what} ${value}; it takes ${(allowed ?? []).join(", ") || "none"}`,
    );
  }
  return value;
}

function checkPrompt(prompt: string, category: string): string {
  const trimmed = prompt.trim();
  if (!trimmed) throw new PlumeError("VALIDATION_ERROR", `${category} needs a prompt`);
  if ([...trimmed].length > catalog.maxPromptChars) {
    throw new PlumeError("VALIDATION_ERROR", `the prompt is longer than ${catalog.maxPromptChars} characters`);
  }
  return trimmed;
}

function checkImageCount(count: number, entry: CategoryEntry, category: string) {
  if (count < entry.minInputImages || count > entry.maxInputImages) {
    const range =
      entry.minInputImages === entry.maxInputImages
        ? `exactly ${entry.minInputImages}`
        : `${entry.minInputImages} to ${entry.maxInputImages}`;
    throw new PlumeError("VALIDATION_ERROR", `${category} takes ${range} input image(s), got ${count}`);
  }
}

export interface ImageOptions {
  prompt: string;
  imageUrls: string[];
  aspectRatio?: string;
  resolution?: string;
}

/** Content for an image category (generation or a one-image edit). */
export function imageContent(category: string, opts: ImageOptions): Record<string, unknown> {
  const entry = entryOf(category);
  checkImageCount(opts.imageUrls.length, entry, category);
  if (entry.kind === "edit") return { imageUrls: opts.imageUrls };
  const prompt = checkPrompt(opts.prompt, category);
  const size = oneOf(opts.resolution, entry.sizes, "the resolution", category) ?? entry.defaultSize;
  const ratio = oneOf(opts.aspectRatio, entry.aspectRatios, "the aspect ratio", category) ?? entry.defaultAspectRatio;
  const imageConfig: Record<string, unknown> = { image_size: size };
  if (ratio) imageConfig.aspectRatio = ratio;
  const generationConfig: Record<string, unknown> =
    category === "seedream" ? { imageConfig } : { responseModalities: ["IMAGE"], imageConfig };
  return {
    prompt,
    processing_mode: opts.imageUrls.length > 0 ? "image_to_image" : "text_to_image",
    imageUrls: opts.imageUrls,
    generationConfig,
  };
}

export interface VideoImage {
  url: string;
  /** OpenClaw's role hint: first_frame, last_frame, reference_image, … */
  role?: string;
}

export interface VideoOptions {
  prompt: string;
  images: VideoImage[];
  /** A model of the category (`veo3.1`, `seedance2-10s`), if the model id named one. */
  model?: string;
  aspectRatio?: string;
  durationSeconds?: number;
}

function checkDuration(duration: number | undefined, entry: CategoryEntry, category: string) {
  if (duration === undefined) return undefined;
  if (!entry.durations?.includes(duration)) {
    throw new PlumeError(
      "VALIDATION_ERROR",
      `${category} makes videos of ${(entry.durations ?? []).join(", ")} seconds, not ${duration}`,
    );
  }
  return duration;
}

/** Content for a video category. */
export function videoContent(category: string, opts: VideoOptions): Record<string, unknown> {
  const entry = entryOf(category);
  const prompt = checkPrompt(opts.prompt, category);
  if (opts.images.length > entry.maxInputImages) {
    checkImageCount(opts.images.length, { ...entry, minInputImages: 0 }, category);
  }
  const ratio = oneOf(opts.aspectRatio, entry.aspectRatios, "the aspect ratio", category) ?? entry.defaultAspectRatio;
  const duration = checkDuration(opts.durationSeconds, entry, category);
  const byRole = (role: string) => opts.images.find((i) => i.role === role)?.url;
  const unroled = opts.images.filter((i) => !i.role).map((i) => i.url);
  if (category === "veo") {
    // Three fixed slots: first frame, last frame, reference; "" for an unused one.
    const slots = [
      byRole("first_frame") ?? unroled.shift() ?? "",
      byRole("last_frame") ?? unroled.shift() ?? "",
      byRole("reference_image") ?? unroled.shift() ?? "",
    ];
    const any = slots.some((s) => s !== "");
    return {
      prompt,
      processing_mode: any ? "image_to_video" : "text_to_video",
      imageUrls: slots,
      videoConfig: {
        model: opts.model ?? entry.defaultModel,
        aspectRatio: ratio,
        durationSeconds: duration ?? entry.defaultDuration,
      },
    };
  }
  // seedance2: the model fixes the duration; the images' roles choose the mode.
  const first = byRole("first_frame");
  const last = byRole("last_frame");
  const references = opts.images.filter((i) => i.role !== "first_frame" && i.role !== "last_frame").map((i) => i.url);
  let mode: string;
  let urls: string[];
  if (opts.images.length === 0) [mode, urls] = ["text_to_video", []];
  else if (first && last && references.length === 0) [mode, urls] = ["first_last_frame", [first, last]];
  else if (opts.images.length === 1) [mode, urls] = ["first_frame", [opts.images[0]!.url]];
  else [mode, urls] = ["universal_reference", opts.images.map((i) => i.url)];
  let model = opts.model;
  if (model && duration !== undefined && model !== `seedance2-${duration}s`) {
    throw new PlumeError("VALIDATION_ERROR", `${model} makes videos of another length than ${duration} seconds`);
  }
  model ??= duration !== undefined ? `seedance2-${duration}s` : entry.defaultModel;
  return { prompt, processing_mode: mode, imageUrls: urls, videoConfig: { model, aspectRatio: ratio } };
}
