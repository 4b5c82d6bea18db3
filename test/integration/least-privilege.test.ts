/**
 * Issue 11, least privilege, proven with the real distribution 2.8 and containerd 1.6: the hosted
 * registry's pod runs a read-only container on the registry port (pulls: the pull-only identity, the
 * node identity, pushers) and a read-write one on the push port (pushers only), over one volume.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import YAML from "yaml";
import { NODE_IDENTITY } from "../../components/credentials";
import { renderDockerConfigJson } from "../../components/render/docker-config";
import { renderHostsToml } from "../../components/render/hosts-toml";
import { criImageStatus, criPull, criRemove } from "./harness/cri";
import { buildOciImage, BuiltOciImage } from "./harness/oci";
import { basicAuth, httpsStatus } from "./harness/registry";
import { skopeoCopy, skopeoInspect } from "./harness/skopeo";
import { describeIntegration } from "./describe-integration";
import { HOSTED_IP, LoopbackCluster } from "./support";

describeIntegration("least privilege: read-only pulls, pushes on their own port, nodes with their own identity", () => {
    let cluster: LoopbackCluster;
    let image: BuiltOciImage;
    let other: BuiltOciImage;
    const pullPort = () => `${HOSTED_IP}:${cluster.port}`;
    const pushPort = () => `${HOSTED_IP}:${cluster.pushPort}`;
    const pullAuth = () => cluster.dep.pullAuth;
    /** The node identity, as the k3s registries.yaml output carries it for the hosted registry's endpoint. */
    const nodeAuth = () => {
        const doc = YAML.parse(cluster.dep.outputs.k3sRegistriesYaml as string) as {
            configs: Record<string, { auth?: { username: string; password: string } }>;
        };
        return doc.configs[pullPort()].auth!;
    };
    /** An authfile for any host, with given credentials. */
    const authfile = (name: string, hosts: string[], a: { username: string; password: string }) => {
        const f = path.join(cluster.work, `${name}.json`);
        fs.writeFileSync(f, renderDockerConfigJson(hosts, a.username, a.password), { mode: 0o600 });
        return f;
    };
    /** The digest a tag names, read through the read-only port with the pull-only identity. */
    const digestOf = async (repoTag: string) => {
        const file = authfile("pull-only-read", [pullPort()], pullAuth());
        const inspect = await skopeoInspect({ image: `docker://${pullPort()}/${repoTag}`, authfile: file, certDir: cluster.client.certDir });
        return (inspect.json as { Digest: string } | undefined)?.Digest ?? inspect.stderr;
    };

    beforeAll(async () => {
        cluster = await LoopbackCluster.start({ prefix: "crlp-", nodeMode: "apply" });
        image = await buildOciImage(path.join(cluster.work, "oci"), { tag: "v1", layers: [{ files: { "a.txt": "the real one\n" } }] });
        other = await buildOciImage(path.join(cluster.work, "oci-other"), { tag: "v1", layers: [{ files: { "a.txt": "an impostor\n" } }] });
        const push = await cluster.push(image, "team/app:v1");
        expect(push.code, push.stderr).toBe(0);
    });

    afterAll(() => cluster?.stop());

    test("push: a pusher pushes through the push port, and the image is pulled through the read-only port", async () => {
        expect(await digestOf("team/app:v1")).toBe(image.manifestDigest);
        await criPull(cluster.containerd.socket, cluster.ref("team/app:v1"), pullAuth());
        expect((await criImageStatus(cluster.containerd.socket, cluster.ref("team/app:v1")))?.repo_digests).toContain(
            `${cluster.dep.outputs.host}/team/app@${image.manifestDigest}`,
        );
        await criRemove(cluster.containerd.socket, cluster.ref("team/app:v1"));
    });

    test("pull-only identity is refused on push, on the registry port (read-only) and on the push port (not a pusher)", async () => {
        const file = authfile("pull-only", [pullPort(), pushPort()], pullAuth());
        for (const host of [pullPort(), pushPort()]) {
            const push = await skopeoCopy({ src: other.ref, dest: `docker://${host}/team/new:v1`, authfile: file, certDir: cluster.client.certDir });
            expect(push.code, host).not.toBe(0);
        }
        expect(
            await httpsStatus(`https://${pushPort()}/v2/`, {
                caFile: cluster.client.caFile,
                headers: { Authorization: basicAuth(pullAuth().username, pullAuth().password) },
            }),
        ).toBe(401);
    });

    test("pull-only identity is refused on overwriting a tag: the tag still names the pusher's image", async () => {
        const file = authfile("pull-only-tag", [pullPort()], pullAuth());
        const push = await skopeoCopy({ src: other.ref, dest: `docker://${pullPort()}/team/app:v1`, authfile: file, certDir: cluster.client.certDir });
        expect(push.code).not.toBe(0);
        expect(push.stderr).toMatch(/unsupported|read-only|405|Method Not Allowed/i);
        expect(await digestOf("team/app:v1")).toBe(image.manifestDigest);
    });

    test("pull-only identity is refused on delete; the manifest is still there", async () => {
        const headers = { Authorization: basicAuth(pullAuth().username, pullAuth().password) };
        const url = `https://${pullPort()}/v2/team/app/manifests/${image.manifestDigest}`;
        const status = await new Promise<number>((resolve, reject) => {
            // httpsStatus only GETs: a DELETE by hand, verified against the CA.
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const req = (require("node:https") as typeof import("node:https")).request(
                url,
                { method: "DELETE", headers, ca: fs.readFileSync(cluster.client.caFile), agent: false },
                (res) => {
                    res.resume();
                    resolve(res.statusCode ?? 0);
                },
            );
            req.on("error", reject);
            req.end();
        });
        expect(status).toBe(405);
        expect(await digestOf("team/app:v1")).toBe(image.manifestDigest);
    });

    test("abandoned uploads: the read-write container runs distribution's upload purger with the program's age, the read-only one none", async () => {
        const config = (r: typeof cluster.hosted) => YAML.parse(fs.readFileSync(r.configFile, "utf8")) as { storage: { maintenance: any } };
        // distribution parses age and interval at start (a bad one panics) and then logs the first run's delay.
        expect(cluster.hostedPush.proc.log()).toMatch(/Starting upload purge in \d+m/);
        expect(config(cluster.hostedPush).storage.maintenance.uploadpurging).toMatchObject({ enabled: true, dryrun: false });
        // Hours, not distribution's default week: an abandoned push stays at most age + interval.
        const hours = (d: string) => Number(/^(\d+)h$/.exec(d)?.[1] ?? NaN);
        const { age, interval } = config(cluster.hostedPush).storage.maintenance.uploadpurging as { age: string; interval: string };
        expect(hours(age) + hours(interval)).toBeLessThanOrEqual(6);
        expect(cluster.hosted.proc.log()).not.toContain("Starting upload purge");
    });

    test("push: even a pusher cannot write through the read-only port; the server refuses, whoever asks", async () => {
        const pusher = JSON.parse(cluster.dep.outputs.pushDockerConfigJson as string).auths[`localhost:${cluster.port}`] as {
            username: string;
            password: string;
        };
        const file = authfile("pusher-on-pull-port", [pullPort()], pusher);
        const push = await skopeoCopy({ src: other.ref, dest: `docker://${pullPort()}/team/app:v1`, authfile: file, certDir: cluster.client.certDir });
        expect(push.code).not.toBe(0);
        expect(await digestOf("team/app:v1")).toBe(image.manifestDigest);
    });

    test("no pull secret: containerd 1.6 pulls over CRI with NO credentials, sending the node identity from hosts.toml's header", async () => {
        // The hosted registry's own hosts.toml as renderHostsToml writes it with the node identity, under
        // a name of its own so the agent's files stay as they are.
        const host = `node-identity.example:${cluster.port}`;
        const write = (header?: Record<string, string>) => {
            fs.mkdirSync(path.join(cluster.nodeCerts, host), { recursive: true });
            fs.writeFileSync(path.join(cluster.nodeCerts, host, "ca.crt"), cluster.dep.outputs.caCertPem as string);
            const toml = renderHostsToml({
                owner: "test",
                server: `https://${host}`,
                endpoint: `https://${pullPort()}`,
                capabilities: ["pull", "resolve"],
                ca: "ca.crt",
                serverIsOurs: true,
                header,
            });
            fs.writeFileSync(path.join(cluster.nodeCerts, host, "hosts.toml"), toml, { mode: 0o600 });
        };
        try {
            write();
            await expect(criPull(cluster.containerd.socket, `${host}/team/app:v1`)).rejects.toThrow(/401 Unauthorized/);
            const { username, password } = nodeAuth();
            expect(username).toBe(NODE_IDENTITY);
            write({ Authorization: basicAuth(username, password) });
            await criPull(cluster.containerd.socket, `${host}/team/app:v1`);
            expect((await criImageStatus(cluster.containerd.socket, `${host}/team/app:v1`))?.repo_digests).toContain(
                `${host}/team/app@${image.manifestDigest}`,
            );
            await criRemove(cluster.containerd.socket, `${host}/team/app:v1`);
        } finally {
            fs.rmSync(path.join(cluster.nodeCerts, host), { recursive: true, force: true });
        }
    });

    test("no pull secret: the node identity may pull but is refused on the push port", async () => {
        const { username, password } = nodeAuth();
        const headers = { Authorization: basicAuth(username, password), Accept: "application/vnd.oci.image.manifest.v1+json" };
        expect(await httpsStatus(`https://${pullPort()}/v2/team/app/manifests/v1`, { caFile: cluster.client.caFile, headers })).toBe(200);
        expect(await httpsStatus(`https://${pushPort()}/v2/`, { caFile: cluster.client.caFile, headers })).toBe(401);
    });

    test("no pull secret: the agent's hosts.toml for the hosted registry carries the node identity, and the file is root-only (0600)", () => {
        const file = path.join(cluster.nodeCerts, cluster.dep.outputs.host as string, "hosts.toml");
        expect(fs.readFileSync(file, "utf8")).toContain(`Authorization = "${basicAuth(nodeAuth().username, nodeAuth().password)}"`);
        expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    });
});
