/** scripts/preload's image finder on a sample of rendered manifests (the copies are proven in test/integration/preloaded.test.ts). */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, test } from "vitest";

const ROOT = path.resolve(__dirname, "../../..");
const SCRIPT = path.join(ROOT, "scripts/preload");
const SAMPLE = path.join(ROOT, "test/fixtures/preload/rendered.yaml");

function find(input: string): string[] {
    return execFileSync("bash", [SCRIPT, "find"], { input, encoding: "utf8" }).split("\n").filter(Boolean);
}

describe("scripts/preload find", () => {
    test("lists every image of containers, initContainers, CronJobs and CR fields, as containerd names them, once each; helm test hooks left out", () => {
        expect(find(fs.readFileSync(SAMPLE, "utf8"))).toEqual([
            "docker.io/bitnami/redis:7.2",
            "docker.io/library/busybox:1.36",
            "docker.io/library/nginx:latest",
            "ghcr.io/example/app@sha256:3b1d4e7c8f2a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0",
            "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.0",
            "quay.io/prometheus/node-exporter:v1.8.2",
            "quay.io/prometheus/prometheus:v2.54.1",
            "registry.example.com:5000/tools/backup:2.1",
        ]);
    });

    test("keeps a hook that is not a test, and reads a field named image only where its value is a reference", () => {
        const doc = [
            "---",
            "metadata:",
            "  annotations:",
            "    helm.sh/hook: pre-install",
            "spec:",
            "  containers:",
            "    - image: bitnami/kubectl:1.31",
            "  imageTag: v1",
            "  image: {}",
            "  sidecarImage: latest",
            "  initImage: 'quay.io/a/b:1' # single quotes",
        ].join("\n");
        expect(find(doc)).toEqual(["docker.io/bitnami/kubectl:1.31", "quay.io/a/b:1"]);
    });
});
