// Pulls in a loop over CRI, as kubelet would for pods starting one after another, while a test
// stops and replaces registries; every failure is kept with its error.

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
