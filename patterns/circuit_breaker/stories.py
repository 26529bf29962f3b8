"""The circuit-breaker presets told step by step; tests/core/test_stories.py checks every claim against the run.
Highlights name the state diagram's states (CLOSED, OPEN, HALF_OPEN) and the services diagram's nodes (svcA...)
and edges (eA...)."""

from __future__ import annotations

from patterns.core.story import Chapter, Match, count, latest, where

TRANSITION = Match("cb.transition")


def _state(name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return (("state", (name,)),)


GUIDE = (
    Chapter(
        "The breaker sits between the caller and service S. It is CLOSED: every call goes through. At 3 s S starts "
        "failing 7 calls in 10.",
        at=3.0,
        highlight=_state("CLOSED"),
        claims=(latest(where("cb.service", service="S"), failure_probability=0.7), count(TRANSITION, "==", 0)),
    ),
    Chapter(
        "Three calls in a row failed: the breaker opens. For the next 2 s it rejects every call at once, without "
        "bothering S.",
        after=where("cb.transition", to="OPEN"),
        highlight=_state("OPEN"),
        claims=(latest(TRANSITION, reason="consecutive_failures", consecutive=3, wait=2.0),),
    ),
    Chapter(
        "The 2 s are over: the breaker is HALF_OPEN and lets two trial calls through to see whether S is better. "
        "While it was open, calls were rejected without reaching S.",
        after=where("cb.transition", to="HALF_OPEN"),
        highlight=_state("HALF_OPEN"),
        claims=(
            latest(TRANSITION, reason="wait_elapsed"),
            count(where("cb.outcome", outcome="rejected"), ">=", 1, since_previous=True),
        ),
    ),
    Chapter(
        "One trial call failed: in this breaker any failure while HALF_OPEN sends it straight back to OPEN for "
        "another 2 s.",
        after=where("cb.transition", to="OPEN"),
        highlight=_state("OPEN"),
        claims=(latest(TRANSITION, reason="trial_failure", wait=2.0),),
    ),
    Chapter(
        "At 14.3 s both trials happen to succeed and the breaker closes, although S still fails 7 calls in 10: two "
        "trials are a small sample. Three failures later it is open again.",
        after=where("cb.transition", to="CLOSED"),
        highlight=_state("CLOSED"),
        claims=(latest(TRANSITION, reason="trials_passed", calls=2),),
    ),
    Chapter(
        "At 15 s S is healthy again. Until now the breaker has opened from CLOSED twice.",
        at=15.0,
        pause=False,
        claims=(
            count(Match("cb.transition", (("from", "==", "CLOSED"), ("to", "==", "OPEN"))), "==", 2),
            latest(where("cb.service", service="S"), failure_probability=0.0),
        ),
    ),
    Chapter(
        "The next two trial calls succeed and the breaker closes: recovered.",
        after=where("cb.transition", to="CLOSED"),
        highlight=_state("CLOSED"),
        claims=(latest(TRANSITION, reason="trials_passed"), count(where("cb.transition", to="CLOSED"), "==", 2)),
    ),
)

BACKOFF = (
    Chapter(
        "S goes down at 3 s. Once half of the last 20 calls have failed, the breaker opens for 2 s.",
        after=where("cb.transition", to="OPEN"),
        highlight=_state("OPEN"),
        claims=(latest(TRANSITION, reason="failure_rate", failure_rate=50.0, wait=2.0),),
    ),
    Chapter(
        "The trial calls fail, so the breaker reopens, and this time waits twice as long: 4 s.",
        after=where("cb.transition", **{"from": "HALF_OPEN", "to": "OPEN"}),
        highlight=_state("OPEN"),
        claims=(latest(TRANSITION, wait=4.0),),
    ),
    Chapter(
        "Each failed probe doubles the wait: 2, 4, 8, and now 16 s. A service that is really down is asked less "
        "and less often.",
        after=where("cb.transition", wait=16.0),
        highlight=_state("OPEN"),
        claims=(count(where("cb.transition", to="OPEN"), "==", 4),),
    ),
    Chapter(
        "The wait stops growing at its cap: 20 s.",
        after=where("cb.transition", wait=20.0),
        highlight=_state("OPEN"),
        claims=(latest(TRANSITION, to="OPEN", wait=20.0),),
    ),
    Chapter(
        "S is back at 40 s, but the breaker does not know yet: it stays OPEN until its 20 s are over.",
        at=40.0,
        highlight=_state("OPEN"),
        claims=(latest(TRANSITION, to="OPEN"), latest(where("cb.service", service="S"), outage=None)),
    ),
    Chapter(
        "The probe after the 20 s succeeds and the breaker closes; the next trip would wait 2 s again.",
        after=where("cb.transition", to="CLOSED"),
        highlight=_state("CLOSED"),
        claims=(latest(TRANSITION, reason="trials_passed"),),
    ),
)

HUNG_C = latest(where("cb.service", service="C"), outage="hang")
CASCADE = (
    Chapter(
        "Users call A; half of their requests need B, and B calls C. There are no breakers. At 5 s C hangs.",
        at=5.0,
        highlight=(("cascade", ("svcC",)),),
        claims=(HUNG_C,),
    ),
    Chapter(
        "B's calls to C each wait out their 1 s timeout: 20 have timed out in 3 s, and B's ten slots "
        "are full of waiting calls.",
        at=8.0,
        highlight=(("cascade", ("svcB", "svcC", "eC")),),
        claims=(count(where("cb.outcome", hop="C", outcome="timeout"), "==", 20, since_previous=True),),
    ),
    Chapter(
        "Now A's slots are full too, and A turns users away, even those whose requests never needed C: more "
        "than 100 refused since C hung.",
        at=20.0,
        highlight=(("cascade", ("svcA",)),),
        claims=(count(where("cb.outcome", hop="A", reason="queue_full"), ">", 100),),
    ),
    Chapter(
        "C is back at 40 s, and the queues drain.",
        at=40.0,
        pause=False,
        claims=(latest(where("cb.service", service="C"), outage=None),),
    ),
)

CASCADE_BREAKERS = (
    Chapter(
        "The same chain and the same outage, with a breaker in front of B (in A) and one in front of C (in B). At "
        "5 s C hangs.",
        at=5.0,
        highlight=(("cascade", ("svcC",)),),
        claims=(HUNG_C,),
    ),
    Chapter(
        "About a second later both breakers open: slow calls made half of the last 20 fail.",
        after=where("cb.transition", hop="B", to="OPEN"),
        highlight=(("cascade", ("eB", "eC")),),
        claims=(count(where("cb.transition", to="OPEN"), "==", 2), latest(TRANSITION, failure_rate=50.0)),
    ),
    Chapter(
        "From now on the requests that need C fail at once instead of waiting; more than 100 calls were rejected "
        "by an open breaker, and since the breakers opened A has turned no user away (9 were refused in the second "
        "before).",
        at=20.0,
        highlight=(("cascade", ("svcA",)),),
        claims=(
            count(where("cb.outcome", outcome="rejected", reason="open"), ">", 100),
            count(where("cb.outcome", hop="A", reason="queue_full"), "==", 0, since_previous=True),
            count(where("cb.outcome", hop="A", reason="queue_full"), "==", 9),
        ),
    ),
    Chapter(
        "Every 3 s a probe checks on C. C is back at 40 s, and the next probes close both breakers.",
        after=where("cb.transition", hop="B", to="CLOSED"),
        highlight=(("cascade", ("eB", "eC")),),
        claims=(
            count(where("cb.transition", to="CLOSED"), "==", 2),
            latest(where("cb.service", service="C"), outage=None),
        ),
    ),
)

STORIES = {"guide": GUIDE, "backoff": BACKOFF, "cascade": CASCADE, "cascade-breakers": CASCADE_BREAKERS}
