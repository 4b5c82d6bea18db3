/**
 * The CRI pulls a node makes, on every containerd line users run (1.6 from Debian 12, 1.7 from trixie,
 * 2.x from sid: whatever version sid has, recorded in the test names and log) and with the node
 * configurations their distributions write (kind v0.31, EKS AL2023, k3s; test/fixtures/containerd):
 * the hosted registry through its hosts.toml with the pull secret's credentials, docker.io through the
 * cache as a mirror, and fail-closed with the cache down. One cluster (registries, cache, agent) per
 * containerd line, one containerd per node config. On containerd 2.x a config_path of two directories
 * with neither discard_unpacked_layers nor use_local_image_pull makes containerd ignore the hosts.toml
 * files: the pull goes to DNS. That failure is asserted; it is what containerd-check.sh must predict.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { criImageStatus, criPull, criRemove } from "./harness/cri";
import { ContainerdHandle, ContainerdLine } from "./harness/containerd";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { RegistryHandle } from "./harness/registry";
import { describeContainerd } from "./describe-integration";
import { CACHE_IP, LoopbackCluster } from "./support";

const FIXTURES = path.resolve(__dirname, "../fixtures/containerd");
const MIRRORED = "docker.io/library/nginx:stable";
const HOSTED_REPO = "demo/app:v1";
const ETC_CERTS = "/etc/containerd/certs.d";
const K3S_CERTS = "/var/lib/rancher/k3s/agent/etc/containerd/certs.d";

/** A node configuration users have, as its distribution writes it for this containerd line. */
interface NodeShape {
    name: string;
    fixture: string;
    /** The node directory the agent writes to. */
    certsPath: string;
    /** Whether containerd follows the agent's hosts.toml files with it. */
    reads: boolean;
}

/** The node configs of each line: 1.x nodes have version 2 files; 2.x nodes the distributions' version 3 ones. */
export function nodeShapes(line: ContainerdLine): NodeShape[] {
    const v2 = line !== "2.x";
    const shapes: NodeShape[] = [
        { name: "kind v0.31 (one directory)", fixture: "kind-v0.31.toml", certsPath: ETC_CERTS, reads: true },
        {
            name: "EKS AL2023 (two directories, discard_unpacked_layers)",
            fixture: v2 ? "eks-al2023-containerd1.toml" : "eks-al2023-containerd2.toml",
            certsPath: ETC_CERTS,
            reads: true,
        },
        { name: "k3s (its generated config.toml)", fixture: v2 ? "k3s-containerd1.toml" : "k3s-containerd2.toml", certsPath: K3S_CERTS, reads: true },
    ];
    if (!v2) shapes.push({ name: "two directories, neither setting", fixture: "containerd2-two-dirs.toml", certsPath: ETC_CERTS, reads: false });
    return shapes;
}

/** Requests a registry answered, from its access log. */
function requests(registry: RegistryHandle): number {
    return registry.proc
        .log()
        .split("\n")
        .filter((l) => l.includes('msg="response completed"')).length;
}

for (const line of ["1.6", "1.7", "2.x"] as const) {
    describeContainerd(line, "pulls over CRI through the agent's hosts.toml, with the node configs users have", (build) => {
        const shapes = nodeShapes(line);
        let cluster: LoopbackCluster;
        let hostedImage: BuiltOciImage;
        let mirroredImage: BuiltOciImage;
        const containerds = new Map<string, ContainerdHandle>();
        const socket = (shape: NodeShape) => containerds.get(shape.name)!.socket;

        beforeAll(async () => {
            cluster = await LoopbackCluster.start({ prefix: "cm-", dockerIoCache: true, nodeMode: "apply", containerd: false });
            hostedImage = await buildOciImage(path.join(cluster.work, "oci-hosted"), { tag: "v1", layers: [{ files: { "app.txt": "hosted\n" } }] });
            mirroredImage = await buildOciImage(path.join(cluster.work, "oci-mirrored"), {
                tag: "stable",
                layers: [{ files: { "etc/nginx/nginx.conf": "events {}\n" } }],
            });
            for (const push of [await cluster.push(hostedImage, HOSTED_REPO), await cluster.pushUpstream(mirroredImage, "library/nginx:stable")]) {
                expect(push.code, push.stderr).toBe(0);
            }
            const started = await Promise.all(
                shapes.map((s, i) =>
                    cluster.startNodeContainerd(`c${i}`, {
                        binary: build.binary,
                        nodeConfig: { toml: fs.readFileSync(path.join(FIXTURES, s.fixture), "utf8"), certsPath: s.certsPath },
                    }),
                ),
            );
            shapes.forEach((s, i) => containerds.set(s.name, started[i]));
        });

        afterAll(() => cluster?.stop());

        for (const shape of shapes.filter((s) => s.reads)) {
            test(`${shape.name}: the hosted registry through its hosts.toml, with the pull secret's credentials`, async () => {
                const ref = cluster.ref(HOSTED_REPO);
                await criPull(socket(shape), ref, cluster.dep.pullAuth, { timeoutMs: 60_000 });
                const status = await criImageStatus(socket(shape), ref);
                expect(status?.repo_digests).toContain(`${ref.split(":").slice(0, -1).join(":")}@${hostedImage.manifestDigest}`);
            });

            test(`${shape.name}: docker.io through the cache, as a mirror`, async () => {
                const cacheLog = cluster.cacheLog().length;
                await criPull(socket(shape), MIRRORED, undefined, { timeoutMs: 60_000 });
                expect((await criImageStatus(socket(shape), MIRRORED))?.repo_digests).toContain(`docker.io/library/nginx@${mirroredImage.manifestDigest}`);
                expect(cluster.cacheLog().slice(cacheLog)).toContain("/v2/library/nginx/manifests/stable?ns=docker.io");
                await criRemove(socket(shape), MIRRORED);
            });
        }

        for (const shape of shapes.filter((s) => !s.reads)) {
            test(`${shape.name}: containerd ignores the hosts.toml files and the pull goes to DNS`, async () => {
                const before = requests(cluster.hosted);
                await expect(criPull(socket(shape), cluster.ref(HOSTED_REPO), cluster.dep.pullAuth, { timeoutMs: 60_000 })).rejects.toThrow(
                    /lookup registry\.\S+( on \S+)?: no such host/,
                );
                expect(requests(cluster.hosted)).toBe(before);
            });
        }

        test("fail-closed mirrors: the cache stopped and mirrorFallback none applied", async () => {
            await cluster.stopCache();
            await cluster.redeploy({ "cluster-registry:mirrorFallback": "none" });
            expect(fs.readFileSync(path.join(cluster.nodeCerts, "docker.io", "hosts.toml"), "utf8")).toContain(
                `server = "https://${CACHE_IP}:${cluster.port}"`,
            );
        });

        for (const shape of shapes.filter((s) => s.reads)) {
            test(`${shape.name}: fail-closed: with the cache down the pull fails and nothing reaches docker.io`, async () => {
                const before = requests(cluster.upstream!.registry);
                await expect(criPull(socket(shape), MIRRORED, undefined, { timeoutMs: 60_000 })).rejects.toThrow(/connection refused/);
                expect(requests(cluster.upstream!.registry)).toBe(before);
            });
        }
    });
}
