"""Refusals a person can act on: the message says why and what to do; the API adds a stable code."""


class Refused(Exception):
    """A request that is well-formed but not allowed now. Pages show the message; the API answers 409."""

    code = "refused"
