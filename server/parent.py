"""Exit when a given parent process is gone, so a killed notebook kernel leaves no server behind."""

from __future__ import annotations

import os
import select
import signal
import threading


def alive(pid: int) -> bool:
    """Return True while process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def watch(pid: int, interval: float = 0.5) -> threading.Thread:
    """Send SIGTERM to this process (a graceful stop) once process ``pid`` has exited.

    Uses a pidfd where the platform has one (woken the moment the parent exits), else polls
    every ``interval`` seconds.

    Raises
    ------
    ValueError
        If no process ``pid`` exists now.
    """
    if not alive(pid):
        raise ValueError(f"--parent-pid {pid}: no such process. Pass the pid of a running "
                         f"process (os.getpid() of the caller).")

    def wait() -> None:
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll()
            os.close(fd)
        else:
            while alive(pid):
                threading.Event().wait(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=wait, name="parent-watch", daemon=True)
    thread.start()
    return thread
