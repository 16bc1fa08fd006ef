/**
 * parseSettings gives, for every config in the table (settingsCases.ts), exactly what the
 * hand-written validator gave before config/schema.ts: the same Settings (values, defaults,
 * warnings, which values are secret outputs), or the same problems in the same order.
 * recordedSettings.json was written by that validator; regenerate it only for an intended change.
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { parseSettings } from "../../config/loadSettings";
import { rawConfig } from "../support/rawConfig";
import { GPU_FACTS, recordOf, SETTINGS_CASES } from "./settingsCases";

const recorded = JSON.parse(fs.readFileSync(path.join(__dirname, "recordedSettings.json"), "utf8")) as Record<string, unknown>;

describe("parseSettings over the recorded table", () => {
    it("has a recording for every case, and a case for every recording", () => {
        expect(SETTINGS_CASES.map((c) => c.name).sort()).toEqual(Object.keys(recorded).sort());
    });

    it.each(SETTINGS_CASES.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
        const record = await recordOf(() => parseSettings(rawConfig(c.values, c.secrets), c.gpu ? { gpu: GPU_FACTS[c.gpu] } : undefined));
        expect(record).toEqual(recorded[c.name]);
    });
});
