// skopeo copy / inspect, hermetic: no default auth files, no /etc/containers policy needed.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runCommand, type CommandResult } from "./procs";

/** Options of {@link skopeoCopy}. */
export interface SkopeoCopyOptions {
    /** e.g. `oci:/dir:tag` or `docker://127.0.0.1:5000/repo:tag` */
    src: string;
    dest: string;
    /** A .dockerconfigjson file (skopeo reads only its `auth` fields); used for both sides. */
    authfile?: string;
    /** Directory with the CA as *.crt; used for whichever side is docker:// */
    certDir?: string;
    srcTlsVerify?: boolean;
    destTlsVerify?: boolean;
    /** Extra arguments placed before src and dest. */
    extraArgs?: string[];
    timeoutMs?: number;
}

/** Options of {@link skopeoInspect}. */
export interface SkopeoInspectOptions {
    /** `docker://HOST:PORT/repo:tag` or `oci:/dir:tag` */
    image: string;
    authfile?: string;
    certDir?: string;
    tlsVerify?: boolean;
    /** `--raw`: print the manifest as stored. */
    raw?: boolean;
    /** `--config`: print the image config. */
    config?: boolean;
    extraArgs?: string[];
    timeoutMs?: number;
}

/** Result of {@link skopeoInspect}: `json` is the parsed stdout when the command succeeded. */
export interface SkopeoInspectResult extends CommandResult {
    json?: unknown;
}

/** Runs skopeo with an empty, private HOME and no XDG_RUNTIME_DIR, so no ambient credentials are picked up. */
async function runSkopeo(args: string[], timeoutMs: number): Promise<CommandResult> {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "skopeo-home-"));
    try {
        return await runCommand("skopeo", args, {
            env: { HOME: home, TMPDIR: os.tmpdir() },
            timeoutMs,
        });
    } finally {
        fs.rmSync(home, { recursive: true, force: true });
    }
}

const isDocker = (ref: string): boolean => ref.startsWith("docker://");

/** Runs `skopeo copy` (never throws on a non-zero exit; look at code/stderr). */
export function skopeoCopy(o: SkopeoCopyOptions): Promise<CommandResult> {
    const args = ["--insecure-policy", "copy"];
    if (o.authfile !== undefined) args.push("--authfile", o.authfile);
    if (o.certDir !== undefined) {
        if (isDocker(o.src)) args.push("--src-cert-dir", o.certDir);
        if (isDocker(o.dest)) args.push("--dest-cert-dir", o.certDir);
    }
    if (o.srcTlsVerify !== undefined && isDocker(o.src)) args.push(`--src-tls-verify=${String(o.srcTlsVerify)}`);
    if (o.destTlsVerify !== undefined && isDocker(o.dest)) args.push(`--dest-tls-verify=${String(o.destTlsVerify)}`);
    args.push(...(o.extraArgs ?? []), o.src, o.dest);
    return runSkopeo(args, o.timeoutMs ?? 300_000);
}

/** Runs `skopeo inspect` and parses its JSON output when it succeeds. */
export async function skopeoInspect(o: SkopeoInspectOptions): Promise<SkopeoInspectResult> {
    const args = ["--insecure-policy", "inspect"];
    if (o.authfile !== undefined) args.push("--authfile", o.authfile);
    if (o.certDir !== undefined) args.push("--cert-dir", o.certDir);
    if (o.tlsVerify !== undefined) args.push(`--tls-verify=${String(o.tlsVerify)}`);
    if (o.raw === true) args.push("--raw");
    if (o.config === true) args.push("--config");
    args.push(...(o.extraArgs ?? []), o.image);
    const r = await runSkopeo(args, o.timeoutMs ?? 120_000);
    if (r.code !== 0) return r;
    try {
        return { ...r, json: JSON.parse(r.stdout) as unknown };
    } catch {
        return r;
    }
}

/** Writes a .dockerconfigjson authfile with an `auth` field (and username/password) for each host. */
export function writeAuthfile(file: string, entries: Record<string, { username: string; password: string }>): string {
    const auths: Record<string, { auth: string; username: string; password: string }> = {};
    for (const [host, { username, password }] of Object.entries(entries)) {
        auths[host] = {
            username,
            password,
            auth: Buffer.from(`${username}:${password}`).toString("base64"),
        };
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ auths }), { mode: 0o600 });
    return file;
}
