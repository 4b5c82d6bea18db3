/** The `config:` block of Pulumi.yaml and the README's settings table, both from `SETTINGS`. */
import { defaultText, Setting, SETTING_KEYS, settingOf } from "../settings";

/** A Pulumi.yaml config declaration, as the CLI's project schema takes it. */
export interface ConfigDeclaration {
    type: string;
    items?: { type: string };
    description: string;
    default?: string | number | boolean;
    secret?: boolean;
}

/** Only plain scalar defaults go in `default`: the CLI would pass them to every stack as if set there. */
function plainDefault(s: Setting): string | number | boolean | undefined {
    const d = s.default;
    return typeof d === "string" || typeof d === "number" || typeof d === "boolean" ? d : undefined;
}

/** Pulumi.yaml's `config:` block. Defaults that vary or are computed are stated in the description. */
export function renderConfigDeclarations(): Record<string, ConfigDeclaration> {
    return Object.fromEntries(
        SETTING_KEYS.map((key) => {
            const s: Setting = settingOf(key);
            const d = plainDefault(s);
            const decl: ConfigDeclaration = {
                type: s.type,
                ...(s.type === "array" ? { items: { type: "string" } } : {}),
                description: d === undefined ? `${s.description} Default: ${defaultText(key)}.` : s.description,
                ...(d === undefined ? {} : { default: d }),
                ...(s.secret ? { secret: true } : {}),
            };
            return [key, decl];
        }),
    );
}

/** The README's table: key, default, meaning. */
export function renderSettingsTable(): string {
    const rows = SETTING_KEYS.map((key) => {
        const s: Setting = settingOf(key);
        const secret = s.secret ? " (secret)" : "";
        return `| \`${key}\`${secret} | ${defaultText(key).replace(/\|/g, "\\|")} | ${s.description.replace(/\|/g, "\\|")} |`;
    });
    return ["| key | default | meaning |", "|---|---|---|", ...rows].join("\n") + "\n";
}
