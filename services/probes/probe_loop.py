"""The loop both probes share: read, print the lines, sleep until the next slot, and stop
cleanly on SIGTERM. Uploaded beside each probe script into its container, so an import finds it
(Python puts the script's own directory first on sys.path). Python stdlib only."""

import signal
import sys
import time


def positive_number(prog, name, text):
    """A positive number of seconds from a setting, or exit naming the setting and the value."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = -1.0
    if not value > 0:
        raise SystemExit("%s: %s must be a positive number of seconds, got %r" % (prog, name, text))
    return value


def _stop(signum, _frame):
    # As PID 1 in its container, Python would ignore SIGTERM without a handler.
    raise SystemExit(0)


def run(read_and_emit, interval, once):
    """Calls read_and_emit() once, or every `interval` seconds until SIGTERM."""
    signal.signal(signal.SIGTERM, _stop)
    if once:
        read_and_emit()
        return 0
    next_run = time.monotonic()
    while True:
        try:
            read_and_emit()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # e.g. a closed stdout: keep going, the next write may work
            pass
        next_run += interval
        delay = next_run - time.monotonic()
        if delay < 0:  # a slow reading: start the schedule again from now
            next_run = time.monotonic()
            delay = 0
        time.sleep(delay)


def exit_with(main):
    """sys.exit(main()), with Ctrl-C as a clean exit."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
