/**
 * components/cluster-registry.ts and registry.ts over a stack's life: `pulumi destroy` then `pulumi up`
 * on the same stack (the kept namespace and claim taken over), and an upgrade from an earlier version's
 * state (nothing kept replaced or deleted). The fake cloud keeps the cluster apart from the state, with
 * pulumi-kubernetes' create semantics (AlreadyExists, Patch upserts): see test/support/fake-cloud.ts.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, test, vi } from "vitest";
import { keptClaimName } from "../../components/registry";
import { FakeCloud, SavedResource, runProgram } from "../support/fake-cloud";
import { ENTRY, stackConfig } from "../support/stacks";
import { RESOURCE_TYPES } from "../support/resource-types";
import { certFacts } from "../support/x509";

const T = RESOURCE_TYPES;
/** Caches in volumes, so the caches' claims (deleted by destroy) are there beside the hosted one (kept). */
const WITH_CACHE = { "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheHostPath": "" };
const up = (cloud: FakeCloud, config: Record<string, string> = WITH_CACHE) => runProgram(cloud, { config, entry: ENTRY });
const hostedClaimName = (cloud: FakeCloud): string =>
    cloud.one(T.deploy, "hosted").inputs.spec.template.spec.volumes.find((v: { name: string }) => v.name === "storage").persistentVolumeClaim.claimName;
const KEPT_KINDS: string[] = [T.ns, T.nsPatch, T.pvc, T.pvcPatch];

describe("pulumi destroy, then pulumi up on the same stack", () => {
    test("the kept namespace and claim are taken over with no error, and the hosted registry runs on the same claim", async () => {
        const cloud = new FakeCloud();
        await up(cloud);
        const claim = hostedClaimName(cloud);
        expect(claim).toBe(keptClaimName("registry"));
        const { retained } = cloud.destroy();
        expect(retained.sort()).toEqual([cloud.one(T.nsPatch).urn, cloud.one(T.pvcPatch).urn].sort());
        // What destroy left: the namespace and the hosted claim, nothing else (the caches' claims are gone).
        expect(cloud.clusterKeys()).toEqual(["core/v1:Namespace//registry", `core/v1:PersistentVolumeClaim/registry/${claim}`]);

        await up(cloud);
        expect(hostedClaimName(cloud)).toBe(claim);
        expect(cloud.clusterObject("core/v1:Namespace", "", "registry")?.metadata.labels).toMatchObject({
            "pod-security.kubernetes.io/enforce": "restricted",
            "app.kubernetes.io/part-of": "cluster-registry",
        });
        // And again: the loop kind users run all day.
        cloud.destroy();
        await up(cloud);
        expect(hostedClaimName(cloud)).toBe(claim);
    });

    test("pulumi preview before that up plans the two takeovers and fails on nothing, changing nothing", async () => {
        const cloud = new FakeCloud();
        await up(cloud);
        cloud.destroy();
        const kept = cloud.clusterKeys();
        cloud.setPreview(true);
        await up(cloud);
        expect(cloud.steps.filter((s) => s.type === T.nsPatch || s.type === T.pvcPatch).map((s) => [s.type, s.op])).toEqual([
            [T.nsPatch, "create"],
            [T.pvcPatch, "create"],
        ]);
        expect(cloud.clusterKeys()).toEqual(kept);
        expect(cloud.exportState()).toEqual([]);
    });

    test("the next stack may change what the namespace enforces: its labels are owned by one field manager from stack to stack", async () => {
        // On kind, caches in a node directory need privileged; without caches the namespace is restricted.
        const level = (cloud: FakeCloud) => cloud.clusterObject("core/v1:Namespace", "", "registry")?.metadata.labels["pod-security.kubernetes.io/enforce"];
        const cloud = new FakeCloud();
        await up(cloud, { "cluster-registry:caches": '["docker.io"]' });
        expect(level(cloud)).toBe("privileged");
        cloud.destroy();
        await up(cloud, { "cluster-registry:caches": "[]" });
        expect(level(cloud)).toBe("restricted");
        cloud.destroy();
        await up(cloud, { "cluster-registry:caches": '["docker.io"]' });
        expect(level(cloud)).toBe("privileged");
    });

    test("a Namespace and a claim of the kind main registered would fail that second up with AlreadyExists (what this replaces)", async () => {
        const cloud = new FakeCloud();
        await up(cloud);
        cloud.destroy();
        // Both kept objects stay; a client-side create of either fails, as pulumi-kubernetes >= 4.29.0 does.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lifecycle-"));
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: cluster-registry\nruntime: nodejs\n");
        const entry = path.join(dir, "old.ts");
        const k8s = JSON.stringify(path.dirname(require.resolve("@pulumi/kubernetes/package.json")));
        fs.writeFileSync(
            entry,
            `import * as k8s from ${k8s};\nnew k8s.core.v1.Namespace("registry-namespace", { metadata: { name: "registry" } }, { retainOnDelete: true });\n`,
        );
        try {
            await expect(runProgram(cloud, { config: {}, entry })).rejects.toThrow(/namespaces "registry" already exists/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    test("with keepRegistryVolume false, destroy deletes the namespace and every claim, and the next up starts afresh", async () => {
        const cloud = new FakeCloud();
        const config = { ...WITH_CACHE, "cluster-registry:keepRegistryVolume": "false" };
        await up(cloud, config);
        expect(cloud.byType(T.nsPatch)).toEqual([]);
        expect(cloud.byType(T.pvcPatch)).toEqual([]);
        expect(cloud.destroy().retained).toEqual([]);
        expect(cloud.clusterKeys()).toEqual([]);
        await up(cloud, config);
        expect(cloud.steps.filter((s) => s.op !== "create")).toEqual([]);
    });
});

describe("upgrading a stack deployed by an earlier version", () => {
    // The namespaces and claims main (8725d60) left in its state: the dev (kind) and eks stacks.
    for (const stack of ["dev", "eks"]) {
        const fixture = path.join(__dirname, `../fixtures/upgrade/main-8725d60-${stack}.state.json`);
        const saved = JSON.parse(fs.readFileSync(fixture, "utf8")) as SavedResource[];

        test(`${stack}: replaces and deletes neither namespace nor claim; the hosted registry stays on its provider-named claim`, async () => {
            const cloud = new FakeCloud();
            cloud.importState(saved);
            const objectsBefore = cloud.clusterKeys();
            const oldClaim = saved.find((r) => r.urn.endsWith("::registry-hosted-storage"))!;
            const oldNamespace = saved.find((r) => r.urn.endsWith("::registry-namespace"))!;
            await up(cloud, stackConfig(stack));

            const kept = cloud.steps.filter((s) => KEPT_KINDS.includes(s.type));
            expect(kept.filter((s) => s.op === "replace" || s.op === "delete")).toEqual([]);
            // The Namespace resource moved by its alias: the patch applies to the same namespace.
            expect(kept.find((s) => s.from === oldNamespace.urn)).toMatchObject({ urn: cloud.one(T.nsPatch).urn, op: "update" });
            expect(cloud.one(T.nsPatch).outputs.metadata.name).toBe(oldNamespace.outputs.metadata.name);
            // The claim moved by its alias, keeping its provider-given name.
            expect(kept.find((s) => s.from === oldClaim.urn)).toMatchObject({ urn: cloud.one(T.pvcPatch).urn, op: "update" });
            expect(hostedClaimName(cloud)).toBe(oldClaim.outputs.metadata.name);
            expect(cloud.clusterKeys()).toEqual(expect.arrayContaining(objectsBefore));

            // What pulumi preview showed before it: the same moves, no replace, no delete.
            const previewed = new FakeCloud();
            previewed.importState(saved);
            previewed.setPreview(true);
            await up(previewed, stackConfig(stack));
            expect(previewed.steps.filter((s) => KEPT_KINDS.includes(s.type) && (s.op === "replace" || s.op === "delete"))).toEqual([]);
            expect(previewed.steps.filter((s) => s.from).map((s) => s.type)).toEqual(expect.arrayContaining([T.nsPatch, T.pvcPatch]));

            // A second up with the same version changes nothing kept.
            await up(cloud, stackConfig(stack));
            expect(cloud.steps.filter((s) => KEPT_KINDS.includes(s.type)).map((s) => s.op)).toEqual(
                cloud.steps.filter((s) => KEPT_KINDS.includes(s.type)).map(() => "same"),
            );
        });
    }

    test("an upgraded stack may turn keepRegistryVolume off and on again: each up moves the namespace and the claim, deleting neither", async () => {
        const saved = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/upgrade/main-8725d60-eks.state.json"), "utf8")) as SavedResource[];
        const oldClaim = saved.find((r) => r.urn.endsWith("::registry-hosted-storage"))!.outputs.metadata.name;
        const cloud = new FakeCloud();
        cloud.importState(saved);
        for (const keep of ["false", "true", "false", "true"]) {
            await up(cloud, { ...stackConfig("eks"), "cluster-registry:keepRegistryVolume": keep });
            const kept = cloud.steps.filter((s) => KEPT_KINDS.includes(s.type));
            expect(
                kept.filter((s) => !["create", "update", "same"].includes(s.op)),
                `keepRegistryVolume ${keep}`,
            ).toEqual([]);
            expect(hostedClaimName(cloud), `keepRegistryVolume ${keep}`).toBe(oldClaim);
            expect(cloud.clusterObject("core/v1:PersistentVolumeClaim", "registry", oldClaim)).toBeDefined();
        }
    });

    test("an upgraded stack's namespace keeps the old version's field manager on its labels: a later change of level conflicts until the label is removed", async () => {
        const saved = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/upgrade/main-8725d60-dev.state.json"), "utf8")) as SavedResource[];
        const config = { ...stackConfig("dev"), "cluster-registry:caches": '["docker.io"]' };
        const cloud = new FakeCloud();
        cloud.importState(saved);
        await up(cloud, config); // the level main applied: no change, no conflict
        await expect(up(cloud, { ...config, "cluster-registry:caches": "[]" })).rejects.toThrow(
            /field conflict.*\.metadata\.labels\.pod-security\.kubernetes\.io\/enforce/,
        );
        // The README's remedy: kubectl label namespace registry pod-security.kubernetes.io/enforce-
        cloud.removeLabel("core/v1:Namespace", "", "registry", "pod-security.kubernetes.io/enforce");
        await up(cloud, { ...config, "cluster-registry:caches": "[]" });
        expect(cloud.clusterObject("core/v1:Namespace", "", "registry")?.metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    });

    test("an upgraded stack may grow storageSize: the claim's storage request, owned by the old version's field manager, is resized in place", async () => {
        const saved = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/upgrade/main-8725d60-eks.state.json"), "utf8")) as SavedResource[];
        const oldClaim = saved.find((r) => r.urn.endsWith("::registry-hosted-storage"))!.outputs.metadata.name;
        const cloud = new FakeCloud();
        cloud.importState(saved);
        await up(cloud, stackConfig("eks"));
        // An unforced apply under cluster-registry.<svc> of another size conflicts with the old manager's.
        await up(cloud, { ...stackConfig("eks"), "cluster-registry:storageSize": "80Gi" });
        expect(cloud.steps.find((s) => s.type === T.pvcPatch)?.op).toBe("update");
        expect(hostedClaimName(cloud)).toBe(oldClaim);
        expect(cloud.clusterObject("core/v1:PersistentVolumeClaim", "registry", oldClaim)?.spec.resources.requests.storage).toBe("80Gi");
    });

    test("allowVolumeReplacement on its own replaces an ordinary claim: its kept name is not marked auto-named, so the provider draws a new one (README: set it for one up)", async () => {
        const cloud = new FakeCloud();
        const config = { ...WITH_CACHE, "cluster-registry:keepRegistryVolume": "false" };
        await up(cloud, config);
        await up(cloud, config); // the name now comes from ignoreChanges, not from the provider's adoption
        const claim = hostedClaimName(cloud);
        expect(cloud.steps.filter((s) => s.type === T.pvc).map((s) => s.op)).toEqual(cloud.steps.filter((s) => s.type === T.pvc).map(() => "update"));
        await up(cloud, config);
        expect(cloud.steps.filter((s) => s.type === T.pvc && s.op !== "same")).toEqual([]);
        await up(cloud, { ...config, "cluster-registry:allowVolumeReplacement": "true" });
        expect(hostedClaimName(cloud)).not.toBe(claim);
    });

    test("a new stack may turn keepRegistryVolume off and on: the namespace is never deleted, the claim keeps its fixed name", async () => {
        const cloud = new FakeCloud();
        for (const keep of ["true", "false", "true"]) {
            await up(cloud, { ...WITH_CACHE, "cluster-registry:keepRegistryVolume": keep });
            const kept = cloud.steps.filter((s) => KEPT_KINDS.includes(s.type));
            expect(
                kept.filter((s) => !["create", "update", "same"].includes(s.op)),
                `keepRegistryVolume ${keep}`,
            ).toEqual([]);
            expect(hostedClaimName(cloud)).toBe(keptClaimName("registry"));
        }
    });
});

describe("what moves on upgrade: every URN an earlier version had maps to a current resource by its aliases", () => {
    const urns = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/upgrade/urns.json"), "utf8")) as {
        moved: Array<{ urn: string; now: { type: string; name: string } }>;
        removed: Array<{ urn: string }>;
    };

    for (const stack of ["dev", "k3d", "eks"]) {
        test(`${stack}: each moved URN is an alias of the resource that took its place, and no removed one is registered`, async () => {
            const cloud = new FakeCloud();
            await up(cloud, stackConfig(stack));
            for (const m of urns.moved) {
                const holders = cloud.resources.filter((r) => r.aliases.includes(m.urn));
                expect(
                    holders.map((r) => ({ type: r.type, name: r.name })),
                    m.urn,
                ).toEqual([m.now]);
            }
            const current = new Set(cloud.resources.map((r) => r.urn));
            for (const r of urns.removed) expect(current.has(r.urn), r.urn).toBe(false);
        });
    }

    test("an old stack's htpasswd Secret is updated in place by the read-only door's, not replaced", async () => {
        const old = urns.moved[0].urn;
        const cloud = new FakeCloud();
        cloud.importState([
            {
                urn: old,
                type: "kubernetes:core/v1:Secret",
                inputs: {
                    metadata: { name: "registry-credentials-htpasswd-0a1b2c3d", namespace: "registry", annotations: { "pulumi.com/autonamed": "true" } },
                    type: "Opaque",
                    stringData: { htpasswd: "" },
                },
                outputs: {
                    metadata: { name: "registry-credentials-htpasswd-0a1b2c3d", namespace: "registry", annotations: { "pulumi.com/autonamed": "true" } },
                    type: "Opaque",
                },
                id: "registry/registry-credentials-htpasswd-0a1b2c3d",
                retainOnDelete: false,
            },
        ]);
        await up(cloud, stackConfig("dev"));
        const pull = cloud.one(T.secret, "credentials-pull");
        expect(cloud.steps.find((s) => s.from === old)).toEqual({ urn: pull.urn, type: T.secret, op: "update", from: old });
        expect(pull.outputs.metadata.name).toBe("registry-credentials-htpasswd-0a1b2c3d");
        expect(cloud.steps.filter((s) => s.op === "delete")).toEqual([]);
    });
});

describe("certificates over time: expiry visible, renewal by any up inside the window, nodes trusting throughout", () => {
    const pemOf = (cloud: FakeCloud, suffix: string) => cloud.one(suffix === "ca-cert" ? T.selfSigned : T.signed, suffix).outputs.certPem as string;
    /** Whether `leaf` verifies against `ca` as a node's TLS client checks it: issuer and signature. */
    const trusts = (ca: string, leaf: string) => {
        const [c, l] = [new crypto.X509Certificate(ca), new crypto.X509Certificate(leaf)];
        return l.checkIssued(c) && l.verify(c.publicKey);
    };
    const later = async <T>(hours: number, fn: () => Promise<T>): Promise<T> => {
        vi.setSystemTime(Date.now() + hours * 3600_000); // Date only; timers run as ever
        try {
            return await fn();
        } finally {
            vi.useRealTimers();
        }
    };

    test("certificateExpiry is each certificate's notAfter: the CA and every registry by its Service name", async () => {
        const cloud = new FakeCloud();
        const { outputs } = await up(cloud, { ...WITH_CACHE, "cluster-registry:cacheReplicas": "2" });
        const expiry = outputs.certificateExpiry as Record<string, string>;
        expect(Object.keys(expiry)).toEqual(["ca", "registry", "cache-docker-io", "cache-docker-io-1"]);
        const notAfter = (pem: string) => certFacts(pem).notAfter.getTime();
        expect(Date.parse(expiry.ca)).toBe(notAfter(pemOf(cloud, "ca-cert")));
        expect(Date.parse(expiry.registry)).toBe(notAfter(pemOf(cloud, "hosted-tls-cert")));
        expect(Date.parse(expiry["cache-docker-io-1"])).toBe(notAfter(pemOf(cloud, "cache-docker-io-1-tls-cert")));
    });

    test("an up inside certEarlyRenewalHours re-issues the server certificates; the CA, and so what nodes trust, stays", async () => {
        const config = { ...WITH_CACHE, "cluster-registry:certValidityHours": "48", "cluster-registry:certEarlyRenewalHours": "24" };
        const cloud = new FakeCloud();
        const first = (await up(cloud, config)).outputs.certificateExpiry as Record<string, string>;
        const ca = pemOf(cloud, "ca-cert");
        const nodeFiles = cloud.one(T.secret, "node-config-files").inputs.stringData;
        // Outside the window: nothing moves.
        expect((await later(23, () => up(cloud, config))).outputs.certificateExpiry).toEqual(first);
        const renewed = (await later(25, () => up(cloud, config))).outputs.certificateExpiry as Record<string, string>;
        expect(renewed.ca).toBe(first.ca);
        expect(Date.parse(renewed.registry)).toBeGreaterThan(Date.parse(first.registry));
        expect(Date.parse(renewed["cache-docker-io"])).toBeGreaterThan(Date.parse(first["cache-docker-io"]));
        expect(trusts(ca, pemOf(cloud, "hosted-tls-cert"))).toBe(true);
        // What the node agent writes (the CA among it) is unchanged: nodes are not even touched.
        expect(cloud.one(T.secret, "node-config-files").inputs.stringData).toEqual(nodeFiles);
    });

    test("the CA re-issued inside its own window keeps its key and subject: nodes holding either CA trust either server certificate", async () => {
        // A 48-hour CA renews in its last 24 hours (half its validity); a 24-hour server certificate inside it.
        const config = { "cluster-registry:caValidityHours": "48", "cluster-registry:certValidityHours": "24", "cluster-registry:certEarlyRenewalHours": "1" };
        const cloud = new FakeCloud();
        await up(cloud, config);
        const [oldCa, oldLeaf] = [pemOf(cloud, "ca-cert"), pemOf(cloud, "hosted-tls-cert")];
        await later(25, () => up(cloud, config));
        const [newCa, newLeaf] = [pemOf(cloud, "ca-cert"), pemOf(cloud, "hosted-tls-cert")];
        expect(newCa).not.toBe(oldCa);
        expect(newLeaf).not.toBe(oldLeaf);
        // A node the agent has not reached yet still holds the old CA, and the other way round.
        expect([trusts(oldCa, newLeaf), trusts(newCa, oldLeaf), trusts(newCa, newLeaf)]).toEqual([true, true, true]);
    });
});
