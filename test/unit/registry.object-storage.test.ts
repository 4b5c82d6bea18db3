/** Issue 16, step 2: the hosted registry on S3 or an S3-compatible store, with read replicas. */
import { describe, expect, test } from "vitest";
import YAML from "yaml";
import { parseConfig } from "../../components/stack-config";
import { FakeCloud, RecordedResource, runProgram } from "../support/fake-cloud";
import { ENTRY } from "../support/stacks";
import { RESOURCE_TYPES } from "../support/resource-types";

const T = RESOURCE_TYPES;
const PDB = "kubernetes:policy/v1:PodDisruptionBudget";
const SA = "kubernetes:core/v1:ServiceAccount";
const SECRET_KEY = "not-a-real-secret-key-0123456789";
/** An S3-compatible store with static keys, as outside AWS. */
const COMPATIBLE = {
    "cluster-registry:objectStorageBucket": "images",
    "cluster-registry:objectStorageRegion": "us-east-1",
    "cluster-registry:objectStorageEndpoint": "https://s3.example.com:9000",
    "cluster-registry:objectStorageRootDirectory": "/cluster-a",
    "cluster-registry:objectStorageAccessKey": "registry",
    "cluster-registry:objectStorageSecretKey": SECRET_KEY,
};
const SECRET_KEYS = ["cluster-registry:objectStorageSecretKey"];
/** AWS S3 on EKS through IRSA. */
const EKS = {
    "cluster-registry:environment": "eks",
    "cluster-registry:objectStorageBucket": "images",
    "cluster-registry:objectStorageRegion": "eu-west-1",
    "cluster-registry:objectStorageRoleArn": "arn:aws:iam::123456789012:role/cluster-registry",
    "cluster-registry:objectStorageKmsKeyId": "alias/registry",
};

async function run(config: Record<string, string>, cloud = new FakeCloud()) {
    await runProgram(cloud, { config, entry: ENTRY, secretKeys: SECRET_KEYS.filter((k) => k in config) });
    return cloud;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const podOf = (d: RecordedResource) => d.inputs.spec.template.spec;

describe("the hosted registry on object storage", () => {
    test("pull and push registries are Deployments of their own over the bucket; no volume; the Service reaches each port's pods only", async () => {
        const cloud = await run(COMPATIBLE);
        const pull = cloud.one(T.deploy, "hosted");
        const push = cloud.one(T.deploy, "hosted-push");
        expect(cloud.byType(T.pvc)).toEqual([]);
        expect(pull.inputs.spec.replicas).toBe(2);
        expect(push.inputs.spec.replicas).toBe(1);
        for (const d of [pull, push]) {
            expect(d.inputs.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
            expect(podOf(d).volumes.map((v: { name: string }) => v.name)).not.toContain("storage");
            expect(podOf(d).affinity).toBeUndefined();
        }
        expect(podOf(pull).containers.map((c: { name: string }) => c.name)).toEqual(["registry"]);
        expect(podOf(push).containers.map((c: { name: string }) => c.name)).toEqual(["push"]);
        // Two Deployments whose selectors overlapped would fight over each other's pods.
        expect(matches(pull.inputs.spec.selector.matchLabels, push.inputs.spec.template.metadata.labels)).toBe(false);
        expect(matches(push.inputs.spec.selector.matchLabels, pull.inputs.spec.template.metadata.labels)).toBe(false);
        // One Service over both; a named targetPort has endpoints only on pods with a port of that name.
        const svc = cloud.one(T.svc, "hosted-service").inputs.spec;
        for (const d of [pull, push]) expect(matches(svc.selector, d.inputs.spec.template.metadata.labels)).toBe(true);
        const portsOf = (d: RecordedResource) => podOf(d).containers.flatMap((c: any) => c.ports.map((p: { name: string }) => p.name));
        expect(portsOf(pull)).toContain("registry");
        expect(portsOf(pull)).not.toContain("push");
        expect(portsOf(push)).toContain("push");
        expect(portsOf(push)).not.toContain("registry");
    });

    test("read replicas spread over nodes (required) and zones (preferred), with a disruption budget; one replica gets none", async () => {
        const cloud = await run(COMPATIBLE);
        const pull = cloud.one(T.deploy, "hosted");
        const selector = pull.inputs.spec.selector.matchLabels;
        const spread = podOf(pull).topologySpreadConstraints;
        expect(spread.map((c: any) => [c.topologyKey, c.whenUnsatisfiable, c.maxSkew])).toEqual([
            ["kubernetes.io/hostname", "DoNotSchedule", 1],
            ["topology.kubernetes.io/zone", "ScheduleAnyway", 1],
        ]);
        for (const c of spread) expect(c.labelSelector.matchLabels).toEqual(selector);
        const pdbs = cloud.byType(PDB);
        expect(pdbs).toHaveLength(1);
        expect(pdbs[0].inputs.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: selector } });
        const single = await run({ ...COMPATIBLE, "cluster-registry:pullReplicas": "1" });
        expect(single.one(T.deploy, "hosted").inputs.spec.replicas).toBe(1);
        expect(single.byType(PDB)).toEqual([]);
    });

    test("the config names the bucket path-style, streams blobs (no redirects); the static keys come from a Secret and are nowhere else", async () => {
        const cloud = await run(COMPATIBLE);
        const data: Record<string, string> = cloud.one(T.cm, "hosted-config").inputs.data;
        for (const text of Object.entries(data)
            .filter(([file]) => file.endsWith(".yml"))
            .map(([, t]) => t)) {
            const storage = YAML.parse(text).storage;
            expect(storage.s3).toEqual({
                bucket: "images",
                region: "us-east-1",
                regionendpoint: "https://s3.example.com:9000",
                forcepathstyle: true,
                rootdirectory: "/cluster-a",
            });
            expect(storage.redirect).toEqual({ disable: true });
        }
        for (const name of ["hosted", "hosted-push"]) {
            const [c] = podOf(cloud.one(T.deploy, name)).containers;
            for (const [env, key] of [
                ["REGISTRY_STORAGE_S3_ACCESSKEY", "accesskey"],
                ["REGISTRY_STORAGE_S3_SECRETKEY", "secretkey"],
            ]) {
                const ref = c.env.find((e: { name: string }) => e.name === env).valueFrom.secretKeyRef;
                const secret = cloud.byType(T.secret).find((s) => s.outputs.metadata.name === ref.name)!;
                expect(secret.secretInputs).toContain("stringData");
                expect(secret.inputs.stringData[ref.key]).toBe(key === "secretkey" ? SECRET_KEY : "registry");
            }
        }
        const holders = cloud.resources.filter((r) => JSON.stringify(r.inputs).includes(SECRET_KEY));
        expect(holders.map((r) => r.type)).toEqual([T.secret]);
    });

    test("on EKS: no key anywhere; the pods run as a named ServiceAccount annotated for IRSA; SSE-KMS on", async () => {
        const cloud = await run(EKS);
        const accounts = cloud.byType(SA).filter((a) => a.name.endsWith("storage-identity"));
        expect(accounts).toHaveLength(1);
        const account = accounts[0].inputs;
        expect(account.metadata.name).toBe("registry-storage");
        expect(account.metadata.annotations).toEqual({ "eks.amazonaws.com/role-arn": EKS["cluster-registry:objectStorageRoleArn"] });
        for (const name of ["hosted", "hosted-push"]) {
            const pod = podOf(cloud.one(T.deploy, name));
            expect(pod.serviceAccountName).toBe("registry-storage");
            expect(JSON.stringify(pod)).not.toMatch(/ACCESSKEY|SECRETKEY/);
        }
        const s3 = YAML.parse(cloud.one(T.cm, "hosted-config").inputs.data["config.yml"]).storage.s3;
        expect(s3).toEqual({ bucket: "images", region: "eu-west-1", encrypt: true, keyid: "alias/registry" });
    });

    test("a second run of an unchanged stack asks for exactly the same inputs", async () => {
        const cloud = new FakeCloud();
        await run(COMPATIBLE, cloud);
        const first = cloud.resources.map((r) => [r.urn, r.inputs]);
        await run(COMPATIBLE, cloud);
        expect(cloud.resources.map((r) => [r.urn, r.inputs])).toEqual(first);
    });
});

describe("garbage collection on object storage: one writer at a time", () => {
    const surgeFirst = { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
    const settingsOf = (cloud: FakeCloud) => (cloud.one(T.cm, "hosted-config").inputs.data as Record<string, string>)["push-supervisor.conf"];

    test("with gcSchedule the push Deployment rolls with Recreate (never a surge writer beside a collecting one); the pull Deployment still surges", async () => {
        for (const gcSchedule of ["03:00", "manual"]) {
            const cloud = await run({ ...COMPATIBLE, "cluster-registry:gcSchedule": gcSchedule });
            expect(cloud.one(T.deploy, "hosted-push").inputs.spec.strategy, gcSchedule).toEqual({ type: "Recreate" });
            expect(cloud.one(T.deploy, "hosted").inputs.spec.strategy, gcSchedule).toEqual(surgeFirst);
        }
    });

    test("without gcSchedule the push Deployment keeps surging: no collection, so two writers are harmless", async () => {
        const cloud = await run(COMPATIBLE);
        expect(cloud.one(T.deploy, "hosted-push").inputs.spec.strategy).toEqual(surgeFirst);
    });

    test("the supervisor gets no volume to watch or lock, and holds collections off for a replaced pod's grace period", async () => {
        const cloud = await run({ ...COMPATIBLE, "cluster-registry:gcSchedule": "03:00" });
        const settings = settingsOf(cloud);
        expect(settings).toContain("storage=-\n");
        expect(settings).toContain("writer_lock=-\n");
        const grace = podOf(cloud.one(T.deploy, "hosted-push")).terminationGracePeriodSeconds;
        expect(grace).toBeGreaterThan(0);
        expect(settings).toContain(`gc_holdoff_seconds=${grace}\n`);
    });

    test("every read replica and the writer keep no blob-descriptor cache that could answer for a swept blob", async () => {
        const cloud = await run({ ...COMPATIBLE, "cluster-registry:gcSchedule": "03:00" });
        const data = cloud.one(T.cm, "hosted-config").inputs.data as Record<string, string>;
        for (const file of ["config.yml", "push.yml", "push-readonly.yml"]) expect(YAML.parse(data[file]).storage.cache, file).toBeUndefined();
        const off = (await run(COMPATIBLE)).one(T.cm, "hosted-config").inputs.data as Record<string, string>;
        expect(YAML.parse(off["config.yml"]).storage.cache).toEqual({ blobdescriptor: "inmemory" });
    });
});

describe("combinations that cannot work fail before anything exists, naming the key and what would work", () => {
    const problems = (raw: Record<string, string>, secret: string[] = []) => {
        try {
            parseConfig(raw, new Set(secret.map((k) => `cluster-registry:${k}`)));
            return [];
        } catch (e) {
            return (e as { problems: string[] }).problems;
        }
    };

    test("object storage settings without a bucket", () => {
        expect(problems({ objectStorageRegion: "us-east-1", objectStorageEndpoint: "https://s3.example.com" })).toEqual([
            "cluster-registry:objectStorageRegion: is set but cluster-registry:objectStorageBucket is empty; set objectStorageBucket to keep the images in that bucket, or unset objectStorageRegion",
            "cluster-registry:objectStorageEndpoint: is set but cluster-registry:objectStorageBucket is empty; set objectStorageBucket to keep the images in that bucket, or unset objectStorageEndpoint",
        ]);
    });

    test("more than one read replica on the ReadWriteOnce volume", () => {
        expect(problems({ pullReplicas: "2" })).toEqual([
            'cluster-registry:pullReplicas: "2" is not valid; expected 1 while the images are on a ReadWriteOnce volume (one node holds it); set objectStorageBucket for more read replicas',
        ]);
    });

    test("a bucket without a region, half a key pair, static keys on EKS, a key in plain text, a bucket beside a kept claim", () => {
        expect(problems({ objectStorageBucket: "images" })).toEqual([
            "cluster-registry:objectStorageRegion: is required with objectStorageBucket: the bucket's AWS region, or us-east-1 for most S3-compatible stores",
        ]);
        const base = { objectStorageBucket: "images", objectStorageRegion: "us-east-1" };
        expect(problems({ ...base, objectStorageAccessKey: "a" })).toEqual([
            "cluster-registry:objectStorageSecretKey: is required with the other key of the pair; set both or neither",
        ]);
        const eks = problems({ ...base, environment: "eks", objectStorageAccessKey: "a", objectStorageSecretKey: SECRET_KEY }, ["objectStorageSecretKey"]);
        expect(eks).toEqual([
            "cluster-registry:objectStorageAccessKey: static keys are refused on eks; unset them and use objectStorageRoleArn (IRSA) or an EKS Pod Identity association",
        ]);
        const plain = problems({ ...base, objectStorageAccessKey: "a", objectStorageSecretKey: SECRET_KEY });
        expect(plain).toEqual([
            "cluster-registry:objectStorageSecretKey: is stored in plain text; set it with `pulumi config set --secret objectStorageSecretKey VALUE`",
        ]);
        expect(plain.join()).not.toContain(SECRET_KEY);
        expect(problems({ ...base, registryVolumeClaim: "kept", createNamespace: "false" })).toEqual([
            "cluster-registry:registryVolumeClaim: names a volume, but objectStorageBucket keeps the images in a bucket; unset one of them",
        ]);
        expect(problems({ objectStorageBucket: "Images_1", objectStorageRegion: "us-east-1" })[0]).toMatch(
            /^cluster-registry:objectStorageBucket: "Images_1" is not valid; expected an S3 bucket name/,
        );
    });
});
