/** Pull-through caches, mirrors, discovery and the snippets for what a DaemonSet cannot do. */
import { describe, expect, test } from "vitest";
import YAML from "yaml";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ENTRY } from "../support/stacks";
import { certFacts } from "../support/x509";

const IPS: Record<string, string> = {
    "registry-hosted-service": "10.96.0.10",
    "registry-cache-docker-io-service": "10.96.0.20",
    "registry-cache-quay-io-service": "10.96.0.21",
};
const SECRET_KEYS = ["cluster-registry:cacheCredentials"];

async function run(config: Record<string, string>, cloud = new FakeCloud({ clusterIP: (name) => IPS[name] ?? "10.96.0.99" })) {
    const { outputs, secretOutputs } = await runProgram(cloud, { config, secretKeys: SECRET_KEYS, entry: ENTRY });
    return { cloud, outputs, secretOutputs };
}

/** The file the node agent writes at a path, looked up through its Secret's manifest. */
function nodeFile(data: Record<string, string>, path: string): string {
    const line = data.manifest.split("\n").find((l) => l.endsWith(` ${path}`));
    expect(line, `the node agent writes ${path}`).toBeDefined();
    return data[line!.split(" ")[0]];
}

function nodeFilesOf(cloud: FakeCloud): Record<string, string> {
    return cloud.one("kubernetes:core/v1:Secret", "node-config-files").inputs.stringData;
}

describe("caches in the program", () => {
    test("each upstream gets its own proxy registry, volume, Service and certificate from the same CA", async () => {
        const { cloud, outputs } = await run({
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
        const { cloud, outputs } = await run({ "cluster-registry:caches": '["docker.io"]' });
        expect(cloud.byType("kubernetes:core/v1:PersistentVolumeClaim").map((p) => p.name)).toEqual(["registry-hosted-storage"]);
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
        expect(
            (await run({ "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheHostPath": "" })).cloud.byType(
                "kubernetes:core/v1:PersistentVolumeClaim",
            ),
        ).toHaveLength(2);
    });

    test("fail-open mirrors fall back to the upstream; fail-closed mirrors fall back to the cache itself", async () => {
        // Node pulls off: the files as they are without the node identity's header (tested below).
        const open = nodeFilesOf((await run({ "cluster-registry:caches": '["docker.io"]', "cluster-registry:nodePulls": "false" })).cloud);
        expect(nodeFile(open, "docker.io/hosts.toml")).toBe(
            "# Written by cluster-registry (registry.registry). Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://registry-1.docker.io"\n\n[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n',
        );
        const closed = nodeFilesOf(
            (await run({ "cluster-registry:caches": '["docker.io"]', "cluster-registry:mirrorFallback": "none", "cluster-registry:nodePulls": "false" })).cloud,
        );
        expect(nodeFile(closed, "docker.io/hosts.toml")).toBe(
            "# Written by cluster-registry (registry.registry). Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://10.96.0.20:5000"\nca = "ca.crt"\n\n[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n',
        );
        expect(nodeFile(closed, "docker.io/ca.crt")).toContain("-----BEGIN CERTIFICATE-----");
    });

    test("with node pulls (the default), a mirror's hosts.toml sends the node identity to the cache and never to the upstream", async () => {
        const { cloud, outputs } = await run({ "cluster-registry:caches": '["docker.io"]' });
        const file = nodeFile(nodeFilesOf(cloud), "docker.io/hosts.toml");
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

    test("upstream credentials reach the cache from a Secret, never from its config or any other input", async () => {
        const token = "dckr_pat_not-a-real-token";
        const { cloud } = await run({
            "cluster-registry:caches": '["docker.io"]',
            "cluster-registry:cacheCredentials": JSON.stringify([`docker.io=me:${token}`]),
        });
        const upstream = cloud.one("kubernetes:core/v1:Secret", "cache-docker-io-upstream");
        expect(upstream.inputs.stringData).toEqual({ username: "me", password: token });
        const env = cloud.one("kubernetes:apps/v1:Deployment", "cache-docker-io").inputs.spec.template.spec.containers[0].env;
        expect(env).toEqual([
            { name: "OTEL_TRACES_EXPORTER", value: "none" },
            { name: "REGISTRY_PROXY_USERNAME", valueFrom: { secretKeyRef: { name: upstream.outputs.metadata.name, key: "username" } } },
            { name: "REGISTRY_PROXY_PASSWORD", valueFrom: { secretKeyRef: { name: upstream.outputs.metadata.name, key: "password" } } },
        ]);
        for (const r of cloud.resources) if (r !== upstream) expect(JSON.stringify(r.inputs), r.name).not.toContain(token);
    });

    test("the local-registry-hosting ConfigMap tells tools where to push and what to reference", async () => {
        const { cloud } = await run({});
        const cm = cloud.one("kubernetes:core/v1:ConfigMap", "local-registry-hosting").inputs;
        expect(cm.metadata).toMatchObject({ name: "local-registry-hosting", namespace: "kube-public" });
        expect(cm.data["localRegistryHosting.v1"]).toBe(
            "host: localhost:5000\n" +
                "hostFromContainerRuntime: registry.registry.svc.cluster.local:5000\n" +
                "hostFromClusterNetwork: registry.registry.svc.cluster.local:5002\n" +
                "help: https://github.com/kubernetes/enhancements/tree/master/keps/sig-cluster-lifecycle/generic/1755-communicating-a-local-registry\n",
        );
        expect((await run({ "cluster-registry:localRegistryHosting": "false" })).cloud.byType("kubernetes:core/v1:ConfigMap").map((c) => c.name)).not.toContain(
            "registry-local-registry-hosting",
        );
    });

    test("a long upstream host still makes labels Kubernetes accepts (63 characters at most)", async () => {
        const host = "artifacts.build-infrastructure.eu-west-1.example.com";
        const { cloud } = await run({ "cluster-registry:caches": JSON.stringify([`${host}=https://${host}`]) });
        for (const r of cloud.resources.filter((x) => x.type.startsWith("kubernetes:"))) {
            const labels = { ...r.inputs.metadata?.labels, ...r.inputs.spec?.template?.metadata?.labels, ...r.inputs.spec?.selector?.matchLabels };
            for (const [k, v] of Object.entries<string>(labels)) expect(v.length, `${r.name} label ${k}=${v}`).toBeLessThanOrEqual(63);
        }
    });

    test("with a NodePort, tools are told to push to it on localhost (where kind and k3d publish it)", async () => {
        const { cloud } = await run({ "cluster-registry:nodePort": "30500" });
        expect(cloud.one("kubernetes:core/v1:ConfigMap", "local-registry-hosting").inputs.data["localRegistryHosting.v1"]).toMatch(/^host: localhost:30500\n/);
    });

    test("default ServiceAccounts of listed namespaces get the pull secret when asked", async () => {
        const { cloud } = await run({ "cluster-registry:pullSecretNamespaces": '["apps","ci"]', "cluster-registry:patchDefaultServiceAccounts": "true" });
        const patches = cloud.byType("kubernetes:core/v1:ServiceAccountPatch").map((p) => p.inputs);
        expect(patches.map((p) => [p.metadata.namespace, p.metadata.name, p.imagePullSecrets])).toEqual([
            ["apps", "default", [{ name: "registry-pull" }]],
            ["ci", "default", [{ name: "registry-pull" }]],
        ]);
        expect((await run({ "cluster-registry:pullSecretNamespaces": '["apps"]' })).cloud.byType("kubernetes:core/v1:ServiceAccountPatch")).toEqual([]);
    });

    test("snippets for kind, k3s and Bottlerocket, as literal text", async () => {
        const { outputs, secretOutputs } = await run({ "cluster-registry:caches": '["docker.io"]' });
        const node = (outputs.k3sRegistriesYaml as string).match(/password: (\w+)/)![1];
        expect(node).toMatch(/^[A-Za-z0-9]{32}$/);
        // Both carry the node identity.
        expect(secretOutputs.has("k3sRegistriesYaml") && secretOutputs.has("bottlerocketSettings")).toBe(true);
        expect(outputs.kindClusterConfig).toBe(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n" +
                "nodes:\n  - role: control-plane\n    extraMounts:\n      - hostPath: /var/tmp/cluster-registry-caches\n        containerPath: /var/lib/cluster-registry/caches\n" +
                "containerdConfigPatches:\n" +
                '  - |\n    [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "/etc/containerd/certs.d"\n',
        );
        expect(outputs.k3sRegistriesYaml).toBe(
            "# k3s's /etc/rancher/k3s/registries.yaml, root-only (it carries the node identity), on every node:\n" +
                "#   install -m 600 -o root -g root registries.yaml /etc/rancher/k3s/registries.yaml\n" +
                "#   install -m 644 -o root -g root ca.crt /etc/rancher/k3s/cluster-registry-ca.crt\n" +
                "mirrors:\n" +
                "  registry.registry.svc.cluster.local:5000:\n    endpoint:\n      - https://10.96.0.10:5000\n" +
                "  docker.io:\n    endpoint:\n      - https://10.96.0.20:5000\n" +
                "configs:\n" +
                `  10.96.0.10:5000:\n    auth:\n      username: cluster-registry-node\n      password: ${node}\n    tls:\n      ca_file: /etc/rancher/k3s/cluster-registry-ca.crt\n` +
                `  10.96.0.20:5000:\n    auth:\n      username: cluster-registry-node\n      password: ${node}\n    tls:\n      ca_file: /etc/rancher/k3s/cluster-registry-ca.crt\n`,
        );
        const ca = Buffer.from(outputs.caCertPem as string).toString("base64");
        expect(outputs.bottlerocketSettings).toBe(
            '[[settings.container-registry.mirrors]]\nregistry = "registry.registry.svc.cluster.local:5000"\nendpoint = [ "https://10.96.0.10:5000" ]\n\n' +
                '[[settings.container-registry.mirrors]]\nregistry = "docker.io"\nendpoint = [ "https://10.96.0.20:5000" ]\n\n' +
                `[[settings.container-registry.credentials]]\nregistry = "10.96.0.10:5000"\nusername = "cluster-registry-node"\npassword = "${node}"\n\n` +
                `[[settings.container-registry.credentials]]\nregistry = "10.96.0.20:5000"\nusername = "cluster-registry-node"\npassword = "${node}"\n\n` +
                `[settings.pki.cluster-registry]\ndata = "${ca}"\ntrusted = true\n`,
        );
    });
});
