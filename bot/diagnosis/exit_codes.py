"""Container exit codes, explained in words a developer on call can act on."""

from __future__ import annotations

import signal

_PLAIN: dict[int, str] = {
    0: "exited normally (code 0); the process finished, which a long-running server should not do",
    1: "exited with code 1: a general application error; the logs should say which",
    2: "exited with code 2: a usage error, often a bad command-line flag or argument",
    126: "exited with code 126: the command was found but could not be executed (permissions or format)",
    127: "exited with code 127: the command was not found in the image (check command/args and the image)",
    128: "exited with code 128: invalid exit argument",
}
_SIGNALS: dict[int, str] = {
    signal.SIGKILL: "killed with SIGKILL",
    signal.SIGTERM: "stopped with SIGTERM (asked to shut down, e.g. a failed liveness probe or a rollout)",
    signal.SIGSEGV: "crashed with SIGSEGV (segmentation fault: invalid memory access in the program)",
    signal.SIGABRT: "aborted with SIGABRT (the program called abort, often a failed assertion or panic)",
    signal.SIGINT: "interrupted with SIGINT",
    signal.SIGHUP: "hung up with SIGHUP",
    signal.SIGBUS: "crashed with SIGBUS (bus error: bad memory access)",
    signal.SIGILL: "crashed with SIGILL (illegal instruction: wrong CPU architecture for the image?)",
    signal.SIGPIPE: "killed with SIGPIPE (wrote to a closed pipe or socket)",
}


def explain_exit_code(code: int | None, reason: str | None = None) -> str:
    """One phrase for an exit code; `reason` is the kubelet's (OOMKilled, Error, Completed)."""
    if code is None:
        return f"terminated ({reason})" if reason else "terminated"
    if reason == "OOMKilled":
        return f"exited with code {code}: killed (SIGKILL) for using more memory than its limit (OOMKilled)"
    if code in _PLAIN:
        return _PLAIN[code]
    if 128 < code < 160:
        number = code - 128
        try:
            what = _SIGNALS.get(signal.Signals(number)) or f"killed by signal {signal.Signals(number).name}"
        except ValueError:
            what = f"killed by signal {number}"
        extra = " — often the kernel's OOM killer or a forced stop" if number == signal.SIGKILL else ""
        return f"exited with code {code}: {what}{extra}"
    return f"exited with code {code}: an application-specific error; the logs should say which"
