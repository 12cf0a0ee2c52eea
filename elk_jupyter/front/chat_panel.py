"""ChatPanel: the interactive chat panel (``%elk panel``, ``elk_jupyter.ChatPanel``), a third
front-end of the one run path.

A panel turn is the ``Ask`` its "to cell" text would build (``ElkMagics.ask_for``), run by the
magics' own ``TurnRunner`` over the kernel's conversations, on a worker thread so the kernel stays
free; one turn at a time per conversation. Stop ends the stream the way a kernel interrupt ends a
cell's: the partial reply is kept, marked interrupted. Each finished turn is published into the
panel cell's outputs as a cell turn's bundle and record (``chat_view``), so the saved notebook
holds the whole conversation and no widget is needed to read it.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import replace

from IPython import get_ipython

from elk_jupyter.display.chat_widget import ChatWidget, reference
from elk_jupyter.errors import ElkError
from elk_jupyter.front import chat_restore, chat_view
from elk_jupyter.front.chat_actions import PanelActions
from elk_jupyter.front.interrupts import watch_interrupts
from elk_jupyter.gateway.dialects import NAMES

STOP_GRACE = 0.3  # seconds a stopped reply has to reach its next event before its connection is shut
EFFORTS = ("", "none", "minimal", "low", "medium", "high", "xhigh")


class Busy(ElkError):
    """A second turn asked while one streams in the same conversation."""


def magics_of(shell):
    """The ElkMagics registered on ``shell``, loading the extension if it is not yet."""
    registry = shell.magics_manager.registry
    if "ElkMagics" not in registry:
        shell.extension_manager.load_extension("elk_jupyter")
    return registry["ElkMagics"]


class ChatPanel(PanelActions, ChatWidget):
    """A chat box over one of the notebook's conversations; ``send("text")`` sends from code.

    >>> panel = ChatPanel(conversation="review", model="gpt-5.5")  # doctest: +SKIP
    >>> panel.send("Summarise SSE in one line").result()          # doctest: +SKIP
    """

    def __init__(self, conversation: str | None = None, model: str | None = None, endpoint: str = "chat", shell=None):
        if endpoint not in NAMES:
            raise ValueError(f"endpoint must be one of {', '.join(NAMES)}, got {endpoint!r}")
        self._shell = shell or get_ipython()
        if self._shell is None:
            raise ElkError("ChatPanel needs an IPython kernel (run it in a notebook)")
        self._magics = magics_of(self._shell)
        super().__init__(
            conversation=conversation or self._magics.default_conversation,
            model=model or "",
            endpoint=endpoint,
            endpoints=list(NAMES),
            efforts=list(EFFORTS),
        )
        self.runner = self._magics.runner
        self._parent = dict(getattr(self._shell, "parent_header", None) or {})  # the panel cell, for outputs
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._answer, self._approved = threading.Event(), False  # a tool call's Run / Decline
        self._views: dict = {}  # turn id -> its VIEW (as this panel streamed it, its context note included)
        self._sent_with: dict = {}  # turn id -> the controls it was sent with (its "to cell" text)
        self._kept: list[str] = []  # turns whose outputs the panel's cell holds (restored, then made here)
        self._drawing = threading.Lock()  # the worker and the kernel's thread both redraw
        self._watching = False  # showing a turn of this conversation streaming elsewhere (a cell)
        self.system = self.runner.conversations.conversation(self.conversation).system or ""
        self.on_msg(self._on_message)
        self.observe(self._switched, names=["conversation"])
        self._shell.events.register("post_run_cell", self._after_cell)
        self._cell = chat_restore.panel_cell(self._parent)
        self._keep(chat_restore.restore(self.runner, self._cell))
        watch_interrupts(self._shell, self)
        for other in list(self.runner.state.watchers):  # the panel this cell showed before it ran again
            if isinstance(other, ChatPanel) and self._cell is not None and other._cell == self._cell:
                other.close()
        self.runner.state.watchers.add(self)
        threading.Thread(target=self._list_models, daemon=True, name="elk-panel-models").start()
        self.refresh()

    # -- sending
    def send(self, text: str, *, parent: str | None | bool = False) -> Future:
        """Send ``text`` as the next turn; the future gives the runner's outcome (or its error).

        ``parent``: continue from that turn instead of the context's end (regenerate, edit);
        ``None``: as the first turn. Raises ``Busy`` while a turn streams in this conversation."""
        name = self.conversation
        lock = self.runner.state.turn_lock(name)
        if not lock.acquire(blocking=False):
            raise Busy(
                f"conversation {name!r} is busy: a reply is streaming there, here or in a cell (Stop it or wait)"
            )
        try:
            controls = self._controls()
            line = chat_view.cell_line(controls)
            ask, _ = self._magics.ask_for(self.endpoint, line + (" --new" if parent is None else ""), text)
            # A panel turn belongs to no cell (none replaces another); --approve asks in the panel.
            ask = replace(ask, cell=(None, None), approve=self._approve if ask.approve else None)
            if parent:
                self.runner.conversations.conversation(name).accept(parent)
        except BaseException:
            lock.release()
            raise
        future: Future = Future()
        self._stop.clear()
        with self.hold_sync():
            self.busy, self.notice, self.last_prompt = True, "", text
        self._worker = threading.Thread(
            target=self._turn, args=(ask, controls, lock, future), daemon=True, name="elk-panel"
        )
        self._worker.start()
        return future

    def stop(self) -> None:
        """End the streaming reply now; it is kept, marked interrupted. The reply stops at its next
        event; a server that sends nothing more has its connection shut after ``STOP_GRACE`` s."""
        self._stop.set()
        worker = self._worker
        if worker is not None and worker.is_alive():
            from elk_jupyter.gateway.transport import abort  # loaded already: the worker is streaming

            timer = threading.Timer(STOP_GRACE, lambda: worker.is_alive() and abort(worker.ident))
            timer.daemon = True
            timer.start()

    def _turn(self, ask, controls, lock, future: Future) -> None:
        """The worker: run the turn, hand the panel back (not busy, transcript drawn), then settle
        ``future``, so whoever waits on it sees the panel as the turn left it."""
        outcome = failure = None
        try:
            frontend = chat_view.PanelFrontend(self, ask.prompt, self._stop, controls)
            outcome = self.runner.run(ask, frontend, held=True)
        except ElkError as err:
            failure, self.notice = err, str(err)
        except BaseException as err:  # noqa: BLE001 - a worker thread must always hand back the panel
            failure, self.notice = err, f"{type(err).__name__}: the turn ended unexpectedly"
        finally:
            lock.release()
            with self.hold_sync():
                self.live, self.busy = "", False
                self.refresh()
        if failure is not None:
            future.set_exception(failure)
        else:
            future.set_result(outcome)

    # -- what the turn view calls
    def publish(self, data: dict, metadata: dict) -> None:
        chat_view.publish(self._shell, self._parent, data, metadata)

    def keep(self, outputs: list[tuple[dict, dict]]) -> None:
        """A finished turn's outputs into the panel's cell. Where the page found that cell
        (``keeper``: JupyterLab, Notebook 7) the page writes them, so they land after a reload
        too; elsewhere they go out with the cell's own request header (``chat_view.publish``)."""
        if self.keeper:
            self.post({"kind": "keep", "outputs": [{"data": d, "metadata": m} for d, m in outputs]})
        else:
            for data, metadata in outputs:
                self.publish(data, metadata)

    def finished(self, turn_id: str, view: dict, controls: dict) -> None:
        self._views[turn_id], self._sent_with[turn_id] = view, controls
        self._kept.append(turn_id)
        chat_restore.remember(self.runner, self._cell, turn_id)

    def turn_event(self, event: str, conversation: str, view=None, prompt: str = "") -> None:
        """``KernelState.announce``: a turn of ``conversation`` opened or ended in a cell or another
        panel. This panel shows it streaming (the same live widget) when it shows that conversation."""
        if conversation != self.conversation:
            return
        if event == "opened":
            widget = getattr(view, "live_widget", None)
            if widget is None or getattr(getattr(view, "frontend", None), "panel", None) is self:
                return  # a text view, or this panel's own turn
            self._watching = True
            with self.hold_sync():
                self.live_prompt, self.live, self.busy = prompt, reference(widget), True
        elif self._watching:
            self._watching = False
            with self.hold_sync():
                self.live, self.busy = "", False
                self.refresh()

    def _keep(self, restored: tuple[list, str]) -> None:
        """This cell run again: its turns go back into its outputs once it has shown the panel."""
        turns, problem = restored
        self.notice = problem
        self._kept = [turn.id for turn in turns]

        def publish(*_info) -> None:
            self._shell.events.unregister("post_run_cell", publish)
            for turn in turns:
                for data, metadata in chat_restore.bundles(turn, self.runner.conversations.index.get):
                    self.publish(data, metadata)

        if turns:
            self._shell.events.register("post_run_cell", publish)

    # -- the transcript and the controls
    def refresh(self) -> None:
        conversations = self.runner.conversations
        with self._drawing, self.hold_sync():
            conversation = conversations.conversation(self.conversation)
            self.conversations = sorted(set(conversations.conversations) | {self.conversation})
            self._show(chat_view.transcript(conversation, self._views, self._sent_with))

    def _show(self, entries: list[dict]) -> None:
        """Send the transcript's changed end only (``kind: transcript``), so a conversation's bytes
        on the comm grow linearly with it: a new turn sends that turn. The trait's list is edited in
        place, unsent, so a page that asks for the widget's state (a reload) still gets all of it."""
        shown = self.transcript
        at = 0
        while at < min(len(shown), len(entries)) and shown[at] == entries[at]:
            at += 1
        if at == len(shown) == len(entries):
            return
        if at == 0:  # another conversation, or the first turn: the whole list is the change
            self.transcript = entries
            return
        shown[at:] = entries[at:]
        self.post({"kind": "transcript", "at": at, "entries": entries[at:]})

    def _switched(self, _change=None) -> None:
        if self._watching:  # the turn streaming elsewhere is in the conversation left
            self._watching = False
            self.live, self.busy = "", False
        self.system = self.runner.conversations.conversation(self.conversation).system or ""
        self.refresh()

    def _approve(self, call) -> bool:
        """Ask in the panel before a tool call runs: Run or Decline (Stop declines)."""
        self._answer.clear()
        self._approved = False
        self.approval = {"name": call.name, "arguments": call.arguments[:4000]}
        while not self._answer.wait(0.1) and not self._stop.is_set():
            pass
        self.approval = None
        return self._approved

    def _controls(self) -> dict:
        names = ("conversation", "model", "temperature", "max_tokens", "reasoning_effort", "system", "tools")
        names += ("attach_images", "attach_files")
        return {name: getattr(self, name) for name in names}

    def _list_models(self) -> None:
        try:
            ids = [m.get("id") for m in self.runner.client.copy().models() if isinstance(m, dict)]
        except Exception:  # noqa: BLE001 - no list: the model box takes free text
            return
        self.models = sorted({i for i in ids if isinstance(i, str) and i.isprintable() and len(i) <= 200})

    def _after_cell(self, _result=None) -> None:
        """A %%chat -c NAME cell (or %elk reset, fork, accept, restore) changed the conversations."""
        if not self.busy:
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        self.runner.state.watchers.discard(self)
        try:
            self._shell.events.unregister("post_run_cell", self._after_cell)
        except ValueError:
            pass
        super().close()
