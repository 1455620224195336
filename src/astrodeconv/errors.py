"""Exceptions raised for bad user input."""


class InputError(ValueError):
    """A user-supplied array, file or parameter is unusable.

    The message names the bad value, what was expected and, where there is one, the fix.
    The command line turns it into a one-line message and exit code 2.
    """
