// The Plume provider plugin for OpenClaw: registers `plume` as an image generation provider
// (plume/Banana2, plume/BananaPro, plume/seedream, and the one-image edit models
// plume/remove-bg and plume/remove-watermark) and as a video generation provider
// (plume/veo, plume/seedance2 and their models). See README.md.

import { Journal } from "./journal.js";
import { buildImageProvider, buildVideoProvider, IdempotencyKeys, resolveSettings } from "./providers.js";

interface PluginApi {
  pluginConfig?: Record<string, unknown>;
  registerImageGenerationProvider(provider: unknown): void;
  registerVideoGenerationProvider(provider: unknown): void;
}

const plugin = {
  id: "plume",
  name: "Plume",
  description: "Image and video generation with Plume",
  register(api: PluginApi) {
    const settings = resolveSettings(api.pluginConfig);
    const keys = new IdempotencyKeys();
    const journal = new Journal(settings.journalDir);
    api.registerImageGenerationProvider(buildImageProvider({ settings, keys, journal }));
    api.registerVideoGenerationProvider(buildVideoProvider({ settings, keys, journal }));
  },
};

export default plugin;
