/** Stack config as parseSettings reads it, for the settings tests. */
import * as pulumi from "@pulumi/pulumi";
import { parseSettings, SettingsError, type RawConfig } from "../../config/loadSettings";

/** Raw config as Pulumi hands it over: strings, objects as JSON text. */
export function rawConfig(values: Record<string, unknown> = {}, secrets: Record<string, string> = {}): RawConfig {
    const all: Record<string, unknown> = { hostLabel: "lab-box", ...values, ...secrets };
    return {
        get: (key) => {
            const value = all[key];
            if (value === undefined) return undefined;
            return typeof value === "string" ? value : JSON.stringify(value);
        },
        getSecret: (key) => (key in secrets ? pulumi.secret(secrets[key]) : undefined),
    };
}

/** The problems parseSettings reports for this config; none when it is valid. */
export function problemsOf(values: Record<string, unknown>, secrets: Record<string, string> = {}): string[] {
    try {
        parseSettings(rawConfig(values, secrets));
    } catch (error) {
        if (error instanceof SettingsError) return error.problems;
        throw error;
    }
    return [];
}
