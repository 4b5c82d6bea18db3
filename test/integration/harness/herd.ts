// A herd: N skopeo clients pulling one image at once, as N nodes do when a rollout starts, and what
// the upstream served for it, from its log.

import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { BuiltOciImage } from "./oci";
import { runCommand, type CommandResult } from "./procs";

/** What a herd did: its time, and each client's problems (a failed copy, a blob missing or corrupt). */
export interface HerdResult {
    seconds: number;
    problems: string[];
}

/** `skopeo copy docker://IMAGE oci:DIR` with its own empty HOME, credentials and trust. */
async function pullOne(image: string, dest: string, auth: { authfile?: string; certDir: string }): Promise<CommandResult> {
    const home = fs.mkdtempSync(`${dest}-home-`);
    try {
        const creds = auth.authfile ? ["--src-authfile", auth.authfile] : ["--src-no-creds"];
        const args = ["--insecure-policy", "copy", "--retry-times", "0", ...creds, "--src-cert-dir", auth.certDir, `docker://${image}`, `oci:${dest}:pulled`];
        return await runCommand("skopeo", args, { env: { HOME: home }, timeoutMs: 300_000 });
    } finally {
        fs.rmSync(home, { recursive: true, force: true });
    }
}

/** Digests of the image's manifest and blobs that `dir` (an OCI layout) lacks or holds with other bytes. */
function damaged(dir: string, image: BuiltOciImage): string[] {
    return [image.manifestDigest, image.configDigest, ...image.layers.map((l) => l.digest)].filter((digest) => {
        const file = path.join(dir, "blobs", ...digest.split(":"));
        return !fs.existsSync(file) || `sha256:${createHash("sha256").update(fs.readFileSync(file)).digest("hex")}` !== digest;
    });
}

/** N clients start pulling `image` (host/repo:tag) at the same moment; each one's copy is checked byte for byte. */
export async function pullHerd(o: {
    clients: number;
    image: string;
    expect: BuiltOciImage;
    workDir: string;
    authfile: string;
    certDir: string;
}): Promise<HerdResult> {
    fs.mkdirSync(o.workDir, { recursive: true });
    const dests = Array.from({ length: o.clients }, (_, i) => path.join(o.workDir, `client-${i}`));
    const t0 = performance.now();
    const results = await Promise.all(dests.map((d) => pullOne(o.image, d, o)));
    const seconds = (performance.now() - t0) / 1000;
    const problems = results.flatMap((r, i) => {
        if (r.code !== 0) return [`client ${i}: skopeo exited ${String(r.code)}: ${r.stderr.trim().split("\n").pop()}`];
        const bad = damaged(dests[i], o.expect);
        return bad.length > 0 ? [`client ${i}: missing or corrupt ${bad.join(", ")}`] : [];
    });
    for (const d of dests) fs.rmSync(d, { recursive: true, force: true });
    return { seconds, problems };
}

/** A client without credentials (or with others'), as skopeo runs it; never throws. */
export function pullWith(image: string, dest: string, auth: { authfile?: string; certDir: string }): Promise<CommandResult> {
    return pullOne(image, dest, auth);
}

/** GETs a distribution registry served for `repo` (from its log, `response completed` lines): per blob digest, and of manifests. */
export function upstreamGets(log: string, repo: string): { blobs: Map<string, number>; manifests: number } {
    const blobs = new Map<string, number>();
    let manifests = 0;
    for (const line of log.split("\n")) {
        if (!line.includes('msg="response completed"') || !line.includes("http.request.method=GET")) continue;
        // The logger quotes a value only when it holds characters such as ':' (a digest): a tag's is bare.
        const uri = / http\.request\.uri="?([^"\s]+)/.exec(line)?.[1] ?? "";
        if (!uri.startsWith(`/v2/${repo}/`)) continue;
        const blob = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(uri)?.[1];
        if (blob) blobs.set(blob, (blobs.get(blob) ?? 0) + 1);
        else if (uri.includes("/manifests/")) manifests++;
    }
    return { blobs, manifests };
}
