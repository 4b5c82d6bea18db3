/**
 * Where the registry pods run and what they reserve (resources, nodeSelector, tolerations,
 * priorityClassName): the settings' text entries turned into pod-spec fields, and those fields put
 * into a registry's pod spec. Plain values, no Pulumi: tests call these with literal values.
 */
import { acceptedIf, checkStorageQuantity, type Verdict } from "../validators";

/** What every registry container reserves unless `registryResources` says otherwise. */
export const DEFAULT_REGISTRY_RESOURCES: readonly string[] = ["requests.cpu=50m", "requests.memory=64Mi", "limits.memory=512Mi"];

export const TOLERATION_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"] as const;

export interface ResourceRequirements {
    requests?: Record<string, string>;
    limits?: Record<string, string>;
}

export interface Toleration {
    key: string;
    operator: "Equal" | "Exists";
    value?: string;
    effect?: (typeof TOLERATION_EFFECTS)[number];
}

/** The placement of every registry pod (hosted and caches); absent fields leave the pod as it is. */
export interface RegistryPlacement {
    /** Replaces each registry container's resources as a whole. */
    resources?: ResourceRequirements;
    /** Added to the pod's own `kubernetes.io/os: linux`. */
    nodeSelector?: Record<string, string>;
    tolerations?: Toleration[];
    priorityClassName?: string;
}

const RESOURCE_ENTRY = /^(requests|limits)\.(cpu|memory|ephemeral-storage)=(.*)$/;
// A qualified name with an optional DNS-subdomain prefix, and a label value: the API server's grammars.
const NAME = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
const LABEL_KEY = new RegExp(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?${NAME}$`);
const LABEL_VALUE = new RegExp(`^(${NAME})?$`);
const labelKeyOk = (k: string) => LABEL_KEY.test(k) && (k.includes("/") ? k.split("/")[0].length <= 253 : true);

// A CPU amount as people write it: whole cores, a decimal fraction, or millicores.
const CPU_QUANTITY = /^(?:[1-9][0-9]*m|[0-9]+(?:\.[0-9]+)?)$/;

/** `requests|limits.cpu|memory|ephemeral-storage=QUANTITY`: cpu in cores or millicores, the others a size (checkStorageQuantity). */
export function checkResourceEntry(entry: string): Verdict {
    const m = RESOURCE_ENTRY.exec(entry);
    const quantityOk = m !== null && (m[2] === "cpu" ? CPU_QUANTITY.test(m[3]) && Number.parseFloat(m[3]) > 0 : checkStorageQuantity(m[3]).ok);
    return acceptedIf(
        quantityOk,
        "requests.NAME=QUANTITY or limits.NAME=QUANTITY, NAME one of cpu (cores or millicores), memory, ephemeral-storage (a size) (e.g. requests.cpu=100m, limits.memory=1Gi)",
    );
}

/** `KEY=VALUE` with a label key and value. */
export function checkNodeSelectorEntry(entry: string): Verdict {
    const [key, value] = [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)];
    return acceptedIf(
        entry.includes("=") && labelKeyOk(key) && LABEL_VALUE.test(value),
        "KEY=VALUE with a label key and value (e.g. node-role.kubernetes.io/infra=true)",
    );
}

/** The toleration an entry `KEY[=VALUE][:EFFECT]` (the syntax of `kubectl taint`) stands for. */
export function parseToleration(entry: string): Toleration | undefined {
    const m = /^([^=:]+)(=([^:]*))?(:(.*))?$/.exec(entry);
    if (m === null || !labelKeyOk(m[1])) return undefined;
    const [value, effect] = [m[3], m[5]];
    if (value !== undefined && !LABEL_VALUE.test(value)) return undefined;
    if (effect !== undefined && !(TOLERATION_EFFECTS as readonly string[]).includes(effect)) return undefined;
    return {
        key: m[1],
        operator: value === undefined ? "Exists" : "Equal",
        ...(value === undefined ? {} : { value }),
        ...(effect === undefined ? {} : { effect: effect as Toleration["effect"] }),
    };
}

/** A toleration as `KEY[=VALUE][:EFFECT]`. */
export function checkTolerationEntry(entry: string): Verdict {
    return acceptedIf(
        parseToleration(entry) !== undefined,
        `KEY[=VALUE][:EFFECT] as kubectl taint writes it, EFFECT one of ${TOLERATION_EFFECTS.join(", ")} (all effects when absent; any value when there is no =VALUE)`,
    );
}

/** The settings' entries as pod-spec fields; entries are checked before (see the check functions above). */
export function placementOf(s: {
    resources: readonly string[];
    nodeSelector: readonly string[];
    tolerations: readonly string[];
    priorityClassName: string;
}): RegistryPlacement {
    const resources: ResourceRequirements = {};
    for (const entry of s.resources) {
        const [, kind, name, quantity] = RESOURCE_ENTRY.exec(entry)!;
        (resources[kind as "requests" | "limits"] ??= {})[name] = quantity;
    }
    const split = (e: string) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)];
    return {
        resources,
        nodeSelector: s.nodeSelector.length > 0 ? Object.fromEntries(s.nodeSelector.map(split)) : undefined,
        tolerations: s.tolerations.length > 0 ? s.tolerations.map((t) => parseToleration(t)!) : undefined,
        priorityClassName: s.priorityClassName === "" ? undefined : s.priorityClassName,
    };
}

interface PlaceablePodSpec {
    nodeSelector?: unknown;
    containers: object[];
}

/** The pod spec with the placement applied: containers' resources (not init containers'), selector, tolerations, priority. */
export function withPlacement<T extends PlaceablePodSpec>(spec: T, placement: RegistryPlacement | undefined): T {
    if (placement === undefined) return spec;
    const { resources, nodeSelector, tolerations, priorityClassName } = placement;
    return {
        ...spec,
        containers: resources === undefined ? spec.containers : spec.containers.map((c) => ({ ...c, resources })),
        ...(nodeSelector === undefined ? {} : { nodeSelector: { ...(spec.nodeSelector as Record<string, string> | undefined), ...nodeSelector } }),
        ...(tolerations === undefined ? {} : { tolerations }),
        ...(priorityClassName === undefined ? {} : { priorityClassName }),
    };
}
