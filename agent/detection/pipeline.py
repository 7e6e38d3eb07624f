"""The detection thread: observations in from sensors, findings out to respond.

Sensors call `submit` from their own threads; it never blocks (a full queue drops and counts).
Rules are recompiled when the policy in force changes, off the sensors' threads. Idle, the
thread wakes only every POLICY_CHECK_S to look for a new policy; `wake` ends the wait at stop.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable

from agent.detection.judge import judge_connections, judge_session
from agent.findings import Finding
from agent.policy import CurrentPolicy, PolicyBody
from agent.rules import RuleSet
from agent.sensors.observations import NetworkConnection, ProcessStarted, RemoteSession

log = logging.getLogger(__name__)

Observation = ProcessStarted | NetworkConnection | RemoteSession
RulesLoader = Callable[[tuple[str, ...]], RuleSet]
POLICY_CHECK_S = 2.0  # a new policy (host lists, rules) applies within this long while idle


class Detection:
    def __init__(self, *, policy: CurrentPolicy, load_rules: RulesLoader, respond: Callable[[Finding], None],
                 queue_size: int = 10_000) -> None:
        self._policy = policy
        self._load_rules = load_rules
        self._respond = respond
        self._queue: queue.Queue[Observation | None] = queue.Queue(queue_size)
        self._rules: RuleSet | None = None
        self._rules_for: tuple[str, ...] | None = None
        self._policy_seen: int | None = None
        self._policy_hooks: list[Callable[[PolicyBody], None]] = []
        self._rules_hooks: list[Callable[[RuleSet], None]] = []
        self.dropped: Counter[str] = Counter()
        self.judged = 0

    def on_policy(self, hook: Callable[[PolicyBody], None]) -> None:
        """Call `hook` with the new body whenever another policy comes into force."""
        self._policy_hooks.append(hook)

    def on_rules(self, hook: Callable[[RuleSet], None]) -> None:
        """Call `hook` with each rule set that comes into force (sensors read what rules need)."""
        self._rules_hooks.append(hook)

    def _follow_policy(self) -> None:
        version = self._policy.version
        if version == self._policy_seen:
            return
        self._policy_seen = version
        body = self._policy.body
        for hook in self._policy_hooks:
            try:
                hook(body)
            except Exception:
                log.exception("applying policy version %s failed", version)
        self.rules()

    def submit(self, observation: Observation) -> None:
        try:
            self._queue.put_nowait(observation)
        except queue.Full:
            self.dropped["detection_queue_full"] += 1

    def wake(self) -> None:
        """Make `run` look at its stop event now (None in the queue means nothing else)."""
        with contextlib.suppress(queue.Full):  # a full queue keeps the thread awake anyway
            self._queue.put_nowait(None)

    def rules(self) -> RuleSet:
        wanted = self._policy.body.rules
        if self._rules is None or wanted != self._rules_for:
            self._rules = self._load_rules(wanted)
            self._rules_for = wanted
            log.info("%d detection rules in force", len(self._rules))
            for hook in self._rules_hooks:
                hook(self._rules)
        return self._rules

    def judge(self, observation: Observation) -> list[Finding]:
        if isinstance(observation, ProcessStarted):
            return self.rules().match_process(observation)
        if isinstance(observation, NetworkConnection):
            found = self.rules().match_connection(observation)
            return found + judge_connections([observation], self._policy.body.approved_programs)
        session = judge_session(observation)
        return [session] if session else []

    def run(self, stop: threading.Event) -> None:
        self._follow_policy()
        while not stop.is_set():
            try:
                observation = self._queue.get(timeout=POLICY_CHECK_S)
            except queue.Empty:
                self._follow_policy()
                continue
            if observation is None:
                continue
            self.judged += 1
            for finding in self.judge(observation):
                self._respond(finding)
