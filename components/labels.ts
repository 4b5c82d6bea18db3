/** Labels and annotations every object the program makes shares. */

/** Marks every object as ours, so `kubectl get all -l app.kubernetes.io/part-of=cluster-registry` finds them. */
export const PART_OF = { "app.kubernetes.io/part-of": "cluster-registry" } as const;

/** Pod-template annotation carrying a checksum of what the pod mounts, so a change rolls it. */
export const CHECKSUM_ANNOTATION = "cluster-registry/checksum";
