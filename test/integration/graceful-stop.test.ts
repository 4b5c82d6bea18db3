/**
 * Issue 16: a registry told to stop (SIGTERM, which kubelet sends once the preStop sleep is over)
 * finishes the transfers it is serving. The real registry runs the generated config (http.draintimeout)
 * and the generated http.secret from its Secret; a client reading at a slow node's pace is mid-blob.
 */
import * as crypto from "node:crypto";
import * as net from "node:net";
import { afterAll, beforeAll, expect, test } from "vitest";
import { slowDownload, uploadBlob } from "./harness/blobs";
import { waitFor } from "./harness/procs";
import { basicAuth } from "./harness/registry";
import { describeIntegration } from "./describe-integration";
import { HOSTED_IP, LoopbackCluster } from "./support";

/** Whether a new TCP connection to host:port is refused (the listener is closed). */
function refused(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const s = net.connect(port, host);
        s.once("connect", () => {
            s.destroy();
            resolve(false);
        });
        s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
    });
}

describeIntegration("a registry stopping mid-download", () => {
    let cluster: LoopbackCluster;

    beforeAll(async () => {
        cluster = await LoopbackCluster.start({ prefix: "gst-", containerd: false, nodeMode: "apply" });
    }, 60_000);

    afterAll(() => cluster?.stop());

    test("SIGTERM 8 MiB into a 96 MiB blob: the listener closes at once, the download completes byte for byte, then the registry exits", async () => {
        const caFile = cluster.client.caFile;
        const data = crypto.randomBytes(96 << 20);
        const push = basicAuth("admin", (cluster.dep.outputs.passwords as Record<string, string>).admin);
        const digest = await uploadBlob(cluster.hostedPush.url, "demo/big", data, { caFile, auth: push });
        const proc = cluster.hosted.proc;
        let signalledAt: number | undefined;
        const download = slowDownload(`${cluster.hosted.url}/v2/demo/big/blobs/${digest}`, {
            caFile,
            auth: basicAuth(cluster.dep.pullAuth.username, cluster.dep.pullAuth.password),
            // About 4 s in all: the signal lands while most of the blob is still to come.
            bytesPerSecond: 24 << 20,
            onProgress: (bytes) => {
                if (signalledAt !== undefined || bytes < 8 << 20) return;
                signalledAt = bytes;
                process.kill(proc.pid, "SIGTERM");
            },
        });
        // The signal was taken: no new connection while the old one drains.
        await waitFor(() => refused(HOSTED_IP, cluster.port), 5_000, "the stopping registry's listener closed");
        const got = await download;
        expect(signalledAt).toBeLessThan(data.length / 2);
        expect(got.error).toBeUndefined();
        expect(got.bytes).toBe(data.length);
        expect(got.digest).toBe(digest);
        // It left on its own once the transfer was over, well inside the grace period.
        await waitFor(async () => proc.hasExited(), 10_000, "the registry exiting after the drain");
    }, 60_000);
});
