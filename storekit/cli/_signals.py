"""SIGTERM as Ctrl-C, for commands that start work worth unwinding.

Importing `signal` builds an enum of every signal, a few ms of a short command's start-up; `main`
installs the handler before typer's commands, and a plain `storekit build` line only once it has
something to build (`storekit.cli._build`): a build of what is built reads and links, like Nix's,
and ends at once when terminated.
"""

from __future__ import annotations


def terminate_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C: running builds are cancelled (their sandboxes killed), temporary
    files removed, locks released, instead of the process vanishing and leaving builders running."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, interrupt)
