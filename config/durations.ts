/** The two duration formats of the stack config: alert windows (`90s`, `5m`, `1h`) and Loki's retention (`14d`, `2w`). */

/** Seconds of a validated short duration (`90s`, `5m`, `1h`). */
export function durationSeconds(text: string): number {
    const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600 };
    return Number(text.slice(0, -1)) * unitSeconds[text.slice(-1)];
}

const DURATION_UNITS_HOURS: Record<string, number> = { h: 1, d: 24, w: 168, y: 8760 };

/** Parses a Loki retention (`14d`, `336h`, `2w`, `1w3d`) to hours, or undefined. */
export function parseRetentionHours(text: string): number | undefined {
    if (!/^(?:\d+[ywdh])+$/.test(text)) return undefined;
    let hours = 0;
    for (const [, amount, unit] of text.matchAll(/(\d+)([ywdh])/g)) {
        hours += Number(amount) * DURATION_UNITS_HOURS[unit];
    }
    return hours;
}

/** Hours of a retention the schema accepted. */
export function retentionHours(text: string): number {
    const hours = parseRetentionHours(text);
    if (hours === undefined) throw new Error(`not a Loki retention: ${JSON.stringify(text)}`);
    return hours;
}
