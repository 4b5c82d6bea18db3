/**
 * The alert on a registry volume's fill level: the `spec` of a Prometheus Operator PrometheusRule,
 * which is also a Prometheus rule file (`groups:`) as promtool reads it.
 *
 * No metrics server of our own: kubelet already exports every mounted claim's filesystem as
 * `kubelet_volume_stats_*_bytes{namespace, persistentvolumeclaim}`, and kube-prometheus scrapes it.
 */

/** The alert's name, for both severities: Alertmanager's usual inhibit rule (same alertname) then mutes the warning while the critical one fires. */
export const FILL_ALERT = "ClusterRegistryVolumeFillingUp";
/** Percent full at which the critical alert fires: near full, pushes about to fail. */
export const FILL_CRITICAL_PERCENT = 95;
/** How long the level must hold before each alert fires: a push's upload files come and go. */
export const FILL_ALERT_FOR = { warning: "15m", critical: "5m" } as const;
/** Where the README says what to do about it. */
export const FILL_RUNBOOK = "README: Storage";

/** One claim to watch. */
export interface FillRuleInput {
    /** The claim's namespace (the registries'). */
    namespace: string;
    /** The PersistentVolumeClaim's name, as kubelet labels its metrics. */
    claim: string;
    /** The registry's Service name, for the alert's text and its `registry` label. */
    registry: string;
    /** The warning's level, in percent; absent for none (the critical alert still fires). Ignored at or above FILL_CRITICAL_PERCENT. */
    warnPercent?: number;
}

export interface PrometheusRule {
    alert: string;
    expr: string;
    for: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
}

export interface PrometheusRuleSpec {
    groups: Array<{ name: string; rules: PrometheusRule[] }>;
}

/**
 * A PromQL string literal. Namespaces and claim names are DNS names (no quote, no backslash), and a
 * JSON string is a valid PromQL one for those.
 */
function promString(s: string): string {
    return JSON.stringify(s);
}

/**
 * The claim's fill level in percent, as `df` reports it (Use%): used / (used + available). Not
 * used / capacity: capacity counts the blocks ext4 reserves for root (5% by default), which the
 * registry (not root) can never write, so used / capacity stops short of 100 on a full volume.
 * The same measure as the push container's log warning at the same setting.
 */
export function fillLevelExpr(namespace: string, claim: string): string {
    const selector = `{namespace=${promString(namespace)}, persistentvolumeclaim=${promString(claim)}}`;
    return `100 * kubelet_volume_stats_used_bytes${selector} / (kubelet_volume_stats_used_bytes${selector} + kubelet_volume_stats_available_bytes${selector})`;
}

/** The PrometheusRule's spec: a warning at `warnPercent` (when below the critical level) and a critical alert at FILL_CRITICAL_PERCENT. */
export function renderFillRule(input: FillRuleInput): PrometheusRuleSpec {
    const level = fillLevelExpr(input.namespace, input.claim);
    const claim = `${input.namespace}/${input.claim}`;
    const rule = (severity: "warning" | "critical", percent: number): PrometheusRule => ({
        alert: FILL_ALERT,
        expr: `${level} >= ${percent}`,
        for: FILL_ALERT_FOR[severity],
        labels: { severity, registry: input.registry },
        annotations: {
            summary: `The registry volume ${claim} is {{ printf "%.0f" $value }}% full (${severity} at ${percent}%).`,
            description:
                `Pushes to ${input.registry} fail once the PersistentVolumeClaim ${claim} is full; pulls go on. ` +
                `Delete tags and collect garbage, or grow storageSize (${FILL_RUNBOOK}).`,
        },
    });
    const warn = input.warnPercent !== undefined && input.warnPercent < FILL_CRITICAL_PERCENT ? [rule("warning", input.warnPercent)] : [];
    return { groups: [{ name: `${input.registry}-volume`, rules: [...warn, rule("critical", FILL_CRITICAL_PERCENT)] }] };
}
