"""The test tiers are given by tests/conftest.py, not by hand: a test that starts a process is ``kernel``,
tests/e2e is ``browser``, the rest ``unit``; and a unit test that starts a process anyway is caught."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import conftest
from tests.conftest import _starts_processes


def uses_a_kernel():
    from tests.kernel import Kernel  # imported inside a helper, as tests often do

    return Kernel


def calls_a_helper_that_uses_a_kernel():
    return uses_a_kernel()


def stays_in_process():
    return sorted([3, 1, 2])


@pytest.mark.unit  # it only reads code (which names a kernel helper: that alone would make it kernel)
def test_what_starts_a_process_is_found_through_helpers_and_imports():
    seen: dict = {}
    assert _starts_processes(calls_a_helper_that_uses_a_kernel, seen)
    assert _starts_processes(conftest.llmock_server, seen)  # Popen, through a contextmanager
    assert not _starts_processes(stays_in_process, seen)
    assert not _starts_processes(conftest.gateway, seen)  # an in-thread HTTP server


def test_every_collected_test_has_exactly_one_tier(request):
    tiers = {}
    for item in request.session.items:
        marks = [tier for tier in conftest.TIERS if item.get_closest_marker(tier)]
        assert len(marks) == 1, f"{item.nodeid}: {marks}"
        tiers[item.nodeid] = marks[0]
    for nodeid, tier in tiers.items():
        if nodeid.startswith("tests/e2e/"):
            assert tier == "browser", nodeid
        elif nodeid.startswith(("tests/test_faults.py", "tests/test_history_kernel.py")):
            assert tier == "kernel", nodeid  # real kernels over ZMQ
        elif nodeid.startswith(("tests/test_tiers.py", "tests/test_layers.py", "tests/test_record_schema.py")):
            assert tier == "unit", nodeid


@pytest.mark.unit  # an explicit tier wins (its code names subprocess, which alone would make it kernel)
def test_a_unit_test_that_starts_a_process_is_caught(request):
    assert request.node.get_closest_marker("kernel") is None
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    caught, conftest._UNIT.started[:] = list(conftest._UNIT.started), []  # taken back: this one is on purpose
    assert len(caught) == 1 and sys.executable in caught[0]
