/**
 * Lets the benchmark reuse the integration harness outside vitest. test/integration/support.ts and
 * test/support/fake-cloud.ts import `describe` and `vi` from "vitest", which refuses to load outside
 * its runner. Import this module FIRST: it puts a stand-in for "vitest" into the require cache.
 *
 * - `describe` is not for benchmarks: it throws.
 * - `vi.resetModules()` is what `runProgram` calls before it imports index.ts. Under vitest that makes
 *   the program run afresh on every deploy; here the import goes through Node's ESM loader, whose cache
 *   cannot be cleared, so a second deploy in one process would silently reuse the first program's
 *   outputs. The stand-in therefore allows one deploy per process and throws on the second; the
 *   benchmark runs each scenario in a process of its own.
 */
import Module from "node:module";

let programRuns = 0;

const standIn = {
    describe(): never {
        throw new Error("bench: describe() is for vitest; the benchmark calls its scenarios directly");
    },
    vi: {
        resetModules(): void {
            programRuns += 1;
            if (programRuns > 1) {
                throw new Error("bench: the Pulumi program can run only once per process outside vitest (ESM import cache); run each scenario in its own process");
            }
        },
    },
};

const id = require.resolve("vitest");
const fake = new Module(id);
fake.filename = id;
fake.exports = standIn;
fake.loaded = true;
require.cache[id] = fake;
