// The record of Plume tasks a call is waiting for, so that no result is lost when the
// gateway dies mid-call: OpenClaw then marks its media task `lost` and never resumes it.
// Each waiting call keeps `<dir>/<task id>.json` (the Plume task, the prompt and model to
// find OpenClaw's task record by, and this process's pid) and removes it when the call
// returns. `plume` adopts the entries whose process is gone: it finds OpenClaw's task record
// (its requester session names the chat) and delivers the result there like any job.

import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface JournalEntry {
  plume_task_id: number;
  api_base: string;
  category: string;
  /** `image_generate:plume` or `video_generate:plume`, as OpenClaw's task records say. */
  source_id: string;
  prompt: string;
  started_at_ms: number;
  pid: number;
}

/** `~/.openclaw/media/plume/plugin-tasks`, beside the skill's poller files. */
export function defaultJournalDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.OPENCLAW_STATE_DIR?.trim() || join(env.HOME?.trim() || homedir(), ".openclaw");
  return join(state, "media", "plume", "plugin-tasks");
}

export class Journal {
  constructor(readonly dir: string) {}

  private path(id: number): string {
    return join(this.dir, `${id}.json`);
  }

  /** Records a task being waited for (written whole, then renamed into place). */
  start(entry: JournalEntry): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const tmp = `${this.path(entry.plume_task_id)}.tmp`;
      writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
      renameSync(tmp, this.path(entry.plume_task_id));
    } catch {
      // A journal that cannot be written costs only the restart safety net, not the call.
    }
  }

  /** The call returned (with the result or an error OpenClaw will report): forget it. */
  end(id: number): void {
    rmSync(this.path(id), { force: true });
  }
}
