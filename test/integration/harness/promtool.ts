// Runs promtool from Debian's prometheus package (bookworm, 2.42), unpacked by scripts/test-all into
// .cache/prometheus/: never installed (the package would start a Prometheus server), no service
// started. promtool reads rule files and unit tests of rules; it listens on nothing.

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Where scripts/test-all unpacks promtool. */
export const PROMTOOL_BINARY = path.resolve(__dirname, "../../../.cache/prometheus/root/usr/bin/promtool");

/** promtool's version line (`promtool, version 2.42.0+ds ...`), or one line saying how to get it. */
export function promtoolBuild(): { binary: string; version: string } | { missing: string } {
    if (!fs.existsSync(PROMTOOL_BINARY)) return { missing: `promtool is not unpacked at ${PROMTOOL_BINARY}: run scripts/test-all` };
    const run = spawnSync(PROMTOOL_BINARY, ["--version"], { encoding: "utf8", timeout: 10_000 });
    const version = /version (\S+)/.exec(run.stdout)?.[1];
    if (run.status !== 0 || !version) return { missing: `promtool at ${PROMTOOL_BINARY} does not run: ${run.stderr.trim() || run.error?.message}` };
    return { binary: PROMTOOL_BINARY, version };
}

/** `promtool <args>` in `cwd` (`input` on its stdin): its exit status and everything it printed. */
export function promtool(args: readonly string[], cwd: string, input?: string): { status: number | null; output: string } {
    const run = spawnSync(PROMTOOL_BINARY, args, { cwd, encoding: "utf8", timeout: 60_000, input });
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
}
