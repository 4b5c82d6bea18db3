/**
 * `engines` and the dependencies agree (issue 20, part 5): every Node version package.json admits is
 * one every locked package admits, so `npm ci` on any of them prints no EBADENGINE, and the machines'
 * Node is among them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import semver from "semver";
import { describe, expect, test } from "vitest";
import { ROOT } from "../support/stacks";

const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { engines: { node: string } };
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string; engines?: Record<string, string> | string[] }>;
};

describe("engines", () => {
    test("the lockfile was written from this package.json's engines", () => {
        expect((lock.packages[""].engines as Record<string, string>).node).toBe(manifest.engines.node);
    });

    test("every locked package admits every Node version package.json admits", () => {
        const refused = Object.entries(lock.packages)
            .filter(([name, p]) => name !== "" && p.engines !== undefined && !Array.isArray(p.engines) && p.engines.node !== undefined)
            .filter(([, p]) => !semver.subset(manifest.engines.node, (p.engines as Record<string, string>).node))
            .map(([name, p]) => `${name}@${p.version} wants node ${(p.engines as Record<string, string>).node}`);
        expect(refused).toEqual([]);
    });

    test("the Node running the tests is one package.json admits", () => {
        expect(semver.satisfies(process.version, manifest.engines.node), process.version).toBe(true);
    });
});
