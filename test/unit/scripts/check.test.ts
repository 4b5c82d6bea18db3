/**
 * scripts/check's pure parts, run by bash from the script itself (sourced, so `main` does not run):
 * the pod it creates, how it reads a pod's status and a registry's log, and the targets it takes
 * from the stack outputs. Its kubectl calls need a cluster and are not exercised here.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, test } from "vitest";
import { FakeCloud, runProgram } from "../../support/fake-cloud";
import { ENTRY, ROOT, stackConfig } from "../../support/stacks";

const SCRIPT = path.join(ROOT, "scripts/check");

/** Runs `fn ARGS...` from scripts/check with `stdin`; returns stdout, or null when it exits non-zero. */
function call(fn: string, args: string[] = [], stdin = ""): string | null {
    try {
        return execFileSync("bash", ["-c", `source "$1"; shift; ${fn} "$@"`, "check-test", SCRIPT, ...args], { input: stdin, encoding: "utf8" });
    } catch (e) {
        if ((e as { status?: number }).status !== undefined && (e as { status: number }).status > 0) return null;
        throw e;
    }
}

describe("the pod scripts/check runs per target", () => {
    const pod = (node: string) => JSON.parse(call("pod_manifest", ["pull-docker-io-0", "docker.io/library/busybox:1.37.0", node, "docker.io"])!);

    test("pulls with no pull secret and no token, asks the registry every time, and validates against the Pod schema", async () => {
        const p = pod("");
        expect(p.spec.imagePullSecrets).toBeUndefined();
        expect(p.spec.automountServiceAccountToken).toBe(false);
        expect(p.spec.containers).toHaveLength(1);
        expect(p.spec.containers[0].imagePullPolicy).toBe("Always");
        expect(p.spec.restartPolicy).toBe("Never");
        expect(p.spec.nodeName).toBeUndefined();
        const { Pod } = (await import("kubernetes-models/v1")) as unknown as { Pod: new (d: any) => { validate(): void } };
        expect(() => new Pod(p).validate()).not.toThrow();
        expect(() => new Pod({ ...p, spec: { ...p.spec, containers: [{ image: "x" }] } }).validate()).toThrow(/name/);
    });

    test("is pinned to the node asked for", () => {
        expect(pod("kind-worker2").spec.nodeName).toBe("kind-worker2");
    });
});

describe("reading a pod's status", () => {
    const state = (containerStatus: unknown) =>
        call("pull_state", [], JSON.stringify({ spec: { nodeName: "kind-worker" }, status: { containerStatuses: [containerStatus] } }))!.trim();

    test("a container that ran or runs was pulled, on the pod's node", () => {
        expect(state({ imageID: "docker.io/library/busybox@sha256:ab", state: { terminated: { exitCode: 0, reason: "Completed" } } })).toBe(
            "pulled kind-worker",
        );
        expect(state({ imageID: "", state: { running: { startedAt: "2026-12-04T18:00:00Z" } } })).toBe("pulled kind-worker");
    });

    test("a pull error is a failure with kubelet's reason and message on one line", () => {
        const waiting = { reason: "ImagePullBackOff", message: 'Back-off pulling image "x":\nunauthorized' };
        expect(state({ imageID: "", state: { waiting } })).toBe('failed ImagePullBackOff: Back-off pulling image "x": unauthorized');
    });

    test("a pod still being created or scheduled is pending", () => {
        expect(state({ imageID: "", state: { waiting: { reason: "ContainerCreating" } } })).toBe("pending");
        expect(call("pull_state", [], JSON.stringify({ spec: {}, status: { phase: "Pending" } }))!.trim()).toBe("pending");
    });
});

describe("proof that the target served the pull", () => {
    // Access-log lines as distribution 3.1.1 writes them (captured from `registry serve`; status changed for the 200).
    const line = (uri: string, status: number) => `10.244.1.1 - - [04/Dec/2026:18:47:05 +0000] "HEAD ${uri} HTTP/1.1" ${status} 100 "" "containerd/v1.7.24"\n`;

    test("a 200 for the image's manifest, with containerd's ?ns= on a cache", () => {
        expect(call("served_in_log", ["library/busybox"], line("/v2/library/busybox/manifests/1.37.0?ns=docker.io", 200))).not.toBeNull();
        expect(call("served_in_log", ["cluster-registry-check/busybox"], line("/v2/cluster-registry-check/busybox/manifests/1.37.0", 200))).not.toBeNull();
    });

    test("a refused request (the node then falls back to the upstream) or another repository is no proof", () => {
        expect(call("served_in_log", ["library/busybox"], line("/v2/library/busybox/manifests/1.37.0?ns=docker.io", 401))).toBeNull();
        expect(call("served_in_log", ["library/busybox"], line("/v2/library/busybox2/manifests/1.37.0?ns=docker.io", 200))).toBeNull();
        expect(call("served_in_log", ["library/busybox"], "")).toBeNull();
    });

    test("the repository a registry sees for an image reference", () => {
        const repo = (ref: string) => call("repository_of", [ref])!.trim();
        expect(repo("docker.io/library/busybox:1.37.0")).toBe("library/busybox");
        expect(repo("busybox")).toBe("library/busybox");
        expect(repo("docker.io/busybox@sha256:0123")).toBe("library/busybox");
        expect(repo("quay.io/prometheus/busybox:latest")).toBe("prometheus/busybox");
        expect(repo("registry.k8s.io/pause:3.10")).toBe("pause");
        expect(repo("registry.registry.svc.cluster.local:5000/cluster-registry-check/busybox:1.37.0")).toBe("cluster-registry-check/busybox");
    });
});

describe("targets from the stack outputs", () => {
    test("the hosted registry by host name and ClusterIP, then each cache by its endpoint's IP", () => {
        const outputs = {
            host: "registry.registry.svc.cluster.local:5000",
            clusterIP: "10.96.0.10",
            caches: { "docker.io": "https://10.96.0.20:5000", "quay.io": "https://10.96.0.21:5000" },
        };
        expect(call("targets_of", [], JSON.stringify(outputs))).toBe(
            "hosted registry.registry.svc.cluster.local:5000 10.96.0.10\ndocker.io https://10.96.0.20:5000 10.96.0.20\nquay.io https://10.96.0.21:5000 10.96.0.21\n",
        );
        expect(call("targets_of", [], JSON.stringify({ ...outputs, caches: {} }))).toBe("hosted registry.registry.svc.cluster.local:5000 10.96.0.10\n");
    });

    test("a ClusterIP leads to its Service's namespace and selector, the labels of the registry's pods", () => {
        const services = {
            items: [
                { metadata: { namespace: "default", name: "kubernetes" }, spec: { clusterIP: "10.96.0.1", selector: null } },
                {
                    metadata: { namespace: "registry", name: "cache-docker-io" },
                    spec: { clusterIP: "10.96.0.20", selector: { "app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": "cache-docker-io" } },
                },
            ],
        };
        expect(call("service_of", ["10.96.0.20"], JSON.stringify(services))).toBe(
            "registry cache-docker-io app.kubernetes.io/name=registry,app.kubernetes.io/instance=cache-docker-io\n",
        );
        expect(call("service_of", ["10.96.0.99"], JSON.stringify(services))).toBe("");
    });
});

describe("a whole run against a stand-in cluster", () => {
    // kubectl and pulumi stand-ins: canned answers a kind cluster with two caches would give, every call logged.
    const KUBECTL = `#!/usr/bin/env bash
echo "kubectl $*" >>"$FAKE/calls"
[ "$1" = --context ] && shift 2
case "$1 $2" in
"config current-context") echo kind-other ;;
"create namespace") echo "kind: Namespace" ;;
"apply -f") cat >>"$FAKE/applied" ;;
"delete pod"|"delete namespace") ;;
"get services") cat "$FAKE/services.json" ;;
"get pod") name=$5; cat "$FAKE/pod-$name.json" ;;
"logs -n") case "$5" in *cache-docker-io) cat "$FAKE/cache.log" ;; *instance=registry) cat "$FAKE/hosted.log" ;; esac ;;
*) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac
`;
    const PULUMI = `#!/usr/bin/env bash
echo "pulumi $*" >>"$FAKE/calls"
case "$1 $2" in
"stack output") cat "$FAKE/outputs.json" ;;
"config get") [ "$3" = kubernetes:context ] && echo kind-kind ;;
*) exit 1 ;;
esac
`;
    const pod = (containerStatus: unknown) => JSON.stringify({ spec: { nodeName: "kind-worker" }, status: { containerStatuses: [containerStatus] } });
    const pulled = pod({ imageID: "sha256:ab", state: { terminated: { exitCode: 0 } } });
    const selector = (instance: string) => ({ "app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": instance });
    const log = (repo: string) => `10.244.1.1 - - [04/Dec/2026:18:47:05 +0000] "HEAD /v2/${repo}/manifests/1.37.0 HTTP/1.1" 200 100 "" "containerd/v1.7.24"\n`;

    test("one line per target: served, refused, or pulled around its cache; the pinned context; status 1", () => {
        const fake = fs.mkdtempSync(path.join(os.tmpdir(), "check-"));
        try {
            const files: Record<string, string> = {
                kubectl: KUBECTL,
                pulumi: PULUMI,
                "outputs.json": JSON.stringify({
                    host: "registry.registry.svc.cluster.local:5000",
                    clusterIP: "10.96.0.10",
                    caches: { "docker.io": "https://10.96.0.20:5000", "quay.io": "https://10.96.0.21:5000", "ghcr.io": "https://10.96.0.22:5000" },
                    certificateExpiry: { ca: "2099-01-01T00:00:00Z", registry: "2099-01-01T00:00:00Z" },
                }),
                "services.json": JSON.stringify({
                    items: [
                        { metadata: { namespace: "registry", name: "registry" }, spec: { clusterIP: "10.96.0.10", selector: selector("registry") } },
                        {
                            metadata: { namespace: "registry", name: "cache-docker-io" },
                            spec: { clusterIP: "10.96.0.20", selector: selector("cache-docker-io") },
                        },
                        { metadata: { namespace: "registry", name: "cache-ghcr-io" }, spec: { clusterIP: "10.96.0.22", selector: selector("cache-ghcr-io") } },
                    ],
                }),
                "pod-pull-hosted-0.json": pulled,
                "pod-pull-docker-io-0.json": pulled,
                "pod-pull-quay-io-0.json": pod({ imageID: "", state: { waiting: { reason: "ErrImagePull", message: "failed to pull: 401 Unauthorized" } } }),
                "pod-pull-ghcr-io-0.json": pulled,
                "hosted.log": log("team/app"),
                "cache.log": log("library/busybox"),
            };
            for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(fake, name), text, { mode: 0o755 });
            const env = { ...process.env, CHECK_POLL_SECONDS: "0.1", FAKE: fake, PATH: `${fake}:${process.env.PATH}`, PULUMI_BACKEND_URL: "file:///nowhere" };
            const run = spawnSync(SCRIPT, ["dev", "--image", "hosted=registry.registry.svc.cluster.local:5000/team/app:1.0"], { env, encoding: "utf8" });
            expect(run.status, run.stderr).toBe(1);
            const lines = run.stdout.replace(/ +/g, " ").trim().split("\n");
            expect(lines.map((l) => l.replace(/: \d+ days left$/, ": N days left"))).toEqual([
                "OK cert ca expires 2099-01-01T00:00:00Z: N days left",
                "OK cert registry expires 2099-01-01T00:00:00Z: N days left",
                "stack dev, kube context kind-kind",
                "OK hosted registry.registry.svc.cluster.local:5000 registry.registry.svc.cluster.local:5000/team/app:1.0: pulled on kind-worker, served by registry/registry",
                "OK docker.io https://10.96.0.20:5000 docker.io/library/busybox:1.37.0: pulled on kind-worker, served by registry/cache-docker-io",
                "FAIL quay.io https://10.96.0.21:5000 quay.io/prometheus/busybox:latest: ErrImagePull: failed to pull: 401 Unauthorized",
                "FAIL ghcr.io https://10.96.0.22:5000 ghcr.io/containerd/busybox:1.36: pulled on kind-worker, but the registry logged no 200 for its manifest: the node went around it",
            ]);
            const calls = fs.readFileSync(path.join(fake, "calls"), "utf8");
            // Every kubectl call goes to the stack's pinned context, never the current one.
            expect(calls.split("\n").filter((l) => l.startsWith("kubectl ") && !l.startsWith("kubectl --context kind-kind "))).toEqual([]);
            // Four pods, none with a pull secret, then the namespace is deleted.
            const applied = fs.readFileSync(path.join(fake, "applied"), "utf8");
            expect(applied.match(/"kind": "Pod"/g)).toHaveLength(4);
            expect(applied).not.toContain("imagePullSecrets");
            expect(calls).toContain("kubectl --context kind-kind delete namespace cluster-registry-check");
        } finally {
            fs.rmSync(fake, { recursive: true, force: true });
        }
    });
});

describe("certificate expiry, from the stack's certificateExpiry output", () => {
    const NOW = String(Date.parse("2026-12-04T00:00:00Z") / 1000);
    const check = (expiry: Record<string, string>, minDays = "14") => call("check_certificates", [minDays, NOW], JSON.stringify({ certificateExpiry: expiry }));

    test("one line per certificate with its days left; any under the minimum fails the check and says what renews it", () => {
        expect(check({ ca: "2036-12-01T00:00:00Z", registry: "2027-12-04T00:00:00Z" })!.replace(/ +/g, " ")).toBe(
            "OK cert ca expires 2036-12-01T00:00:00Z: 3650 days left\nOK cert registry expires 2027-12-04T00:00:00Z: 365 days left\n",
        );
        expect(check({ ca: "2036-12-01T00:00:00Z", registry: "2026-12-17T23:59:59Z" })).toBeNull();
        const out = spawnSync("bash", ["-c", 'source "$1"; set +e; check_certificates 14 "$2"; echo "exit $?"', "t", SCRIPT, NOW], {
            input: JSON.stringify({ certificateExpiry: { registry: "2026-12-17T23:59:59Z" } }),
            encoding: "utf8",
        }).stdout.replace(/ +/g, " ");
        expect(out).toBe(
            "FAIL cert registry expires 2026-12-17T23:59:59Z: 13 days left, under 14: pulumi up re-issues it (inside its renewal window)\nexit 1\n",
        );
        expect(check({ registry: "2026-12-18T00:00:00Z" })).not.toBeNull();
        expect(check({ registry: "2026-12-18T00:00:00Z" }, "15")).toBeNull();
    });

    test("a date it cannot read fails as unreadable, not as a missing output", () => {
        const out = spawnSync("bash", ["-c", 'source "$1"; set +e; check_certificates 14 "$2"; echo "exit $?"', "t", SCRIPT, NOW], {
            input: JSON.stringify({ certificateExpiry: { registry: "2027-12-04T00:00:00+02:00" } }),
            encoding: "utf8",
        }).stdout;
        expect(out).toContain("is not a map of RFC 3339 UTC dates");
        expect(out).toMatch(/exit 1\n$/);
    });

    test("--cert-days takes a whole number: anything else stops before asking pulumi", () => {
        const out = spawnSync("bash", [SCRIPT, "dev", "--cert-days", "two", "--certs-only"], { encoding: "utf8" });
        expect(out.status).toBe(2);
        expect(out.stderr).toContain("--cert-days takes a whole number of days");
    });

    test("a stack deployed before the output existed fails, saying so", () => {
        const out = spawnSync("bash", ["-c", 'source "$1"; set +e; check_certificates 14; echo "exit $?"', "t", SCRIPT], {
            input: "{}",
            encoding: "utf8",
        }).stdout;
        expect(out.replace(/ +/g, " ")).toBe("FAIL no certificateExpiry in the stack outputs: pulumi up with this version adds it\nexit 1\n");
    });

    test("reads what the program exports: the CA and every registry, a year's server certificates pass, a day's fail", async () => {
        const cloud = new FakeCloud();
        const { outputs } = await runProgram(cloud, { config: stackConfig("eks"), entry: ENTRY });
        const names = Object.keys(outputs.certificateExpiry as object);
        expect(names).toEqual(["ca", "registry", "cache-docker-io", "cache-quay-io", "cache-ghcr-io", "cache-registry-k8s-io"]);
        const now = String(Math.floor(Date.now() / 1000));
        const lines = call("check_certificates", ["14", now], JSON.stringify(outputs))!.trim().split("\n");
        expect(lines.map((l) => l.split(/ +/).slice(0, 3).join(" "))).toEqual(names.map((n) => `OK cert ${n}`));
        const short = await runProgram(new FakeCloud(), {
            config: { ...stackConfig("eks"), "cluster-registry:certValidityHours": "24", "cluster-registry:certEarlyRenewalHours": "12" },
            entry: ENTRY,
        });
        expect(call("check_certificates", ["14", now], JSON.stringify(short.outputs))).toBeNull();
    });
});
