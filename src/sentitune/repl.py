"""`sentitune predict --interactive`: type a text, see its label and calibrated confidence.

Commands start with ``:`` (see ``HELP``); anything else is a text to classify. Line editing and
arrow-key history come from the stdlib ``readline`` when standard input is a terminal; the history
is kept in ``<SENTITUNE_CACHE>/repl_history`` between sessions. A user error (a bad model name, an
unreadable model) prints one line and the loop goes on with the model it had.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table

import sentitune
from sentitune.errors import SentituneError
from sentitune.presets import PRESETS

HELP = """\
type a text to classify it, or a command:
  :model NAME_OR_PATH  switch model: a preset ({presets}), a model directory or a hub id
  :model               show the current model
  :json                toggle raw JSON output
  :help                this help
  :quit                leave (Ctrl-D too)"""
HISTORY_FILE = "repl_history"
HISTORY_LENGTH = 1000


def confidence_row(record: dict) -> Table:
    """LABEL  [bar of the calibrated confidence]  0.973"""
    colour = "green" if record["label"] == "POSITIVE" else "red"
    row = Table.grid(padding=(0, 2))
    row.add_row(
        f"[bold {colour}]{record['label']:<8}[/]",
        ProgressBar(total=1.0, completed=record["confidence"], width=30, complete_style=colour),
        f"{record['confidence']:.3f}",
    )
    return row


class Repl:
    """One interactive session: the current model, the output mode, and what each line does.

    Results go to ``console``; notes and errors to ``notes`` (default: the same), so piped JSON
    output stays clean when ``notes`` is stderr."""

    def __init__(self, model_path: str | Path | None, console: Console, notes: Console | None = None):
        self.console, self.notes = console, notes or console
        self.as_json = False
        self.model_name = str(model_path) if model_path is not None else "default"
        self.model = sentitune.load(self.model_name)

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the session should end."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith(":"):
            self.classify(line)
            return True
        command, _, argument = line.partition(" ")
        if command in (":quit", ":q", ":exit"):
            return False
        if command == ":json":
            self.as_json = not self.as_json
            self.notes.print(f"json output {'on' if self.as_json else 'off'}", highlight=False)
        elif command == ":model":
            self.switch(argument.strip())
        elif command == ":help":
            print(HELP.format(presets=", ".join(PRESETS)), file=self.console.file, flush=True)  # never wrapped
        else:
            self.error(f"unknown command {command}; :help lists them")
        return True

    def classify(self, text: str) -> None:
        try:
            record = self.model.predict_records([text])[0]
        except SentituneError as exc:
            self.error(str(exc))
            return
        if warning := self.model.unreadable_warning([text]):  # e.g. Chinese text on an English model
            print(f"warning: {warning}", file=self.notes.file, flush=True)
        if self.as_json:  # plain print: rich would highlight and wrap the JSON
            print(json.dumps(record, ensure_ascii=False), file=self.console.file, flush=True)
        else:
            self.console.print(confidence_row(record))

    def switch(self, name: str) -> None:
        if not name:
            self.notes.print(f"model: {self.model_name}", highlight=False)
            return
        try:
            self.model = sentitune.load(name)
        except SentituneError as exc:
            self.error(f"{exc} (presets: {', '.join(PRESETS)}); still using {self.model_name}")
            return
        self.model_name = name
        self.notes.print(f"model: {name} ({self.model.meta.method})", highlight=False)

    def error(self, message: str) -> None:
        # one physical line whatever the terminal width: plain print, as the CLI's own errors
        print(f"error: {message}", file=self.notes.file, flush=True)

    def run(self, read: Callable[[str], str] = input, prompt: str = "> ") -> int:
        """Read lines until :quit or end of input; Ctrl-C drops the line being typed. Returns 0."""
        while True:
            try:
                line = read(prompt)
            except EOFError:
                self.console.print()
                return 0
            except KeyboardInterrupt:
                self.console.print()
                continue
            if not self.handle(line):
                return 0


def _history(cache_dir: Path) -> Callable[[], None] | None:
    """Load the saved readline history; return what saves it (None: no readline here)."""
    try:
        import readline
    except ImportError:  # Windows without pyreadline: no history, the loop still works
        return None
    path = cache_dir / HISTORY_FILE
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(path)
    except OSError:  # first session, or an unreadable cache: start empty
        pass

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(path)
        except OSError:  # a read-only cache loses the history, never the session's exit status
            pass

    return save


def run_repl(model_path: str | Path | None = None) -> int:
    """The interactive loop on this process's terminal; the exit status (0)."""
    from sentitune.config import runtime_settings

    notes = Console(stderr=True)
    tty = sys.stdin.isatty()
    save_history = _history(runtime_settings().cache_dir) if tty else None
    notes.print("loading model ...", style="dim")
    repl = Repl(model_path, Console(), notes)
    notes.print(f"model: {repl.model_name} ({repl.model.meta.method}); :help for commands", highlight=False)
    try:
        return repl.run(prompt="> " if tty else "")
    finally:
        if save_history is not None:
            save_history()
