/**
 * Caches behind a company's egress proxy: the stand-in docker.io is reached by a name only tinyproxy
 * resolves (Go never proxies loopback addresses, and nothing else here knows the name), so a cache
 * gets an image only through the proxy the program's HTTPS_PROXY names; then a proxy that requires
 * credentials, which reach the cache from the Secret the program made for cacheProxyCredentials.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { criImageStatus, criPull, criRemove } from "./harness/cri";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { runCommand } from "./harness/procs";
import { skopeoCopy } from "./harness/skopeo";
import { startTinyproxy, TinyproxyHandle } from "./harness/tinyproxy";
import { describeIntegration } from "./describe-integration";
import { LoopbackCluster, startStandInUpstream, StandInUpstream, tempDir } from "./support";

/** A name no resolver but the proxy's knows. */
const UPSTREAM_NAME = "registry.proxy-only.test";
const IMAGE = "docker.io/library/nginx:stable";
const PROXY_USER = { username: "egress", password: "Zq9-proxy-pass" };

/** CONNECT requests for the upstream's name the proxy logged (refused ones too). */
function connects(proxy: TinyproxyHandle): number {
    return proxy
        .log()
        .split("\n")
        .filter((l) => l.includes("CONNECT") && l.includes(UPSTREAM_NAME)).length;
}

describeIntegration("caches whose upstream is reachable only through an HTTP proxy (tinyproxy)", () => {
    let work: string;
    let upstream: StandInUpstream;
    let open: TinyproxyHandle;
    let authenticating: TinyproxyHandle;
    let cluster: LoopbackCluster;
    let image: BuiltOciImage;
    let upstreamUrl: string;

    beforeAll(async () => {
        work = tempDir("px-");
        upstream = await startStandInUpstream(path.join(work, "upstream"), UPSTREAM_NAME);
        const port = new URL(upstream.registry.url).port;
        upstreamUrl = `https://${UPSTREAM_NAME}:${port}`;
        open = await startTinyproxy(path.join(work, "proxy"), { [UPSTREAM_NAME]: "127.0.0.1" });
        authenticating = await startTinyproxy(path.join(work, "proxy-auth"), { [UPSTREAM_NAME]: "127.0.0.1" }, PROXY_USER);
        image = await buildOciImage(path.join(work, "oci"), { tag: "stable", layers: [{ files: { "etc/nginx/nginx.conf": "events {}\n" } }] });
        const push = await skopeoCopy({ src: image.ref, dest: `docker://127.0.0.1:${port}/library/nginx:stable`, certDir: upstream.certDir });
        expect(push.code, push.stderr).toBe(0);
        cluster = await LoopbackCluster.start({
            prefix: "pxc-",
            nodeMode: "apply",
            config: { "cluster-registry:caches": JSON.stringify([`docker.io=${upstreamUrl}`]), "cluster-registry:cacheHttpsProxy": open.url },
        });
        // The registry image trusts docker.io's public CA; here the stand-in's.
        cluster.upstream = upstream;
    });

    afterAll(async () => {
        await open?.stop();
        await authenticating?.stop();
        await cluster?.stop();
        fs.rmSync(work, { recursive: true, force: true });
    });

    test("the upstream's name resolves only in the proxy: directly it is unknown, through the proxy it answers", async () => {
        const curl = (extra: string[]) =>
            runCommand("curl", [
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                path.join(upstream.certDir, "ca.crt"),
                ...extra,
                `${upstreamUrl}/v2/`,
            ]);
        const direct = await curl([]);
        expect(direct.stderr).toMatch(/Could not resolve host/);
        expect((await curl(["--proxy", open.url])).stdout).toBe("200");
    });

    test("a cold pull on the node comes through the cache, which reached the upstream through the proxy", async () => {
        const before = connects(open);
        await cluster.startCache();
        await criPull(cluster.containerd.socket, IMAGE, undefined, { timeoutMs: 60_000 });
        expect((await criImageStatus(cluster.containerd.socket, IMAGE))?.repo_digests).toContain(`docker.io/library/nginx@${image.manifestDigest}`);
        expect(cluster.cache!.proc.log()).toContain("/v2/library/nginx/manifests/stable?ns=docker.io");
        expect(connects(open)).toBeGreaterThan(before);
        await criRemove(cluster.containerd.socket, IMAGE);
    });

    test("a proxy that requires credentials turns the cache away without them (distribution will not start without its upstream)", async () => {
        await cluster.cache!.stop();
        await cluster.redeploy({ "cluster-registry:cacheHttpsProxy": authenticating.url });
        // The cache's own log, in the error, says why it stopped.
        await expect(cluster.startCache(true)).rejects.toThrow(/Proxy Authentication Required/);
        expect(connects(authenticating)).toBeGreaterThan(0);
    });

    test("with cacheProxyCredentials, from the program's Secret, the cache gets through and the node pulls", async () => {
        await cluster.redeploy({ "cluster-registry:cacheProxyCredentials": `${PROXY_USER.username}:${PROXY_USER.password}` });
        const deployment = cluster.cloud.one("kubernetes:apps/v1:Deployment", "cache-docker-io");
        expect(JSON.stringify(deployment.inputs)).not.toContain(PROXY_USER.password);
        const before = connects(authenticating);
        await cluster.startCache(true);
        await criPull(cluster.containerd.socket, IMAGE, undefined, { timeoutMs: 60_000 });
        expect((await criImageStatus(cluster.containerd.socket, IMAGE))?.repo_digests).toContain(`docker.io/library/nginx@${image.manifestDigest}`);
        expect(connects(authenticating)).toBeGreaterThan(before);
        expect(cluster.cache!.proc.log()).not.toContain(PROXY_USER.password);
    });
});
