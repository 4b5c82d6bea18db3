import { describe } from "vitest";
import { containerdBuild, type ContainerdBuild, type ContainerdLine } from "./harness/containerd";
import { distributionBuild } from "./harness/distribution";
import { isCI, missingForIntegration, missingForNodeAgent } from "./harness/tools";
import { versitygwBuild } from "./harness/versitygw";
import { promtoolBuild } from "./harness/promtool";

/** " (distribution 3.1.1)": the registry release that ran, for test names (found, since nothing is missing). */
function registryLabel(): string {
    const build = distributionBuild();
    return "missing" in build ? "" : ` (distribution ${build.version})`;
}

/** `describe` that skips with one line saying what is missing, except in CI where it must run; named with the registry release it runs. */
export function describeIntegration(name: string, fn: () => void): void {
    const missing = missingForIntegration();
    if (missing && isCI()) throw new Error(`CI must run the integration tests, but: ${missing}`);
    if (missing) {
        console.warn(missing);
        describe.skip(name, fn);
    } else describe(`${name}${registryLabel()}`, fn);
}

/**
 * `describe` for one containerd line: named after the version found (`containerd 2.1 ...`) and the
 * registry release; when the line's build is missing it skips with one line saying how to get it,
 * except in CI where it fails, as the other integration tests do.
 */
export function describeContainerd(line: ContainerdLine, name: string, fn: (build: ContainerdBuild) => void): void {
    const found = containerdBuild(line);
    const missing = missingForIntegration() ?? ("missing" in found ? found.missing : null);
    if (missing !== null && isCI()) throw new Error(`CI must run the containerd ${line} tests, but: ${missing}`);
    if (missing !== null || "missing" in found) {
        console.warn(`containerd ${line} tests skipped: ${missing}`);
        describe.skip(`containerd ${line} ${name}`, () => undefined);
        return;
    }
    console.info(`containerd ${line}: ${found.versionLine} (${found.binary})`);
    describe(`containerd ${found.label} ${name}${registryLabel()}`, () => fn(found));
}

/** `describe` for the node agent's tests on the real script, which need root and busybox but no registry or containerd. */
export function describeNodeAgent(name: string, fn: () => void): void {
    const missing = missingForNodeAgent();
    if (missing && isCI()) throw new Error(`CI must run the node agent tests, but: ${missing}`);
    if (missing) {
        console.warn(missing);
        describe.skip(name, fn);
    } else describe(name, fn);
}

/** `describeIntegration` that also needs versitygw (the S3-compatible store): skips with the build hint when it is missing, fails in CI. */
export function describeWithObjectStore(name: string, fn: () => void): void {
    const build = versitygwBuild();
    if (!("missing" in build)) return describeIntegration(name, fn);
    if (isCI()) throw new Error(`CI must run the object storage tests, but: ${build.missing}`);
    console.warn(build.missing);
    describe.skip(name, fn);
}

/**
 * `describe` for tests that run promtool alone (no root, no registry): named after the release found;
 * skips with the hint when it is missing, fails in CI.
 */
export function describeWithPromtool(name: string, fn: () => void): void {
    const build = promtoolBuild();
    if (!("missing" in build)) {
        describe(`${name} (promtool ${build.version})`, fn);
        return;
    }
    if (isCI()) throw new Error(`CI must run the promtool tests, but: ${build.missing}`);
    console.warn(build.missing);
    describe.skip(name, fn);
}
