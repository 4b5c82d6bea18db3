/**
 * README.md's promises about the repository itself: tests for `components/X.ts` are in
 * `test/unit/X.test.ts`, and every unit test file is named after the file it tests.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { ROOT } from "../support/stacks";

/** Files of the repository under `dir`, relative to ROOT, whose names end with `suffix`. */
function filesUnder(dir: string, suffix: string): string[] {
    return (fs.readdirSync(path.join(ROOT, dir), { recursive: true }) as string[])
        .filter((f) => f.endsWith(suffix))
        .map((f) => path.posix.join(dir, f.split(path.sep).join("/")))
        .sort();
}

/** Product files with no test file of their own, and why; the README says the same. */
const UNTESTED_ON_THEIR_OWN: Record<string, string> = {
    "components/index.ts": "re-exports only; cluster-registry.test.ts builds ClusterRegistry through it",
    "components/labels.ts": "one constant, checked on the objects that carry it",
    "components/node-agent/files.ts": "the node agent's data format, tested in node-config.test.ts beside the agent it feeds",
};

/** `components/render/x.ts` is tested in `test/unit/render/x.test.ts`; the program, index.ts, in `test/unit/index.test.ts`. */
const testFileOf = (file: string) =>
    file
        .replace(/^components\//, "test/unit/")
        .replace(/^index\.ts$/, "test/unit/index.ts")
        .replace(/\.ts$/, ".test.ts");

describe("tests are where a newcomer looks", () => {
    const product = ["index.ts", ...filesUnder("components", ".ts")];

    test.each(product.filter((f) => !(f in UNTESTED_ON_THEIR_OWN)))("%s has its own test file, named after it", (file) => {
        expect(fs.existsSync(path.join(ROOT, testFileOf(file))), testFileOf(file)).toBe(true);
    });

    test("the files without one still exist, and the README names them", () => {
        const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
        for (const file of Object.keys(UNTESTED_ON_THEIR_OWN)) {
            expect(product, file).toContain(file);
            expect(readme, file).toContain(`\`${file.replace(/^components\//, "")}\``);
        }
    });

    test("every unit test file is named after a product file (or a script, package.json, the test support or harness, or this README)", () => {
        const scripts = fs.readdirSync(path.join(ROOT, "scripts")).map((f) => `scripts/${f}`);
        const harness = filesUnder("test/integration/harness", ".ts");
        const sources = new Set([
            ...product,
            ...filesUnder("components", ".sh"),
            ...filesUnder("test/support", ".ts"),
            ...scripts,
            ...harness,
            "package.json",
            "README.md",
        ]);
        const named = (t: string) => {
            // `X.ASPECT.test.ts` holds one aspect of X's tests (e.g. registry.rollouts.test.ts).
            const base = t
                .replace(/^test\/unit\//, "")
                .replace(/\.test\.ts$/, "")
                .replace(/\.[a-z-]+$/, "");
            const candidates = [
                `components/${base}.ts`,
                `components/${base}.sh`,
                `components/${base}/${path.posix.basename(base)}.sh`,
                `test/support/${base}.ts`,
                // the scripts (scripts/X in test/unit/scripts/X.test.ts), package.json, and the integration harness
                base,
                `${base}.json`,
                `test/integration/${base}.ts`,
            ];
            return base === "index" || base === "readme" || candidates.some((c) => sources.has(c));
        };
        for (const t of filesUnder("test/unit", ".test.ts")) expect(named(t), t).toBe(true);
    });
});
