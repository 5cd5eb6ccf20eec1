"""The deploy a stack makes when it starts: the configured revision(s), bent by the fault switches.

The faults shape what the Admin API reports (an unexpected image, a missing env var, other resources),
the traffic (a 90/10 split, a revision that never became ready, a failed latest revision), and a
candidate beside the serving revision when one is configured. With a ``baseline``, a revision runs
before the one under test (the regression checks): both serve half the traffic ("split"), or the
baseline serves alone until the one under test replaces it ("sequence").
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from cloudrun_smoke.local import faults as F
from cloudrun_smoke.local.run_model import RevisionSpec, TrafficTarget

if TYPE_CHECKING:
    from cloudrun_smoke.local.stack import LocalStack


def deploy_configured(stack: LocalStack) -> None:
    """Deploy what ``stack.config`` describes, with its stack faults applied."""
    cfg, faults = stack.config, stack.stack_faults
    spec = faulted_spec(cfg.spec, faults)
    previous = stack.deploy(cfg.service_cmd, spec, instances=1) if F.TRAFFIC_SPLIT in faults else None
    if cfg.baseline:
        previous = stack.baseline = stack.deploy(cfg.service_cmd, spec)
        if cfg.baseline == "sequence" and stack.between_revisions is not None:
            stack.between_revisions(stack)  # the baseline's own traffic, before it is replaced
    # The revision under test gets revision_faults: the candidate when there is one, else this one. With
    # a previous revision serving (a split, or the baseline), the split is set at once: it never goes
    # without traffic meanwhile.
    revision_faults = tuple(cfg.revision_faults)
    under_test = spec if cfg.candidate_cmd else replace(spec, faults=revision_faults)
    split = previous is not None and cfg.baseline != "sequence"
    current = stack.deploy(cfg.service_cmd, under_test, traffic=not split)
    if previous is not None and split:
        share = 50 if cfg.baseline else 90
        stack.set_traffic([TrafficTarget(current.name, share), TrafficTarget(previous.name, 100 - share)])
    if F.REVISION_NOT_READY in faults:
        with stack.state.lock:
            stack.service.traffic = [
                replace(t, revision=t.revision or current.name) for t in stack.service.traffic
            ]
            current.ready = False
            current.failure_message = (
                "The user-provided container failed the configured startup probe checks."
            )
    if F.LATEST_REVISION_FAILED in faults:
        stack.add_failed_revision(
            spec,
            "The user-provided container failed to start and listen on the port defined provided by "
            "the PORT=8080 environment variable. Container called exit(1).",
        )
    if cfg.candidate_cmd:
        if not cfg.tag:
            raise ValueError("a candidate revision needs a tag: it gets no traffic")
        candidate_spec = replace(cfg.candidate_spec or spec, faults=revision_faults)
        candidate = stack.deploy_candidate(cfg.candidate_cmd, cfg.tag, candidate_spec)
        if cfg.candidate_percent:  # a canary split: `gcloud run services update-traffic --to-tags TAG=P`
            share = cfg.candidate_percent
            stack.set_traffic(
                [TrafficTarget(current.name, 100 - share), TrafficTarget(candidate.name, share, cfg.tag)]
            )


def faulted_spec(spec: RevisionSpec, faults: frozenset[str]) -> RevisionSpec:
    """The spec a deploy gets under the configuration faults (what the Admin API reports, and for a
    missing env var also what the process gets)."""
    if F.UNEXPECTED_IMAGE in faults:
        repository = spec.image.rsplit(":", 1)[0] if ":" in spec.image.rsplit("/", 1)[-1] else spec.image
        spec = replace(spec, image=f"{repository}:unexpected-build")
    if F.MISSING_ENV in faults and spec.env:
        first = next(iter(spec.env))
        spec = replace(spec, env={k: v for k, v in spec.env.items() if k != first})
    if F.WRONG_RESOURCES in faults:
        spec = replace(
            spec,
            memory="1Gi" if spec.memory == "512Mi" else "512Mi",
            cpu="2" if spec.cpu == "1" else "1",
        )
    return spec
