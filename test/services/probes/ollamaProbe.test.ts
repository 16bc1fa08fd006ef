/** OllamaProbe's resource graph, against Pulumi's mock monitor (test/mocks.ts). */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { COMPONENT_LABEL } from "../../../services/docker";
import { OllamaProbe, PROBE_SCRIPT, PROBE_SCRIPT_PATH } from "../../../services/probes/ollamaProbe";
import { PROBE_LOOP_UPLOAD } from "../../../services/probes/probeLoop";
import { DEFAULT_IMAGES } from "../../../config/schema";
import type { OllamaProbeSettings } from "../../../config/types";
import { runWithMocks, type ProgramRun } from "../../mocks";

const DEFAULT_PROBE: OllamaProbeSettings = {
    enabled: true,
    url: "http://127.0.0.1:11434",
    intervalSeconds: 15,
    timeoutSeconds: 5,
    network: "host",
};

function deploy(probe: OllamaProbeSettings, namePrefix = "obs"): Promise<ProgramRun> {
    return runWithMocks({}, {}, async () => {
        const component = new OllamaProbe("ollama-probe", {
            namePrefix,
            image: DEFAULT_IMAGES.probe,
            probe,
            networkName: pulumi.output(`${namePrefix}-net`),
        });
        return { containerName: component.containerName };
    });
}

describe("OllamaProbe", () => {
    it("registers the component with a pinned image kept on the host and a container named after the prefix", async () => {
        const stack = await deploy(DEFAULT_PROBE);
        expect(stack.ofType("deepchat:observability:OllamaProbe").map((resource) => resource.name)).toEqual(["ollama-probe"]);
        const image = stack.one("docker:index/remoteImage:RemoteImage", "image");
        expect(image.inputs).toMatchObject({ name: DEFAULT_IMAGES.probe, keepLocally: true });
        const container = stack.one("docker:index/container:Container", "container");
        expect(container.inputs.name).toBe("obs-ollama-probe");
        expect(container.inputs.image).toBe(`sha256:${"0".repeat(64)}`);
        expect(stack.outputs.containerName).toBe("obs-ollama-probe");
        // Children of the component; the fixed container name needs delete-before-replace.
        const component = stack.one("deepchat:observability:OllamaProbe", "ollama-probe");
        expect(container.options.parent).toBe(component.options.urn);
        expect(image.options.parent).toBe(component.options.urn);
        expect(container.options.deleteBeforeReplace).toBe(true);
        expect(container.inputs.mustRun).toBe(true);
    });

    it("runs the uploaded stdlib script with python3 -u, configured by environment", async () => {
        const stack = await deploy({ ...DEFAULT_PROBE, url: "http://127.0.0.1:11500", intervalSeconds: 30, timeoutSeconds: 3 });
        const inputs = stack.one("docker:index/container:Container", "container").inputs;
        expect(inputs.command).toEqual(["python3", "-u", PROBE_SCRIPT_PATH]);
        // The script and the loop it imports, side by side (Python looks in the script's directory first).
        expect(inputs.uploads).toEqual([{ file: PROBE_SCRIPT_PATH, content: PROBE_SCRIPT, permissions: "0444" }, { ...PROBE_LOOP_UPLOAD }]);
        expect(path.posix.dirname(PROBE_LOOP_UPLOAD.file)).toBe(path.posix.dirname(PROBE_SCRIPT_PATH));
        expect(PROBE_SCRIPT).toContain("def probe_once(");
        expect(inputs.envs).toEqual(["OLLAMA_URL=http://127.0.0.1:11500", "PROBE_INTERVAL_SECONDS=30", "PROBE_TIMEOUT_SECONDS=3"]);
        expect(inputs.volumes).toBeUndefined(); // no host files
    });

    it("restarts unless stopped, rotates its json-file log, and carries the component label Promtail selects it by", async () => {
        const inputs = (await deploy(DEFAULT_PROBE)).one("docker:index/container:Container", "container").inputs;
        expect(inputs.restart).toBe("unless-stopped");
        expect(inputs.logDriver).toBe("json-file");
        expect(inputs.logOpts).toEqual({ "max-size": "10m", "max-file": "3" });
        expect(inputs.labels).toEqual([{ label: COMPONENT_LABEL, value: "ollama-probe" }]);
        expect(COMPONENT_LABEL).toBe("deepchat.observability.component");
    });

    it("uses the host network by default, to reach an Ollama on the host's 127.0.0.1", async () => {
        const inputs = (await deploy(DEFAULT_PROBE)).one("docker:index/container:Container", "container").inputs;
        expect(inputs.networkMode).toBe("host");
        expect(inputs.networksAdvanced).toBeUndefined();
    });

    it('joins the stack network when network is "stack"', async () => {
        const inputs = (await deploy({ ...DEFAULT_PROBE, network: "stack", url: "http://ollama:11434" }, "lab")).one(
            "docker:index/container:Container",
            "container",
        ).inputs;
        expect(inputs.networkMode).toBeUndefined();
        expect(inputs.networksAdvanced).toEqual([{ name: "lab-net" }]);
        expect(inputs.name).toBe("lab-ollama-probe");
        expect(inputs.envs).toContain("OLLAMA_URL=http://ollama:11434");
    });

    it("runs unprivileged: nobody, no capabilities, no new privileges", async () => {
        const inputs = (await deploy(DEFAULT_PROBE)).one("docker:index/container:Container", "container").inputs;
        expect(inputs.user).toBe("65534:65534");
        expect(inputs.capabilities).toEqual({ drops: ["ALL"] });
        expect(inputs.securityOpts).toEqual(["no-new-privileges:true"]);
    });
});
