/**
 * The generated registry, credentials, CA and node configuration, consumed by the real programs:
 * the distribution registry serves what the Deployment mounts, skopeo pushes with the generated
 * authfile, and containerd 1.6 pulls over CRI (the call kubelet makes) through the hosts.toml the
 * DaemonSet's own script wrote, reaching the registry at the Service's ClusterIP with no DNS.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { afterAll, beforeAll, expect, test } from "vitest";
import { nodeFiles } from "../../components/node-config";
import { criImageStatus, criPull, criRemove } from "./harness/cri";
import { snapshotTree } from "./harness/node";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { basicAuth, httpsStatus } from "./harness/registry";
import { skopeoInspect } from "./harness/skopeo";
import { describeIntegration } from "./describe-integration";
import { deploy, Deployed, HOSTED_IP, LoopbackCluster } from "./support";

// A Service whose ClusterIP changed while nodes kept the old certificate: not in the SANs.
const MOVED_IP = "127.0.0.3";

describeIntegration("the generated registry, consumed by the real registry, skopeo and containerd", () => {
    let cluster: LoopbackCluster;
    let dep: Deployed;
    let other: Deployed;
    let image: BuiltOciImage;
    const ref = () => cluster.ref("demo/app:v1");

    beforeAll(async () => {
        cluster = await LoopbackCluster.start({
            prefix: "crit-",
            nodeFiles: { "other.example:5000/hosts.toml": '# another tool\nserver = "https://other.example:5000"\n' },
        });
        dep = cluster.dep;
        // Another `pulumi up` on another stack: its own CA and credentials.
        other = await deploy(HOSTED_IP, { "cluster-registry:port": String(cluster.port) });
        image = await buildOciImage(path.join(cluster.work, "oci"), {
            tag: "v1",
            layers: [{ files: { "hello.txt": "hello from the private registry\n" } }, { randomBytes: 2 << 20 }],
        });
    });

    afterAll(() => cluster?.stop());

    test("the liveness probe path answers over TLS without credentials; the API asks for them", async () => {
        const probe = dep.cloud.one("kubernetes:apps/v1:Deployment", "hosted").inputs.spec.template.spec.containers[0].livenessProbe.httpGet;
        const base = `${probe.scheme.toLowerCase()}://${HOSTED_IP}:${cluster.port}`;
        const caFile = cluster.client.caFile;
        expect(await httpsStatus(`${base}${probe.path}`, { caFile })).toBe(200);
        expect(await httpsStatus(`${base}/v2/`, { caFile })).toBe(401);
        const { username, password } = dep.pullAuth;
        expect(await httpsStatus(`${base}/v2/`, { caFile, headers: { Authorization: basicAuth(username, password) } })).toBe(200);
    });

    test("the certificate verifies against the CA for every DNS SAN and the ClusterIP, and for no other name", async () => {
        const handshake = (servername?: string) =>
            new Promise<void>((resolve, reject) => {
                const s = tls.connect({ host: HOSTED_IP, port: cluster.port, ca: dep.outputs.caCertPem, servername }, () => {
                    s.end();
                    resolve();
                });
                s.on("error", reject);
            });
        for (const name of ["registry", "registry.registry", "registry.registry.svc", "registry.registry.svc.cluster.local", "localhost"]) {
            await expect(handshake(name), name).resolves.toBeUndefined();
        }
        await expect(handshake(undefined)).resolves.toBeUndefined(); // checked against the IP
        await expect(handshake("registry.elsewhere.svc")).rejects.toThrow(/does not match certificate's altnames/);
    });

    test("skopeo pushes through the port-forward with the generated authfile and CA", async () => {
        const push = await cluster.push(image, "demo/app:v1");
        expect(push.stderr).toBe("");
        expect(push.code).toBe(0);
        const inspect = await skopeoInspect({ image: `docker://localhost:${cluster.port}/demo/app:v1`, ...cluster.client });
        expect((inspect.json as { Digest: string }).Digest).toBe(image.manifestDigest);
    });

    test("containerd pulls over CRI through the node's hosts.toml, reaching the ClusterIP with the pull secret's credentials", async () => {
        await criPull(cluster.containerd.socket, ref(), dep.pullAuth);
        const status = await criImageStatus(cluster.containerd.socket, ref());
        expect(status?.repo_digests).toContain(`${dep.outputs.host}/demo/app@${image.manifestDigest}`);
        await criRemove(cluster.containerd.socket, ref());
    });

    test("no pull secret: containerd pulls with no credentials in the request, through the node identity in hosts.toml", async () => {
        await criPull(cluster.containerd.socket, ref());
        await criRemove(cluster.containerd.socket, ref());
    });

    test("a client with neither the node identity nor a user's credentials is refused (401), and so is a wrong password", async () => {
        const manifest = `https://${HOSTED_IP}:${cluster.port}/v2/demo/app/manifests/v1`;
        // distribution answers 404 to a client that does not accept OCI manifests.
        const as = (authorization?: string) => ({
            caFile: cluster.client.caFile,
            headers: { Accept: "application/vnd.oci.image.manifest.v1+json", ...(authorization ? { Authorization: authorization } : {}) },
        });
        expect(await httpsStatus(manifest, as())).toBe(401);
        expect(await httpsStatus(manifest, as(basicAuth(dep.pullAuth.username, dep.pullAuth.password + "x")))).toBe(401);
        expect(await httpsStatus(manifest, as(basicAuth(dep.pullAuth.username, dep.pullAuth.password)))).toBe(200);
    });

    test("a node holding another run's CA cannot pull; the agent keeps a file someone else wrote, and writes its own once that is gone", async () => {
        const caOnNode = path.join(cluster.nodeCerts, dep.outputs.host, "ca.crt");
        fs.writeFileSync(caOnNode, other.outputs.caCertPem);
        await expect(criPull(cluster.containerd.socket, ref(), dep.pullAuth)).rejects.toThrow(/x509: certificate signed by unknown authority/);
        // Someone else changed a file the agent wrote: it is theirs now, kept and reported.
        const kept = await cluster.node.exec("apply");
        expect(kept.code).toBe(0);
        expect(kept.stdout + kept.stderr).toMatch(/ca\.crt was changed by someone else since this agent wrote it: keeping theirs/);
        expect(fs.readFileSync(caOnNode, "utf8")).toBe(other.outputs.caCertPem);
        // The admin removes it; the next apply writes this run's CA again and the pull works.
        fs.rmSync(caOnNode);
        expect((await cluster.node.exec("apply")).code).toBe(0);
        expect(fs.readFileSync(caOnNode, "utf8")).toBe(dep.outputs.caCertPem);
        await criPull(cluster.containerd.socket, ref(), dep.pullAuth);
        await criRemove(cluster.containerd.socket, ref());
    });

    test("an address that is not in the certificate's SANs fails TLS", async () => {
        await cluster.forward(MOVED_IP);
        const host = `moved.example:${cluster.port}`;
        for (const f of nodeFiles("test", dep.outputs.caCertPem, [
            { host, server: `https://${host}`, endpoint: `https://${MOVED_IP}:${cluster.port}`, capabilities: ["pull", "resolve"], serverIsOurs: true },
        ])) {
            fs.mkdirSync(path.join(cluster.nodeCerts, path.dirname(f.path)), { recursive: true });
            fs.writeFileSync(path.join(cluster.nodeCerts, f.path), f.content);
        }
        try {
            await expect(criPull(cluster.containerd.socket, `${host}/demo/app:v1`, dep.pullAuth)).rejects.toThrow(
                new RegExp(`x509: certificate is valid for .*not ${MOVED_IP.replace(/\./g, "\\.")}`),
            );
        } finally {
            fs.rmSync(path.join(cluster.nodeCerts, host), { recursive: true });
        }
    });

    test("another run's pull secret cannot push", async () => {
        const otherAuth = path.join(cluster.work, "other-auth.json");
        fs.writeFileSync(otherAuth, other.outputs.dockerConfigJson, { mode: 0o600 });
        const push = await cluster.push(image, "demo/intruder:v1", otherAuth);
        expect(push.code).not.toBe(0);
        expect(push.stderr).toMatch(/unauthorized|authentication required/i);
    });

    test("a registry restarted on the same volume still serves the image, byte for byte", async () => {
        await cluster.startHosted();
        await criPull(cluster.containerd.socket, ref(), dep.pullAuth);
        const status = await criImageStatus(cluster.containerd.socket, ref());
        expect(status?.repo_digests).toContain(`${dep.outputs.host}/demo/app@${image.manifestDigest}`);
        await criRemove(cluster.containerd.socket, ref());
    });

    test("applying the node script again changes nothing containerd reads, and another tool's hosts.toml is untouched", async () => {
        // The agent's own state (its lock lease, journal) may move; what containerd reads may not.
        const hostFiles = () => Object.fromEntries(Object.entries(snapshotTree(cluster.nodeCerts)).filter(([p]) => !p.startsWith(".cluster-registry")));
        const once = hostFiles();
        expect(once["other.example:5000/hosts.toml"]).toBe(cluster.nodeBefore["other.example:5000/hosts.toml"]);
        expect(Object.keys(once)).toContain(`${dep.outputs.host}/hosts.toml`);
        expect((await cluster.node.exec("apply")).code).toBe(0);
        expect(hostFiles()).toEqual(once);
    });

    test("uninstall (the DaemonSet gone, its pod stopped) puts the node back as it was", async () => {
        cluster.api.state = "gone";
        await cluster.nodeProc!.stop();
        expect(cluster.nodeProc!.log()).toContain("node-config: node restored");
        expect(snapshotTree(cluster.nodeCerts)).toEqual(cluster.nodeBefore);
    });
});
