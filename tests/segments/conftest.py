"""Hypothesis profiles for the segment engine's property tests.

HYPOTHESIS_PROFILE=dev (default) is quick; HYPOTHESIS_PROFILE=ci runs a few hundred
examples per property (use it in CI, on PostgreSQL). The profiles are applied per
test (`@settings(PROFILE)`), so loading them does not change other tests' defaults.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "derandomize": False,
    # Each example loads its world inside a savepoint that is rolled back, so the
    # function-scoped database fixture is safe to share between examples.
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("dev", max_examples=60, **_COMMON)
settings.register_profile("ci", max_examples=400, **_COMMON)
