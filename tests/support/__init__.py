"""Test helpers others can reuse: real HTTP sinks on 127.0.0.1 standing in for services.

    from tests.support import HttpSink, PagerDutySink

    with PagerDutySink() as pagerduty:
        ...  # POST events to pagerduty.url
        assert pagerduty.events[0]["event_action"] == "trigger"
"""

from tests.support.http_sink import HttpSink, RecordedRequest, ResponseSpec
from tests.support.pagerduty_sink import PagerDutySink, validate_event

__all__ = ["HttpSink", "PagerDutySink", "RecordedRequest", "ResponseSpec", "validate_event"]
