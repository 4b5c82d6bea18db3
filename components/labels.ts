/** Labels and annotations every object the program makes shares. */

/** Marks every object as ours, so `kubectl get all -l app.kubernetes.io/part-of=cluster-registry` finds them. */
export const PART_OF = { "app.kubernetes.io/part-of": "cluster-registry" } as const;

/** Pod-template annotation carrying a checksum of what the pod mounts, so a change rolls it. */
export const CHECKSUM_ANNOTATION = "cluster-registry/checksum";

/** The provider's annotation naming an object's server-side apply field manager (pulumi-kubernetes' SSA guide). */
export const FIELD_MANAGER_ANNOTATION = "pulumi.com/patchFieldManager";

/** pulumi-kubernetes: a Patch resource's server-side apply takes over fields other managers own (`patchForce`). */
export const PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce";

/**
 * The field manager of the objects a destroy keeps (the registries' namespace, the hosted claim): the
 * same for every stack of that installation (its Service name) that takes them over, where the
 * provider's default is random per resource. Two installations sharing a namespace apply under two
 * names, so a disagreement on its labels is a conflict rather than the last one winning.
 */
export function keptFieldManager(serviceName: string): string {
    return `cluster-registry.${serviceName}`;
}
