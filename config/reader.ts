/**
 * Reads the stack config key by key through the schemas in config/schema.ts. An invalid value
 * does not stop the reading: its problem is collected, naming the key, the value and what is
 * allowed, and the reading goes on with a stand-in (the default, or what the key's `.catch`
 * says), so one preview lists every problem.
 */
import * as pulumi from "@pulumi/pulumi";
import { isDeepStrictEqual } from "util";
import { z } from "zod";
import { listKeys, objectKeys, plainKeys, secretKeys, type ConfigKey, type ListKey, type ObjectKey, type PlainKey, type SecretKey } from "./schema";

/** What parseSettings reads: plain values, and secrets already wrapped as secret outputs. */
export interface RawConfig {
    get(key: string): string | undefined;
    getSecret(key: string): pulumi.Output<string> | undefined;
}

type FieldsOf<K extends ObjectKey> = (typeof objectKeys)[K]["shape"];

/** An object key's fields as given, decoded from the key's JSON text. */
export type GivenFields = Readonly<Record<string, unknown>>;

export class ConfigReader {
    /** Every problem found so far, in the order the keys were read. */
    readonly problems: string[] = [];

    constructor(private readonly raw: RawConfig) {}

    /** Whether the key is set at all. */
    isSet(key: ConfigKey): boolean {
        return this.raw.get(key) !== undefined;
    }

    /**
     * Whether the key holds something other than its default. Pulumi hands every default that
     * Pulumi.yaml declares to the program as if it were set, so `isSet` is true for those keys on
     * every stack; this tells an operator's value from the declared default (an invalid value
     * counts as set).
     */
    differsFromDefault(key: PlainKey | ObjectKey): boolean {
        const text = this.raw.get(key);
        if (text === undefined) return false;
        const isObject = key in objectKeys;
        const schema: z.ZodType = isObject ? objectKeys[key as ObjectKey] : plainKeys[key as PlainKey];
        const checked = schema instanceof z.ZodCatch ? (schema.unwrap() as z.ZodType) : schema;
        const given = checked.safeParse(isObject ? jsonOrText(text) : text);
        if (!given.success) return true;
        const defaultValue = checked.safeParse(isObject ? {} : undefined);
        return !defaultValue.success || !isDeepStrictEqual(given.data, defaultValue.data);
    }

    /** The text as given, for messages. Never of a secret key. */
    given(key: Exclude<ConfigKey, SecretKey>): string | undefined {
        return this.raw.get(key);
    }

    plain<K extends PlainKey>(key: K): z.output<(typeof plainKeys)[K]> {
        return this.check(key, plainKeys[key], this.raw.get(key)) as z.output<(typeof plainKeys)[K]>;
    }

    /** A list key: JSON text, or a plain text that is then no list. */
    list<K extends ListKey>(key: K): z.output<(typeof listKeys)[K]> {
        const text = this.raw.get(key);
        return this.check(key, listKeys[key], text === undefined ? undefined : jsonOrText(text)) as z.output<(typeof listKeys)[K]>;
    }

    /** A secret key's output, after checking its value (the message never shows the value). */
    secret(key: SecretKey): pulumi.Output<string> | undefined {
        const text = this.raw.get(key);
        if (text !== undefined) {
            const result = secretKeys[key].safeParse(text);
            if (!result.success) this.report(`${key}: ${result.error.issues[0].message}`);
        }
        return this.raw.getSecret(key);
    }

    /** A secret key's text, for checks whose messages never show it (a plain-http webhook names only its host). */
    secretText(key: SecretKey): string | undefined {
        return this.raw.get(key);
    }

    /** Every field of an object key, in the schema's order. */
    object<K extends ObjectKey>(key: K): z.output<(typeof objectKeys)[K]> {
        const fields = this.fieldsOf(key);
        const values = Object.keys(objectKeys[key].shape).map((field) => [field, this.field(key, fields, field as keyof FieldsOf<K>)]);
        return Object.fromEntries(values) as z.output<(typeof objectKeys)[K]>;
    }

    /**
     * An object key's fields as given, after the object's own problems (not JSON, no object,
     * an unknown field). Read each with `field`, in the order the rules need them.
     */
    fieldsOf(key: ObjectKey): GivenFields {
        const text = this.raw.get(key);
        if (text === undefined) return {};
        let parsed: unknown;
        try {
            parsed = JSON.parse(text);
        } catch {
            this.invalid(key, text, "an object (set it with `pulumi config set --path` or as a YAML map)");
            return {};
        }
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
            this.invalid(key, parsed, "an object");
            return {};
        }
        const allowed = Object.keys(objectKeys[key].shape);
        for (const [field, value] of Object.entries(parsed)) {
            if (!allowed.includes(field)) {
                this.report(`${key}.${field}: unknown key (value ${JSON.stringify(value)}). Allowed keys of ${key}: ${allowed.join(", ")}.`);
            }
        }
        return parsed as GivenFields;
    }

    /** One field of an object key; `given` replaces the field's value when a rule supplies it (a computed default). */
    field<K extends ObjectKey, F extends keyof FieldsOf<K>>(key: K, fields: GivenFields, field: F, given: unknown = fields[field as string]): z.output<FieldsOf<K>[F]> {
        const schema = (objectKeys[key].shape as Record<string, z.ZodType>)[field as string];
        return this.check(`${key}.${String(field)}`, schema, given) as z.output<FieldsOf<K>[F]>;
    }

    /** A problem a rule found, in the schema's words: key, value, what is allowed. */
    invalid(path: string, value: unknown, allowed: string): void {
        this.report(`${path}: ${JSON.stringify(value)} is not allowed. Expected ${allowed}.`);
    }

    /** A problem a rule found, in its own words (starting with the key). */
    report(...problems: string[]): void {
        this.problems.push(...problems);
    }

    /** The value, checked against the schema; the caller knows its type. */
    private check(path: string, schema: z.ZodType, given: unknown): unknown {
        // The key's check runs without its `.catch`, which only says what stands in for an invalid value.
        const checked = schema instanceof z.ZodCatch ? (schema.unwrap() as z.ZodType) : schema;
        const result = checked.safeParse(given);
        if (result.success) return result.data;
        const reported = new Set<string>();
        for (const issue of result.error.issues) {
            // One problem per value (the first thing it breaks); a list's items each count.
            const at = issue.path.join(".");
            if (reported.has(at)) continue;
            reported.add(at);
            this.invalid(path, valueAt(given, issue.path), issue.message);
        }
        // Every key has a default, is optional, or has a `.catch`: parsing "unset" gives the stand-in.
        return schema instanceof z.ZodCatch ? schema.parse(given) : schema.parse(undefined);
    }
}

function jsonOrText(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/** The part of `value` an issue is about (a list's item), as given. */
function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
    return path.reduce<unknown>((part, key) => (part as Record<PropertyKey, unknown>)[key], value);
}
