// skopeo copy / inspect, hermetic: no default auth files, no /etc/containers policy needed.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCommand, type CommandResult } from "./procs";

/** Where skopeo finds credentials and trust: a .dockerconfigjson (it reads only the `auth` fields) and a dir with the CA as *.crt. */
export interface SkopeoAuth {
    authfile?: string;
    certDir?: string;
}

/** Runs skopeo with an empty, private HOME and no XDG_RUNTIME_DIR, so no ambient credentials are picked up. */
async function runSkopeo(args: string[]): Promise<CommandResult> {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "skopeo-home-"));
    try {
        return await runCommand("skopeo", ["--insecure-policy", ...args], { env: { HOME: home, TMPDIR: os.tmpdir() } });
    } finally {
        fs.rmSync(home, { recursive: true, force: true });
    }
}

/** `skopeo copy SRC docker://DEST` (never throws on a non-zero exit; look at code/stderr). */
export function skopeoCopy(o: SkopeoAuth & { src: string; dest: string }): Promise<CommandResult> {
    const args = ["copy"];
    if (o.authfile !== undefined) args.push("--authfile", o.authfile);
    if (o.certDir !== undefined) args.push("--dest-cert-dir", o.certDir);
    return runSkopeo([...args, o.src, o.dest]);
}

/** `skopeo inspect docker://IMAGE`, with its JSON output parsed when it succeeds. */
export async function skopeoInspect(o: SkopeoAuth & { image: string }): Promise<CommandResult & { json?: unknown }> {
    const args = ["inspect"];
    if (o.authfile !== undefined) args.push("--authfile", o.authfile);
    if (o.certDir !== undefined) args.push("--cert-dir", o.certDir);
    const r = await runSkopeo([...args, o.image]);
    return r.code === 0 ? { ...r, json: JSON.parse(r.stdout) as unknown } : r;
}

/** `skopeo copy docker://IMAGE oci:...` into a scratch layout under `work` (skopeo checks every digest), then gone; with the manifest digest pulled when it succeeds. */
export async function skopeoPull(o: SkopeoAuth & { image: string; work: string }): Promise<CommandResult & { digest?: string }> {
    const dest = fs.mkdtempSync(path.join(o.work, "pulled-"));
    try {
        const args = ["copy"];
        if (o.authfile !== undefined) args.push("--src-authfile", o.authfile);
        if (o.certDir !== undefined) args.push("--src-cert-dir", o.certDir);
        const r = await runSkopeo([...args, o.image, `oci:${dest}:x`]);
        if (r.code !== 0) return r;
        const index = JSON.parse(fs.readFileSync(path.join(dest, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
        return { ...r, digest: index.manifests[0].digest };
    } finally {
        fs.rmSync(dest, { recursive: true, force: true });
    }
}
