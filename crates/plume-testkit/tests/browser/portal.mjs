// The portal as a person uses it, in Debian's Chromium driven by Playwright. Run by
// tests/portal_browser.rs, which starts the server and makes the operator; this script
// exits non-zero on the first broken step and leaves a screenshot of every page in SHOTS.
//
// Env: BASE (the server), OPS_EMAIL / OPS_PASSWORD, PLUME_BIN (the plume client),
// PLAYWRIGHT_DIR (node_modules with playwright-core), SHOTS (a folder), CHROMIUM.
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

const { chromium } = createRequire(join(process.env.PLAYWRIGHT_DIR, "x.js"))("playwright-core");
const BASE = process.env.BASE;
const SHOTS = process.env.SHOTS;
const step = (what) => console.log(`step: ${what}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// Every page is watched for script errors and Content-Security-Policy violations.
const problems = [];
async function newPage(context, name) {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${name}: page error ${e.message}`));
  page.on("console", (m) => {
    // The one 404 asked for on purpose (a non-admin opening /admin) is not a problem.
    if (m.type() === "error" && m.location().url !== `${BASE}/admin`) {
      problems.push(`${name}: console error ${m.text()} at ${m.location().url}`);
    }
  });
  return page;
}
const shot = (page, name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

try {
  // The operator issues a top-up code from the admin pages.
  const ops = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const opsPage = await newPage(ops, "operator");
  step("operator signs in and issues a code");
  await opsPage.goto(`${BASE}/login`);
  await opsPage.getByLabel("Email").fill(process.env.OPS_EMAIL);
  await opsPage.getByLabel("Password").fill(process.env.OPS_PASSWORD);
  await opsPage.getByRole("button", { name: "Sign in" }).click();
  await opsPage.getByRole("link", { name: "Admin" }).click();
  await opsPage.waitForURL(`${BASE}/admin`);
  await shot(opsPage, "01-admin-overview");
  await opsPage.getByRole("link", { name: "Top-up codes" }).click();
  await opsPage.getByLabel("How many codes").fill("1");
  await opsPage.getByLabel("Credits each").fill("50");
  await opsPage.getByLabel("Note (optional)").fill("browser test");
  await opsPage.getByRole("button", { name: "Issue codes" }).click();
  const code = (await opsPage.locator("#codes").textContent()).trim();
  assert.match(code, /^PLUME-[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/);
  await shot(opsPage, "02-admin-codes");

  // A new user signs up on a phone-sized screen.
  const user = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await user.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await newPage(user, "user");
  step("a new user signs up");
  await page.goto(BASE);
  await shot(page, "03-home-signed-out");
  await page.getByRole("link", { name: "Create an account" }).first().click();
  await page.getByLabel("Email").fill("newcomer@example.com");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create account" }).click();
  // The browser's own check stops a short password before it is sent.
  assert.equal(page.url(), `${BASE}/signup`);
  await page.getByLabel("Password").fill("a long passphrase");
  await shot(page, "04-signup");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${BASE}/keys`);

  step("creates a key and copies the openclaw.json snippet");
  await page.getByRole("button", { name: "Create a new key" }).click();
  const key = (await page.locator("#new-key").textContent()).trim();
  assert.match(key, /^plume_sk_[0-9a-f]{48}$/);
  await page.getByRole("button", { name: "Copy openclaw.json snippet" }).click();
  await page.getByRole("button", { name: "Copied" }).waitFor();
  const copied = JSON.parse(await page.evaluate(() => navigator.clipboard.readText()));
  const entry = copied.skills.entries["plume-image"];
  assert.equal(entry.apiKey, key);
  assert.equal(entry.env.PLUME_API_BASE, BASE);
  await shot(page, "05-keys-new");
  await page.goto(`${BASE}/keys`);
  assert.equal(await page.locator("#new-key").count(), 0, "the key is shown only once");
  assert.match(await page.locator("table").textContent(), new RegExp(key.slice(0, 15)));

  step("redeems the code");
  await page.getByRole("link", { name: "Credits" }).click();
  await page.getByLabel("Code").fill(code.toLowerCase());
  await page.getByRole("button", { name: "Redeem" }).click();
  await page.getByText("Added 50 credits.").waitFor();
  assert.equal((await page.locator("#balance").textContent()).trim(), "50");
  await shot(page, "06-credits");

  step("uses the key with plume create and watches the task finish in the gallery");
  await page.goto(`${BASE}/tasks`);
  await page.evaluate(() => { window.stillTheSamePage = true; });
  const home = mkdtempSync(join(tmpdir(), "plume-browser-"));
  const created = JSON.parse(execFileSync(process.env.PLUME_BIN, [
    "create", "--category", "Banana2", "--prompt", "sleep=4000 a red kite over the sea",
  ], { env: { PATH: process.env.PATH, HOME: home, PLUME_API_KEY: key, PLUME_API_BASE: BASE } }).toString());
  assert.equal(created.success, true, JSON.stringify(created));
  const taskId = String(created.task_id);
  // The gallery was loaded before the task existed: load it once to see the task queued.
  await page.goto(`${BASE}/tasks`);
  await page.evaluate(() => { window.stillTheSamePage = true; });
  const card = page.locator(`li.card[data-task="${taskId}"]`);
  const before = (await card.locator('[data-role="status"]').textContent()).trim();
  assert.ok(["initialized", "processing"].includes(before), `status before: ${before}`);
  await shot(page, "07-gallery-running");
  await card.locator('img[data-role="thumb"]').waitFor({ timeout: 30000 });
  assert.equal((await card.locator('[data-role="status"]').textContent()).trim(), "success");
  assert.equal(await page.evaluate(() => window.stillTheSamePage), true, "no page reload");
  await page.waitForFunction((id) => {
    const img = document.querySelector(`li.card[data-task="${id}"] img`);
    return img && img.complete && img.naturalWidth > 0;
  }, taskId);
  await shot(page, "08-gallery-done");
  await card.locator("a.thumb").click();
  await page.waitForURL(`${BASE}/tasks/${taskId}`);
  await page.locator(".results img").first().waitFor();
  await shot(page, "09-task");

  step("tries Plume from the browser");
  await page.getByRole("link", { name: "Try it" }).click();
  await page.getByLabel("What to do").selectOption("Banana2");
  await page.getByLabel("Prompt").fill("sleep=1500 a lighthouse at dusk");
  await shot(page, "10-try");
  await page.getByRole("button", { name: "Create task" }).click();
  await page.waitForURL(/\/tasks\/\d+$/);
  await page.locator('.task [data-role="status"]', { hasText: "success" }).waitFor({ timeout: 30000 });
  await page.locator(".results img").first().waitFor();
  await shot(page, "11-try-result");

  step("the operator tops the user up");
  await opsPage.getByRole("link", { name: "Users" }).click();
  await opsPage.getByLabel("Search").fill("newcomer");
  await opsPage.getByRole("button", { name: "Search" }).click();
  const row = opsPage.locator("tr", { hasText: "newcomer@example.com" });
  const userId = await row.getAttribute("data-user");
  await opsPage.getByLabel(`Credits to add for user ${userId}`).fill("25");
  await row.getByLabel("Reason").fill("welcome gift");
  await row.getByRole("button", { name: "Add" }).click();
  await opsPage.getByText(`Added 25 credits to user ${userId}`).waitFor();
  await shot(opsPage, "12-admin-users");

  step("the user sees it in the ledger");
  await page.getByRole("link", { name: "Credits" }).click();
  const spent = 2 * Number(created.credits_cost);
  assert.equal((await page.locator("#balance").textContent()).trim(), String(50 - spent + 25));
  assert.match(await page.locator("table").textContent(), /welcome gift/);
  await shot(page, "13-ledger");

  step("a non-admin is told the admin pages do not exist");
  const response = await page.goto(`${BASE}/admin`);
  assert.equal(response.status(), 404);

  step("signs out");
  await page.goto(`${BASE}/`);
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL(`${BASE}/login`);

  assert.deepEqual(problems, [], "no script errors or CSP violations");
  console.log("browser flow: ok");
} finally {
  await browser.close();
}
