// Debian's Chromium, driven by playwright-core: `playwright install` downloads browsers from a CDN
// that CI machines may not reach, while the distribution's package comes through apt like the rest.

import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

/** The browser binary; CHROMIUM names another. */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/**
 * Headless, with no sandbox (it will not start as root, which CI may be), no GPU, and none of the
 * background traffic (component updates, sync, field trials, QUIC probes) that a fresh profile
 * otherwise sends to Google: on a closed network those requests only time out, slowly.
 */
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export async function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: tests/browser/ci.sh installs Debian's, or set CHROMIUM`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}
