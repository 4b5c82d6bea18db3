/**
 * The hosted volume's fill alert, read by the real consumer: the PrometheusRule the program renders for
 * a shipped stack (under the fake cloud, so on the claim's actual generated name) is written out as
 * the rule file the Prometheus Operator makes of it (its `spec` is a rule file's `groups:`), then
 * promtool (Prometheus 2.42, Debian bookworm) checks it and runs it on synthetic kubelet series: the
 * hosted claim at 70%, 85%, 97% and full, beside another claim and another namespace's claim of the
 * same name that sit at 99% and must never alert.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, expect, test } from "vitest";
import YAML from "yaml";
import { FILL_ALERT } from "../../components/render/prometheus-rule";
import { FakeCloud, runProgram } from "../support/fake-cloud";
import { RESOURCE_TYPES as T } from "../support/resource-types";
import { ENTRY, stackConfig } from "../support/stacks";
import { describeWithPromtool } from "./describe-integration";
import { promtool } from "./harness/promtool";

const MONITORED = { "cluster-registry:metricsNamespaces": '["monitoring"]', "cluster-registry:serviceMonitors": "true" };
const dirs: string[] = [];
afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The rendered rule and the claims around it, for one shipped stack. */
async function rendered(stack: string, extra: Record<string, string> = {}) {
    const cloud = new FakeCloud();
    await runProgram(cloud, { config: { ...stackConfig(stack), ...MONITORED, ...extra }, entry: ENTRY });
    const rules = cloud.byType(T.promRule);
    expect(rules).toHaveLength(1);
    // Kept by default (keepRegistryVolume): the hosted claim is a PersistentVolumeClaimPatch.
    const hosted = cloud.one(T.pvcPatch, "hosted-storage").outputs.metadata;
    const others = cloud.byType(T.pvc).filter((p) => !p.name.endsWith("hosted-storage"));
    return {
        spec: rules[0].inputs.spec,
        namespace: hosted.namespace as string,
        claim: hosted.name as string,
        others: others.map((p) => p.outputs.metadata.name as string),
    };
}

/**
 * kubelet's series for one claim, a minute apart, phase by phase: `percent` full as df counts it, on a
 * volume of 1000 usable units whose capacity also holds ext4's 5% reserved for root (1053): at 100%
 * used / capacity is only 95%.
 */
function kubeletSeries(namespace: string, claim: string, phases: Array<{ percent: number; minutes: number }>) {
    const labels = `namespace="${namespace}", persistentvolumeclaim="${claim}", instance="10.0.1.17:10250", job="kubelet", metrics_path="/metrics"`;
    const values = (f: (p: number) => number) => phases.map((p) => `${f(p.percent)}x${p.minutes - 1}`).join(" ");
    return [
        { series: `kubelet_volume_stats_used_bytes{${labels}}`, values: values((p) => p * 10) },
        { series: `kubelet_volume_stats_available_bytes{${labels}}`, values: values((p) => 1000 - p * 10) },
        { series: `kubelet_volume_stats_capacity_bytes{${labels}}`, values: values(() => 1053) },
    ];
}

describeWithPromtool("the hosted volume's fill alert in Prometheus", () => {
    for (const stack of ["dev", "eks"]) {
        test(`${stack} stack: promtool accepts the rule; the warning fires after 15 minutes at 85%, the critical one after 5 at 97% and at full, nothing at 70%, and never for another claim or namespace`, async () => {
            const { spec, namespace, claim, others } = await rendered(stack);
            if (stack === "eks") expect(others.length).toBeGreaterThan(0); // the caches' claims, beside the hosted one
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fill-alert-"));
            dirs.push(dir);
            fs.writeFileSync(path.join(dir, "rules.yml"), YAML.stringify(spec));
            const check = promtool(["check", "rules", "rules.yml"], dir);
            expect(check.output).toMatch(/SUCCESS: 2 rules found/);
            expect(check.status).toBe(0);

            // 0-59 min 70%, 60-119 85%, 120-179 97%, 180-239 full, 240-299 70% again.
            const hostedPhases = [70, 85, 97, 100, 70].map((percent) => ({ percent, minutes: 60 }));
            const allFull = [{ percent: 99, minutes: 300 }];
            const otherClaim = others[0] ?? "someone-elses-claim";
            const firing = (severity: "warning" | "critical", percent: number, threshold: number) => ({
                exp_labels: {
                    severity,
                    registry: "registry",
                    namespace,
                    persistentvolumeclaim: claim,
                    instance: "10.0.1.17:10250",
                    job: "kubelet",
                    metrics_path: "/metrics",
                },
                exp_annotations: {
                    summary: `The registry volume ${namespace}/${claim} is ${percent}% full (${severity} at ${threshold}%).`,
                    description:
                        `Pushes to registry fail once the PersistentVolumeClaim ${namespace}/${claim} is full; pulls go on. ` +
                        "Delete tags and collect garbage, or grow storageSize (README: Storage).",
                },
            });
            const at = (minute: number, alerts: ReturnType<typeof firing>[]) => ({ eval_time: `${minute}m`, alertname: FILL_ALERT, exp_alerts: alerts });
            const tests = {
                rule_files: ["rules.yml"],
                evaluation_interval: "1m",
                tests: [
                    {
                        interval: "1m",
                        input_series: [
                            ...kubeletSeries(namespace, claim, hostedPhases),
                            ...kubeletSeries(namespace, otherClaim, allFull),
                            ...kubeletSeries("tenant-a", claim, allFull),
                        ],
                        alert_rule_test: [
                            at(59, []),
                            at(74, []), // 85% for 14 minutes: pending
                            at(75, [firing("warning", 85, 80)]),
                            at(119, [firing("warning", 85, 80)]),
                            at(124, [firing("warning", 97, 80)]), // 97% for 4 minutes: critical pending
                            at(125, [firing("warning", 97, 80), firing("critical", 97, 95)]),
                            at(200, [firing("warning", 100, 80), firing("critical", 100, 95)]),
                            at(240, []), // back at 70%: resolved at once
                            at(299, []),
                        ],
                    },
                ],
            };
            fs.writeFileSync(path.join(dir, "tests.yml"), YAML.stringify(tests));
            const run = promtool(["test", "rules", "tests.yml"], dir);
            expect(run.output).toMatch(/SUCCESS/);
            expect(run.status).toBe(0);
        });
    }

    test("the test itself fails when an alert fires that should not: a claim's 99% in the registries' namespace read as the hosted one", async () => {
        const { spec, namespace, claim } = await rendered("eks");
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fill-alert-"));
        dirs.push(dir);
        fs.writeFileSync(path.join(dir, "rules.yml"), YAML.stringify(spec));
        const tests = {
            rule_files: ["rules.yml"],
            evaluation_interval: "1m",
            tests: [
                {
                    interval: "1m",
                    input_series: kubeletSeries(namespace, claim, [{ percent: 99, minutes: 60 }]),
                    alert_rule_test: [{ eval_time: "30m", alertname: FILL_ALERT, exp_alerts: [] }],
                },
            ],
        };
        fs.writeFileSync(path.join(dir, "tests.yml"), YAML.stringify(tests));
        const run = promtool(["test", "rules", "tests.yml"], dir);
        expect(run.status).not.toBe(0);
        expect(run.output).toMatch(/FAILED/);
        expect(run.output).toContain(`persistentvolumeclaim="${claim}"`);
    });
});
