// Blob transfers over the registry API with Node's own HTTPS client: an upload in one request, and a
// download a client reads at its own pace (a node on a slow link), so a test can act mid-transfer.

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as https from "node:https";

/** One HTTPS request verified against `caFile`; resolves with the status, headers and body. */
export function request(
    url: string,
    opts: { caFile: string; method?: string; headers?: Record<string, string>; body?: Buffer },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    return new Promise((resolve, reject) => {
        const req = https.request(url, { method: opts.method ?? "GET", headers: opts.headers, agent: false, ca: fs.readFileSync(opts.caFile) }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
            res.on("error", reject);
        });
        req.on("error", reject);
        req.end(opts.body);
    });
}

/** Uploads `data` as a blob of `repo` in one PUT (a monolithic upload); resolves with its digest. */
export async function uploadBlob(base: string, repo: string, data: Buffer, opts: { caFile: string; auth: string }): Promise<string> {
    const digest = `sha256:${crypto.createHash("sha256").update(data).digest("hex")}`;
    const started = await request(`${base}/v2/${repo}/blobs/uploads/`, { ...opts, method: "POST", headers: { Authorization: opts.auth } });
    if (started.status !== 202) throw new Error(`starting an upload: ${started.status} ${started.body.toString()}`);
    const location = new URL(String(started.headers.location), base);
    location.searchParams.set("digest", digest);
    const put = await request(location.toString(), {
        ...opts,
        method: "PUT",
        headers: { Authorization: opts.auth, "Content-Type": "application/octet-stream", "Content-Length": String(data.length) },
        body: data,
    });
    if (put.status !== 201) throw new Error(`finishing an upload: ${put.status} ${put.body.toString()}`);
    return digest;
}

/** What a download got: bytes, their digest, and how it ended. */
export interface Download {
    bytes: number;
    digest: string;
    /** The error that cut it, or undefined when the response ended normally. */
    error?: string;
}

/** GETs a blob reading at most `bytesPerSecond`; `onProgress` sees the byte count after every chunk. */
export function slowDownload(
    url: string,
    opts: { caFile: string; auth: string; bytesPerSecond: number; onProgress?: (bytes: number) => void },
): Promise<Download> {
    return new Promise((resolve) => {
        const hash = crypto.createHash("sha256");
        let bytes = 0;
        const started = Date.now();
        let settled = false;
        const done = (error?: string) => {
            if (settled) return;
            settled = true;
            resolve({ bytes, digest: `sha256:${hash.digest("hex")}`, error });
        };
        const req = https.get(url, { headers: { Authorization: opts.auth }, agent: false, ca: fs.readFileSync(opts.caFile) }, (res) => {
            if (res.statusCode !== 200) {
                res.resume();
                return done(`status ${String(res.statusCode)}`);
            }
            res.on("data", (chunk: Buffer) => {
                hash.update(chunk);
                bytes += chunk.length;
                opts.onProgress?.(bytes);
                // Ahead of the pace: stop reading for a while, so TCP holds the server's writes back.
                const ahead = bytes / opts.bytesPerSecond - (Date.now() - started) / 1000;
                if (ahead > 0) {
                    res.pause();
                    setTimeout(() => res.resume(), ahead * 1000);
                }
            });
            res.on("end", () => done(res.complete ? undefined : "response ended before its Content-Length"));
            res.on("error", (e) => done(e.message));
            res.on("aborted", () => done("aborted"));
        });
        req.on("error", (e) => done(e.message));
    });
}
