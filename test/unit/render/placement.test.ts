/**
 * The registries' placement knobs (issue 20, part 5): the settings' entries as pod-spec fields, with
 * literal expected values, and the hosted registry's and caches' Deployments the program renders.
 */
import { describe, expect, test } from "vitest";
import {
    checkNodeSelectorEntry,
    checkResourceEntry,
    checkTolerationEntry,
    parseToleration,
    placementOf,
    withPlacement,
} from "../../../components/render/placement";
import type { Verdict } from "../../../components/validators";

const expected = (v: Verdict) => (v.ok ? undefined : v.expected);
/** The containers that run distribution (the settings' subject), not the helpers beside them such as a cache's coalescer. */
const registryContainers = (pod: any): any[] => pod.containers.filter((c: any) => ["registry", "push"].includes(c.name));
import { FakeCloud, runProgram } from "../../support/fake-cloud";
import { ENTRY } from "../../support/stacks";

describe("entries", () => {
    test("resources: requests or limits of cpu, memory, ephemeral-storage, with a quantity the API server accepts", () => {
        for (const ok of ["requests.cpu=100m", "limits.memory=1Gi", "requests.ephemeral-storage=2G", "limits.cpu=2"])
            expect(checkResourceEntry(ok).ok, ok).toBe(true);
        for (const bad of ["requests.cpu", "request.cpu=1", "limits.gpu=1", "limits.memory=1GB", "limits.memory=-1Gi", "requests.cpu="]) {
            expect(expected(checkResourceEntry(bad)), bad).toMatch(/^requests\.NAME=QUANTITY/);
        }
    });

    test("nodeSelector: KEY=VALUE with label grammar", () => {
        for (const ok of ["node-role.kubernetes.io/infra=true", "pool=", "topology.kubernetes.io/zone=eu-west-1a"])
            expect(checkNodeSelectorEntry(ok).ok, ok).toBe(true);
        for (const bad of ["pool", "=x", "pool=a b", "Example.com/x=y", "pool=-x"]) expect(expected(checkNodeSelectorEntry(bad)), bad).toMatch(/^KEY=VALUE/);
    });

    test("tolerations as kubectl taint writes taints", () => {
        expect(parseToleration("dedicated=infra:NoSchedule")).toEqual({ key: "dedicated", operator: "Equal", value: "infra", effect: "NoSchedule" });
        expect(parseToleration("dedicated:NoExecute")).toEqual({ key: "dedicated", operator: "Exists", effect: "NoExecute" });
        expect(parseToleration("node-role.kubernetes.io/infra")).toEqual({ key: "node-role.kubernetes.io/infra", operator: "Exists" });
        expect(parseToleration("dedicated=")).toEqual({ key: "dedicated", operator: "Equal", value: "" });
        for (const bad of ["dedicated=infra:NoSchedul", ":NoSchedule", "a b", "dedicated=in fra"])
            expect(expected(checkTolerationEntry(bad)), bad).toMatch(/^KEY\[=VALUE\]\[:EFFECT\]/);
    });

    test('placementOf gathers entries into pod-spec fields; empty lists and "" leave the pod\'s own', () => {
        expect(
            placementOf({
                resources: ["requests.cpu=100m", "requests.memory=128Mi", "limits.memory=1Gi"],
                nodeSelector: ["pool=infra", "zone=a"],
                tolerations: ["dedicated=infra:NoSchedule"],
                priorityClassName: "system-cluster-critical",
            }),
        ).toEqual({
            resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "1Gi" } },
            nodeSelector: { pool: "infra", zone: "a" },
            tolerations: [{ key: "dedicated", operator: "Equal", value: "infra", effect: "NoSchedule" }],
            priorityClassName: "system-cluster-critical",
        });
        expect(placementOf({ resources: [], nodeSelector: [], tolerations: [], priorityClassName: "" })).toEqual({ resources: {} });
    });

    test("withPlacement sets every container's resources, never an init container's, and keeps the pod's own selector", () => {
        const spec = {
            nodeSelector: { "kubernetes.io/os": "linux" },
            initContainers: [{ name: "chown", resources: { limits: { memory: "16Mi" } } }],
            containers: [{ name: "a" }, { name: "b" }],
        };
        const placed = withPlacement(spec, { resources: { limits: { memory: "1Gi" } }, nodeSelector: { pool: "infra" } });
        expect(placed.containers.map((c: any) => c.resources)).toEqual([{ limits: { memory: "1Gi" } }, { limits: { memory: "1Gi" } }]);
        expect(placed.initContainers).toEqual(spec.initContainers);
        expect(placed.nodeSelector).toEqual({ "kubernetes.io/os": "linux", pool: "infra" });
        expect("tolerations" in placed).toBe(false);
    });
});

describe("the registries' pods in the program", () => {
    const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
    const run = async (config: Record<string, string>) => {
        const cloud = new FakeCloud({ clusterIP: () => "10.96.0.10" });
        await runProgram(cloud, { config: { "cluster-registry:environment": "eks", "cluster-registry:caches": '["docker.io"]', ...config }, entry: ENTRY });
        return cloud.byType(DEPLOYMENT).map((d) => ({ name: d.name, pod: d.inputs.spec.template.spec }));
    };

    test("by default: each container reserves requests.cpu=50m, requests.memory=64Mi, limits.memory=512Mi; Linux nodes; no tolerations or priority", async () => {
        const pods = await run({});
        expect(pods.map((p) => p.name).sort()).toEqual(["registry-cache-docker-io", "registry-hosted"]);
        for (const { name, pod } of pods) {
            for (const c of registryContainers(pod))
                expect(c.resources, `${name} ${c.name}`).toEqual({ requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "512Mi" } });
            expect(pod.nodeSelector, name).toEqual({ "kubernetes.io/os": "linux" });
            expect(pod.tolerations, name).toBeUndefined();
            expect(pod.priorityClassName, name).toBeUndefined();
        }
    });

    test("the four settings reach the hosted registry's two containers and each cache's, and the pods validate against the schema", async () => {
        const pods = await run({
            "cluster-registry:registryResources": '["requests.cpu=250m","requests.memory=256Mi","limits.memory=2Gi"]',
            "cluster-registry:registryNodeSelector": '["node-role.kubernetes.io/infra=true"]',
            "cluster-registry:registryTolerations": '["dedicated=infra:NoSchedule","node-role.kubernetes.io/infra:NoExecute"]',
            "cluster-registry:registryPriorityClassName": "platform-critical",
        });
        const { Deployment } = (await import("kubernetes-models/apps/v1")) as unknown as { Deployment: new (d: any) => { validate(): void } };
        const hosted = pods.find((p) => p.name === "registry-hosted")!;
        expect(hosted.pod.containers.map((c: any) => c.name)).toEqual(["registry", "push"]);
        for (const { name, pod } of pods) {
            for (const c of registryContainers(pod))
                expect(c.resources, `${name} ${c.name}`).toEqual({ requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "2Gi" } });
            expect(pod.nodeSelector, name).toEqual({ "kubernetes.io/os": "linux", "node-role.kubernetes.io/infra": "true" });
            expect(pod.tolerations, name).toEqual([
                { key: "dedicated", operator: "Equal", value: "infra", effect: "NoSchedule" },
                { key: "node-role.kubernetes.io/infra", operator: "Exists", effect: "NoExecute" },
            ]);
            expect(pod.priorityClassName, name).toBe("platform-critical");
            const manifest = {
                apiVersion: "apps/v1",
                kind: "Deployment",
                metadata: { name },
                spec: { selector: { matchLabels: { a: "b" } }, template: { spec: pod } },
            };
            expect(() => new Deployment(manifest).validate(), name).not.toThrow();
        }
        // The node agent is placed by its own rules: it must run on every node.
        const agent = (await runAgent()).pod;
        expect(agent.priorityClassName).toBeUndefined();
        expect(agent.nodeSelector?.["node-role.kubernetes.io/infra"]).toBeUndefined();
    });

    async function runAgent() {
        const cloud = new FakeCloud({ clusterIP: () => "10.96.0.10" });
        await runProgram(cloud, {
            config: {
                "cluster-registry:registryNodeSelector": '["node-role.kubernetes.io/infra=true"]',
                "cluster-registry:registryPriorityClassName": "platform-critical",
            },
            entry: ENTRY,
        });
        return { pod: cloud.one("kubernetes:apps/v1:DaemonSet").inputs.spec.template.spec };
    }

    test("bad entries fail before anything is registered, naming the key and what is accepted", async () => {
        const cloud = new FakeCloud();
        const bad = runProgram(cloud, {
            config: {
                "cluster-registry:registryResources": '["limits.memory=2GB"]',
                "cluster-registry:registryTolerations": '["dedicated=infra:NoSchedul"]',
                "cluster-registry:registryPriorityClassName": "Platform",
            },
            entry: ENTRY,
        });
        await expect(bad).rejects.toThrow(
            /registryResources[\s\S]*limits\.memory=2GB[\s\S]*registryTolerations[\s\S]*NoSchedul[\s\S]*registryPriorityClassName/,
        );
        expect(cloud.resources.filter((r) => r.type.startsWith("kubernetes:"))).toEqual([]);
    });
});
