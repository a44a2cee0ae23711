"""User-facing errors: one clear line, a non-zero exit code, never a traceback."""


class UserError(Exception):
    """A mistake in the user's input or environment that the user can fix.

    The message is one line that says what is wrong and what to do. The command line
    prints it and exits with :data:`EXIT_USAGE`; the web service turns it into a 4xx.
    Control characters that user text may bring into it are shown escaped, so it stays one line.
    """

    def __init__(self, message: str):
        super().__init__(one_line(str(message)))


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``, ``\\x00``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def shown(text: object, max_chars: int = 60) -> str:
    """User text quoted for a message: ``'...'``, one line, at most ``max_chars`` characters."""
    body = one_line(str(text))
    if len(body) > max_chars:
        body = body[: max_chars - 1] + "…"
    return f"'{body}'"


#: Exit code for user mistakes (click uses 2 for usage errors too).
EXIT_USAGE = 2
