"""Admission, on a clock the test moves: one ask per 10 s per address (burst 5), 20/s overall
(burst 100) by default (README, Enrollment), and bounded memory of addresses."""

from __future__ import annotations

import pytest

from controller.service.enrollment.admission import Admission, AdmissionSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_address_gets_its_burst_then_one_ask_per_ten_seconds():
    clock = Clock()
    admission = Admission(AdmissionSettings(), clock=clock)
    assert [admission.admit("10.0.0.1") for _ in range(5)] == [None] * 5
    refused = admission.admit("10.0.0.1")
    assert refused is not None and refused.result == "rate_limited_source"
    assert refused.retry_after == pytest.approx(10.0)
    assert admission.admit("10.0.0.2") is None  # another address is not held back
    clock.now += 10.0
    assert admission.admit("10.0.0.1") is None
    assert admission.admit("10.0.0.1") is not None


def test_everyone_together_gets_a_burst_of_a_hundred_then_twenty_a_second():
    clock = Clock()
    admission = Admission(AdmissionSettings(), clock=clock)
    admitted = [admission.admit(f"10.0.{i // 250}.{i % 250}") for i in range(100)]
    assert admitted == [None] * 100
    refused = admission.admit("10.1.0.1")
    assert refused is not None and refused.result == "rate_limited_total"
    assert refused.retry_after == pytest.approx(1 / 20)
    clock.now += 1.0  # twenty more
    assert [admission.admit(f"10.2.0.{i}") for i in range(20)] == [None] * 20
    assert admission.admit("10.2.0.99") is not None


def test_addresses_are_remembered_up_to_a_bound():
    admission = Admission(AdmissionSettings(max_sources=3), clock=Clock())
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        admission.admit(address)
    assert admission.sources == 3
