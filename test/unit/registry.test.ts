/** components/registry.ts: probes, metrics, the volume guard and what destroy keeps, through the whole program. */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, test } from "vitest";
import YAML from "yaml";
import { DEFAULT_REGISTRY_IMAGE } from "../../components/settings";
import { evictionCommand, evictionThresholds, readinessCommand, volumeReplacementProblem } from "../../components/registry";
import { EVICTION_SCRIPT } from "../../components/render/registry-config";
import { FakeCloud, runProgram, withIgnoredChanges } from "../support/fake-cloud";
import { runWithServiceIps } from "../support/program";
import { ENTRY } from "../support/stacks";
import { RESOURCE_TYPES } from "../support/resource-types";

const T = RESOURCE_TYPES;
/** Caches in volumes (not kind's node directory), so every registry has a claim. */
const WITH_CACHE = { "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheHostPath": "" };

async function run(config: Record<string, string>, cloud = new FakeCloud()) {
    const result = await runProgram(cloud, { config, entry: ENTRY });
    return { cloud, ...result };
}

const containerOf = (cloud: FakeCloud, name: string) => cloud.one(T.deploy, name).inputs.spec.template.spec.containers[0];

describe("the registry image and its environment", () => {
    test("registries and the node agent run the pinned distribution 3 patch release by default", async () => {
        const { cloud } = await run(WITH_CACHE);
        expect(DEFAULT_REGISTRY_IMAGE).toBe("docker.io/library/registry:3.1.1");
        expect(containerOf(cloud, "hosted").image).toBe(DEFAULT_REGISTRY_IMAGE);
        expect(containerOf(cloud, "cache-docker-io").image).toBe(DEFAULT_REGISTRY_IMAGE);
        expect(cloud.one(T.ds).inputs.spec.template.spec.containers[0].image).toBe(DEFAULT_REGISTRY_IMAGE);
    });

    test("every registry container turns off distribution 3's trace export to localhost:4318", async () => {
        const { cloud } = await run(WITH_CACHE);
        for (const d of cloud.byType(T.deploy)) {
            expect(d.inputs.spec.template.spec.containers[0].env, d.name).toContainEqual({ name: "OTEL_TRACES_EXPORTER", value: "none" });
        }
    });
});

describe("probes: ready only while it can serve, alive even when full", () => {
    test("no registry's readiness looks at the fill level: a full cache stays in its Service; liveness never does either", async () => {
        const { cloud } = await run({ ...WITH_CACHE, "cluster-registry:cacheMaxFillPercent": "85" });
        const cache = containerOf(cloud, "cache-docker-io");
        for (const c of [cache, containerOf(cloud, "hosted")]) {
            expect(c.readinessProbe.exec.command).toEqual(readinessCommand(undefined));
            expect(c.readinessProbe.exec.command.slice(3)).toEqual(["registry-ready", "/var/lib/registry", "-", "http://127.0.0.1:5001/debug/health"]);
            expect(c.livenessProbe).toMatchObject({ httpGet: { path: "/", scheme: "HTTPS" } });
            // The registry's own port (behind a cache's coalescer, not nginx's), so a hung registry is restarted.
            expect(c.ports.map((p: { name: string }) => p.name)).toContain(c.livenessProbe.httpGet.port);
            expect(c.livenessProbe.exec).toBeUndefined();
        }
    });
});

describe("a cache makes room by itself", () => {
    const evictOf = (cloud: FakeCloud, name: string) =>
        cloud.one(T.deploy, name).inputs.spec.template.spec.containers.find((c: { name: string }) => c.name === "evict");

    test("a cache's eviction container runs the eviction loop on its storage, measured against cacheStorageSize at cacheMaxFillPercent, as the registry's user; the hosted registry has none", async () => {
        const { cloud } = await run({ ...WITH_CACHE, "cluster-registry:cacheMaxFillPercent": "85", "cluster-registry:cacheStorageSize": "10Gi" });
        const evict = evictOf(cloud, "cache-docker-io");
        expect(evict.command).toEqual(evictionCommand("10Gi", 85));
        expect(evict.command.slice(0, 3)).toEqual(["sh", "-c", EVICTION_SCRIPT]);
        // From 85% of 10 GiB, in KiB, down to 75%, read blobs too from 88.75%, looked at every second.
        expect(evict.command.slice(4)).toEqual(["/var/lib/registry", "8912896", "7864320", "9306112", "1"]);
        expect(evict.image).toBe(containerOf(cloud, "cache-docker-io").image);
        expect(evict.volumeMounts).toEqual([{ name: "storage", mountPath: "/var/lib/registry" }]);
        expect(evict.securityContext).toMatchObject({ runAsUser: 1000, runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
        expect(evictOf(cloud, "hosted")).toBeUndefined();
    });

    test("a cache in a node directory (kind) is measured against cacheStorageSize too, not the node's disk", async () => {
        const { cloud } = await run({
            "cluster-registry:caches": '["docker.io"]',
            "cluster-registry:cacheHostPath": "/var/lib/cluster-registry/caches",
            "cluster-registry:cacheStorageSize": "2Gi",
        });
        expect(cloud.one(T.deploy, "cache-docker-io").inputs.spec.template.spec.volumes).toContainEqual(
            expect.objectContaining({ name: "storage", hostPath: expect.objectContaining({ path: "/var/lib/cluster-registry/caches/cache-docker-io" }) }),
        );
        expect(evictOf(cloud, "cache-docker-io").command.slice(5)).toEqual(["1887436", "1677721", "1939865", "1"]);
    });

    test("the default limit is 90%, evicting down to 80%; 100 runs no eviction loop", async () => {
        // 10Gi is 10485760 KiB: the limit at 90%, the low mark at 80%, the hard mark a quarter of the way from 90% to full (92.5%), a pass a second.
        expect(evictOf((await run(WITH_CACHE)).cloud, "cache-docker-io").command.slice(5)).toEqual(["9437184", "8388608", "9699328", "1"]);
        expect(evictOf((await run({ ...WITH_CACHE, "cluster-registry:cacheMaxFillPercent": "100" })).cloud, "cache-docker-io")).toBeUndefined();
    });

    test("an eviction goes 10 points under the limit, keeping at least half of it, and spares read blobs until a quarter of the way to full; the coalescer's nginx keeps at most half of that (2 GiB at most), so its copies alone never hold the cache above it", () => {
        expect(evictionThresholds("100Mi", 90)).toEqual({ highKiB: 92160n, lowKiB: 81920n, hardKiB: 94720n, coalescerKiB: 40960n });
        expect(evictionThresholds("100Mi", 15)).toEqual({ highKiB: 15360n, lowKiB: 7168n, hardKiB: 37120n, coalescerKiB: 3584n });
        expect(evictionThresholds("1Mi", 1)).toEqual({ highKiB: 10n, lowKiB: 0n, hardKiB: 263n, coalescerKiB: 0n });
        expect(evictionThresholds("50Gi", 90).coalescerKiB).toBe(2n * 1024n * 1024n);
    });

    test("the coalescer's max_size follows the cache's size and limit; without a limit it keeps nginx's 2g", async () => {
        const nginx = async (config: Record<string, string>) =>
            (await run({ ...WITH_CACHE, ...config })).cloud.one("kubernetes:core/v1:ConfigMap", "cache-docker-io-config").inputs.data["nginx.conf"] as string;
        expect(await nginx({ "cluster-registry:cacheStorageSize": "1Gi" })).toContain(" max_size=419430k ");
        expect(await nginx({ "cluster-registry:cacheStorageSize": "50Gi" })).toContain(" max_size=2097152k ");
        expect(await nginx({ "cluster-registry:cacheMaxFillPercent": "100" })).toContain(" max_size=2g ");
    });

    test("a TTL of 0 (never expire) is accepted and reaches the cache's config", async () => {
        const { cloud } = await run({ ...WITH_CACHE, "cluster-registry:cacheTtl": "0" });
        expect(cloud.one("kubernetes:core/v1:ConfigMap", "cache-docker-io-config").inputs.data["config.yml"]).toContain('ttl: "0"\n');
        await expect(run({ ...WITH_CACHE, "cluster-registry:cacheTtl": "-1h" })).rejects.toThrow(/cacheTtl: "-1h" is not valid/);
    });
});

/** Whether a NetworkPolicy's ingress rules admit a pod of namespace `ns` to `port` (the subset of the API the program uses). */
function admits(policy: any, ns: string, port: number): boolean {
    const nsLabels: Record<string, string> = { "kubernetes.io/metadata.name": ns };
    const selects = (sel: any) =>
        Object.entries<string>(sel.matchLabels ?? {}).every(([k, v]) => nsLabels[k] === v) &&
        (sel.matchExpressions ?? []).every((e: any) => {
            if (e.operator !== "In") throw new Error(`operator ${e.operator} not modelled`);
            return e.values.includes(nsLabels[e.key]);
        });
    return (policy.spec.ingress ?? []).some(
        (rule: any) =>
            (rule.ports === undefined || rule.ports.some((p: any) => p.port === port)) &&
            (rule.from === undefined || rule.from.some((peer: any) => peer.namespaceSelector && !peer.podSelector && selects(peer.namespaceSelector))),
    );
}

const NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy";
const METRICS = { ...WITH_CACHE, "cluster-registry:metricsNamespaces": '["monitoring"]' };
const debugAddrs = (cloud: FakeCloud, name: string) =>
    Object.entries<string>(cloud.one(T.cm, `${name}-config`).inputs.data)
        .filter(([file]) => file.endsWith(".yml"))
        .map(([, c]) => YAML.parse(c).http.debug.addr as string);

describe("debug listener", () => {
    test("debug listener: by default every registry's (the push container's too) listens on its pod's loopback only, with no metrics Service, port or NetworkPolicy", async () => {
        const { cloud } = await run({ ...WITH_CACHE, "cluster-registry:nodePort": "30500" });
        expect(debugAddrs(cloud, "hosted")).toEqual(["127.0.0.1:5001", "127.0.0.1:5003"]);
        expect(debugAddrs(cloud, "cache-docker-io")).toEqual(["127.0.0.1:5001"]);
        expect(cloud.byType(T.svc).filter((s) => s.name.endsWith("-metrics"))).toEqual([]);
        expect(cloud.byType(NETPOL)).toEqual([]);
        for (const d of cloud.byType(T.deploy)) {
            const ports = d.inputs.spec.template.spec.containers.flatMap((c: { ports?: { containerPort: number }[] }) =>
                (c.ports ?? []).map((p) => p.containerPort),
            );
            expect(ports, d.name).not.toContain(5001);
            expect(ports, d.name).not.toContain(5003);
        }
        // The probe still reaches it: it runs inside the pod.
        expect(containerOf(cloud, "hosted").readinessProbe.exec.command.at(-1)).toBe("http://127.0.0.1:5001/debug/health");
        // Every port a NodePort Service lists gets a port on every node: only the push port.
        const nodePort = cloud.one(T.svc, "hosted-node-port").inputs.spec;
        expect(nodePort.ports.map((p: { name: string; nodePort?: number }) => [p.name, p.nodePort])).toEqual([["push", 30500]]);
    });

    test("debug listener: with metricsNamespaces, a metrics Service per registry and a NetworkPolicy admitting the debug port from those namespaces only, the registry ports from anywhere; the push container's stays on loopback", async () => {
        const { cloud } = await run({ ...METRICS, "cluster-registry:metricsNamespaces": '["monitoring", "observability"]' });
        expect(debugAddrs(cloud, "hosted")).toEqual([":5001", "127.0.0.1:5003"]);
        expect(debugAddrs(cloud, "cache-docker-io")).toEqual([":5001"]);
        for (const [name, svcName] of [
            ["hosted", "registry-metrics"],
            ["cache-docker-io", "cache-docker-io-metrics"],
        ]) {
            const metrics = cloud.one(T.svc, `${name}-metrics`).inputs;
            expect(metrics.metadata.name).toBe(svcName);
            expect(metrics.spec.type).toBe("ClusterIP");
            // The cache's nginx serves its eviction counters beside the registry's metrics.
            expect(metrics.spec.ports).toEqual([
                { name: "metrics", port: 5001, targetPort: "metrics", protocol: "TCP" },
                ...(name === "hosted" ? [] : [{ name: "evict-metrics", port: 5005, targetPort: "evict-metrics", protocol: "TCP" }]),
            ]);
            const selector = cloud.one(T.deploy, name).inputs.spec.selector.matchLabels;
            expect(metrics.spec.selector).toEqual(selector);
            expect(containerOf(cloud, name).ports).toContainEqual({ name: "metrics", containerPort: 5001, protocol: "TCP" });
            const policy = cloud.one(NETPOL, `${name}-ingress`).inputs;
            expect(policy.spec.podSelector.matchLabels).toEqual(selector);
            expect(policy.spec.policyTypes).toEqual(["Ingress"]);
            for (const ns of ["monitoring", "observability"]) expect(admits(policy, ns, 5001), ns).toBe(true);
            for (const ns of ["tenant-a", "registry", "kube-system"]) expect(admits(policy, ns, 5001), ns).toBe(false);
            for (const ns of ["monitoring", "observability"]) expect(admits(policy, ns, 5005), ns).toBe(name !== "hosted");
            for (const ns of ["tenant-a", "registry", "kube-system"]) expect(admits(policy, ns, 5005), ns).toBe(false);
            for (const ns of ["tenant-a", "monitoring"]) expect(admits(policy, ns, 5000), ns).toBe(true);
            expect(admits(policy, "tenant-a", 5003)).toBe(false);
        }
        const hostedPolicy = cloud.one(NETPOL, "hosted-ingress").inputs;
        expect(admits(hostedPolicy, "tenant-a", 5002)).toBe(true);
        expect(admits(cloud.one(NETPOL, "cache-docker-io-ingress").inputs, "tenant-a", 5002)).toBe(false);
    });

    test("ServiceMonitors, when asked, select exactly each metrics Service and scrape /metrics", async () => {
        const { cloud } = await run({ ...METRICS, "cluster-registry:serviceMonitors": "true" });
        const monitors = cloud.byType(T.monitor);
        expect(monitors).toHaveLength(2);
        const services = cloud.byType(T.svc);
        for (const m of monitors) {
            expect(m.inputs.apiVersion).toBe("monitoring.coreos.com/v1");
            const selected = services.filter((s) =>
                Object.entries<string>(m.inputs.spec.selector.matchLabels).every(([k, v]) => s.inputs.metadata.labels?.[k] === v),
            );
            expect(selected).toHaveLength(1);
            expect(selected[0].name).toMatch(/-metrics$/);
            // A cache's also scrapes its eviction counters from its nginx; each endpoint a port of the Service.
            expect(m.inputs.spec.endpoints).toEqual([
                { port: "metrics", path: "/metrics", scheme: "http", interval: "30s" },
                ...(selected[0].inputs.metadata.name === "registry-metrics"
                    ? []
                    : [{ port: "evict-metrics", path: "/metrics", scheme: "http", interval: "30s" }]),
            ]);
            const ports = selected[0].inputs.spec.ports.map((p: { name: string }) => p.name);
            for (const e of m.inputs.spec.endpoints) expect(ports).toContain(e.port);
        }
    });

    test("serviceMonitors without metricsNamespaces is refused at preview, naming both keys, and registers nothing", async () => {
        const cloud = new FakeCloud();
        await expect(run({ ...WITH_CACHE, "cluster-registry:serviceMonitors": "true" }, cloud)).rejects.toThrow(
            /cluster-registry:serviceMonitors: is true but cluster-registry:metricsNamespaces is empty/,
        );
        expect(cloud.resources.filter((r) => r.type.startsWith("kubernetes:"))).toEqual([]);
    });
});

/** The cache pod's containers by name. */
const cacheContainers = (cloud: FakeCloud): Record<string, any> =>
    Object.fromEntries(cloud.one(T.deploy, "cache-docker-io").inputs.spec.template.spec.containers.map((c: { name: string }) => [c.name, c]));
const nginxConf = (cloud: FakeCloud): string | undefined => cloud.one(T.cm, "cache-docker-io-config").inputs.data["nginx.conf"];
/** The server block of nginx.conf that serves the eviction counters, if any. */
const metricsServer = (conf: string | undefined) => /\n {4}server \{\n {8}listen ([^;]+);\n(?:(?!\n {4}\})[^])*alias ([^;]+);/.exec(conf ?? "");

describe("a cache's eviction counters, served by its coalescer", () => {
    test("by default nginx serves the file the evict container writes, on the pod's loopback only, from the volume both mount at the same path; no port, Service or policy lists it", async () => {
        const { cloud } = await run(WITH_CACHE);
        const { evict, coalescer } = cacheContainers(cloud);
        const server = metricsServer(nginxConf(cloud));
        expect(server?.[1]).toBe("127.0.0.1:5005");
        // The file is the script's `$1/cache-evictions.prom`, $1 being the evict container's storage mount.
        const storageOf = (c: any) => c.volumeMounts.find((m: { name: string }) => m.name === "storage").mountPath as string;
        expect(evict.command[4]).toBe(storageOf(evict));
        expect(EVICTION_SCRIPT).toContain('counters="$1/cache-evictions.prom"');
        expect(server?.[2]).toBe(`${storageOf(coalescer)}/cache-evictions.prom`);
        expect(storageOf(coalescer)).toBe(storageOf(evict));
        // nginx reads what the evict container writes: the same user (and the script writes it 0644).
        expect(coalescer.securityContext.runAsUser).toBe(evict.securityContext.runAsUser);
        expect(EVICTION_SCRIPT).toContain("umask 022");
        expect(coalescer.ports.map((p: { containerPort: number }) => p.containerPort)).not.toContain(5005);
        expect(cloud.byType(T.svc).filter((x) => x.name.endsWith("-metrics"))).toEqual([]);
    });

    test("with metricsNamespaces nginx listens on every address of the pod, under a named container port the metrics Service targets", async () => {
        const { cloud } = await run(METRICS);
        const { coalescer } = cacheContainers(cloud);
        expect(metricsServer(nginxConf(cloud))?.[1]).toBe("5005");
        expect(coalescer.ports).toContainEqual({ name: "evict-metrics", containerPort: 5005, protocol: "TCP" });
        const port = cloud.one(T.svc, "cache-docker-io-metrics").inputs.spec.ports.find((p: { port: number }) => p.port === 5005);
        expect(coalescer.ports.map((p: { name: string }) => p.name)).toContain(port.targetPort);
    });

    test('with cacheCoalescerImage "" there is no nginx: the counters stay in the log and the file, and no Service, policy or monitor lists 5005', async () => {
        const { cloud } = await run({ ...METRICS, "cluster-registry:serviceMonitors": "true", "cluster-registry:cacheCoalescerImage": "" });
        expect(Object.keys(cacheContainers(cloud))).toEqual(["registry", "evict"]);
        expect(nginxConf(cloud)).toBeUndefined();
        expect(cloud.one(T.svc, "cache-docker-io-metrics").inputs.spec.ports.map((p: { port: number }) => p.port)).toEqual([5001]);
        expect(admits(cloud.one(NETPOL, "cache-docker-io-ingress").inputs, "monitoring", 5005)).toBe(false);
        for (const m of cloud.byType(T.monitor)) expect(m.inputs.spec.endpoints.map((e: { port: string }) => e.port)).toEqual(["metrics"]);
    });

    test("with cacheMaxFillPercent 100 there is no eviction loop and so no counters: nginx serves no metrics", async () => {
        const { cloud } = await run({ ...METRICS, "cluster-registry:cacheMaxFillPercent": "100" });
        expect(Object.keys(cacheContainers(cloud))).toEqual(["registry", "coalescer"]);
        expect(nginxConf(cloud)).toBeDefined();
        expect(metricsServer(nginxConf(cloud))).toBeNull();
        expect(nginxConf(cloud)).not.toContain("5005");
        expect(cloud.one(T.svc, "cache-docker-io-metrics").inputs.spec.ports.map((p: { port: number }) => p.port)).toEqual([5001]);
        expect(admits(cloud.one(NETPOL, "cache-docker-io-ingress").inputs, "monitoring", 5005)).toBe(false);
    });
});

describe("the hosted volume's fill alert", () => {
    const MONITORED = { ...METRICS, "cluster-registry:serviceMonitors": "true" };
    const thresholds = (rule: { inputs: any }) =>
        rule.inputs.spec.groups.flatMap((g: { rules: Array<{ expr: string; labels: { severity: string } }> }) =>
            g.rules.map((r) => [r.labels.severity, Number(r.expr.split(" >= ")[1])]),
        );
    const selectors = (rule: { inputs: any }) =>
        new Set(rule.inputs.spec.groups.flatMap((g: { rules: Array<{ expr: string }> }) => g.rules.flatMap((r) => r.expr.match(/\{[^}]*\}/g) ?? [])));

    test("with serviceMonitors, one PrometheusRule in the registries' namespace, on the hosted claim's actual name: warning at registryFillWarnPercent, critical at 95; none for the caches", async () => {
        const { cloud } = await run(MONITORED);
        const rule = cloud.one(T.promRule);
        expect(cloud.byType(T.promRule)).toHaveLength(1);
        expect(rule.name).toBe("registry-hosted-fill-alert");
        expect(rule.inputs.apiVersion).toBe("monitoring.coreos.com/v1");
        expect(rule.inputs.metadata.namespace).toBe("registry");
        // Kept by default (keepRegistryVolume): a PersistentVolumeClaimPatch under a fixed name.
        const claim = cloud.one(T.pvcPatch, "hosted-storage").outputs.metadata.name;
        expect(claim).toBe("registry-storage");
        expect(selectors(rule)).toEqual(new Set([`{namespace="registry", persistentvolumeclaim="${claim}"}`]));
        expect(thresholds(rule)).toEqual([
            ["warning", 80],
            ["critical", 95],
        ]);
    });

    test("the warning follows registryFillWarnPercent; at 100 (no log warning) only the critical alert is left", async () => {
        expect(thresholds((await run({ ...MONITORED, "cluster-registry:registryFillWarnPercent": "70" })).cloud.one(T.promRule))).toEqual([
            ["warning", 70],
            ["critical", 95],
        ]);
        expect(thresholds((await run({ ...MONITORED, "cluster-registry:registryFillWarnPercent": "100" })).cloud.one(T.promRule))).toEqual([["critical", 95]]);
    });

    test("without serviceMonitors (no Prometheus Operator) there is no PrometheusRule, metrics or not", async () => {
        for (const config of [WITH_CACHE, METRICS]) expect((await run(config)).cloud.byType(T.promRule)).toEqual([]);
    });

    test("on a kept claim (registryVolumeClaim) the rule watches that claim", async () => {
        const { cloud } = await run({
            ...MONITORED,
            "cluster-registry:registryVolumeClaim": "registry-hosted-storage-1a2b3c4d",
            "cluster-registry:createNamespace": "false",
        });
        expect(selectors(cloud.one(T.promRule))).toEqual(new Set(['{namespace="registry", persistentvolumeclaim="registry-hosted-storage-1a2b3c4d"}']));
    });

    test("on object storage there is no volume, so no rule (the ServiceMonitors stay)", async () => {
        const { cloud } = await run({
            ...MONITORED,
            "cluster-registry:objectStorageBucket": "images",
            "cluster-registry:objectStorageRegion": "eu-west-1",
        });
        expect(cloud.byType(T.monitor).length).toBeGreaterThan(0);
        expect(cloud.byType(T.promRule)).toEqual([]);
    });
});

describe("no config change moves a registry onto an empty volume", () => {
    test("a storageClass change is refused, naming the setting and the migration, and nothing moves", async () => {
        const cloud = new FakeCloud();
        await run({ ...WITH_CACHE, "cluster-registry:storageClass": "standard" }, cloud);
        const claimBefore = cloud.one(T.pvcPatch, "hosted-storage").outputs;
        await expect(run({ ...WITH_CACHE, "cluster-registry:storageClass": "premium" }, cloud)).rejects.toThrow(
            /cluster-registry:storageClass \("standard" now, "premium" asked\).*EMPTY volume.*cluster-registry:allowVolumeReplacement set to true/s,
        );
        // On the claim, with no stack trace: Pulumi prints a ResourceError under its resource, message alone.
        const error = await run({ ...WITH_CACHE, "cluster-registry:storageClass": "premium" }, cloud).catch((e: unknown) => e);
        expect(pulumi.ResourceError.isInstance(error)).toBe(true);
        expect((error as pulumi.ResourceError).hideStack).toBe(true);
        // Both claims would move; whichever the engine reaches first stops the run.
        expect(((error as pulumi.ResourceError).resource as unknown as { __name?: string }).__name).toMatch(/^registry-(hosted|cache-docker-io)-storage$/);
        // The engine kept the claim as it was (ignoreChanges) and no Deployment was registered onto another.
        expect(cloud.one(T.pvcPatch, "hosted-storage").outputs).toEqual(claimBefore);
        expect(cloud.byType(T.deploy).filter((d) => d.name.endsWith("hosted"))).toEqual([]);
    });

    test("with allowVolumeReplacement the claim is replaced with the new class", async () => {
        const cloud = new FakeCloud();
        await run({ "cluster-registry:storageClass": "standard" }, cloud);
        await run({ "cluster-registry:storageClass": "premium", "cluster-registry:allowVolumeReplacement": "true" }, cloud);
        expect(cloud.one(T.pvc, "hosted-storage").outputs.spec.storageClassName).toBe("premium");
        expect(cloud.one(T.deploy, "hosted").inputs.spec.template.spec.volumes.find((v: { name: string }) => v.name === "storage")).toEqual({
            name: "storage",
            persistentVolumeClaim: { claimName: cloud.one(T.pvc, "hosted-storage").outputs.metadata.name },
        });
    });

    test("destroy keeps the hosted registry's claim and its namespace (deleting a namespace deletes its claims), deletes the caches'; keepRegistryVolume=false deletes it too", async () => {
        const cloud = new FakeCloud();
        await run(WITH_CACHE, cloud);
        const hostedClaim = cloud.one(T.pvcPatch, "hosted-storage").urn;
        const cacheClaim = cloud.one(T.pvc, "cache-docker-io-storage").urn;
        const namespace = cloud.one(T.nsPatch, "registry-namespace").urn;
        const { retained, deleted } = cloud.destroy();
        expect(retained.sort()).toEqual([hostedClaim, namespace].sort());
        expect(deleted).toContain(cacheClaim);

        const other = new FakeCloud();
        await run({ ...WITH_CACHE, "cluster-registry:keepRegistryVolume": "false" }, other);
        expect(other.destroy().retained).toEqual([]);
    });

    test("a new stack runs the hosted registry on a kept claim it names (registryVolumeClaim), and creates no claim of its own", async () => {
        // The kept claim's namespace is kept too, so the new stack uses it rather than creating it.
        const { cloud } = await run({
            "cluster-registry:registryVolumeClaim": "registry-hosted-storage-1a2b3c4d",
            "cluster-registry:createNamespace": "false",
        });
        expect(cloud.byType(T.pvc).map((p) => p.name)).toEqual([]);
        const volumes = cloud.one(T.deploy, "hosted").inputs.spec.template.spec.volumes;
        expect(volumes.find((v: { name: string }) => v.name === "storage")).toEqual({
            name: "storage",
            persistentVolumeClaim: { claimName: "registry-hosted-storage-1a2b3c4d" },
        });
    });

    test("the guard names every field that would replace the claim, and stays quiet when none would", () => {
        expect(volumeReplacementProblem("ns/c", { namespace: "a", storageClassName: "x" }, { namespace: "a", storageClassName: "x" })).toBeUndefined();
        const both = volumeReplacementProblem(
            "ns/c",
            { namespace: "a", storageClassName: "x" },
            { namespace: "b", storageClassName: "y" },
            "cluster-registry:",
        );
        expect(both).toContain('cluster-registry:namespace ("a" now, "b" asked) and cluster-registry:storageClass ("x" now, "y" asked)');
    });

    test("for a library user the guard names ClusterRegistry's arguments, not stack keys", () => {
        const problem = volumeReplacementProblem("ns/c", { namespace: "a", storageClassName: "x" }, { namespace: "a", storageClassName: "y" });
        expect(problem).toMatch(/^storageClass \("x" now, "y" asked\).*with allowVolumeReplacement set to true/s);
        expect(problem).not.toContain("cluster-registry:");
    });

    test("the fake engine's ignoreChanges keeps the state's value for each path, as the engine does", () => {
        const old = { metadata: { namespace: "a" }, spec: { storageClassName: "x", size: 1 } };
        const given = { metadata: { namespace: "b" }, spec: { storageClassName: "y", size: 2 } };
        expect(withIgnoredChanges(given, old, ["spec.storageClassName", "metadata.namespace"])).toEqual({
            metadata: { namespace: "a" },
            spec: { storageClassName: "x", size: 2 },
        });
        expect(withIgnoredChanges({ spec: { storageClassName: "y" } }, { spec: {} }, ["spec.storageClassName"])).toEqual({ spec: {} });
        expect(withIgnoredChanges(given, old, [])).toEqual(given);
    });
});

describe("the rollout checksum", () => {
    test("is a plain value, so a preview diff shows the pod template while the htpasswd it hashes stays secret", async () => {
        const cloud = new FakeCloud({ clusterIP: () => "10.96.0.10" });
        await runProgram(cloud, { config: {}, entry: ENTRY });
        const deployment = cloud.one("kubernetes:apps/v1:Deployment", "registry-hosted");
        expect(deployment.secretInputs).not.toContain("spec");
        expect(deployment.inputs.spec.template.metadata.annotations["cluster-registry/checksum"]).toMatch(/^[0-9a-f]{64}$/);
        for (const door of ["push", "pull"])
            expect(cloud.one("kubernetes:core/v1:Secret", `registry-credentials-${door}`).secretInputs).toContain("stringData");
    });
});

describe("a cache's upstream credentials", () => {
    test("upstream credentials reach the cache from a Secret, never from its config or any other input", async () => {
        const token = "dckr_pat_not-a-real-token";
        const { cloud } = await runWithServiceIps({
            "cluster-registry:caches": '["docker.io"]',
            "cluster-registry:cacheCredentials": JSON.stringify([`docker.io=me:${token}`]),
        });
        const upstream = cloud.one("kubernetes:core/v1:Secret", "cache-docker-io-upstream");
        expect(upstream.inputs.stringData).toEqual({ username: "me", password: token });
        const env = cloud.one("kubernetes:apps/v1:Deployment", "cache-docker-io").inputs.spec.template.spec.containers[0].env;
        expect(env.filter((e: { name: string }) => e.name !== "REGISTRY_HTTP_SECRET")).toEqual([
            { name: "OTEL_TRACES_EXPORTER", value: "none" },
            { name: "REGISTRY_PROXY_USERNAME", valueFrom: { secretKeyRef: { name: upstream.outputs.metadata.name, key: "username" } } },
            { name: "REGISTRY_PROXY_PASSWORD", valueFrom: { secretKeyRef: { name: upstream.outputs.metadata.name, key: "password" } } },
        ]);
        for (const r of cloud.resources) if (r !== upstream) expect(JSON.stringify(r.inputs), r.name).not.toContain(token);
    });
});
