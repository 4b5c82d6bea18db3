// Which real programs the integration tests need, and a one-line hint when any is missing.

import { containerdBuild } from "./containerd";
import { distributionBuild } from "./distribution";
import { missingNginx } from "./nginx";
import { baseEnv, which } from "./procs";

/**
 * Binaries the integration tests start from PATH, with the Debian 12 package that ships each. None is
 * a container runtime: containerd comes unpacked into .cache/ (see containerd.ts), so installing these
 * never replaces a runtime the machine has (Docker CE's containerd.io conflicts with Debian's
 * containerd and runc). The registry is built from the Go module proxy (see distribution.ts).
 */
const REQUIRED_BINARIES: ReadonlyArray<{ bin: string; pkg: string }> = [
    { bin: "skopeo", pkg: "skopeo" },
    { bin: "openssl", pkg: "openssl" },
    { bin: "busybox", pkg: "busybox" },
    // a company's egress proxy in front of the caches (egress-proxy.test.ts); tinyproxy-bin is the
    // program alone: the tinyproxy package would also start a system service
    { bin: "tinyproxy", pkg: "tinyproxy-bin" },
    // scripts/preload's `served` reads a cache's catalog with them (preloaded.test.ts)
    { bin: "curl", pkg: "curl" },
    { bin: "jq", pkg: "jq" },
    // used by the harness itself; part of every Debian install, checked for clarity
    { bin: "tar", pkg: "tar" },
    { bin: "gzip", pkg: "gzip" },
];

/** Null when the integration tests can run here (root + all programs), else one line saying what is missing and how to get it. */
export function missingForIntegration(): string | null {
    const problems: string[] = [];
    const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
    if (!isRoot) problems.push("not root");
    const missing = REQUIRED_BINARIES.filter((r) => which(r.bin, baseEnv().PATH) === null);
    if (missing.length > 0) {
        problems.push(
            `missing ${missing.map((m) => m.bin).join(", ")} (apt-get install --no-install-recommends ${[...new Set(missing.map((m) => m.pkg))].join(" ")})`,
        );
    }
    for (const build of [distributionBuild(), containerdBuild("1.6")]) if ("missing" in build) problems.push(build.missing);
    const nginx = missingNginx();
    if (nginx !== null) problems.push(nginx);
    if (problems.length === 0) return null;
    const rootHint = isRoot ? "" : "; run the tests as root";
    return `integration tests skipped: ${problems.join(" / ")}${rootHint}; \`./scripts/test-all\` installs and builds all of it`;
}

/** True when running in CI (env CI=true or CI=1), where integration tests must fail rather than skip. */
export function isCI(): boolean {
    const ci = (process.env.CI ?? "").toLowerCase();
    return ci === "true" || ci === "1";
}

/**
 * Null when the node agent's tests can run here, else one line saying what is missing. They need
 * less than the rest: root (chown, modes, mount namespaces), busybox (the image's shell and applets),
 * util-linux (flock standing for the image's busybox applet, unshare) and openssl (the fake API's key).
 */
export function missingForNodeAgent(): string | null {
    const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
    const missing = ["busybox", "flock", "unshare", "openssl"].filter((b) => which(b, baseEnv().PATH) === null);
    const problems = [...(isRoot ? [] : ["not root"]), ...(missing.length > 0 ? [`missing ${missing.join(", ")}`] : [])];
    if (problems.length === 0) return null;
    return `node agent tests skipped: ${problems.join(" / ")} — run \`sudo apt-get install -y --no-install-recommends busybox util-linux openssl\` and run them as root`;
}
