/** components/render/prometheus-rule.ts: the fill-level alert's rule, as literal text (promtool runs it in test/integration/fill-alert.test.ts). */
import { describe, expect, test } from "vitest";
import { FILL_ALERT, FILL_CRITICAL_PERCENT, fillLevelExpr, renderFillRule } from "../../../components/render/prometheus-rule";

const LEVEL =
    '100 * kubelet_volume_stats_used_bytes{namespace="registry", persistentvolumeclaim="hosted-storage-1a2b3c4d"}' +
    ' / (kubelet_volume_stats_used_bytes{namespace="registry", persistentvolumeclaim="hosted-storage-1a2b3c4d"}' +
    ' + kubelet_volume_stats_available_bytes{namespace="registry", persistentvolumeclaim="hosted-storage-1a2b3c4d"})';

describe("the fill level", () => {
    test("is df's Use%: used over used plus available, of that claim in that namespace only", () => {
        expect(fillLevelExpr("registry", "hosted-storage-1a2b3c4d")).toBe(LEVEL);
    });
});

describe("the rule", () => {
    test("a warning at warnPercent for 15 minutes and a critical alert at 95% for 5, one alert name, naming the claim and README Storage", () => {
        expect(renderFillRule({ namespace: "registry", claim: "hosted-storage-1a2b3c4d", registry: "registry", warnPercent: 80 })).toEqual({
            groups: [
                {
                    name: "registry-volume",
                    rules: [
                        {
                            alert: "ClusterRegistryVolumeFillingUp",
                            expr: `${LEVEL} >= 80`,
                            for: "15m",
                            labels: { severity: "warning", registry: "registry" },
                            annotations: {
                                summary: 'The registry volume registry/hosted-storage-1a2b3c4d is {{ printf "%.0f" $value }}% full (warning at 80%).',
                                description:
                                    "Pushes to registry fail once the PersistentVolumeClaim registry/hosted-storage-1a2b3c4d is full; pulls go on. " +
                                    "Delete tags and collect garbage, or grow storageSize (README: Storage).",
                            },
                        },
                        {
                            alert: "ClusterRegistryVolumeFillingUp",
                            expr: `${LEVEL} >= 95`,
                            for: "5m",
                            labels: { severity: "critical", registry: "registry" },
                            annotations: {
                                summary: 'The registry volume registry/hosted-storage-1a2b3c4d is {{ printf "%.0f" $value }}% full (critical at 95%).',
                                description:
                                    "Pushes to registry fail once the PersistentVolumeClaim registry/hosted-storage-1a2b3c4d is full; pulls go on. " +
                                    "Delete tags and collect garbage, or grow storageSize (README: Storage).",
                            },
                        },
                    ],
                },
            ],
        });
    });

    test("without a warning level, or with one at or above the critical level, only the critical alert", () => {
        for (const warnPercent of [undefined, FILL_CRITICAL_PERCENT, 99]) {
            const rules = renderFillRule({ namespace: "registry", claim: "kept", registry: "registry", warnPercent }).groups[0].rules;
            expect(
                rules.map((r) => [r.alert, r.labels.severity, r.expr.split(" >= ")[1]]),
                String(warnPercent),
            ).toEqual([[FILL_ALERT, "critical", "95"]]);
        }
        const justUnder = renderFillRule({ namespace: "registry", claim: "kept", registry: "registry", warnPercent: 94 }).groups[0].rules;
        expect(justUnder.map((r) => r.labels.severity)).toEqual(["warning", "critical"]);
    });
});
