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
import { ContainerdHandle, startContainerd } from "./harness/containerd";
import { criImageStatus, criPull, criRemove } from "./harness/cri";
import { nodeScript, NodeScript, snapshotTree, waitApplied } from "./harness/node";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { freePort, ProcHandle, stopAll } from "./harness/procs";
import { basicAuth, httpRequest, RegistryHandle } from "./harness/registry";
import { skopeoCopy, skopeoInspect } from "./harness/skopeo";
import { describeIntegration } from "./describe-integration";
import { deploy, Deployed, portForward, startRegistryFromDeployment, tempDir, writeClientFiles } from "./support";

const CLUSTER_IP = "127.0.0.2";
// A Service whose ClusterIP changed while nodes kept the old certificate: not in the SANs.
const MOVED_IP = "127.0.0.3";

describeIntegration("the generated registry, consumed by the real registry, skopeo and containerd", () => {
    let work: string;
    let port: number;
    let dep: Deployed;
    let other: Deployed;
    let caFile: string;
    let certDir: string;
    let authfile: string;
    let registry: RegistryHandle;
    let image: BuiltOciImage;
    let nodeCerts: string;
    let node: NodeScript;
    let nodeProc: ProcHandle;
    let containerd: ContainerdHandle;
    let nodeBefore: Record<string, string>;
    const forwards: Array<{ close(): Promise<void> }> = [];
    const ref = () => `${dep.outputs.host}/demo/app:v1`;
    // The same pod directory each time: its storage volume survives a restart, as a PVC does.
    const startHosted = () =>
        startRegistryFromDeployment(
            dep.cloud,
            dep.cloud.one("kubernetes:apps/v1:Deployment", "hosted"),
            path.join(work, "pod"),
            `${CLUSTER_IP}:${port}`,
            caFile,
        );

    beforeAll(async () => {
        work = tempDir("crit-");
        port = await freePort();
        dep = await deploy(CLUSTER_IP, { "cluster-registry:port": String(port) });
        // Another `pulumi up` on another stack: its own CA and credentials.
        other = await deploy(CLUSTER_IP, { "cluster-registry:port": String(port) });

        ({ caFile, certDir, authfile } = writeClientFiles(dep.outputs, work));

        registry = await startHosted();
        // `kubectl port-forward svc/registry PORT:PORT`, which is how the README says to push.
        forwards.push(await portForward({ host: "127.0.0.1", port }, { host: CLUSTER_IP, port }));

        image = await buildOciImage(path.join(work, "oci"), {
            tag: "v1",
            layers: [{ files: { "hello.txt": "hello from the private registry\n" } }, { randomBytes: 2 << 20 }],
        });

        nodeCerts = path.join(work, "node", "certs.d");
        fs.mkdirSync(path.join(nodeCerts, "other.example:5000"), { recursive: true });
        fs.writeFileSync(path.join(nodeCerts, "other.example:5000", "hosts.toml"), '# another tool\nserver = "https://other.example:5000"\n');
        nodeBefore = snapshotTree(nodeCerts);
        node = nodeScript(dep.cloud, work, nodeCerts);
        nodeProc = node.start(path.join(work, "node-config.log"));
        await waitApplied(nodeProc);

        containerd = await startContainerd({ workDir: path.join(work, "ctd"), certsDir: nodeCerts });
    });

    afterAll(async () => {
        for (const f of forwards) await f.close();
        await stopAll();
        if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test("the probe path answers over TLS without credentials; the API asks for them", async () => {
        const probe = dep.cloud.one("kubernetes:apps/v1:Deployment", "hosted").inputs.spec.template.spec.containers[0].readinessProbe.httpGet;
        const base = `${probe.scheme.toLowerCase()}://${CLUSTER_IP}:${port}`;
        expect((await httpRequest(`${base}${probe.path}`, { caFile })).status).toBe(200);
        expect((await httpRequest(`${base}/v2/`, { caFile })).status).toBe(401);
        const { username, password } = dep.pullAuth;
        expect((await httpRequest(`${base}/v2/`, { caFile, headers: { Authorization: basicAuth(username, password) } })).status).toBe(200);
    });

    test("the certificate verifies against the CA for every DNS SAN and the ClusterIP, and for no other name", async () => {
        const handshake = (servername?: string) =>
            new Promise<void>((resolve, reject) => {
                const s = tls.connect({ host: CLUSTER_IP, port, ca: dep.outputs.caCertPem, servername }, () => {
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
        const push = await skopeoCopy({ src: image.ref, dest: `docker://localhost:${port}/demo/app:v1`, authfile, certDir });
        expect(push.stderr).toBe("");
        expect(push.code).toBe(0);
        const inspect = await skopeoInspect({ image: `docker://localhost:${port}/demo/app:v1`, authfile, certDir });
        expect((inspect.json as { Digest: string }).Digest).toBe(image.manifestDigest);
    });

    test("containerd pulls over CRI through the node's hosts.toml, reaching the ClusterIP with the pull secret's credentials", async () => {
        await criPull(containerd.socket, ref(), dep.pullAuth);
        const status = await criImageStatus(containerd.socket, ref());
        expect(status?.repo_digests).toContain(`${dep.outputs.host}/demo/app@${image.manifestDigest}`);
        await criRemove(containerd.socket, ref());
    });

    test("without credentials the pull is refused (401)", async () => {
        await expect(criPull(containerd.socket, ref())).rejects.toThrow(/401 Unauthorized/);
    });

    test("with a wrong password the pull is refused (401)", async () => {
        await expect(criPull(containerd.socket, ref(), { username: dep.pullAuth.username, password: dep.pullAuth.password + "x" })).rejects.toThrow(
            /401 Unauthorized/,
        );
    });

    test("a node holding another run's CA cannot pull, and the DaemonSet's next apply repairs it", async () => {
        const caOnNode = path.join(nodeCerts, dep.outputs.host, "ca.crt");
        fs.writeFileSync(caOnNode, other.outputs.caCertPem);
        await expect(criPull(containerd.socket, ref(), dep.pullAuth)).rejects.toThrow(/x509: certificate signed by unknown authority/);
        const apply = await node.exec("apply");
        expect(apply.code).toBe(0);
        expect(fs.readFileSync(caOnNode, "utf8")).toBe(dep.outputs.caCertPem);
        await criPull(containerd.socket, ref(), dep.pullAuth);
        await criRemove(containerd.socket, ref());
    });

    test("an address that is not in the certificate's SANs fails TLS", async () => {
        forwards.push(await portForward({ host: MOVED_IP, port }, { host: CLUSTER_IP, port }));
        const host = `moved.example:${port}`;
        for (const f of nodeFiles("test", dep.outputs.caCertPem, [
            { host, server: `https://${host}`, endpoint: `https://${MOVED_IP}:${port}`, capabilities: ["pull", "resolve"], serverIsOurs: true },
        ])) {
            fs.mkdirSync(path.join(nodeCerts, path.dirname(f.path)), { recursive: true });
            fs.writeFileSync(path.join(nodeCerts, f.path), f.content);
        }
        try {
            await expect(criPull(containerd.socket, `${host}/demo/app:v1`, dep.pullAuth)).rejects.toThrow(
                new RegExp(`x509: certificate is valid for .*not ${MOVED_IP.replace(/\./g, "\\.")}`),
            );
        } finally {
            fs.rmSync(path.join(nodeCerts, host), { recursive: true });
        }
    });

    test("another run's pull secret cannot push", async () => {
        const otherAuth = path.join(work, "other-auth.json");
        fs.writeFileSync(otherAuth, other.outputs.dockerConfigJson, { mode: 0o600 });
        const push = await skopeoCopy({ src: image.ref, dest: `docker://localhost:${port}/demo/intruder:v1`, authfile: otherAuth, certDir });
        expect(push.code).not.toBe(0);
        expect(push.stderr).toMatch(/unauthorized|authentication required/i);
    });

    test("a registry restarted on the same volume still serves the image, byte for byte", async () => {
        await registry.stop();
        registry = await startHosted();
        await criPull(containerd.socket, ref(), dep.pullAuth);
        const status = await criImageStatus(containerd.socket, ref());
        expect(status?.repo_digests).toContain(`${dep.outputs.host}/demo/app@${image.manifestDigest}`);
        await criRemove(containerd.socket, ref());
    });

    test("applying the node script again changes nothing, and another tool's hosts.toml is untouched", async () => {
        const once = snapshotTree(nodeCerts);
        expect(once["other.example:5000/hosts.toml"]).toBe(nodeBefore["other.example:5000/hosts.toml"]);
        expect(Object.keys(once)).toContain(`${dep.outputs.host}/hosts.toml`);
        expect((await node.exec("apply")).code).toBe(0);
        expect(snapshotTree(nodeCerts)).toEqual(once);
    });

    test("stopping the DaemonSet's pod (SIGTERM) puts the node back as it was", async () => {
        await nodeProc.stop();
        expect(nodeProc.log()).toContain("node-config: node restored");
        expect(snapshotTree(nodeCerts)).toEqual(nodeBefore);
    });
});
