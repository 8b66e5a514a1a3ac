"""The api benchmark measures servers in rounds and reports each server's rounds as one run:
requests over their time, and percentiles of all their requests (bench.common.pool_rounds)."""

import pytest

from bench.common import QUANTILE_STEPS, WrkResult, pool_rounds


def _round(requests: int, seconds: float, latency_ms: list[float]) -> tuple[WrkResult, list[float]]:
    """A round whose requests took `latency_ms`, spread evenly over its quantiles."""
    quantiles = sorted(
        latency_ms[i * len(latency_ms) // QUANTILE_STEPS] for i in range(QUANTILE_STEPS)
    )
    result = WrkResult(
        requests_per_s=requests / seconds,
        p50_ms=-1.0,  # wrk's own figures are not what pooled rounds report
        p75_ms=-1.0,
        p90_ms=-1.0,
        p99_ms=-1.0,
        requests=requests,
        duration_s=seconds,
        non_2xx_3xx=0,
        socket_errors={"connect": 0, "read": 1, "write": 0, "timeout": 0},
    )
    return result, quantiles


@pytest.mark.parametrize(
    ("rounds", "requests_per_s", "p50", "p99"),
    [
        # A fast round and a slow one of equal size: half the requests at each speed.
        ([(5000, 5.0, [10.0] * 1000), (5000, 5.0, [100.0] * 1000)], 1000.0, 10.0, 100.0),
        # The slow round holds 2 % of the requests: it sets the p99, not the median.
        ([(9800, 5.0, [10.0] * 1000), (200, 5.0, [100.0] * 1000)], 1000.0, 10.0, 100.0),
        # ... 0.5 %: under the p99.
        ([(9950, 5.0, [10.0] * 1000), (50, 5.0, [100.0] * 1000)], 1000.0, 10.0, 10.0),
        # Requests over time, not the mean of the rounds' rates.
        ([(9000, 5.0, [20.0] * 1000), (1000, 15.0, [40.0] * 1000)], 500.0, 20.0, 40.0),
        # A spread within a round is kept.
        ([(3000, 3.0, [float(v) for v in range(1, 1001)])] * 2, 1000.0, 500.0, 990.0),
    ],
)
def test_pooled_rounds(
    rounds: list[tuple[int, float, list[float]]], requests_per_s: float, p50: float, p99: float
) -> None:
    pooled = pool_rounds([_round(*r) for r in rounds])
    assert pooled.requests_per_s == pytest.approx(requests_per_s)
    assert (pooled.p50_ms, pooled.p99_ms) == (p50, p99)
    assert pooled.requests == sum(r[0] for r in rounds)
    assert pooled.socket_errors["read"] == len(rounds)


def test_one_round_is_wrks_own_report() -> None:
    result, quantiles = _round(100, 1.0, [5.0] * 1000)
    assert pool_rounds([(result, quantiles)]) is result
