/** ClusterRegistry as a component other programs build on: their provider, their args, checked first. */
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { ClusterRegistry } from "../../components";
import { ConfigError } from "../../components/resolve-settings";
import { FakeCloud, runProgram } from "../support/fake-cloud";

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
