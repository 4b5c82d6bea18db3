/**
 * Every Kubernetes object the program asks for, validated against the OpenAPI schema of a current
 * Kubernetes release (kubernetes-models), so a field an API server would reject fails here first.
 * Unknown fields are caught earlier still: the components build their specs as Pulumi's typed
 * inputs, generated from the same OpenAPI, and `tsc` rejects excess properties.
 */
import { describe, expect, test } from "vitest";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ENTRY, shippedStacks, stackConfig } from "../support/stacks";

// The classes' typings do not resolve under commonjs module resolution; the runtime has validate().
type Validating = new (data: any) => any;

async function models(): Promise<Record<string, Validating>> {
    const core = await import("kubernetes-models/v1");
    const apps = await import("kubernetes-models/apps/v1");
    const rbac = await import("kubernetes-models/rbac.authorization.k8s.io/v1");
    const policy = await import("kubernetes-models/policy/v1");
    const networking = await import("kubernetes-models/networking.k8s.io/v1");
    return {
        "v1/Namespace": core.Namespace,
        "v1/Service": core.Service,
        "v1/Secret": core.Secret,
        "v1/ConfigMap": core.ConfigMap,
        "v1/PersistentVolumeClaim": core.PersistentVolumeClaim,
        "v1/ServiceAccount": core.ServiceAccount,
        "apps/v1/Deployment": apps.Deployment,
        "apps/v1/DaemonSet": apps.DaemonSet,
        "rbac.authorization.k8s.io/v1/Role": rbac.Role,
        "rbac.authorization.k8s.io/v1/RoleBinding": rbac.RoleBinding,
        "policy/v1/PodDisruptionBudget": policy.PodDisruptionBudget,
        "networking.k8s.io/v1/NetworkPolicy": networking.NetworkPolicy,
    };
}

/** The object as the provider sends it: inputs with the generated name filled in. */
function manifest(r: { inputs: any; outputs: any }): any {
    const { status: _status, ...rest } = r.outputs;
    return { ...rest, ...r.inputs, metadata: { ...r.inputs.metadata, name: r.outputs.metadata?.name ?? r.inputs.metadata?.name } };
}

describe("the schema check itself", () => {
    test("rejects a Deployment an API server would reject", async () => {
        const Deployment = (await models())["apps/v1/Deployment"];
        const bad = {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "x" },
            spec: { selector: {}, template: { spec: { containers: [{ image: "i" }] } } },
        };
        expect(() => new Deployment(bad).validate()).toThrow(/name/);
        const badPort = { ...bad, spec: { ...bad.spec, template: { spec: { containers: [{ name: "c", image: "i", ports: [{ containerPort: "5000" }] }] } } } };
        expect(() => new Deployment(badPort).validate()).toThrow(/containerPort/);
    });
});

/** Issue 16's shapes: the hosted registry on a bucket (two Deployments, a budget, its ServiceAccount) and cache replicas. */
const REPLICATED = {
    "cluster-registry:objectStorageBucket": "images",
    "cluster-registry:objectStorageRegion": "eu-west-1",
    "cluster-registry:objectStorageRoleArn": "arn:aws:iam::123456789012:role/cluster-registry",
    "cluster-registry:caches": '["docker.io"]',
    "cluster-registry:cacheReplicas": "2",
};
// Each shipped stack as it is, and with metrics scraped (a metrics Service and a NetworkPolicy per registry).
const METRICS = { "cluster-registry:metricsNamespaces": '["monitoring"]' };
const SHAPES = [
    ...shippedStacks().flatMap((stack) => [[stack, {}] as const, [`${stack} with metricsNamespaces`, METRICS] as const]),
    ["eks replicated", REPLICATED] as const,
];

describe.each(SHAPES)("stack %s", (stack, extra) => {
    test("every Kubernetes object validates against the Kubernetes OpenAPI schema", async () => {
        const byKind = await models();
        const cloud = new FakeCloud({ clusterIP: () => "10.96.0.10" });
        await runProgram(cloud, { config: { ...stackConfig(stack.split(" ")[0]), ...extra }, entry: ENTRY });
        const objects = cloud.resources.filter((r) => r.type.startsWith("kubernetes:"));
        expect(objects.length).toBeGreaterThan(5);
        for (const r of objects) {
            const m = manifest(r);
            const model = byKind[`${m.apiVersion}/${m.kind}`];
            expect(model, `no schema for ${m.apiVersion} ${m.kind}`).toBeDefined();
            expect(() => new model(m).validate(), `${m.kind} ${m.metadata.name}`).not.toThrow();
        }
    });
});
