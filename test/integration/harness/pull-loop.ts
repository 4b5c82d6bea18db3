// Pulls in a loop over CRI, as kubelet would for pods starting one after another, while a test
// stops and replaces registries; every failure is kept with its error.

import { createHash } from "node:crypto";
import { criPull, criRemove, type CriAuth } from "./cri";

export interface PullLoop {
    /** Ends the loop after the pull in flight; resolves with what happened. */
    stop(): Promise<{ ok: number; failed: string[] }>;
    /** Pulls that succeeded so far. */
    ok(): number;
}

/** Pulls `image`, removes it (so the next pull resolves and fetches again), and again, until stopped. */
export function startPullLoop(socket: string, image: string, auth?: CriAuth): PullLoop {
    let ok = 0;
    const failed: string[] = [];
    let stopping = false;
    const loop = (async () => {
        while (!stopping) {
            try {
                await criPull(socket, image, auth, { timeoutMs: 30_000 });
                ok++;
                await criRemove(socket, image);
            } catch (e) {
                failed.push(e instanceof Error ? e.message : String(e));
            }
        }
    })();
    return {
        ok: () => ok,
        stop: async () => {
            stopping = true;
            await loop;
            return { ok, failed };
        },
    };
}

/** What {@link pullsDuring} saw: every failure, and how many pulls ended inside the window. */
export interface PullsDuring {
    failed: string[];
    total: number;
    within: number;
    windowMs: number;
}

/** Runs `pull` over and over while `during` runs (and `marginMs` before and after it), as pods starting during a maintenance window would. */
export async function pullsDuring(pull: () => Promise<unknown>, during: () => Promise<void>, marginMs = 500): Promise<PullsDuring> {
    const results: Array<{ at: number; error?: string }> = [];
    let running = true;
    const loop = (async () => {
        while (running) {
            try {
                await pull();
                results.push({ at: Date.now() });
            } catch (e) {
                results.push({ at: Date.now(), error: e instanceof Error ? e.message : String(e) });
            }
        }
    })();
    await new Promise((r) => setTimeout(r, marginMs));
    const started = Date.now();
    await during();
    const ended = Date.now();
    await new Promise((r) => setTimeout(r, marginMs));
    running = false;
    await loop;
    return {
        failed: results.flatMap((r) => (r.error === undefined ? [] : [r.error])),
        total: results.length,
        within: results.filter((r) => r.at > started && r.at < ended).length,
        windowMs: ended - started,
    };
}

/** A registry's answer to one GET, as the tests' HTTPS client gives it. */
type Get = (path: string, accept?: string) => Promise<{ status: number; body: Buffer }>;

/** One pull as a node makes it: the OCI manifest by tag, then every blob, each checked against its digest. */
export async function pullVerified(get: Get, repo: string, tag: string): Promise<void> {
    const manifest = await get(`/v2/${repo}/manifests/${tag}`, "application/vnd.oci.image.manifest.v1+json");
    if (manifest.status !== 200) throw new Error(`manifest: ${manifest.status}`);
    const m = JSON.parse(manifest.body.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
    for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
        const blob = await get(`/v2/${repo}/blobs/${d}`);
        if (blob.status !== 200) throw new Error(`blob ${d}: ${blob.status}`);
        if (`sha256:${createHash("sha256").update(blob.body).digest("hex")}` !== d) throw new Error(`blob ${d}: wrong bytes`);
    }
}
