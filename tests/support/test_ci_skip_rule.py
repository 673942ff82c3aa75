"""The CI rule holds for every skip: under CI=true a skipped test or module fails, however it was skipped.

Each case runs a small pytest session (pytester) with only the services plugin loaded, once outside CI (the skip
stays a skip, with its reason) and once under CI=true (it becomes a failure naming the rule).
"""

from __future__ import annotations

import pytest

PLUGIN = ("-p", "tests.support.services", "-p", "no:cacheprovider")

SKIPPING_FIXTURE = """
import pytest

@pytest.fixture
def own_redis():
    pytest.skip("redis-server is not installed")  # a fixture that bypasses require_service

@pytest.mark.redis
def test_uses_own_redis(own_redis):
    assert True

def test_plain_skip():
    pytest.skip("not today")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    assert False

@pytest.mark.ci_may_skip("only meaningful on a machine without the service")
def test_allowed_to_skip():
    pytest.skip("allowed")

def test_runs():
    assert True
"""

MODULE_LEVEL_SKIP = """
import pytest

expect = pytest.importorskip("a_module_that_is_not_installed").expect

def test_never_collected():
    assert True
"""


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str) -> pytest.RunResult:
    monkeypatch.setenv("CI", ci)
    return pytester.runpytest_inprocess(*PLUGIN, "-rA")


def test_outside_ci_skips_stay_skips(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    pytester.makepyfile(test_skips=SKIPPING_FIXTURE)
    result = run(pytester, monkeypatch, "")
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    result.stdout.fnmatch_lines(["*redis-server is not installed*"])


def test_under_ci_every_skip_fails_except_xfail_and_marked_ones(pytester: pytest.Pytester, monkeypatch):
    pytester.makepyfile(test_skips=SKIPPING_FIXTURE)
    result = run(pytester, monkeypatch, "true")
    # The fixture's skip happens in setup: a failed setup is an error.
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_uses_own_redis was skipped, and under CI=true no test may skip*redis-server is not installed*",
            "*test_plain_skip was skipped, and under CI=true no test may skip*not today*",
        ]
    )
    assert result.ret != 0


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_under_ci_a_module_level_importorskip_fails_the_run(pytester: pytest.Pytester, monkeypatch, ci):
    pytester.makepyfile(test_module_skip=MODULE_LEVEL_SKIP)
    result = run(pytester, monkeypatch, ci)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*was skipped while collecting*a_module_that_is_not_installed*"])
    assert result.ret != 0


def test_outside_ci_a_module_level_importorskip_skips(pytester: pytest.Pytester, monkeypatch):
    pytester.makepyfile(test_module_skip=MODULE_LEVEL_SKIP)
    result = run(pytester, monkeypatch, "false")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
