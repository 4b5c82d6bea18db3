// A push racing a garbage collection, shared by the volume's and the bucket's collection tests.

import * as path from "node:path";
import { expect } from "vitest";
import { buildOciImage, type BuiltOciImage } from "./harness/oci";
import { waitFor, type CommandResult, type ProcHandle } from "./harness/procs";

export interface PushRace {
    /** Where the images are built. */
    work: string;
    push(image: BuiltOciImage, repoTag: string): Promise<CommandResult>;
    pull(ref: string): Promise<{ code: number | null; stderr: string; digest?: string }>;
    /** Asks the push supervisor for a collection (SIGUSR1). */
    collect(): void;
    /** Collections done so far. */
    collections(): number;
    timeoutMs: number;
    /** The supervisor, whose log a timeout shows. */
    proc?: ProcHandle;
}

/**
 * Pushes three images, asking for a collection 0, 400 and 1200 ms into each push: each push either
 * completed (its tag and every blob it names survived the sweep) or was refused and left no tag.
 * Resolves with what happened to each, for the log.
 */
export async function expectPushesRacingCollections(r: PushRace): Promise<string[]> {
    const outcomes: string[] = [];
    for (const [i, delayMs] of [0, 400, 1200].entries()) {
        const image = await buildOciImage(path.join(r.work, `oci-race-${i}`), { tag: `race-${i}`, layers: [{ randomBytes: 3 << 20 }] });
        const before = r.collections();
        const pushing = r.push(image, `gc/race:${i}`);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        r.collect();
        const pushed = await pushing;
        await waitFor(() => r.collections() > before, r.timeoutMs, "garbage collection done", { proc: r.proc });
        const pulled = await r.pull(`gc/race:${i}`);
        if (pushed.code === 0) {
            // Completed: the tag and every blob it names survived the sweep.
            expect(pulled.code, pulled.stderr).toBe(0);
            expect(pulled.digest).toBe(image.manifestDigest);
            outcomes.push("completed");
        } else {
            expect(pushed.stderr).toMatch(/405|Method Not Allowed|connection refused|EOF|reset/i);
            expect(pulled.code).not.toBe(0);
            expect(pulled.stderr).toMatch(/manifest unknown|not found/i);
            outcomes.push(`refused (${pushed.stderr.trim().split("\n").pop()?.slice(0, 200)})`);
        }
    }
    return outcomes;
}
