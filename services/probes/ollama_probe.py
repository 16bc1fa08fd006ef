"""Ollama probe for deepchat-observability.

Every PROBE_INTERVAL_SECONDS it calls Ollama's /api/version and /api/ps and prints one JSON
line to stdout (collected by Promtail as job "ollama-probe"):

  probe, up, latency_ms, version, models_loaded, model_names, size_vram_bytes, size_bytes,
  expires_at, error, models: [{name, size_vram, expires_at}]

The probe never crashes: any failure becomes a line with up=0 and the reason in "error", and
the loop goes on. Python standard library only, so it runs on a plain python:alpine image.

Settings (environment, or flags for a manual run):
  OLLAMA_URL               --url       base URL of the Ollama API (default http://127.0.0.1:11434)
  PROBE_INTERVAL_SECONDS   --interval  seconds between probes (default 15)
  PROBE_TIMEOUT_SECONDS    --timeout   timeout of each HTTP call (default 5)
  --once                   probe once, print one line and exit 0
"""

import argparse
import datetime
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request

import probe_loop  # uploaded beside this script (services/probes/probe_loop.py)

DEFAULT_URL = "http://127.0.0.1:11434"
MAX_ERROR_CHARS = 500


class ProbeError(Exception):
    """A failed call, with a message fit for the `error` field."""


def get_json(base_url, path, timeout):
    """GET base_url+path and decode a JSON object; raise ProbeError saying why not."""
    request = urllib.request.Request(
        base_url + path,
        headers={"Accept": "application/json", "User-Agent": "deepchat-observability-probe"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise ProbeError("%s: HTTP %d %s" % (path, exc.code, exc.reason))
    except urllib.error.URLError as exc:
        raise ProbeError("%s: %s" % (path, describe(exc.reason)))
    except (socket.timeout, TimeoutError):
        raise ProbeError("%s: timed out after %ss" % (path, format_number(timeout)))
    except OSError as exc:
        raise ProbeError("%s: %s" % (path, describe(exc)))
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProbeError("%s: answer is not JSON: %r" % (path, body[:80]))
    if not isinstance(data, dict):
        raise ProbeError("%s: answer is not a JSON object" % path)
    return data


def describe(reason):
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, BaseException):
        text = str(reason) or type(reason).__name__
        return "%s: %s" % (type(reason).__name__, text) if type(reason).__name__ not in text else text
    return str(reason)


def format_number(value):
    return ("%f" % value).rstrip("0").rstrip(".")


RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$",
    re.IGNORECASE,
)


def parse_time(text):
    """RFC 3339 with up to nanoseconds (Go writes 9 digits) as an aware datetime, or None."""
    match = RFC3339.match(text or "")
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    micros = int((match.group(7) or "0")[:6].ljust(6, "0"))
    zone = match.group(8).upper()
    if zone == "Z":
        tz = datetime.timezone.utc
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        return datetime.datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    except ValueError:
        return None


def as_int(value):
    """Byte counts as integers; anything missing or malformed counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value == value:
        return max(int(value), 0)
    return 0


def summarize_models(ps):
    models = ps.get("models")
    if models is None:
        models = []
    if not isinstance(models, list):
        raise ProbeError("/api/ps: \"models\" is not a list")
    entries = []
    earliest = None
    for model in models:
        if not isinstance(model, dict):
            continue
        name = str(model.get("name") or model.get("model") or "")
        expires_at = model.get("expires_at") if isinstance(model.get("expires_at"), str) else ""
        entries.append(
            {
                "name": name,
                # No GPU: Ollama reports size_vram 0, which is data, not an error.
                "size_vram": as_int(model.get("size_vram")),
                "size": as_int(model.get("size")),
                "expires_at": expires_at,
            }
        )
        moment = parse_time(expires_at)
        # Compare instants, not strings: models may report different offsets.
        if moment is not None and (earliest is None or moment < earliest[0]):
            earliest = (moment, expires_at)
    return {
        "models_loaded": len(entries),
        "model_names": ",".join(entry["name"] for entry in entries),
        "size_vram_bytes": sum(entry["size_vram"] for entry in entries),
        "size_bytes": sum(entry["size"] for entry in entries),
        "expires_at": earliest[1] if earliest else "",
        "models": [
            {"name": entry["name"], "size_vram": entry["size_vram"], "expires_at": entry["expires_at"]}
            for entry in entries
        ],
    }


def empty_result():
    return {
        "probe": "ollama",
        "up": 0,
        "latency_ms": 0.0,
        "version": "",
        "models_loaded": 0,
        "model_names": "",
        "size_vram_bytes": 0,
        "size_bytes": 0,
        "expires_at": "",
        "error": "",
        "models": [],
    }


def probe_once(base_url, timeout):
    """One probe: never raises (short of KeyboardInterrupt/SystemExit)."""
    result = empty_result()
    started = time.monotonic()
    try:
        version = get_json(base_url, "/api/version", timeout)
        result["latency_ms"] = round((time.monotonic() - started) * 1000.0, 3)
        result["up"] = 1
        result["version"] = str(version.get("version") or "")
        # Ollama answered; a failing /api/ps is reported but does not make it down.
        result.update(summarize_models(get_json(base_url, "/api/ps", timeout)))
    except ProbeError as exc:
        if not result["up"]:
            result["latency_ms"] = round((time.monotonic() - started) * 1000.0, 3)
        result["error"] = str(exc)[:MAX_ERROR_CHARS]
    except Exception as exc:  # the probe must never crash
        if not result["up"]:
            result["latency_ms"] = round((time.monotonic() - started) * 1000.0, 3)
        result["error"] = ("probe failed: %s: %s" % (type(exc).__name__, exc))[:MAX_ERROR_CHARS]
    return result


def emit(result):
    try:
        line = json.dumps(result, separators=(",", ":"), sort_keys=False)
    except Exception as exc:  # should not happen; still one line per probe
        line = json.dumps(dict(empty_result(), error="cannot encode result: %s" % exc))
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Probe Ollama's /api/version and /api/ps; one JSON line per probe.")
    parser.add_argument("--url", default=os.environ.get("OLLAMA_URL", DEFAULT_URL))
    parser.add_argument("--interval", default=os.environ.get("PROBE_INTERVAL_SECONDS", "15"))
    parser.add_argument("--timeout", default=os.environ.get("PROBE_TIMEOUT_SECONDS", "5"))
    parser.add_argument("--once", action="store_true", help="probe once and exit")
    args = parser.parse_args(argv)
    if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", args.url):
        raise SystemExit("ollama_probe: OLLAMA_URL must be an http(s) base URL such as %s, got %r" % (DEFAULT_URL, args.url))
    args.url = args.url.rstrip("/")
    args.interval = probe_loop.positive_number("ollama_probe", "PROBE_INTERVAL_SECONDS", args.interval)
    args.timeout = probe_loop.positive_number("ollama_probe", "PROBE_TIMEOUT_SECONDS", args.timeout)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return probe_loop.run(lambda: emit(probe_once(args.url, args.timeout)), args.interval, args.once)


if __name__ == "__main__":
    probe_loop.exit_with(main)
