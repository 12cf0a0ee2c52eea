"""What a chat panel's page asks of the kernel (``{"action": ...}`` messages from js/chat.js): send,
stop, approve a tool call, regenerate, edit & resend, switch branch, accept a partial, new and
forked conversations, and the sync of a page that has just drawn the panel."""

from __future__ import annotations

from IPython.core.error import UsageError

from elk_jupyter.errors import ElkError
from elk_jupyter.front import chat_restore, chat_view


class PanelActions:
    """Mixed into ``ChatPanel``: one ``_do_<action>`` method per message the page sends."""

    def _on_message(self, _widget, content, _buffers) -> None:
        if not isinstance(content, dict):
            return
        action = getattr(self, f"_do_{content.get('action')}", None)
        if action is None:
            return
        try:
            action(content)
        except (ElkError, UsageError, ValueError) as err:
            self.notice = str(err).splitlines()[0] if str(err) else type(err).__name__

    def _do_send(self, content) -> None:
        self.send(str(content.get("text", "")))

    def _do_stop(self, _content) -> None:
        self.stop()

    def _do_sync(self, content) -> None:
        """A page drew this panel (first, or after a reload): what it lacks. ``have``: the turns its
        cell's outputs hold (the page writes the others); ``shown``: the transcript it drew."""
        have = content.get("have")
        have = {i for i in have if isinstance(i, str)} if isinstance(have, list) else None
        index = self.runner.conversations.index
        missing = [index[i] for i in self._kept if have is not None and i not in have and i in index]
        if missing and self.keeper:
            self.keep([bundle for turn in missing for bundle in chat_restore.bundles(turn, index.get)])
        if content.get("shown") != [entry["id"] for entry in self.transcript]:
            self.post({"kind": "transcript", "at": 0, "entries": self.transcript})

    def _do_regenerate(self, content) -> None:
        turn = self._turn_of(content)
        self.send(turn.prompt, parent=turn.parent)

    def _do_edit(self, content) -> None:
        turn = self._turn_of(content)
        self.send(str(content.get("text", "")), parent=turn.parent)

    def _do_branch(self, content) -> None:
        """Show another sibling's branch (the original of an edit or regenerate): its newest end."""
        conversation = self.runner.conversations.conversation(self.conversation)
        conversation.accept(chat_view.newest_leaf(conversation, self._turn_of(content).id))
        self.refresh()

    def _do_accept(self, content) -> None:
        """Let an interrupted reply join the context (``%elk accept``)."""
        self.runner.conversations.conversation(self.conversation).accept(self._turn_of(content).id)
        self.refresh()

    def _do_new(self, content) -> None:
        name = chat_view.conversation_name(content.get("name"))
        self.runner.conversations.conversation(name)
        self.conversation = name

    def _do_fork(self, content) -> None:
        """A new conversation continuing this one up to the turn (``%elk fork``), named after both
        unless a name is given."""
        turn = self._turn_of(content)
        name = chat_view.conversation_name(content.get("name") or f"{self.conversation}@{turn.short_id}")
        taken, base, n = self.runner.conversations.conversations, name, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        self.runner.conversations.fork(self.conversation, name, turn.id)
        self.conversation = name

    def _turn_of(self, content):
        turn_id = content.get("turn")
        index = self.runner.conversations.index
        if not isinstance(turn_id, str) or turn_id not in index:
            raise ValueError("that turn is not in this kernel (restart or reset?)")
        return index[turn_id]

    def _do_approve(self, content) -> None:
        self._approved = content.get("run") is True
        self._answer.set()
