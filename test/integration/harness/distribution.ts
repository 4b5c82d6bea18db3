// The distribution registry the tests and the benchmark run: the release the default image ships,
// built from the Go module proxy by scripts/test-all into .cache/distribution/<version>/registry.
// The version is read from the default image's tag, so the two can never disagree.

import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_REGISTRY_IMAGE } from "../../../components/settings";

/** The Go module whose `cmd/registry` is the registry program of the `registry:3.x` image. */
export const DISTRIBUTION_MODULE = "github.com/distribution/distribution/v3/cmd/registry";

/** Where scripts/test-all builds it (.gitignore'd), one directory per version. */
export const DISTRIBUTION_CACHE = path.resolve(__dirname, "../../../.cache/distribution");

/** The distribution release the default image runs: the tag of `DEFAULT_REGISTRY_IMAGE`, e.g. "3.1.1". */
export function shippedDistributionVersion(image: string = DEFAULT_REGISTRY_IMAGE): string {
    const tag = /:(\d+\.\d+\.\d+)(@sha256:[0-9a-f]{64})?$/.exec(image)?.[1];
    if (tag === undefined) throw new Error(`the default image ${image} has no x.y.z release tag to build the registry from`);
    return tag;
}

/** A registry build found here, with what `registry --version` says. */
export interface DistributionBuild {
    binary: string;
    /** e.g. "3.1.1", from `registry --version` */
    version: string;
    /** The whole `registry --version` line, recorded in the test log. */
    versionLine: string;
}

let found: DistributionBuild | { missing: string } | undefined;

/** The build of the shipped version, or one line saying why there is none and how to get it. */
export function distributionBuild(): DistributionBuild | { missing: string } {
    if (found !== undefined) return found;
    const wanted = shippedDistributionVersion();
    const binary = path.join(DISTRIBUTION_CACHE, `v${wanted}`, "registry");
    const hint = `run scripts/test-all (it builds ${DISTRIBUTION_MODULE}@v${wanted} into ${path.dirname(binary)})`;
    if (!fs.existsSync(binary)) return (found = { missing: `distribution ${wanted} is not built here: ${hint}` });
    let versionLine: string;
    try {
        versionLine = execFileSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 }).trim();
    } catch (e) {
        return (found = { missing: `${binary} does not run (${e instanceof Error ? e.message : String(e)}): ${hint}` });
    }
    // "registry github.com/distribution/distribution/v3 v3.1.1+unknown"
    const version = /\sv(\d+\.\d+\.\d+)/.exec(versionLine)?.[1];
    if (version !== wanted) return (found = { missing: `${binary} says "${versionLine}", not ${wanted}: ${hint}` });
    return (found = { binary, version, versionLine });
}

/** The registry binary; throws with the hint when it is missing (callers check {@link distributionBuild} first). */
export function registryBinary(): string {
    const build = distributionBuild();
    if ("missing" in build) throw new Error(build.missing);
    return build.binary;
}
