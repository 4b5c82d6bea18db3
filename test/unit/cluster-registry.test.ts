/** ClusterRegistry as a component other programs build on: their provider, their args, checked first. */
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { ClusterRegistry } from "../../components";
import { NODE_IDENTITY, PULL_IDENTITY } from "../../components/credentials";
import { ConfigError } from "../../components/resolve-settings";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ENTRY } from "../support/stacks";

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
        const passwords = cloud.byType("random:index/randomPassword:RandomPassword").map((r) => r.outputs.result as string);
        // admin, the pull-only identity, the node identity
        expect(passwords).toHaveLength(3);
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
