/** ClusterRegistry as a component other programs build on: their provider, their args, checked first. */
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import YAML from "yaml";
import { ClusterRegistry } from "../../components";
import { NODE_IDENTITY, PULL_IDENTITY } from "../../components/credentials";
import { ConfigError } from "../../components/resolve-settings";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { nodeFileOf, runWithServiceIps } from "../support/program";
import { ENTRY } from "../support/stacks";
import { certFacts } from "../support/x509";

const OWN_PROVIDER_PROGRAM = path.join(__dirname, "../support/programs/own-provider.ts");

describe("ClusterRegistry in a program that makes its own cluster", () => {
    test("every Kubernetes object it creates uses the provider the program passes", async () => {
        const cloud = new FakeCloud({ clusterIP: () => "10.100.0.10" });
        const { outputs } = await runProgram(cloud, { config: {}, entry: OWN_PROVIDER_PROGRAM });
        expect(outputs.host).toBe("registry.platform-registry.svc.cluster.local:5000");
        const provider = cloud.one("pulumi:providers:kubernetes", "my-cluster");
        const objects = cloud.resources.filter((r) => r.type.startsWith("kubernetes:"));
        // Namespace, Services, Deployments, DaemonSet, Secrets, ConfigMaps, claims: all of them.
        expect(objects.length).toBeGreaterThan(10);
        for (const r of objects) expect(r.provider, `${r.type} ${r.name}`).toBe(`${provider.urn}::${provider.id}`);
    });

    test("bad args throw one ConfigError naming every problem, before anything is registered", async () => {
        const make = () => new ClusterRegistry("r", { environment: "eks", port: 0, storageSize: "50", caches: ["Docker.io"] });
        expect(make).toThrow(ConfigError);
        expect(make).toThrow(
            /ClusterRegistry r: port: "0" is not valid[\s\S]*ClusterRegistry r: storageSize: "50" is not valid[\s\S]*ClusterRegistry r: caches/,
        );
    });
});

describe("secrets stay secret (issue 11)", () => {
    test("no pull secret: no credential of any identity is in a ConfigMap, a plain input outside Secrets, or a plain output", async () => {
        const cloud = new FakeCloud({ clusterIP: (name) => (name.includes("cache") ? "10.96.0.20" : "10.96.0.10") });
        const { outputs, secretOutputs } = await runProgram(cloud, { config: { "cluster-registry:caches": '["docker.io"]' }, entry: ENTRY });
        const randoms = cloud.byType("random:index/randomPassword:RandomPassword");
        // admin, the pull-only identity, the node identity; and each registry's http.secret
        expect(randoms.filter((r) => !r.name.endsWith("-http-secret"))).toHaveLength(3);
        const passwords = randoms.map((r) => r.outputs.result as string);
        const forms = passwords.flatMap((p) => [p, ...["admin", PULL_IDENTITY, NODE_IDENTITY].map((u) => Buffer.from(`${u}:${p}`).toString("base64"))]);
        for (const r of cloud.resources) {
            const plain = r.type === "kubernetes:core/v1:Secret" ? "" : JSON.stringify(r.inputs);
            for (const f of forms) expect(plain.includes(f), `${r.type} ${r.name}`).toBe(false);
        }
        for (const [k, v] of Object.entries(outputs)) {
            if (secretOutputs.has(k)) continue;
            for (const f of forms) expect(JSON.stringify(v).includes(f), `output ${k}`).toBe(false);
        }
        for (const k of ["passwords", "dockerConfigJson", "pushDockerConfigJson", "k3sRegistriesYaml", "bottlerocketSettings"])
            expect(secretOutputs.has(k), k).toBe(true);
        // Every Secret that carries a credential marks it secret.
        for (const s of cloud.byType("kubernetes:core/v1:Secret")) {
            if (forms.some((f) => JSON.stringify(s.inputs.stringData ?? {}).includes(f))) expect(s.secretInputs, s.name).toContain("stringData");
        }
    });
});

describe("the privileged part alone", () => {
    const NS = ["kubernetes:core/v1:Namespace", "kubernetes:core/v1:NamespacePatch"];
    const run = async (config: Record<string, string>) => {
        const cloud = new FakeCloud({ clusterIP: () => "10.96.0.10" });
        await runProgram(cloud, { config, entry: path.join(__dirname, "../../index.ts") });
        return cloud;
    };
    const level = (cloud: FakeCloud, ns: string) =>
        cloud.resources.filter((r) => NS.includes(r.type)).find((r) => r.inputs.metadata.name === ns)?.inputs.metadata.labels[
            "pod-security.kubernetes.io/enforce"
        ];

    test("the node agent and everything it reads live in a privileged namespace of their own; the registries' namespace enforces restricted", async () => {
        const cloud = await run({ "cluster-registry:environment": "eks", "cluster-registry:caches": '["docker.io"]' });
        expect(level(cloud, "registry-node-agent")).toBe("privileged");
        expect(level(cloud, "registry")).toBe("restricted");
        const inAgentNamespace = cloud.resources.filter((r) => r.type.startsWith("kubernetes:") && r.inputs.metadata?.namespace === "registry-node-agent");
        expect(inAgentNamespace.map((r) => r.type).sort()).toEqual(
            [
                "kubernetes:apps/v1:DaemonSet",
                "kubernetes:core/v1:ConfigMap",
                "kubernetes:core/v1:Secret",
                "kubernetes:core/v1:ServiceAccount",
                "kubernetes:rbac.authorization.k8s.io/v1:Role",
                "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
            ].sort(),
        );
        // Nothing that runs in the registries' namespace asks for more than restricted allows.
        for (const d of cloud.byType("kubernetes:apps/v1:Deployment")) {
            const pod = d.inputs.spec.template.spec;
            expect(
                pod.volumes.filter((v: Record<string, unknown>) => v.hostPath),
                d.name,
            ).toEqual([]);
            for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
                expect(c.securityContext, `${d.name} ${c.name}`).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
            }
            expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
        }
    });

    test("on kind, caches in a node directory need privileged in the registries' namespace too, and say so by its label", async () => {
        const cloud = await run({ "cluster-registry:caches": '["docker.io"]' });
        expect(level(cloud, "registry")).toBe("privileged");
        expect(level(cloud, "registry-node-agent")).toBe("privileged");
        expect(level(await run({ "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheHostPath": "" }), "registry")).toBe("restricted");
    });

    test("the agent's namespace cannot be the registries' own, nor a namespace every cluster already has", () => {
        expect(() => new ClusterRegistry("r", { nodeAgentNamespace: "registry" })).toThrow(/nodeAgentNamespace: is the registries' namespace/);
        expect(() => new ClusterRegistry("r", { nodeAgentNamespace: "kube-system" })).toThrow(/nodeAgentNamespace: "kube-system" cannot be created/);
        expect(() => new ClusterRegistry("r", { namespace: "a".repeat(60) })).toThrow(/nodeAgentNamespace: "a+-node-agent", made from namespace, is too long/);
    });
});

describe("caches and the mirrors nodes use for them", () => {
    test("each upstream gets its own proxy registry, volume, Service and certificate from the same CA", async () => {
        const { cloud, outputs } = await runWithServiceIps({
            "cluster-registry:environment": "eks",
            "cluster-registry:caches": '["docker.io","quay.io"]',
            "cluster-registry:cacheStorageSize": "30Gi",
        });
        expect(outputs.caches).toEqual({ "docker.io": "https://10.96.0.20:5000", "quay.io": "https://10.96.0.21:5000" });
        const config: string = cloud.one("kubernetes:core/v1:ConfigMap", "cache-docker-io-config").inputs.data["config.yml"];
        expect(config).toContain("proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 168h\n");
        expect(config).toContain("delete:\n    enabled: true");
        // The cache admits the node identity only: pods reach upstream images through their node.
        expect(config).toContain("auth:\n  htpasswd:");
        expect(cloud.one("kubernetes:core/v1:PersistentVolumeClaim", "cache-docker-io-storage").inputs.spec.resources.requests.storage).toBe("30Gi");
        expect(cloud.one("kubernetes:core/v1:Service", "cache-docker-io-service").inputs.metadata.name).toBe("cache-docker-io");
        const cert = certFacts(cloud.one("tls:index/locallySignedCert:LocallySignedCert", "cache-docker-io-tls-cert").outputs.certPem);
        expect(cert.ipAddresses).toEqual(["10.96.0.20", "127.0.0.1"]);
        expect(cert.dnsNames).toContain("cache-docker-io.registry.svc.cluster.local");
        expect(cert.issuer).toBe(certFacts(outputs.caCertPem as string).subject);
        const pod = cloud.one("kubernetes:apps/v1:Deployment", "cache-docker-io").inputs.spec.template.spec;
        expect(pod.volumes.map((v: { name: string }) => v.name)).toContain("auth");
        expect(pod.initContainers).toEqual([]);
    });

    test("on kind, caches live in a node directory the kind config mounts from the machine, owned for the registry's user", async () => {
        const { cloud, outputs } = await runWithServiceIps({ "cluster-registry:caches": '["docker.io"]' });
        expect(cloud.byType("kubernetes:core/v1:PersistentVolumeClaimPatch").map((p) => p.name)).toEqual(["registry-hosted-storage"]);
        expect(cloud.byType("kubernetes:core/v1:PersistentVolumeClaim")).toEqual([]);
        const pod = cloud.one("kubernetes:apps/v1:Deployment", "cache-docker-io").inputs.spec.template.spec;
        expect(pod.volumes.find((v: { name: string }) => v.name === "storage")).toEqual({
            name: "storage",
            hostPath: { path: "/var/lib/cluster-registry/caches/cache-docker-io", type: "DirectoryOrCreate" },
        });
        const [init] = pod.initContainers;
        expect(init.command).toEqual(["chown", "1000:1000", "/var/lib/registry"]);
        expect(init.securityContext).toMatchObject({
            runAsUser: 0,
            capabilities: { drop: ["ALL"], add: ["CHOWN"] },
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
        });
        expect(outputs.kindClusterConfig).toContain(
            "nodes:\n  - role: control-plane\n    extraMounts:\n      - hostPath: /var/tmp/cluster-registry-caches\n        containerPath: /var/lib/cluster-registry/caches\n",
        );
        // Without the node directory, the cache has a claim beside the hosted registry's (kept: a patch).
        const { cloud: claims } = await runWithServiceIps({ "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheHostPath": "" });
        expect(claims.byType("kubernetes:core/v1:PersistentVolumeClaim").map((c) => c.name)).toEqual(["registry-cache-docker-io-storage"]);
    });

    test("fail-open mirrors fall back to the upstream; fail-closed mirrors fall back to the cache itself", async () => {
        // Node pulls off: the files as they are without the node identity's header (tested below).
        const open = (await runWithServiceIps({ "cluster-registry:caches": '["docker.io"]', "cluster-registry:nodePulls": "false" })).cloud;
        expect(nodeFileOf(open, "docker.io/hosts.toml")).toBe(
            "# Written by cluster-registry (registry.registry). Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://registry-1.docker.io"\n\n[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n',
        );
        const closed = (
            await runWithServiceIps({
                "cluster-registry:caches": '["docker.io"]',
                "cluster-registry:mirrorFallback": "none",
                "cluster-registry:nodePulls": "false",
            })
        ).cloud;
        expect(nodeFileOf(closed, "docker.io/hosts.toml")).toBe(
            "# Written by cluster-registry (registry.registry). Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://10.96.0.20:5000"\nca = "ca.crt"\n\n[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n',
        );
        expect(nodeFileOf(closed, "docker.io/ca.crt")).toContain("-----BEGIN CERTIFICATE-----");
    });

    test("with node pulls (the default), a mirror's hosts.toml sends the node identity to the cache and never to the upstream", async () => {
        const { cloud, outputs } = await runWithServiceIps({ "cluster-registry:caches": '["docker.io"]' });
        const file = nodeFileOf(cloud, "docker.io/hosts.toml");
        const auth = (YAML.parse(outputs.k3sRegistriesYaml as string) as { configs: Record<string, { auth: { username: string; password: string } }> }).configs[
            "10.96.0.20:5000"
        ].auth;
        const basic = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
        expect(file).toBe(
            "# Written by cluster-registry (registry.registry). Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://registry-1.docker.io"\n\n[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n\n' +
                `[host."https://10.96.0.20:5000".header]\nAuthorization = "${basic}"\n`,
        );
    });
});
