"""The kernel's Interrupt reaching the chat panels: their replies stream on worker threads, which
no signal reaches, so SIGINT's handlers in a kernel also stop every panel's reply."""

from __future__ import annotations

import functools
import signal
import threading
import weakref

_PANELS: weakref.WeakSet = weakref.WeakSet()  # every panel of this kernel: a kernel interrupt stops them all


def _interrupted(signum, frame, previous) -> None:
    """SIGINT (the kernel's Interrupt): stop every panel's reply, then what the handler did before."""
    for panel in list(_PANELS):
        panel.stop()
    if callable(previous):
        previous(signum, frame)


def _ours(handler) -> bool:
    return isinstance(handler, functools.partial) and handler.func is _interrupted


def watch_interrupts(shell, panel) -> None:
    """Make the kernel's Interrupt stop the panels' replies too (their threads get no signal).

    ipykernel ignores SIGINT between requests and puts ``default_int_handler`` in place while one
    runs, restoring the idle one after (``Kernel.pre_handler_hook``/``saved_sigint_handler``): both
    are wrapped, the running one at each cell (``pre_run_cell``). Only ever from the main thread."""
    _PANELS.add(panel)
    kernel = getattr(shell, "kernel", None)
    idle = getattr(kernel, "saved_sigint_handler", None)
    if kernel is None or idle is None or threading.current_thread() is not threading.main_thread():
        return
    if not _ours(idle):
        kernel.saved_sigint_handler = functools.partial(_interrupted, previous=idle)
    _wrap_running()
    if _wrap_running not in shell.events.callbacks["pre_run_cell"]:
        shell.events.register("pre_run_cell", _wrap_running)


def _wrap_running(*_info) -> None:
    current = signal.getsignal(signal.SIGINT)
    if not _ours(current):
        signal.signal(signal.SIGINT, functools.partial(_interrupted, previous=current))
