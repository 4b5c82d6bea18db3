/** Issue 16, step 1: registries roll with a ready surge pod beside their volume, a stable shared http.secret, and a graceful stop. */
import { describe, expect, test } from "vitest";
import YAML from "yaml";
import { goDurationNanoseconds } from "../../components/validators";
import { FakeCloud, RecordedResource, runProgram } from "../support/fake-cloud";
import { ENTRY } from "../support/stacks";
import { RESOURCE_TYPES } from "../support/resource-types";

const T = RESOURCE_TYPES;
/** Caches in volumes, so every registry sits on a ReadWriteOnce claim. */
const WITH_CACHE = { "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheHostPath": "" };

async function run(config: Record<string, string>, cloud = new FakeCloud()) {
    await runProgram(cloud, { config, entry: ENTRY });
    return cloud;
}

/** The Secret a container's env var comes from, and the value it gets. */
function envFromSecret(cloud: FakeCloud, container: any, name: string): { secret: RecordedResource; value: string } {
    const ref = container.env.find((e: any) => e.name === name)?.valueFrom?.secretKeyRef;
    expect(ref, `${container.name} has no ${name} from a Secret`).toBeDefined();
    const secret = cloud.byType(T.secret).find((s) => s.outputs.metadata.name === ref.name);
    expect(secret, `no Secret ${ref.name}`).toBeDefined();
    return { secret: secret!, value: secret!.inputs.stringData[ref.key] };
}

/** Every registry config file of a Deployment's ConfigMap, parsed. */
function configsOf(cloud: FakeCloud, deployment: RecordedResource): any[] {
    const cmName = deployment.inputs.spec.template.spec.volumes.find((v: any) => v.name === "config").configMap.name;
    const cm = cloud.byType(T.cm).find((c) => c.outputs.metadata.name === cmName)!;
    return Object.entries<string>(cm.inputs.data)
        .filter(([file]) => file.endsWith(".yml"))
        .map(([, t]) => YAML.parse(t));
}

describe("rollouts keep a ready registry behind every Service", () => {
    test("each registry surges one pod and stops the old one only when it is ready, on the node holding its volume", async () => {
        const cloud = await run(WITH_CACHE);
        const deployments = cloud.byType(T.deploy);
        expect(deployments.map((d) => d.name).sort()).toEqual(["registry-cache-docker-io", "registry-hosted"]);
        for (const d of deployments) {
            expect(d.inputs.spec.replicas, d.name).toBe(1);
            expect(d.inputs.spec.strategy, d.name).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
            // Required (not preferred) affinity to the Deployment's own pods: a surge pod scheduled on
            // another node would wait forever for the ReadWriteOnce volume (Multi-Attach).
            const terms = d.inputs.spec.template.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution;
            expect(terms, d.name).toEqual([{ labelSelector: { matchLabels: d.inputs.spec.selector.matchLabels }, topologyKey: "kubernetes.io/hostname" }]);
            const volume = d.inputs.spec.template.spec.volumes.find((v: any) => v.name === "storage");
            const claim = [...cloud.byType(T.pvc), ...cloud.byType(T.pvcPatch)].find(
                (c) => c.outputs.metadata.name === volume.persistentVolumeClaim.claimName,
            )!;
            expect(claim.inputs.spec.accessModes).toEqual(["ReadWriteOnce"]);
        }
    });

    test("with gcSchedule on the volume the hosted registry still surges: its push containers share the volume's writer lock, so a collection waits for the old writer", async () => {
        const cloud = await run({ "cluster-registry:gcSchedule": "03:00" });
        const d = cloud.one(T.deploy, "hosted");
        expect(d.inputs.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
        // Old and surge pod on one node, over one volume: the lock file is on it, so both see it.
        expect(d.inputs.spec.template.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe("kubernetes.io/hostname");
        const data = cloud.one(T.cm, "hosted-config").inputs.data as Record<string, string>;
        expect(data["push-supervisor.conf"]).toMatch(/^writer_lock=\/var\/lib\/registry\/[^/\n]+$/m);
    });

    test("kind's node-directory caches are kept beside their directory too", async () => {
        const cloud = await run({ "cluster-registry:caches": '["docker.io"]' });
        const spec = cloud.one(T.deploy, "cache-docker-io").inputs.spec;
        expect(spec.template.spec.volumes.find((v: any) => v.name === "storage").hostPath).toBeDefined();
        expect(spec.template.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe("kubernetes.io/hostname");
    });

    test("a stopping container keeps serving past the endpoint's removal, then drains within its grace period", async () => {
        const cloud = await run(WITH_CACHE);
        for (const d of cloud.byType(T.deploy)) {
            const pod = d.inputs.spec.template.spec;
            const drains = configsOf(cloud, d).map((c) => Number(goDurationNanoseconds(c.http.draintimeout)) / 1e9);
            expect(drains.length, d.name).toBeGreaterThan(0);
            // Every container that serves (not a cache's evict loop, which has nothing in flight).
            for (const c of pod.containers.filter((c: any) => c.name !== "evict")) {
                // The registry sleeps; a cache's nginx sleeps in a script, then quits gracefully.
                const command: string[] = c.lifecycle.preStop.exec.command;
                const [cmd, seconds] = c.name === "coalescer" ? command[2].split(";")[0].split(" ") : command;
                if (c.name === "coalescer") expect(command[2]).toMatch(/; nginx .* -s quit; while \[ -e \S+\/nginx\.pid \]/);
                expect(cmd, `${d.name}/${c.name}`).toBe("sleep");
                // kube-proxy needs a few seconds on every node to drop the endpoint.
                expect(Number(seconds)).toBeGreaterThanOrEqual(5);
                // kubelet's grace period counts from the preStop hook's start: both must fit, or SIGKILL cuts the drain.
                for (const drain of drains) expect(Number(seconds) + drain, `${d.name}/${c.name}`).toBeLessThanOrEqual(pod.terminationGracePeriodSeconds);
            }
        }
    });
});

describe("http.secret", () => {
    test("comes from a Secret (never the ConfigMap), the same for both containers of the hosted registry, one per registry", async () => {
        const cloud = await run(WITH_CACHE);
        const values = new Set<string>();
        for (const d of cloud.byType(T.deploy)) {
            const registries = d.inputs.spec.template.spec.containers.filter((c: any) => !["coalescer", "evict"].includes(c.name));
            const secrets = registries.map((c: any) => envFromSecret(cloud, c, "REGISTRY_HTTP_SECRET"));
            expect(new Set(secrets.map((s: { value: string }) => s.value)).size, d.name).toBe(1);
            const { secret, value } = secrets[0];
            expect(value).toMatch(/^[A-Za-z0-9]{32,}$/);
            expect(secret.secretInputs).toContain("stringData");
            for (const c of configsOf(cloud, d)) expect(JSON.stringify(c)).not.toContain(value);
            for (const c of configsOf(cloud, d)) expect(c.http.secret).toBeUndefined();
            values.add(value);
        }
        expect(values.size).toBe(2);
    });

    test("is kept by an unchanged up: no new secret, so no rollout; a config change rolls the pods and keeps it", async () => {
        const cloud = new FakeCloud();
        await run(WITH_CACHE, cloud);
        const hosted = () => cloud.one(T.deploy, "hosted").inputs.spec.template;
        const secretOf = () => envFromSecret(cloud, hosted().spec.containers[0], "REGISTRY_HTTP_SECRET").value;
        const [first, firstTemplate] = [secretOf(), structuredClone(hosted())];
        await run(WITH_CACHE, cloud);
        expect(secretOf()).toBe(first);
        expect(hosted()).toEqual(firstTemplate);
        await run({ ...WITH_CACHE, "cluster-registry:extraNames": '["registry.example.com"]' }, cloud);
        expect(hosted().metadata.annotations).not.toEqual(firstTemplate.metadata.annotations);
        expect(secretOf()).toBe(first);
    });
});
