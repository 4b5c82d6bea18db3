/** Preloaded upstreams (unmodified names served from the hosted registry) and caches behind a proxy. */
import { describe, expect, test } from "vitest";
import * as TOML from "smol-toml";
import YAML from "yaml";
import { renderHostsToml } from "../../components/render/hosts-toml";
import { parseConfig } from "../../components/stack-config";
import { preloadPrefix } from "../../components/upstreams";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { ENTRY } from "../support/stacks";

const IPS: Record<string, string> = { "registry-hosted-service": "10.96.0.10", "registry-cache-docker-io-service": "10.96.0.20" };
const SECRET_KEYS = ["cluster-registry:cacheProxyCredentials"];

async function run(config: Record<string, string>) {
    const cloud = new FakeCloud({ clusterIP: (name) => IPS[name] ?? "10.96.0.99" });
    const { outputs } = await runProgram(cloud, { config, secretKeys: SECRET_KEYS, entry: ENTRY });
    return { cloud, outputs };
}

/** The hosts.toml the node agent writes for a registry host, parsed. */
function hostsToml(cloud: FakeCloud, host: string): { text: string; toml: any } {
    const data: Record<string, string> = cloud.one("kubernetes:core/v1:Secret", "node-config-files").inputs.stringData;
    const line = data.manifest.split("\n").find((l) => l.endsWith(` ${host}/hosts.toml`));
    expect(line, `the node agent writes ${host}/hosts.toml`).toBeDefined();
    const text = data[line!.split(" ")[0]];
    return { text, toml: TOML.parse(text) };
}

describe("hosts.toml with [host] entries before the endpoint", () => {
    test("are written in the given order, each with the CA, override_path where asked", () => {
        expect(
            renderHostsToml({
                owner: "o",
                server: "https://registry-1.docker.io",
                endpoint: "https://10.96.0.20:5000",
                capabilities: ["pull", "resolve"],
                ca: "ca.crt",
                serverIsOurs: false,
                before: [{ url: "https://10.96.0.10:5000/v2/docker.io", capabilities: ["pull", "resolve"], overridePath: true }],
            }),
        ).toBe(
            "# Written by o. Removed, and any earlier file restored, when it is uninstalled.\n" +
                'server = "https://registry-1.docker.io"\n\n' +
                '[host."https://10.96.0.10:5000/v2/docker.io"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\noverride_path = true\n\n' +
                '[host."https://10.96.0.20:5000"]\ncapabilities = [ "pull", "resolve" ]\nca = "ca.crt"\n',
        );
    });
});

describe("preloaded upstreams", () => {
    test("a port becomes a path component distribution accepts; a host that cannot be one is refused at preview naming the key", () => {
        expect(preloadPrefix("docker.io")).toBe("docker.io");
        expect(preloadPrefix("registry.example.com:5000")).toBe("registry.example.com_5000");
        expect(preloadPrefix("10.0.0.5:5000")).toBe("10.0.0.5_5000");
        for (const bad of ["Quay.io", "[fd00::1]:5000"]) {
            expect(() => parseConfig({ preloadedUpstreams: JSON.stringify([bad]) })).toThrow(
                new RegExp(`cluster-registry:preloadedUpstreams: "${bad.replace(/[[\]().]/g, "\\$&")}" is not valid`),
            );
        }
    });

    test("need node pulls (a pull secret names the hosted registry, never docker.io), and are not the hosted registry", () => {
        expect(() => parseConfig({ preloadedUpstreams: '["docker.io"]', nodePulls: "false" })).toThrow(
            /cluster-registry:preloadedUpstreams: needs cluster-registry:nodePulls/,
        );
        expect(() => parseConfig({ preloadedUpstreams: '["registry.registry.svc.cluster.local:5000"]' })).toThrow(
            /cluster-registry:preloadedUpstreams: "registry\.registry\.svc\.cluster\.local:5000" is the hosted registry's own name/,
        );
    });

    test("hosted first (override_path, node identity, CA), the cache second, the upstream last; an upstream without a cache gets the hosted registry then the upstream", async () => {
        const { cloud } = await run({
            "cluster-registry:caches": '["docker.io"]',
            "cluster-registry:preloadedUpstreams": '["docker.io","quay.io","registry.example.com:5000"]',
        });
        const docker = hostsToml(cloud, "docker.io").toml;
        expect(docker.server).toBe("https://registry-1.docker.io");
        expect(Object.keys(docker.host)).toEqual(["https://10.96.0.10:5000/v2/docker.io", "https://10.96.0.20:5000"]);
        const hosted = docker.host["https://10.96.0.10:5000/v2/docker.io"];
        expect(hosted).toMatchObject({ override_path: true, ca: "ca.crt", capabilities: ["pull", "resolve"] });
        // The same node identity the hosted registry's own hosts.toml carries.
        expect(hosted.header.Authorization).toBe(
            hostsToml(cloud, "registry.registry.svc.cluster.local:5000").toml.host["https://10.96.0.10:5000"].header.Authorization,
        );
        expect(docker.host["https://10.96.0.20:5000"].override_path).toBeUndefined();

        const quay = hostsToml(cloud, "quay.io").toml;
        expect(quay.server).toBe("https://quay.io");
        expect(quay.override_path).toBeUndefined();
        expect(Object.keys(quay.host)).toEqual(["https://10.96.0.10:5000/v2/quay.io"]);
        expect(quay.host["https://10.96.0.10:5000/v2/quay.io"].override_path).toBe(true);
        expect(Object.keys(hostsToml(cloud, "registry.example.com:5000").toml.host)).toEqual(["https://10.96.0.10:5000/v2/registry.example.com_5000"]);
    });

    test("fail closed: an upstream without a cache falls back to the hosted registry again, never to the upstream", async () => {
        const { cloud } = await run({ "cluster-registry:preloadedUpstreams": '["quay.io"]', "cluster-registry:mirrorFallback": "none" });
        const quay = hostsToml(cloud, "quay.io").toml;
        expect(quay.server).toBe("https://10.96.0.10:5000/v2/quay.io");
        expect(quay.override_path).toBe(true);
        expect(quay.ca).toBe("ca.crt");
        // containerd 1.x reports the last host's error: without the identity, a 401 instead of not found.
        expect(quay.header.Authorization).toBe(quay.host["https://10.96.0.10:5000/v2/quay.io"].header.Authorization);
    });

    test("k3s gets the hosted registry with a rewrite; Bottlerocket, which has neither override_path nor rewrites, says it leaves the upstream out", async () => {
        const { outputs } = await run({ "cluster-registry:preloadedUpstreams": '["quay.io"]' });
        const k3s = YAML.parse(outputs.k3sRegistriesYaml as string);
        expect(k3s.mirrors["quay.io"]).toEqual({ endpoint: ["https://10.96.0.10:5000"], rewrite: { "^(.*)$": "quay.io/$1" } });
        const bottlerocket = outputs.bottlerocketSettings as string;
        expect(bottlerocket.split("\n")[0]).toMatch(/^# Not mirrored: quay\.io \(preloaded upstreams\)\. Bottlerocket has no override_path/);
        expect(TOML.parse(bottlerocket).settings).toMatchObject({
            "container-registry": { mirrors: [{ registry: "registry.registry.svc.cluster.local:5000" }] },
        });
    });
});

describe("caches behind a proxy", () => {
    const envOf = (cloud: FakeCloud, deployment: string) =>
        cloud.one("kubernetes:apps/v1:Deployment", deployment).inputs.spec.template.spec.containers[0].env as Array<{
            name: string;
            value?: string;
            valueFrom?: any;
        }>;

    test("the caches get HTTPS_PROXY and a NO_PROXY that always covers the cluster; the hosted registry gets neither", async () => {
        const { cloud } = await run({
            "cluster-registry:caches": '["docker.io"]',
            "cluster-registry:cacheHttpsProxy": "http://proxy.corp.example:3128",
            "cluster-registry:cacheNoProxy": '["s3.internal.example"]',
        });
        const env = envOf(cloud, "cache-docker-io");
        expect(env.find((e) => e.name === "HTTPS_PROXY")?.value).toBe("http://proxy.corp.example:3128");
        expect(env.find((e) => e.name === "HTTP_PROXY")).toBeUndefined();
        const noProxy = env.find((e) => e.name === "NO_PROXY")!.value!.split(",");
        expect(noProxy).toEqual(expect.arrayContaining([".svc", ".cluster.local", "10.96.0.0/12", "127.0.0.0/8", "169.254.170.23", "s3.internal.example"]));
        expect(envOf(cloud, "hosted").map((e) => e.name)).not.toContain("HTTPS_PROXY");
    });

    test("proxy credentials reach the caches from a Secret, percent-encoded in the proxy URL; no other input holds them", async () => {
        const password = "Zq9pass:w@rd/1";
        const { cloud } = await run({
            "cluster-registry:caches": '["docker.io"]',
            "cluster-registry:cacheHttpsProxy": "http://proxy.corp.example:3128",
            "cluster-registry:cacheProxyCredentials": `egress:${password}`,
        });
        const env = envOf(cloud, "cache-docker-io");
        const ref = env.find((e) => e.name === "HTTPS_PROXY")!.valueFrom.secretKeyRef;
        const secret = cloud.one("kubernetes:core/v1:Secret", "cache-proxy");
        expect(ref).toEqual({ name: secret.outputs.metadata.name, key: "HTTPS_PROXY" });
        const url = new URL(secret.inputs.stringData.HTTPS_PROXY);
        expect([decodeURIComponent(url.username), decodeURIComponent(url.password), url.host]).toEqual(["egress", password, "proxy.corp.example:3128"]);
        const elsewhere = cloud.resources.filter((r) => r.type !== "kubernetes:core/v1:Secret").map((r) => JSON.stringify(r.inputs));
        for (const text of elsewhere) expect(text).not.toContain("Zq9pass");
    });

    test("credentials in plain text are refused, as is a proxy URL carrying them, without echoing them", () => {
        expect(() => parseConfig({ cacheHttpsProxy: "http://p:3128", cacheProxyCredentials: "u:Zq9secret" })).toThrow(
            /cacheProxyCredentials: is stored in plain text/,
        );
        let message = "";
        try {
            parseConfig({ cacheHttpsProxy: "http://u:Zq9secret@p:3128" });
        } catch (e) {
            message = (e as Error).message;
        }
        expect(message).toMatch(/cluster-registry:cacheHttpsProxy: .* without credentials/);
        expect(message).not.toContain("Zq9");
    });
});
