/**
 * An air-gapped cluster: scripts/preload copies upstream images into the hosted registry (directly, and
 * by export to a tar and import on the other side), the stand-in upstream is stopped, and each
 * containerd line pulls docker.io/..., quay.io/..., an upstream with a port and a digest-pinned reference by their unmodified
 * names through the hosts.toml files the agent wrote (preloadedUpstreams, mirrorFallback none). A
 * name never preloaded fails with containerd's not-found; with a cache and its upstream up, it comes
 * through the cache after the hosted registry's 404.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import YAML from "yaml";
import { renderDockerConfigJson } from "../../components/render/docker-config";
import { CriAuth, criImageStatus, criPull } from "./harness/cri";
import { ContainerdHandle } from "./harness/containerd";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { CommandResult, runCommand } from "./harness/procs";
import { skopeoInspect } from "./harness/skopeo";
import { describeContainerd } from "./describe-integration";
import { LoopbackCluster } from "./support";

const SCRIPT = path.resolve(__dirname, "../../scripts/preload");
const FIXTURES = path.resolve(__dirname, "../fixtures/containerd");
const NGINX = "docker.io/library/nginx:stable";
const TOOL = "quay.io/demo/tool:1.0";
/** An upstream with a port: its repositories live under registry.example.com_5000 (no ':' in names). */
const PORTED = "registry.example.com:5000/team/app:1";

function preload(args: string[]): Promise<CommandResult> {
    return runCommand("bash", [SCRIPT, ...args], { timeoutMs: 300_000 });
}

function sha256(b: Buffer): string {
    return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

/**
 * A two-platform image index in one OCI layout (the layout of `amd`, which gets `arm`'s blobs),
 * tagged `tag`: what `--all` must copy whole. Returns the index's digest.
 */
function twoPlatformIndex(amd: { dir: string; image: BuiltOciImage }, arm: { dir: string; image: BuiltOciImage }, tag: string): string {
    fs.cpSync(path.join(arm.dir, "blobs"), path.join(amd.dir, "blobs"), { recursive: true });
    const entry = (img: BuiltOciImage, architecture: string) => {
        const size = fs.statSync(path.join(amd.dir, "blobs", "sha256", img.manifestDigest.slice(7))).size;
        return { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: img.manifestDigest, size, platform: { os: "linux", architecture } };
    };
    const index = Buffer.from(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.index.v1+json",
            manifests: [entry(amd.image, "amd64"), entry(arm.image, "arm64")],
        }),
    );
    const digest = sha256(index);
    fs.writeFileSync(path.join(amd.dir, "blobs", "sha256", digest.slice(7)), index);
    const tagged = {
        mediaType: "application/vnd.oci.image.index.v1+json",
        digest,
        size: index.length,
        annotations: { "org.opencontainers.image.ref.name": tag },
    };
    fs.writeFileSync(path.join(amd.dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [tagged] }));
    return digest;
}

for (const line of ["1.6", "1.7", "2.x"] as const) {
    describeContainerd(line, "pulls preloaded images by unmodified names with no upstream reachable", (build) => {
        let cluster: LoopbackCluster;
        let node: ContainerdHandle;
        let nginxIndex: string;
        let tool: BuiltOciImage;
        let pinned: BuiltOciImage;
        let pinnedRef: string;
        let redis: BuiltOciImage;

        beforeAll(async () => {
            cluster = await LoopbackCluster.start({
                prefix: "pl-",
                dockerIoCache: true,
                nodeMode: "apply",
                containerd: false,
                config: {
                    "cluster-registry:preloadedUpstreams": '["docker.io","quay.io","registry.example.com:5000"]',
                    "cluster-registry:mirrorFallback": "none",
                },
            });
            const w = (n: string) => path.join(cluster.work, n);
            const amd = {
                dir: w("oci-nginx"),
                image: await buildOciImage(w("oci-nginx"), { tag: "amd", layers: [{ files: { "etc/nginx/amd": "amd64\n" } }] }),
            };
            const arm = { dir: w("oci-arm"), image: await buildOciImage(w("oci-arm"), { tag: "arm", layers: [{ files: { "etc/nginx/arm": "arm64\n" } }] }) };
            nginxIndex = twoPlatformIndex(amd, arm, "stable");
            tool = await buildOciImage(w("oci-tool"), { tag: "1.0", layers: [{ files: { tool: "quay\n" } }] });
            pinned = await buildOciImage(w("oci-pinned"), { tag: "v9", layers: [{ randomBytes: 4096 }] });
            redis = await buildOciImage(w("oci-redis"), { tag: "7", layers: [{ files: { redis: "cached\n" } }] });
            for (const [img, repoTag] of [
                [`oci:${amd.dir}:stable`, "library/nginx:stable"],
                [tool.ref, "demo/tool:1.0"],
                [pinned.ref, "library/pinned:v9"],
                [redis.ref, "library/redis:7"],
                [tool.ref, "team/app:1"],
            ] as const) {
                // --all: the stand-in serves the whole index, as docker.io does.
                const dest = `docker://${new URL(cluster.upstream!.registry.url).host}/${repoTag}`;
                const r = await runCommand("skopeo", ["--insecure-policy", "copy", "--all", "--dest-cert-dir", cluster.upstream!.certDir, img, dest]);
                expect(r.code, r.stderr).toBe(0);
            }
            pinnedRef = `docker.io/library/pinned@${pinned.manifestDigest}`;
            node = await cluster.startNodeContainerd("c", {
                binary: build.binary,
                nodeConfig: { toml: fs.readFileSync(path.join(FIXTURES, "kind-v0.31.toml"), "utf8"), certsPath: "/etc/containerd/certs.d" },
            });
        });

        afterAll(() => cluster?.stop());

        const upstreamHost = () => new URL(cluster.upstream!.registry.url).host;
        const push = () => ["--dest-authfile", cluster.client.authfile, "--dest-cert-dir", cluster.client.certDir, "--to", `localhost:${cluster.port}`];
        const source = () => [
            "--src-cert-dir",
            cluster.upstream!.certDir,
            "--mirror",
            `docker.io=${upstreamHost()}`,
            "--mirror",
            `quay.io=${upstreamHost()}`,
            "--mirror",
            `registry.example.com:5000=${upstreamHost()}`,
        ];

        test("a name not preloaded, with the cache and its upstream up, comes through the cache after the hosted registry's 404", async () => {
            const hostedLog = cluster.hosted.proc.log().length;
            await criPull(node.socket, "docker.io/library/redis:7", undefined, { timeoutMs: 60_000 });
            expect((await criImageStatus(node.socket, "docker.io/library/redis:7"))?.repo_digests).toContain(`docker.io/library/redis@${redis.manifestDigest}`);
            expect(cluster.hosted.proc.log().slice(hostedLog)).toMatch(
                /\/v2\/docker\.io\/library\/redis\/manifests\/7\?ns=docker\.io.*http\.response\.status=404/,
            );
            expect(cluster.cache!.proc.log()).toContain("/v2/library/redis/manifests/7?ns=docker.io");
        });

        test("what the cache served, listed for the preload command: its catalog and tags as upstream references", async () => {
            // The node identity, which alone the cache admits, as the k3s registries.yaml output carries it.
            const cacheHost = new URL(cluster.dep.outputs.caches["docker.io"] as string).host;
            const auth = (YAML.parse(cluster.dep.outputs.k3sRegistriesYaml as string) as { configs: Record<string, { auth: CriAuth }> }).configs[cacheHost]
                .auth;
            const authfile = path.join(cluster.work, "node-auth.json");
            fs.writeFileSync(authfile, renderDockerConfigJson([cacheHost], auth.username, auth.password), { mode: 0o600 });
            const served = await preload([
                "served",
                "--cache",
                cacheHost,
                "--upstream",
                "docker.io",
                "--authfile",
                authfile,
                "--cert-dir",
                cluster.client.certDir,
            ]);
            expect(served.code, served.stderr).toBe(0);
            expect(served.stdout.split("\n").filter(Boolean)).toEqual(["docker.io/library/redis:7"]);
        });

        test("preload: quay.io copied directly, docker.io exported to a tar and imported, every architecture and digest kept", async () => {
            const list = path.join(cluster.work, "images.txt");
            fs.writeFileSync(list, `${TOOL}\n${PORTED}\n`);
            const copied = await preload(["copy", list, ...source(), ...push()]);
            expect(copied.code, copied.stderr).toBe(0);
            fs.writeFileSync(list, `# carried over\n${NGINX}\n${pinnedRef}\n`);
            const archive = path.join(cluster.work, "carry.tar");
            const exported = await preload(["export", list, "--dir", archive, ...source()]);
            expect(exported.code, exported.stderr).toBe(0);
            await cluster.upstream!.registry.stop();
            const imported = await preload(["import", archive, ...push()]);
            expect(imported.code, imported.stderr).toBe(0);
            const raw = await runCommand("skopeo", [
                "inspect",
                "--raw",
                "--authfile",
                cluster.client.authfile,
                "--cert-dir",
                cluster.client.certDir,
                `docker://localhost:${cluster.port}/docker.io/library/nginx:stable`,
            ]);
            expect(raw.code, raw.stderr).toBe(0);
            expect(sha256(Buffer.from(raw.stdout))).toBe(nginxIndex);
            const arm = await skopeoInspect({
                authfile: cluster.client.authfile,
                certDir: cluster.client.certDir,
                image: `docker://localhost:${cluster.port}/docker.io/library/nginx@${(JSON.parse(raw.stdout) as { manifests: Array<{ digest: string }> }).manifests[1].digest}`,
            });
            expect(arm.code, arm.stderr).toBe(0);
        });

        test("with no upstream reachable, containerd pulls docker.io, quay.io and a digest-pinned reference by unmodified names from the hosted registry", async () => {
            const before = cluster.hosted.proc.log().length;
            for (const [ref, repoDigest] of [
                [NGINX, `docker.io/library/nginx@${nginxIndex}`],
                [TOOL, `quay.io/demo/tool@${tool.manifestDigest}`],
                [pinnedRef, `docker.io/library/pinned@${pinned.manifestDigest}`],
                [PORTED, `registry.example.com:5000/team/app@${tool.manifestDigest}`],
            ]) {
                await criPull(node.socket, ref, undefined, { timeoutMs: 60_000 });
                expect((await criImageStatus(node.socket, ref))?.repo_digests).toContain(repoDigest);
            }
            const log = cluster.hosted.proc.log().slice(before);
            expect(log).toContain("/v2/docker.io/library/nginx/manifests/stable?ns=docker.io");
            expect(log).toContain("/v2/quay.io/demo/tool/manifests/1.0?ns=quay.io");
            expect(log).toContain("/v2/registry.example.com_5000/team/app/manifests/1?ns=registry.example.com");
        });

        test("a name never preloaded fails with containerd's not-found", async () => {
            await expect(criPull(node.socket, "quay.io/demo/absent:1", undefined, { timeoutMs: 60_000 })).rejects.toThrow(/not found/);
        });
    });
}
