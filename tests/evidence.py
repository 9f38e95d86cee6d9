"""Skips that CI does not accept.

A root-only, corpus or package test that skips proves nothing, and a green run made of skips
says the product works when nothing checked it. Outside CI a developer may lack root, the
corpus or a clean system: those tests skip, with the reason. Under CI (CI=true in the
environment) the same missing precondition is a failure that names it.

    from evidence import requires, skip
    @requires(os.geteuid() == 0, "mounting a tmpfs needs root")
    class DiskFullTest(unittest.TestCase): ...
    skip("a ckptwatch package is installed here")   # inside a test or setUpClass
"""

import functools
import os
import unittest

UNDER_CI = os.environ.get("CI") == "true"


def _refusal(reason):
    return f"CI=true and this test would skip ({reason}): CI does not pass on missing evidence"


def skip(reason):
    """Skips the running test (or class, from setUpClass); under CI, fails it instead."""
    if UNDER_CI:
        raise AssertionError(_refusal(reason))
    raise unittest.SkipTest(reason)


def requires(condition, reason):
    """Decorator for a test method or class: runs it when `condition` holds; otherwise skips it
    with `reason`, or under CI makes it fail with `reason`."""

    def decorate(obj):
        if condition:
            return obj
        if not UNDER_CI:
            return unittest.skip(reason)(obj)
        if isinstance(obj, type):
            # setUpClass is where such classes do their root-only work: fail before it.
            def refuse_class(cls):
                raise AssertionError(_refusal(reason))

            obj.setUpClass = classmethod(refuse_class)
            return obj

        @functools.wraps(obj)
        def refuse(self, *args, **kwargs):
            self.fail(_refusal(reason))

        return refuse

    return decorate
