/** Whether a value has a type the Pulumi CLI accepts in a `config:` block (and, for arrays, its items' type). */
export function matchesType(value: unknown, type: string, items?: { type: string }): boolean {
    switch (type) {
        case "string":
            return typeof value === "string";
        case "integer":
            return Number.isInteger(value);
        case "boolean":
            return typeof value === "boolean";
        case "array":
            return Array.isArray(value) && value.every((v) => matchesType(v, items?.type ?? "string"));
        default:
            return false;
    }
}
