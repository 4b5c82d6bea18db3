/** Issue 16, step 3: caches that survive a pod: replicas with storage of their own, all listed for nodes. */
import { describe, expect, test } from "vitest";
import * as TOML from "smol-toml";
import YAML from "yaml";
import { renderHostsToml } from "../../components/render/hosts-toml";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ENTRY } from "../support/stacks";
import { RESOURCE_TYPES } from "../support/resource-types";
import { certFacts } from "../support/x509";

const T = RESOURCE_TYPES;
const IPS: Record<string, string> = {
    "registry-hosted-service": "10.96.0.10",
    "registry-cache-docker-io-service": "10.96.0.20",
    "registry-cache-docker-io-1-service": "10.96.0.21",
    "registry-cache-docker-io-2-service": "10.96.0.22",
};
const THREE = { "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheReplicas": "3", "cluster-registry:cacheHostPath": "" };

async function run(config: Record<string, string>, cloud = new FakeCloud({ clusterIP: (name) => IPS[name] ?? "10.96.0.99" })) {
    await runProgram(cloud, { config, entry: ENTRY });
    return cloud;
}

/** docker.io's hosts.toml as the node agent writes it. */
function dockerIoHostsToml(cloud: FakeCloud): string {
    const data: Record<string, string> = cloud.one(T.secret, "node-config-files").inputs.stringData;
    const line = data.manifest.split("\n").find((l) => l.endsWith(" docker.io/hosts.toml"))!;
    return data[line.split(" ")[0]];
}

describe("hosts.toml with fallbacks", () => {
    test("lists every replica after the first, in order, each with the CA and the node identity", () => {
        expect(
            renderHostsToml({
                owner: "o",
                server: "https://10.96.0.20:5000",
                endpoint: "https://10.96.0.20:5000",
                fallbacks: ["https://10.96.0.21:5000"],
                capabilities: ["pull", "resolve"],
                ca: "ca.crt",
                serverIsOurs: true,
                header: { Authorization: "Basic bm9kZTpwdw==" },
            }),
        ).toBe(
            "# Written by o. Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://10.96.0.20:5000"\nca = "ca.crt"\n\n' +
                '[header]\nAuthorization = "Basic bm9kZTpwdw=="\n\n' +
                '[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n\n' +
                '[host."https://10.96.0.20:5000".header]\nAuthorization = "Basic bm9kZTpwdw=="\n\n' +
                '[host."https://10.96.0.21:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n\n' +
                '[host."https://10.96.0.21:5000".header]\nAuthorization = "Basic bm9kZTpwdw=="\n',
        );
    });
});

describe("cache replicas", () => {
    test("each replica is a registry of its own: its own claim, Service, certificate for its ClusterIP, and http.secret", async () => {
        const cloud = await run(THREE);
        const names = ["cache-docker-io", "cache-docker-io-1", "cache-docker-io-2"];
        const claims = names.map((n) => cloud.one(T.deploy, `registry-${n}`).inputs.spec.template.spec.volumes.find((v: any) => v.name === "storage"));
        expect(new Set(claims.map((c) => c.persistentVolumeClaim.claimName)).size).toBe(3);
        expect(cloud.byType(T.pvc)).toHaveLength(3);
        expect(cloud.byType(T.pvcPatch)).toHaveLength(1);
        names.forEach((n, i) => {
            const svc = cloud.one(T.svc, `registry-${n}-service`);
            expect(svc.inputs.metadata.name).toBe(n);
            expect(certFacts(cloud.one(T.signed, `registry-${n}-tls-cert`).outputs.certPem).ipAddresses).toContain(`10.96.0.2${i}`);
            const config = YAML.parse(cloud.one(T.cm, `registry-${n}-config`).inputs.data["config.yml"]);
            expect(config.proxy.remoteurl).toBe("https://registry-1.docker.io");
        });
        const secrets = names.map((n) => cloud.one(T.secret, `registry-${n}-http`).inputs.stringData["http-secret"]);
        expect(new Set(secrets).size).toBe(3);
    });

    test("kind's node directories: one per replica, never shared", async () => {
        const cloud = await run({ "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheReplicas": "2" });
        const dirs = ["cache-docker-io", "cache-docker-io-1"].map(
            (n) => cloud.one(T.deploy, `registry-${n}`).inputs.spec.template.spec.volumes.find((v: any) => v.name === "storage").hostPath.path,
        );
        expect(new Set(dirs).size).toBe(2);
    });

    test("fail-closed: nodes try every replica in order, then the first again, never the upstream", async () => {
        const cloud = await run({ ...THREE, "cluster-registry:mirrorFallback": "none" });
        const toml = TOML.parse(dockerIoHostsToml(cloud)) as any;
        expect(toml.server).toBe("https://10.96.0.20:5000");
        expect(Object.keys(toml.host)).toEqual(["https://10.96.0.20:5000", "https://10.96.0.21:5000", "https://10.96.0.22:5000"]);
        for (const h of Object.values<any>(toml.host)) expect(h.header.Authorization).toMatch(/^Basic /);
    });

    test("fail-open: every replica first, then the upstream", async () => {
        const cloud = await run(THREE);
        const toml = TOML.parse(dockerIoHostsToml(cloud)) as any;
        expect(toml.server).toBe("https://registry-1.docker.io");
        expect(Object.keys(toml.host)).toHaveLength(3);
    });

    test("one replica (the default) keeps the names and hosts.toml a stack had before replicas existed", async () => {
        const cloud = await run({ "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheHostPath": "" });
        expect(
            cloud
                .byType(T.deploy)
                .map((d) => d.name)
                .sort(),
        ).toEqual(["registry-cache-docker-io", "registry-hosted"]);
        expect(Object.keys((TOML.parse(dockerIoHostsToml(cloud)) as any).host)).toEqual(["https://10.96.0.20:5000"]);
    });
});

describe("node snippets with cache replicas", () => {
    test("k3s registries.yaml and Bottlerocket settings list every replica in order, each with the CA and the node identity", async () => {
        const cloud = new FakeCloud({ clusterIP: (name) => IPS[name] ?? "10.96.0.99" });
        const { outputs } = await runProgram(cloud, { config: { ...THREE, "cluster-registry:environment": "k3d" }, entry: ENTRY });
        const k3s = YAML.parse(outputs.k3sRegistriesYaml as string);
        const replicas = ["10.96.0.20:5000", "10.96.0.21:5000", "10.96.0.22:5000"];
        expect(k3s.mirrors["docker.io"].endpoint).toEqual(replicas.map((r) => `https://${r}`));
        for (const r of replicas) expect(k3s.configs[r]).toMatchObject({ auth: { username: "cluster-registry-node" }, tls: { ca_file: expect.any(String) } });
        const rocket = TOML.parse(outputs.bottlerocketSettings as string) as any;
        const mirror = rocket.settings["container-registry"].mirrors.find((m: { registry: string }) => m.registry === "docker.io");
        expect(mirror.endpoint).toEqual(replicas.map((r) => `https://${r}`));
        const credentialed = rocket.settings["container-registry"].credentials.map((c: { registry: string }) => c.registry);
        for (const r of replicas) expect(credentialed).toContain(r);
    });
});
