/** components/upstreams.ts: presets and the names a cache's objects get from its upstream host. */
import { describe, expect, test } from "vitest";
import { cacheServiceName, UPSTREAM_PRESETS } from "../../components/upstreams";
import { checkUpstreamUrl } from "../../components/validators";
import { runWithServiceIps } from "../support/program";

describe("upstreams", () => {
    test("every preset is an upstream URL the cache accepts", () => {
        for (const [host, url] of Object.entries(UPSTREAM_PRESETS)) expect(checkUpstreamUrl(url), host).toEqual({ ok: true });
        expect(UPSTREAM_PRESETS["docker.io"]).toBe("https://registry-1.docker.io"); // docker.io is a name, not a server
    });

    test("a cache's Service name is a DNS-1035 label made from its host, at most 63 characters, never ending in '-'", () => {
        expect(cacheServiceName("docker.io")).toBe("cache-docker-io");
        expect(cacheServiceName("registry.example.com:5000")).toBe("cache-registry-example-com-5000");
        const long = cacheServiceName(`${"a".repeat(56)}-.example.com`);
        expect(long).toBe(`cache-${"a".repeat(56)}`);
        expect(long.length).toBeLessThanOrEqual(63);
    });

    test("a long upstream host still makes labels Kubernetes accepts (63 characters at most)", async () => {
        const host = "artifacts.build-infrastructure.eu-west-1.example.com";
        const { cloud } = await runWithServiceIps({ "cluster-registry:caches": JSON.stringify([`${host}=https://${host}`]) });
        for (const r of cloud.resources.filter((x) => x.type.startsWith("kubernetes:"))) {
            const labels = { ...r.inputs.metadata?.labels, ...r.inputs.spec?.template?.metadata?.labels, ...r.inputs.spec?.selector?.matchLabels };
            for (const [k, v] of Object.entries<string>(labels)) expect(v.length, `${r.name} label ${k}=${v}`).toBeLessThanOrEqual(63);
        }
    });
});
