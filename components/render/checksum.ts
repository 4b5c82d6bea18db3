/** The pod-template annotation that rolls a pod when what it mounts changes. */
import { createHash } from "node:crypto";

/**
 * sha256 over the given parts (length-prefixed, so parts cannot run into each other). Only
 * public or already-hashed material goes in: the annotation is stored in plain text.
 */
export function contentChecksum(parts: readonly string[]): string {
    const h = createHash("sha256");
    for (const p of parts) h.update(`${Buffer.byteLength(p)}:`).update(p);
    return h.digest("hex");
}
