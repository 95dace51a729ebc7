"""Gateway rate limits: token buckets, and whose address a request comes from."""

from __future__ import annotations

import ipaddress

from gateway.ratelimit import TokenBuckets, client_address
from govkit.auth.logins import address_key, login_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_buckets_allow_a_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(3, 60.0, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    wait = buckets.take("a")
    assert 19.9 < wait <= 20.0  # one token per 20 s
    assert buckets.take("b") == 0  # keys are independent
    clock.now = 20.0
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0


def test_buckets_keep_a_bounded_number_of_keys() -> None:
    buckets = TokenBuckets(1, 60.0, max_keys=2, clock=Clock())
    for key in ("a", "b", "c"):
        buckets.take(key)
    assert len(buckets._buckets) == 2


TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], TRUSTED) == "203.0.113.9"
    assert client_address("203.0.113.9", ["198.51.100.1"], []) == "203.0.113.9"
    assert client_address("127.0.0.1", ["198.51.100.1"], []) == "127.0.0.1"
    assert client_address("127.0.0.1", ["198.51.100.1"], TRUSTED) == "198.51.100.1"


def test_forwarded_for_is_read_from_the_right_past_trusted_hops_only() -> None:
    # The client forged the leftmost entry; the proxies appended what they saw.
    chain = ["1.1.1.1, 198.51.100.7", "10.1.2.3"]
    assert client_address("10.0.0.1", chain, TRUSTED) == "198.51.100.7"
    # Every hop trusted: the leftmost is the best we know.
    assert client_address("10.0.0.1", ["10.9.9.9"], TRUSTED) == "10.9.9.9"
    # Garbage stops the walk at the last readable hop.
    assert client_address("10.0.0.1", ["nonsense, 10.2.2.2"], TRUSTED) == "10.2.2.2"
    assert client_address("10.0.0.1", [], TRUSTED) == "10.0.0.1"


def test_keys_fold_spellings_and_ipv6_prefixes() -> None:
    assert login_key("138 1234 5678") == login_key("+86 13812345678") == "+8613812345678"
    assert login_key("Zhang.San") == "zhang.san"
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("not an address") is None
