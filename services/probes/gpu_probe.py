"""GPU probe for deepchat-observability: who holds the GPU, and how busy is the box.

Every GPU_PROBE_INTERVAL_SECONDS it runs nvidia-smi (with a timeout) and reads /proc, and
prints flat JSON lines to stdout (collected by Promtail as job "gpu-probe"), one per fact:

  kind=host     cpu_count, load1, load5, load15, host_memory_total_bytes, host_memory_available_bytes
  kind=gpu      gpu (index), gpu_uuid, gpu_name, memory_total_bytes, memory_used_bytes,
                memory_free_bytes, memory_used_percent, utilization_percent, temperature_celsius,
                power_draw_watts
  kind=process  gpu, gpu_uuid, pid, process_name, process, holder, ollama (1/0), used_memory_bytes,
                gpu_memory_total_bytes
  kind=error    error: why nvidia-smi gave no reading (missing, failed, hung)

Flat lines, not one line with a list: LogQL's `| json` cannot iterate a list, but it can
group flat lines `by (host, gpu)` or `by (holder)`. A value the GPU does not report
([N/A], [Not Supported]) is null, so `| unwrap` drops it instead of reading a false 0.

The probe never crashes: a failure is a kind=error line with the reason, and the loop goes
on. Python standard library only.

Settings (environment, or flags for a manual run):
  GPU_PROBE_INTERVAL_SECONDS  --interval  seconds between readings (default 15)
  GPU_PROBE_TIMEOUT_SECONDS   --timeout   how long one nvidia-smi call may take (default 10)
  GPU_PROBE_PROC_ROOT         --proc      where /proc is (default /proc; tests point it elsewhere)
  --once                      read once, print the lines and exit 0
"""

import argparse
import json
import os
import signal
import subprocess
import sys

import probe_loop  # uploaded beside this script (services/probes/probe_loop.py)

MAX_ERROR_CHARS = 500
MIB = 1024 * 1024

GPU_QUERY = "index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu,power.draw"
APPS_QUERY = "gpu_uuid,pid,process_name,used_memory"
CSV_FORMAT = "--format=csv,noheader,nounits"

# Fields nvidia-smi prints for values a GPU does not report, in brackets or without.
NOT_REPORTED = {"[n/a]", "n/a", "[not supported]", "not supported", "[unknown error]", "[insufficient permissions]", ""}
# What nvidia-smi prints for a process whose name it cannot read (another PID namespace).
UNNAMED = {"[not found]", "[n/a]", "n/a", ""}

# Ollama's processes, by executable name. The server is `ollama serve`; current versions run
# each model in a subprocess of the same binary (`ollama runner ...`, llm/server.go); versions
# up to 0.5 started a separate `ollama_llama_server` runner. /proc/<pid>/comm cuts names to 15
# characters ("ollama_llama_se").
OLLAMA_EXECUTABLES = {"ollama", "ollama.exe", "ollama_llama_server", "ollama_llama_se"}


class SmiError(Exception):
    """nvidia-smi gave no usable answer; the message fits the `error` field."""


# Children killed after a timeout that have not exited yet (a hung driver call can keep a
# process in uninterruptible sleep). No second nvidia-smi starts while one is still stuck.
STUCK = []


def reap_stuck():
    STUCK[:] = [process for process in STUCK if process.poll() is None]
    return STUCK


def run_smi(arguments, timeout):
    """Runs nvidia-smi with `arguments`; its stdout, or SmiError saying why not."""
    stuck = reap_stuck()
    if stuck:
        raise SmiError(
            "an earlier nvidia-smi (pid %d) is still hung after being killed; not starting another" % stuck[0].pid
        )
    command = ["nvidia-smi"] + arguments
    label = "nvidia-smi " + arguments[0].split("=")[0]
    try:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            # Its own process group, so a timeout kills whatever it started too.
            start_new_session=True,
        )
    except FileNotFoundError:
        raise SmiError(
            "%s: nvidia-smi not found on PATH (the container needs the GPU device request and "
            "NVIDIA_DRIVER_CAPABILITIES=utility from the NVIDIA Container Toolkit)" % label
        )
    except OSError as exc:
        raise SmiError("%s: cannot start: %s" % (label, exc))
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            process.communicate(timeout=1)
        except subprocess.TimeoutExpired:
            STUCK.append(process)
        raise SmiError("%s: timed out after %ss (killed)" % (label, format_number(timeout)))
    text = out.decode("utf-8", "replace")
    if process.returncode != 0:
        # The driver failure goes to stdout; other failures to stderr.
        reason = " ".join((err.decode("utf-8", "replace") + " " + text).split())
        raise SmiError("%s: exit %d: %s" % (label, process.returncode, reason or "no message"))
    return text


def format_number(value):
    return ("%f" % value).rstrip("0").rstrip(".")


def number(text):
    """A CSV field as a number, or None when the GPU does not report it."""
    value = text.strip()
    if value.lower() in NOT_REPORTED:
        return None
    try:
        parsed = float(value)
    except ValueError:
        return None
    if parsed != parsed or parsed in (float("inf"), float("-inf")):
        return None
    return int(parsed) if parsed.is_integer() else parsed


def mib_to_bytes(text):
    value = number(text)
    return None if value is None else int(value * MIB)


def split_row(line, count, free_column):
    """Splits a CSV row of `count` fields where the field at `free_column` may itself contain
    ", " (nvidia-smi does not quote): the fields around it are taken from both ends."""
    parts = line.split(", ")
    if len(parts) < count:
        return None
    tail = count - free_column - 1
    head = parts[:free_column]
    middle = ", ".join(parts[free_column : len(parts) - tail])
    return head + [middle] + parts[len(parts) - tail :]


def parse_gpus(text):
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        row = split_row(line.strip(), 9, 2)
        if row is None:
            raise SmiError("nvidia-smi --query-gpu: unexpected line %r" % line[:120])
        index, uuid, name, total, used, free, utilization, temperature, power = row
        total_bytes = mib_to_bytes(total)
        used_bytes = mib_to_bytes(used)
        percent = None
        if total_bytes and used_bytes is not None:
            percent = round(100.0 * used_bytes / total_bytes, 2)
        gpus.append(
            {
                "probe": "gpu",
                "kind": "gpu",
                "gpu": index.strip(),
                "gpu_uuid": uuid.strip(),
                "gpu_name": name.strip(),
                "memory_total_bytes": total_bytes,
                "memory_used_bytes": used_bytes,
                "memory_free_bytes": mib_to_bytes(free),
                "memory_used_percent": percent,
                "utilization_percent": number(utilization),
                "temperature_celsius": number(temperature),
                "power_draw_watts": number(power),
                "error": "",
            }
        )
    if not gpus:
        raise SmiError("nvidia-smi --query-gpu: no GPU listed")
    return gpus


def executable_name(name):
    """The executable's base name. nvidia-smi prints a path (`/usr/local/bin/ollama`) or a bare
    name (`python3`), without arguments; a path may hold spaces or commas (`/srv/a, b/python3`)."""
    text = name.strip().replace("\\", "/")
    if text.startswith("/"):
        return text.rsplit("/", 1)[-1]
    return text.split(" ")[0]


def name_from_proc(proc_root, pid):
    """The process's command from /proc/<pid>/cmdline (or comm), when nvidia-smi could not name it."""
    try:
        with open(os.path.join(proc_root, str(pid), "cmdline"), "rb") as handle:
            argv = [part for part in handle.read().split(b"\0") if part]
        if argv:
            return argv[0].decode("utf-8", "replace")
    except OSError:
        pass
    try:
        with open(os.path.join(proc_root, str(pid), "comm"), "rb") as handle:
            return handle.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def parse_processes(text, gpus, proc_root):
    by_uuid = {gpu["gpu_uuid"]: gpu for gpu in gpus}
    processes = []
    for line in text.splitlines():
        stripped = line.strip()
        # Some drivers print this instead of nothing when no compute process runs.
        if not stripped or stripped.lower().startswith("no running processes found"):
            continue
        row = split_row(stripped, 4, 2)
        if row is None:
            raise SmiError("nvidia-smi --query-compute-apps: unexpected line %r" % line[:120])
        uuid, pid_text, name, used = row
        pid = number(pid_text)
        name = name.strip()
        if name.lower() in UNNAMED and isinstance(pid, int):
            name = name_from_proc(proc_root, pid) or name
        executable = executable_name(name) if name.lower() not in UNNAMED else ""
        is_ollama = executable in OLLAMA_EXECUTABLES
        gpu = by_uuid.get(uuid.strip())
        if is_ollama:
            holder = "ollama"
        elif executable:
            holder = "%s (pid %s)" % (executable, pid_text.strip())
        else:
            holder = "unknown (pid %s)" % pid_text.strip()
        processes.append(
            {
                "probe": "gpu",
                "kind": "process",
                "gpu": gpu["gpu"] if gpu else "",
                "gpu_uuid": uuid.strip(),
                "pid": pid if isinstance(pid, int) else None,
                "process_name": name,
                "process": executable,
                "holder": holder,
                "ollama": 1 if is_ollama else 0,
                "used_memory_bytes": mib_to_bytes(used),
                "gpu_memory_total_bytes": gpu["memory_total_bytes"] if gpu else None,
                "error": "",
            }
        )
    return processes


def read_host(proc_root):
    line = {
        "probe": "gpu",
        "kind": "host",
        # The host's CPUs: /proc/loadavg is host-wide, so the load compares against these.
        "cpu_count": os.cpu_count(),
        "load1": None,
        "load5": None,
        "load15": None,
        "host_memory_total_bytes": None,
        "host_memory_available_bytes": None,
        "error": "",
    }
    problems = []
    try:
        with open(os.path.join(proc_root, "loadavg"), encoding="ascii") as handle:
            fields = handle.read().split()
        line["load1"], line["load5"], line["load15"] = (float(value) for value in fields[:3])
    except (OSError, ValueError) as exc:
        problems.append("loadavg: %s" % exc)
    try:
        meminfo = {}
        with open(os.path.join(proc_root, "meminfo"), encoding="ascii") as handle:
            for entry in handle:
                key, _, rest = entry.partition(":")
                parts = rest.split()
                if parts:
                    meminfo[key] = int(parts[0]) * 1024  # kB
        line["host_memory_total_bytes"] = meminfo.get("MemTotal")
        line["host_memory_available_bytes"] = meminfo.get("MemAvailable")
        if line["host_memory_total_bytes"] is None:
            problems.append("meminfo: no MemTotal")
    except (OSError, ValueError) as exc:
        problems.append("meminfo: %s" % exc)
    line["error"] = "; ".join(problems)[:MAX_ERROR_CHARS]
    return line


def error_line(message):
    return {"probe": "gpu", "kind": "error", "error": str(message)[:MAX_ERROR_CHARS]}


def read_once(timeout, proc_root):
    """One reading: a list of lines. Never raises (short of KeyboardInterrupt/SystemExit)."""
    lines = []
    try:
        lines.append(read_host(proc_root))
    except Exception as exc:  # the probe must never crash
        lines.append(error_line("host reading failed: %s: %s" % (type(exc).__name__, exc)))
    try:
        gpus = parse_gpus(run_smi(["--query-gpu=" + GPU_QUERY, CSV_FORMAT], timeout))
    except SmiError as exc:
        lines.append(error_line(exc))
        return lines
    except Exception as exc:
        lines.append(error_line("GPU reading failed: %s: %s" % (type(exc).__name__, exc)))
        return lines
    lines.extend(gpus)
    try:
        lines.extend(parse_processes(run_smi(["--query-compute-apps=" + APPS_QUERY, CSV_FORMAT], timeout), gpus, proc_root))
    except SmiError as exc:
        lines.append(error_line(exc))
    except Exception as exc:
        lines.append(error_line("process reading failed: %s: %s" % (type(exc).__name__, exc)))
    return lines


def emit(lines):
    for line in lines:
        try:
            text = json.dumps(line, separators=(",", ":"))
        except Exception as exc:  # should not happen; still a line that says so
            text = json.dumps(error_line("cannot encode a reading: %s" % exc))
        sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Read nvidia-smi and /proc; flat JSON lines per GPU, process and host.")
    parser.add_argument("--interval", default=os.environ.get("GPU_PROBE_INTERVAL_SECONDS", "15"))
    parser.add_argument("--timeout", default=os.environ.get("GPU_PROBE_TIMEOUT_SECONDS", "10"))
    parser.add_argument("--proc", default=os.environ.get("GPU_PROBE_PROC_ROOT", "/proc"))
    parser.add_argument("--once", action="store_true", help="read once and exit")
    args = parser.parse_args(argv)
    args.interval = probe_loop.positive_number("gpu_probe", "GPU_PROBE_INTERVAL_SECONDS", args.interval)
    args.timeout = probe_loop.positive_number("gpu_probe", "GPU_PROBE_TIMEOUT_SECONDS", args.timeout)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return probe_loop.run(lambda: emit(read_once(args.timeout, args.proc)), args.interval, args.once)


if __name__ == "__main__":
    probe_loop.exit_with(main)
