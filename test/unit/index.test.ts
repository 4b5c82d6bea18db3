/**
 * Runs index.ts under Pulumi mocks whose tls and random resources make real keys, certificates and
 * passwords from the program's own inputs, and checks what a cluster would be asked to create.
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as bcrypt from "bcryptjs";
import { describe, expect, test } from "vitest";
import { NODE_IDENTITY, PULL_IDENTITY } from "../../components/credentials";
import { ENVIRONMENTS, EnvironmentName } from "../../components/environments";
import { MOUNTS } from "../../components/registry";
import { FakeCloud, RecordedResource, runProgram } from "../support/fake-cloud";
import { ENTRY, shippedStacks, stackConfig } from "../support/stacks";
import { certFacts } from "../support/x509";
import { RESOURCE_TYPES } from "../support/resource-types";

const CLUSTER_IP = "10.96.44.55";
const T = RESOURCE_TYPES;

function newCloud(preview = false): FakeCloud {
    return new FakeCloud({ preview, clusterIP: () => CLUSTER_IP });
}

async function run(config: Record<string, string>, cloud = newCloud(), secretKeys: string[] = []) {
    const result = await runProgram(cloud, { config, secretKeys, entry: ENTRY });
    return { cloud, ...result };
}

function counts(resources: RecordedResource[]): Record<string, number> {
    const c: Record<string, number> = {};
    for (const r of resources) if (!r.type.startsWith("cluster-registry:") && r.type !== "pulumi:pulumi:Stack") c[r.type] = (c[r.type] ?? 0) + 1;
    return c;
}

function secretsByType(cloud: FakeCloud, type: string) {
    return cloud.byType(T.secret).filter((s) => s.inputs.type === type);
}

describe.each(shippedStacks())("stack %s", (stack) => {
    const config = stackConfig(stack);

    test("creates the expected resources", async () => {
        const { cloud } = await run(config);
        const caches = JSON.parse(config["cluster-registry:caches"] ?? "[]").length;
        const pullNamespaces = JSON.parse(config["cluster-registry:pullSecretNamespaces"] ?? "[]").length;
        const patched = config["cluster-registry:patchDefaultServiceAccounts"] === "true" ? pullNamespaces : 0;
        // kind keeps caches in a node directory (a host mount survives the cluster), not volumes.
        const cacheVolumes = ENVIRONMENTS[(config["cluster-registry:environment"] ?? "kind") as EnvironmentName].cacheHostPath ? 0 : caches;
        expect(counts(cloud.resources)).toEqual({
            // the node agent's own; the registries' (kept by destroy, so taken over by the next stack: a patch)
            [T.ns]: 1,
            [T.nsPatch]: 1,
            // each registry's own Service (no metrics Service: debug listeners are loopback-only by default)
            [T.svc]: 1 + caches,
            // htpasswd for pushes, for pulls (and for caches, the node identity's), a tls and an
            // http.secret per registry, one pull secret per listed namespace, the node agent's files
            [T.secret]: 2 + (caches ? 1 : 0) + 2 * (1 + caches) + pullNamespaces + 1,
            // registry configs, the node agent script, local-registry-hosting
            [T.cm]: 1 + caches + 1 + 1,
            // the hosted registry's kept claim, then the caches'
            [T.pvcPatch]: 1,
            ...(cacheVolumes ? { [T.pvc]: cacheVolumes } : {}),
            [T.deploy]: 1 + caches,
            [T.ds]: 1,
            // the node agent's ServiceAccount, allowed to get its own DaemonSet
            "kubernetes:core/v1:ServiceAccount": 1,
            "kubernetes:rbac.authorization.k8s.io/v1:Role": 1,
            "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": 1,
            [T.key]: 2 + caches,
            [T.selfSigned]: 1,
            [T.csr]: 1 + caches,
            [T.signed]: 1 + caches,
            // admin, the pull-only identity, the node identity, each registry's http.secret
            [T.password]: 3 + 1 + caches,
            [T.bytes]: 3,
            ...(patched ? { [T.saPatch]: patched } : {}),
        });
    });

    test("secrets have the right types, each htpasswd admits exactly its door's users, and the pull secret is the pull-only identity", async () => {
        const { cloud, outputs } = await run(config);
        const passwords = outputs.passwords as Record<string, string>;
        expect(Object.keys(passwords)).toEqual(["admin"]);
        expect(passwords.admin).toMatch(/^[A-Za-z0-9]{32}$/);

        const htpasswd = (door: string) =>
            Object.fromEntries(
                (cloud.one(T.secret, `credentials-${door}`).inputs.stringData.htpasswd as string)
                    .trim()
                    .split("\n")
                    .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1)]),
            );
        // Pushes: the users only. Pulls (read-only): the users and the program's two identities.
        expect(Object.keys(htpasswd("push"))).toEqual(["admin"]);
        expect(Object.keys(htpasswd("pull"))).toEqual(["admin", PULL_IDENTITY, NODE_IDENTITY]);
        expect(bcrypt.compareSync(passwords.admin, htpasswd("push").admin)).toBe(true);
        expect(bcrypt.compareSync(passwords.admin + "x", htpasswd("push").admin)).toBe(false);
        // Generated machine identities: the lowest bcrypt cost (see GENERATED_IDENTITY_BCRYPT_COST).
        expect(bcrypt.getRounds(htpasswd("pull")[NODE_IDENTITY])).toBe(4);
        expect(bcrypt.getRounds(htpasswd("pull")[PULL_IDENTITY])).toBe(4);

        const tlsSecret = cloud.one(T.secret, "hosted-tls");
        expect(tlsSecret.inputs.stringData["tls.crt"]).toBe(cloud.one(T.signed, "hosted-tls-cert").outputs.certPem);
        expect(tlsSecret.inputs.stringData["tls.key"]).toMatch(/-----BEGIN EC PRIVATE KEY-----/);

        // Only the listed namespaces: not the registries' own unless listed.
        const pulls = secretsByType(cloud, "kubernetes.io/dockerconfigjson");
        const namespaces: string[] = JSON.parse(config["cluster-registry:pullSecretNamespaces"] ?? "[]");
        expect(pulls.map((p) => p.inputs.metadata.namespace).sort()).toEqual(namespaces.sort());
        const pullAuths = JSON.parse(outputs.dockerConfigJson as string).auths;
        // The read-only port only: no localhost (push) entry, no pusher.
        expect(Object.keys(pullAuths)).toEqual(["registry.registry.svc.cluster.local:5000"]);
        const entry = pullAuths["registry.registry.svc.cluster.local:5000"];
        expect(entry.username).toBe(PULL_IDENTITY);
        expect(bcrypt.compareSync(entry.password, htpasswd("pull")[PULL_IDENTITY])).toBe(true);
        expect(htpasswd("push")[PULL_IDENTITY]).toBeUndefined();
        for (const p of pulls) {
            expect(p.inputs.metadata.name).toBe("registry-pull");
            expect(p.inputs.stringData[".dockerconfigjson"]).toBe(outputs.dockerConfigJson);
        }
        // The push authfile: the first user, for the workstation's port-forward and the in-cluster push port.
        const pushAuths = JSON.parse(outputs.pushDockerConfigJson as string).auths;
        expect(Object.keys(pushAuths)).toEqual(["localhost:5000", "registry.registry.svc.cluster.local:5002"]);
        expect(pushAuths["localhost:5000"]).toEqual({
            username: "admin",
            password: passwords.admin,
            auth: Buffer.from(`admin:${passwords.admin}`).toString("base64"),
        });
    });

    test("the Deployment mounts what the config names, probes readiness and liveness, runs restricted and rolls on change", async () => {
        const { cloud } = await run(config);
        const spec = cloud.one(T.deploy, "hosted").inputs.spec;
        expect(spec.replicas).toBe(1);
        expect(spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
        const pod = spec.template.spec;
        const [c] = pod.containers;
        expect(c.command).toEqual(["registry", "serve", `${MOUNTS.config}/config.yml`]);
        const mounts = Object.fromEntries(c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.name, m.mountPath]));
        expect(mounts).toEqual({ config: MOUNTS.config, tls: MOUNTS.tls, auth: MOUNTS.auth, storage: MOUNTS.storage, tmp: MOUNTS.tmp });
        const volumes = Object.fromEntries(pod.volumes.map((v: Record<string, unknown>) => [v.name, v]));
        expect(volumes.storage.persistentVolumeClaim.claimName).toBe(cloud.one(T.pvcPatch, "hosted-storage").outputs.metadata.name);
        expect(volumes.tls.secret.secretName).toBe(cloud.one(T.secret, "hosted-tls").outputs.metadata.name);

        const configYaml: string = cloud.one(T.cm, "hosted-config").inputs.data["config.yml"];
        expect(configYaml).toContain(`certificate: ${MOUNTS.tls}/tls.crt`);
        expect(configYaml).toContain(`path: ${MOUNTS.auth}/htpasswd`);
        expect(configYaml).toContain(`rootdirectory: ${MOUNTS.storage}`);

        expect(c.livenessProbe.httpGet).toEqual({ path: "/", port: "registry", scheme: "HTTPS" });
        expect(c.readinessProbe.exec.command.slice(0, 2)).toEqual(["sh", "-c"]);
        expect(c.readinessProbe.exec.command.slice(3)).toEqual(["registry-ready", MOUNTS.storage, "-", "http://127.0.0.1:5001/debug/health"]);
        expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } });
        expect(c.securityContext).toMatchObject({
            runAsNonRoot: true,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" },
        });
        expect(c.resources.requests).toBeDefined();
        expect(spec.template.metadata.annotations["cluster-registry/checksum"]).toMatch(/^[0-9a-f]{64}$/);
    });

    test("the Service answers on the configured port without waiting for endpoints", async () => {
        const { cloud } = await run(config);
        const svc = cloud.one(T.svc, "hosted-service").inputs;
        expect(svc.metadata.name).toBe("registry");
        expect(svc.metadata.annotations["pulumi.com/skipAwait"]).toBe("true");
        expect(svc.spec.type).toBe("ClusterIP");
        expect(svc.spec.ports).toEqual([
            { name: "registry", port: 5000, targetPort: "registry", protocol: "TCP" },
            { name: "push", port: 5002, targetPort: "push", protocol: "TCP" },
        ]);
        expect(svc.spec.selector).toEqual(cloud.one(T.deploy, "hosted").inputs.spec.selector.matchLabels);
    });

    test("the DaemonSet mounts only the environment's certs.d, tolerates every taint and writes hosts.toml for the ClusterIP", async () => {
        const { cloud, outputs } = await run(config);
        const certsDir = { dev: "/etc/containerd/certs.d", eks: "/etc/containerd/certs.d", k3d: "/var/lib/rancher/k3s/agent/etc/containerd/certs.d" }[stack];
        const pod = cloud.one(T.ds).inputs.spec.template.spec;
        const hostPaths = pod.volumes.filter((v: Record<string, unknown>) => v.hostPath);
        // certs.d to write, and containerd's config directory (its parent here) to read, read-only.
        expect(hostPaths).toEqual([
            { name: "certs-d", hostPath: { path: certsDir, type: "DirectoryOrCreate" } },
            { name: "containerd-config", hostPath: { path: path.posix.dirname(certsDir as string), type: "Directory" } },
        ]);
        expect(outputs.certsDir).toBe(certsDir);
        expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
        const [c] = pod.containers;
        expect(c.image).toBe(cloud.one(T.deploy, "hosted").inputs.spec.template.spec.containers[0].image);
        expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
        // What the agent writes comes from its Secret: a manifest of `KEY PATH` lines and one key per file.
        const data: Record<string, string> = cloud.one(T.secret, "node-config-files").inputs.stringData;
        const files = Object.fromEntries(
            data.manifest
                .trimEnd()
                .split("\n")
                .map((l) => [l.split(" ")[1], data[l.split(" ")[0]]]),
        );
        expect(files["registry.registry.svc.cluster.local:5000/hosts.toml"]).toContain(`[host."https://${CLUSTER_IP}:5000"]`);
        expect(files["registry.registry.svc.cluster.local:5000/ca.crt"]).toBe(outputs.caCertPem);
    });

    test("a second run with the same config and state asks for exactly the same inputs", async () => {
        const cloud = newCloud();
        await run(config, cloud);
        const first = cloud.resources.map((r) => [r.urn, r.inputs]);
        await run(config, cloud);
        const second = cloud.resources.map((r) => [r.urn, r.inputs]);
        expect(second).toEqual(first);
    });

    test("passwords, the CA key and the docker config are secret outputs; the CA certificate is not", async () => {
        const { cloud, secretOutputs, outputs } = await run(config);
        // Keys travel only as secrets: into the signer and into the tls Secret.
        expect(cloud.one(T.signed, "hosted-tls-cert").secretInputs).toContain("caPrivateKeyPem");
        expect(cloud.one(T.secret, "hosted-tls").secretInputs).toContain("stringData");
        expect(secretOutputs.has("passwords")).toBe(true);
        expect(secretOutputs.has("dockerConfigJson")).toBe(true);
        expect(secretOutputs.has("caCertPem")).toBe(false);
        expect(Object.keys(outputs).some((k) => /key/i.test(k))).toBe(false);
    });

    test("preview, with every computed value unknown, runs without error", async () => {
        const { cloud } = await run(config, newCloud(true));
        expect(cloud.byType(T.deploy)).toHaveLength(1 + JSON.parse(config["cluster-registry:caches"] ?? "[]").length);
        expect(cloud.byType(T.ds)).toHaveLength(1);
    });
});

describe("config choices reach the resources", () => {
    test("extra names, a NodePort and pull-secret namespaces", async () => {
        const { cloud, outputs } = await run({
            "cluster-registry:extraNames": '["registry.example.com","192.168.5.5"]',
            "cluster-registry:nodePort": "30500",
            "cluster-registry:pullSecretNamespaces": '["apps","ci"]',
        });
        const server = certFacts(cloud.one(T.signed, "hosted-tls-cert").outputs.certPem);
        expect(server.dnsNames).toContain("registry.example.com");
        expect(server.ipAddresses).toEqual([CLUSTER_IP, "127.0.0.1", "192.168.5.5"]);
        expect(cloud.one(T.svc, "hosted-service").inputs.spec.type).toBe("ClusterIP");
        const nodePort = cloud.one(T.svc, "hosted-node-port").inputs.spec;
        expect(nodePort.type).toBe("NodePort");
        expect(nodePort.ports).toEqual([{ name: "push", port: 5002, targetPort: "push", protocol: "TCP", nodePort: 30500 }]);
        expect(outputs.pushEndpoint).toBe("<node address>:30500");
        expect(secretsByType(cloud, "kubernetes.io/dockerconfigjson").map((s) => s.inputs.metadata.namespace)).toEqual(["apps", "ci"]);
    });

    test("createNamespace=false uses the existing namespace and creates none", async () => {
        const { cloud } = await run({ "cluster-registry:createNamespace": "false", "cluster-registry:namespace": "tools" });
        expect(cloud.byType(T.ns)).toHaveLength(0);
        expect(cloud.one(T.deploy, "hosted").inputs.metadata.namespace).toBe("tools");
    });
});

describe("bad config registers no resource", () => {
    test.each<[string, Record<string, string>, RegExp]>([
        [
            "unknown environment",
            { "cluster-registry:environment": "minikube" },
            /cluster-registry:environment: "minikube" is not valid; expected one of kind, k3d, eks/,
        ],
        ["bad port", { "cluster-registry:port": "99999" }, /cluster-registry:port: "99999" is not valid/],
        ["invalid DNS name", { "cluster-registry:extraNames": '["under_score.example"]' }, /cluster-registry:extraNames: "under_score.example" is not valid/],
        ["empty user name", { "cluster-registry:users": '[""]' }, /cluster-registry:users: "" is not valid/],
        ["bad size", { "cluster-registry:storageSize": "10 GB" }, /cluster-registry:storageSize: "10 GB" is not valid/],
        ["duplicate namespaces", { "cluster-registry:pullSecretNamespaces": '["a","a"]' }, /cluster-registry:pullSecretNamespaces: "a" is listed twice/],
        // Refused by the Pulumi CLI (which the fake cloud stands for) before the program runs: Pulumi.yaml declares it secret.
        [
            "plain-text password",
            { "cluster-registry:userPasswords": '["admin:0123456789abc"]' },
            /configuration key 'userPasswords' must be encrypted as it's secret/,
        ],
    ])("%s", async (_, config, message) => {
        const cloud = newCloud();
        await expect(run(config, cloud)).rejects.toThrow(message);
        expect(cloud.resources.filter((r) => r.type !== "pulumi:pulumi:Stack")).toEqual([]);
    });

    test("the program's config problems are one RunError, which Pulumi prints as its message alone (no stack trace)", async () => {
        const error = await run({ "cluster-registry:port": "99999", "cluster-registry:storageclass": "x" }).catch((e: unknown) => e);
        expect(pulumi.RunError.isInstance(error)).toBe(true);
        const lines = (error as Error).message.split("\n");
        // A heading and one line per problem; the problems not repeated, no stack appended.
        expect(lines[0]).toBe("invalid configuration:");
        expect(lines.slice(1).sort()).toEqual([
            expect.stringMatching(/^ {2}- cluster-registry:port: "99999" is not valid/),
            "  - cluster-registry:storageclass: unknown key; did you mean cluster-registry:storageClass?",
        ]);
    });
});
