/** components/coalescer.ts: nginx in front of each cache, through the whole program. */
import { describe, expect, test } from "vitest";
import YAML from "yaml";
import { DEFAULT_COALESCER_IMAGE } from "../../components/coalescer";
import { registryConfigsOf } from "../../components/registry";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ENTRY } from "../support/stacks";
import { RESOURCE_TYPES as T } from "../support/resource-types";

const WITH_CACHE = { "cluster-registry:caches": '["docker.io"]', "cluster-registry:cacheHostPath": "" };

async function run(config: Record<string, string>) {
    const cloud = new FakeCloud();
    const { outputs } = await runProgram(cloud, { config, entry: ENTRY });
    return { cloud, outputs };
}

const podOf = (cloud: FakeCloud, name: string) => cloud.one(T.deploy, name).inputs.spec.template.spec;
const configMapOf = (cloud: FakeCloud, name: string) =>
    cloud.byType(T.cm).find((c) => c.name.endsWith(`${name}-config`))!.inputs.data as Record<string, string>;

describe("a cache's coalescer", () => {
    test("by default nginx, pinned to a full version, takes the Service's port with the cache's certificate; the registry moves behind it", async () => {
        const { cloud } = await run(WITH_CACHE);
        expect(DEFAULT_COALESCER_IMAGE).toMatch(/^docker\.io\/library\/nginx:\d+\.\d+\.\d+-alpine$/);
        const pod = podOf(cloud, "cache-docker-io");
        const [registry, , nginx] = pod.containers;
        // (evict: the cache's start-over loop at cacheMaxFillPercent, beside it on the same volume)
        expect(pod.containers.map((c: { name: string }) => c.name)).toEqual(["registry", "evict", "coalescer"]);
        expect(nginx.image).toBe(DEFAULT_COALESCER_IMAGE);
        // The Service targets the port named `registry`: nginx's, 5000, where nginx.conf listens.
        const service = cloud.byType(T.svc).find((s) => s.inputs.metadata.name === "cache-docker-io")!;
        expect(service.inputs.spec.ports[0].targetPort).toBe("registry");
        expect(nginx.ports).toEqual([{ name: "registry", containerPort: 5000, protocol: "TCP" }]);
        expect(registry.ports.map((p: { name: string }) => p.name)).not.toContain("registry");
        const data = configMapOf(cloud, "cache-docker-io");
        expect((YAML.parse(data["config.yml"]) as { http: { addr: string } }).http.addr).toBe(":5004");
        expect(registry.ports).toContainEqual({ name: "backend", containerPort: 5004, protocol: "TCP" });
        expect(data["nginx.conf"]).toContain("    listen 5000 ssl;\n");
        expect(data["nginx.conf"]).toContain("        server 127.0.0.1:5004;\n");
        // The certificate and key nginx reads are where the cache's TLS Secret is mounted in its container.
        const tlsMount = nginx.volumeMounts.find((m: { name: string }) => m.name === "tls").mountPath;
        expect(data["nginx.conf"]).toContain(`ssl_certificate ${tlsMount}/tls.crt;`);
        const tlsSecret = pod.volumes.find((v: { name: string }) => v.name === "tls").secret.secretName;
        expect(cloud.byType(T.secret).filter((x) => x.outputs.metadata?.name === tlsSecret && x.inputs.type === "kubernetes.io/tls")).toHaveLength(1);
        expect(nginx.command.slice(0, 4)).toEqual(["nginx", "-e", "stderr", "-c"]);
        expect(nginx.command[4]).toBe(`${nginx.volumeMounts.find((m: { name: string }) => m.name === "config").mountPath}/nginx.conf`);
    });

    test("restricted like the registry: non-root, read-only root, no capabilities; what it writes is on the cache's volume or its own emptyDir", async () => {
        const { cloud } = await run(WITH_CACHE);
        const pod = podOf(cloud, "cache-docker-io");
        const nginx = pod.containers.find((c: { name: string }) => c.name === "coalescer");
        expect(nginx.securityContext).toEqual(pod.containers[0].securityContext);
        expect(nginx.securityContext).toMatchObject({
            runAsNonRoot: true,
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
        });
        const conf = configMapOf(cloud, "cache-docker-io")["nginx.conf"];
        const writable = nginx.volumeMounts.filter((m: { readOnly?: boolean }) => !m.readOnly).map((m: { mountPath: string }) => m.mountPath);
        for (const written of [/proxy_cache_path (\S+)/, /pid (\S+);/, /proxy_temp_path (\S+);/, /client_body_temp_path (\S+);/]) {
            const p = written.exec(conf)![1];
            expect(
                writable.some((m: string) => p.startsWith(`${m}/`)),
                p,
            ).toBe(true);
        }
        expect(pod.volumes).toContainEqual({ name: "coalescer-tmp", emptyDir: { sizeLimit: "64Mi" } });
    });

    test("the node identity's secret is in no ConfigMap: nginx asks the registry, it holds no htpasswd", async () => {
        const { cloud, outputs } = await run(WITH_CACHE);
        const password = /password: (\w+)/.exec(outputs.k3sRegistriesYaml as string)![1];
        expect(password.length).toBeGreaterThanOrEqual(32);
        for (const cm of cloud.byType(T.cm)) expect(JSON.stringify(cm.inputs.data ?? {})).not.toContain(password);
        expect(configMapOf(cloud, "cache-docker-io")["nginx.conf"]).toContain("auth_request /_coalescer_auth;");
    });

    test('cacheCoalescerImage "" turns it off: the registry alone, on the Service\'s port; the hosted registry never has one', async () => {
        const { cloud } = await run({ ...WITH_CACHE, "cluster-registry:cacheCoalescerImage": "" });
        const pod = podOf(cloud, "cache-docker-io");
        expect(pod.containers.map((c: { name: string }) => c.name)).toEqual(["registry", "evict"]);
        expect(pod.containers[0].ports[0]).toEqual({ name: "registry", containerPort: 5000, protocol: "TCP" });
        expect(Object.keys(configMapOf(cloud, "cache-docker-io"))).toEqual(["config.yml"]);
        const hosted = podOf((await run(WITH_CACHE)).cloud, "hosted");
        expect(hosted.containers.map((c: { name: string }) => c.name)).not.toContain("coalescer");
    });

    test("a mirrored image for air-gapped clusters is taken; a malformed one fails before anything exists, naming the key", async () => {
        const { cloud } = await run({ ...WITH_CACHE, "cluster-registry:cacheCoalescerImage": "mirror.example.com/nginx:1.28.0-alpine" });
        expect(podOf(cloud, "cache-docker-io").containers.find((c: { name: string }) => c.name === "coalescer").image).toBe(
            "mirror.example.com/nginx:1.28.0-alpine",
        );
        await expect(run({ ...WITH_CACHE, "cluster-registry:cacheCoalescerImage": "Nginx:Latest!" })).rejects.toThrow(
            /cluster-registry:cacheCoalescerImage: "Nginx:Latest!" is not valid/,
        );
    });

    test("only a cache without a push port gets one: the hosted registry's config is never dropped for nginx's", () => {
        const image = DEFAULT_COALESCER_IMAGE;
        expect(() => registryConfigsOf({ coalescer: { image } })).toThrow(/a coalescer is for a cache/);
        const push = { port: 5002, htpasswd: { secretName: "s", content: "" } };
        expect(() => registryConfigsOf({ coalescer: { image }, push, proxy: { remoteUrl: "https://r", ttl: "1h" } })).toThrow(/without a push port/);
        expect(Object.keys(registryConfigsOf({ coalescer: { image }, proxy: { remoteUrl: "https://r", ttl: "1h" } }))).toEqual(["config.yml", "nginx.conf"]);
    });
});
