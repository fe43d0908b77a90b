/**
 * Headless Chromium for the status page's tests, driven by puppeteer-core (no bundled browser):
 * Debian's `chromium` at /usr/bin/chromium (or `CHROMIUM=/path`), installed with apt-get when
 * missing, as bench/install.sh installs its tools (root, or sudo).
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import puppeteer, { type Browser, type Page } from "puppeteer-core";

export type { Browser, Page };

/** Where Debian puts the browser: the wrapper script first, then the binary it runs. */
const CANDIDATES = ["/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser"];

function found(): string | undefined {
  const fromEnv = process.env.CHROMIUM;
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  return CANDIDATES.find((path) => existsSync(path));
}

/** Installs Debian's `chromium` (once per run): apt-get as root, else through sudo. */
function install(): void {
  const root = process.getuid?.() === 0;
  const sudo = (command: string, args: string[]): void => {
    const [file, argv] = root ? [command, args] : ["sudo", ["-n", command, ...args]];
    execFileSync(file, argv, {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      timeout: 600_000,
    });
  };
  process.stderr.write("tests: installing chromium from apt (for the status page tests)\n");
  try {
    sudo("apt-get", ["update", "-qq"]);
    sudo("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "chromium"]);
  } catch (error) {
    throw new Error(
      `chromium is missing and could not be installed (${
        (error as Error).message.split("\n")[0]
      }); run "apt-get install chromium" as root, or set CHROMIUM=/path/to/chromium`,
    );
  }
}

/** The Chromium executable, installed first if the machine has none. */
export function chromiumPath(): string {
  let path = found();
  if (path === undefined) {
    install();
    path = found();
  }
  if (path === undefined) throw new Error("chromium was installed but is not in /usr/bin");
  return path;
}

/** Starts headless Chromium (close it in an after hook). */
export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Root (CI containers) cannot use Chromium's sandbox; /dev/shm is small in containers.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    defaultViewport: { width: 1280, height: 720 },
  });
}

/**
 * A new page that records the page's own errors (uncaught exceptions, console errors such as a
 * Content-Security-Policy refusal), so a test can assert there were none.
 */
export async function openPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${String(error)}`));
  page.on("console", (message) => {
    // A 401 or 404 answer is logged as "Failed to load resource"; tests look at statuses.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      errors.push(`console: ${message.text()}`);
    }
  });
  return { page, errors };
}

/** The trimmed text of the first element matching `selector`, or null when there is none. */
export function textOf(page: Page, selector: string): Promise<string | null> {
  return page.$eval(selector, (el) => (el.textContent ?? "").trim()).catch(() => null);
}
