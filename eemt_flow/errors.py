"""User-facing errors: one clear line, a non-zero exit code, never a traceback."""


class UserError(Exception):
    """A mistake in the user's input or environment that the user can fix.

    The message is one line that says what is wrong and what to do. The command line
    prints it and exits with :data:`EXIT_USAGE`; the web service turns it into a 4xx.
    """


#: Exit code for user mistakes (click uses 2 for usage errors too).
EXIT_USAGE = 2
