/**
 * The Ollama probe: a tiny container that asks Ollama every few seconds whether it is up and
 * which models it has loaded, and prints one JSON line per probe (job `ollama-probe`), so the
 * stack knows Ollama's state even when nobody is chatting.
 */
import * as fs from "fs";
import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { containerOptions, pinnedImage, serviceContainerDefaults } from "../docker";
import { PROBE_LOOP_UPLOAD } from "./probeLoop";
import { PROBE_COMPONENT } from "../promtail/promtailConfig";
import type { OllamaProbeSettings } from "../../config/types";

/** The probe script (Python stdlib only), shipped into the container with `uploads`. */
export const PROBE_SCRIPT: string = fs.readFileSync(path.join(__dirname, "ollama_probe.py"), "utf8");

/** Where the script lands in the container: a directory every python image has. */
export const PROBE_SCRIPT_PATH = "/usr/local/bin/ollama_probe.py";

/** `python3 -u`: unbuffered, so each line reaches Docker's log at once. */
export function renderProbeCommand(): string[] {
    return ["python3", "-u", PROBE_SCRIPT_PATH];
}

/** The probe's environment: the script reads its settings from these. */
export function renderProbeEnvs(probe: OllamaProbeSettings): string[] {
    return [
        `OLLAMA_URL=${probe.url}`,
        `PROBE_INTERVAL_SECONDS=${probe.intervalSeconds}`,
        `PROBE_TIMEOUT_SECONDS=${probe.timeoutSeconds}`,
    ];
}

/** Inputs of an OllamaProbe. */
export interface OllamaProbeArgs {
    /** Prefix of Docker object names; the container is `${namePrefix}-ollama-probe`. */
    readonly namePrefix: string;
    /** Pinned probe image, e.g. `python:3.13.15-alpine3.24`. */
    readonly image: pulumi.Input<string>;
    /** URL, interval, timeout and network mode of the probe. */
    readonly probe: OllamaProbeSettings;
    /** The stack's bridge network, joined when `probe.network` is "stack". */
    readonly networkName: pulumi.Input<string>;
}

export class OllamaProbe extends pulumi.ComponentResource {
    /** The probe container; running once created (mustRun), its first line follows within one interval. */
    public readonly container: docker.Container;
    /** The probe container's name on the Docker host. */
    public readonly containerName: pulumi.Output<string>;

    constructor(name: string, args: OllamaProbeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("deepchat:observability:OllamaProbe", name, {}, opts);

        // Pulled once and kept on destroy (keepLocally), as every image of the stack.
        const image = pinnedImage(`${name}-image`, args.image, this);

        const onHostNetwork = args.probe.network === "host";
        this.container = new docker.Container(
            `${name}-container`,
            {
                name: `${args.namePrefix}-ollama-probe`,
                image: image.imageId,
                // restart unless-stopped, json-file log rotated at 10m x 3, the component label
                // (deepchat.observability.component=ollama-probe) that puts its lines in job ollama-probe.
                ...serviceContainerDefaults(PROBE_COMPONENT),
                command: renderProbeCommand(),
                envs: renderProbeEnvs(args.probe),
                // The script is part of this program, not a file on the host.
                uploads: [{ file: PROBE_SCRIPT_PATH, content: PROBE_SCRIPT, permissions: "0444" }, { ...PROBE_LOOP_UPLOAD }],
                // Ollama listens on the host's 127.0.0.1 by default, which only the host network reaches.
                ...(onHostNetwork ? { networkMode: "host" } : { networksAdvanced: [{ name: args.networkName }] }),
                // An HTTP client needs no privileges: nobody, no capabilities, a little memory.
                user: "65534:65534",
                capabilities: { drops: ["ALL"] },
                securityOpts: ["no-new-privileges:true"],
                memory: 64,
            },
            containerOptions(this),
        );

        this.containerName = this.container.name;
        this.registerOutputs({ containerName: this.containerName });
    }
}
