"""The pipeline examples in examples/ say what examples/README.md says: the suite runs with an explicit
--env, the workflow calls the service with the auth step's ID token, traffic moves only after the suite
passed, a rollback happens only on failure, and the container runs the suite without the local extra.

Command lines are checked against the real option parsers (the plugin's and ``cloudrun-smoke``'s), and
the shell parts that decide between migrating and rolling back are run with stub commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloudrun_smoke import cli
from cloudrun_smoke.plugin import options
from helpers.paths import ROOT

EXAMPLES = ROOT / "examples"
WORKFLOW_PATH = EXAMPLES / "github-actions" / "deploy-and-smoke.yml"
CLOUDBUILD_PATH = EXAMPLES / "cloudbuild" / "cloudbuild.yaml"
DOCKERFILE_PATH = EXAMPLES / "docker" / "Dockerfile"
PYTEST_BUILTIN_OPTIONS = {"-p", "-q", "-m", "-k", "-x"}
STATUS_FUNCTIONS = re.compile(r"\b(always|success|failure|cancelled)\(\)")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


# -- helpers --------------------------------------------------------------------------------------------
class _OptionRecorder:
    """Stands in for pytest's parser: records the long options the plugin registers."""

    def __init__(self) -> None:
        self.options: set[str] = set()

    def getgroup(self, *args: Any, **kwargs: Any) -> _OptionRecorder:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.update(names)

    def addini(self, *args: Any, **kwargs: Any) -> None:
        pass


def plugin_options() -> set[str]:
    recorder = _OptionRecorder()
    options.pytest_addoption(recorder)  # type: ignore[arg-type]
    return recorder.options


def command_lines(script: str, program: str) -> list[list[str]]:
    """The shell-split command lines of ``script`` that run ``program`` (from it on), with
    ``${{ ... }}`` expressions replaced by a placeholder and line continuations joined."""
    joined = EXPRESSION.sub("EXPR", script.replace("\\\n", " "))
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if program in words:
            found.append(words[words.index(program) :])
    return found


def assert_suite_command(words: list[str], env: str) -> dict[str, str]:
    """``pytest smoke/ ...`` with options the plugin knows and an explicit ``--env``; returns them."""
    assert words[:2] == ["pytest", "smoke/"], words
    known = plugin_options() | PYTEST_BUILTIN_OPTIONS
    options: dict[str, str] = {}
    for i, word in enumerate(words[2:], start=2):
        if word.startswith("-"):
            name, _, value = word.partition("=")
            assert name in known, f"{name} is not an option of the suite (known: {sorted(known)})"
            following = words[i + 1] if i + 1 < len(words) else ""
            options[name] = value or ("" if following.startswith("-") else following)
    assert options.get("--env") == env, f"the suite must run with --env {env}: {words}"
    return options


def rollback_args(words: list[str]) -> Any:
    assert words[:2] == ["cloudrun-smoke", "rollback"], words
    return cli.build_parser().parse_args(words[1:])  # a usage error raises SystemExit


def stub(bin_dir: Path, name: str, exit_code: int = 0) -> None:
    """A command that appends its arguments (one JSON list a line) to ``calls.log`` and exits."""
    path = bin_dir / name
    path.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        "with open(os.environ['CALLS_LOG'], 'a') as f:\n"
        f"    f.write(json.dumps([{name!r}, *sys.argv[1:]]) + '\\n')\n"
        f"sys.exit({exit_code})\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_with_stubs(
    tmp_path: Path,
    argv: list[str],
    failing: set[str],
    extra_env: dict[str, str],
    codes: dict[str, int] | None = None,
) -> tuple[int, list[list[str]]]:
    """Run ``argv`` with stub commands: those in ``failing`` exit 1, those in ``codes`` with that code."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    codes = {**{name: 1 for name in failing}, **(codes or {})}
    for name in ("pip", "pytest", "cloudrun-smoke", "gcloud"):
        stub(bin_dir, name, codes.get(name, 0))
    log = tmp_path / "calls.log"
    log.write_text("")
    environ = {
        **os.environ,
        **extra_env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS_LOG": str(log),
    }
    proc = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    return proc.returncode, [json.loads(line) for line in log.read_text().splitlines()]


# -- GitHub Actions ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW_PATH.read_text())


@pytest.fixture(scope="module")
def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    [job] = workflow["jobs"].values()
    return job["steps"]


def index_of(steps: list[dict[str, Any]], predicate: Any, what: str) -> int:
    found = [i for i, s in enumerate(steps) if predicate(s)]
    assert len(found) == 1, f"expected exactly one step that {what}, found {len(found)}"
    return found[0]


def runs(text: str) -> Any:
    return lambda step: text in step.get("run", "")


def statuses(step: dict[str, Any]) -> set[str]:
    """The status functions of a step's condition; a step without ``if`` runs on ``success()``."""
    return set(STATUS_FUNCTIONS.findall(str(step.get("if", "success()")))) or {"success"}


def test_the_workflow_authenticates_with_workload_identity_and_an_id_token(
    workflow: dict[str, Any], steps: list[dict[str, Any]]
) -> None:
    assert workflow["permissions"]["id-token"] == "write"
    auth = steps[
        index_of(
            steps, lambda s: s.get("uses", "").startswith("google-github-actions/auth@"), "authenticates"
        )
    ]
    assert auth["uses"] == "google-github-actions/auth@v3"
    assert auth["with"]["workload_identity_provider"] and auth["with"]["service_account"]
    assert "credentials_json" not in auth["with"], "no service-account keys: workload identity federation"
    assert auth["with"]["token_format"] == "id_token"
    assert auth["with"]["id_token_audience"]
    gcloud = index_of(
        steps, lambda s: s.get("uses") == "google-github-actions/setup-gcloud@v3", "sets up gcloud"
    )
    first_gcloud_use = min(i for i, s in enumerate(steps) if "gcloud " in s.get("run", ""))
    assert gcloud < first_gcloud_use


def test_the_candidate_is_deployed_without_traffic_under_a_sha_tag(steps: list[dict[str, Any]]) -> None:
    deploy = steps[index_of(steps, runs("gcloud run deploy"), "deploys")]
    [words] = command_lines(deploy["run"], "gcloud")
    assert "--no-traffic" in words
    assert words[words.index("--tag") + 1] == "EXPR"
    assert "steps.candidate.outputs.tag" in deploy["run"]
    candidate = next(s for s in steps if s.get("id") == "candidate")
    assert "candidate-${GITHUB_SHA::7}" in candidate["run"]


def test_the_suite_runs_against_the_tag_with_the_auth_steps_token(steps: list[dict[str, Any]]) -> None:
    auth_id = next(s["id"] for s in steps if s.get("uses", "").startswith("google-github-actions/auth@"))
    smoke_steps = [s for s in steps if "pytest smoke/" in s.get("run", "")]
    assert smoke_steps, "the workflow must run the suite"
    for step in smoke_steps:
        assert step["env"]["SMOKE_BEARER_TOKEN"] == f"${{{{ steps.{auth_id}.outputs.id_token }}}}"
        for words in command_lines(step["run"], "pytest"):
            assert_suite_command(words, env="prod")
    [candidate_run] = command_lines(smoke_steps[0]["run"], "pytest")
    options = assert_suite_command(candidate_run, env="prod")
    assert options["--tag"] == "EXPR" and "steps.candidate.outputs.tag" in smoke_steps[0]["run"]
    assert options["--smoke-report"] == "verdict.json"
    assert not any(s.get("continue-on-error") for s in steps), "a failed suite must stop the job"


def test_traffic_moves_only_after_the_suite_passed(steps: list[dict[str, Any]]) -> None:
    smoke = index_of(
        steps, lambda s: "pytest smoke/ --env prod --tag" in s.get("run", ""), "tests the candidate"
    )
    migrate = index_of(steps, runs("gcloud run services update-traffic"), "moves the traffic")
    assert smoke < migrate
    assert statuses(steps[migrate]) == {"success"}
    [words] = command_lines(steps[migrate]["run"], "gcloud")
    assert "--to-latest" in words or words[words.index("--to-tags") + 1] == "EXPR=100"


def test_the_rollback_runs_only_on_failure_after_the_traffic_moved(steps: list[dict[str, Any]]) -> None:
    migrate = index_of(steps, runs("gcloud run services update-traffic"), "moves the traffic")
    rollback = index_of(steps, runs("cloudrun-smoke rollback"), "rolls back")
    assert migrate < rollback
    condition = steps[rollback]["if"]
    assert statuses(steps[rollback]) == {"failure"}
    assert f"steps.{steps[migrate]['id']}.outcome == 'success'" in condition
    [words] = command_lines(steps[rollback]["run"], "cloudrun-smoke")
    args = rollback_args(words)
    assert (args.env, args.yes) == ("prod", True)
    assert "steps.before.outputs.revision" in steps[rollback]["run"]


def test_steps_refer_only_to_earlier_steps(steps: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for step in steps:
        referenced = set(re.findall(r"steps\.([\w-]+)\.", json.dumps(step)))
        assert referenced <= seen, f"step {step.get('name')!r} refers to {referenced - seen} before it ran"
        if "id" in step:
            seen.add(step["id"])


def test_the_verdict_is_uploaded_whatever_happened(steps: list[dict[str, Any]]) -> None:
    upload = steps[
        index_of(steps, lambda s: s.get("uses", "").startswith("actions/upload-artifact@"), "uploads")
    ]
    assert upload["uses"] == "actions/upload-artifact@v7"
    assert statuses(upload) == {"always"}
    assert "verdict.json" in upload["with"]["path"].split()
    assert not any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in steps), "the plugin writes the summary"
    installs = [w for s in steps for w in command_lines(s.get("run", ""), "pip")]
    assert installs == [["pip", "install", "."]], "the suite runs against Cloud Run: no [local] extra"


@pytest.mark.skipif(
    shutil.which("actionlint") is None, reason="actionlint is not installed (pip install -e '.[dev]')"
)
def test_actionlint_reports_nothing() -> None:
    """Every finding fails, among them an action whose runtime GitHub's runners are dropping (node20)."""
    proc = subprocess.run(
        ["actionlint", "-no-color", str(WORKFLOW_PATH)], capture_output=True, text=True, timeout=60
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def evaluate(condition: str, job_failed: bool, steps: dict[str, dict[str, Any]]) -> bool:
    """A step's ``if`` as GitHub evaluates it, for the forms the workflow uses: terms joined by ``&&``,
    each a status function or ``steps.ID.FIELD[.NAME] ==|!= 'literal'``. Without a status function,
    ``success()`` is implied."""
    functions = {"failure()": job_failed, "success()": not job_failed, "always()": True, "cancelled()": False}
    terms = [t.strip() for t in EXPRESSION.sub(r"\1", condition or "success()").split("&&")]
    if not any(t in functions for t in terms):
        terms.append("success()")
    for term in terms:
        if term in functions:
            if not functions[term]:
                return False
            continue
        match = re.fullmatch(r"steps\.([\w-]+)\.([\w.-]+)\s*(==|!=)\s*'([^']*)'", term)
        assert match, f"the test cannot evaluate {term!r}: extend evaluate()"
        value: Any = steps.get(match[1], {})
        for part in match[2].split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        if (str(value) == match[4]) != (match[3] == "=="):
            return False
    return True


def simulate_job(
    tmp_path: Path, steps: list[dict[str, Any]], suite_codes: list[int]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Run the job's decisions: each step's ``if`` against the outcomes so far. The suite steps' shell
    runs for real (``bash -eo pipefail``, as GitHub runs it) with a stub ``pytest`` exiting with the
    next of ``suite_codes``; every other step succeeds. Returns the names of the steps that ran."""
    ran: list[str] = []
    results: dict[str, dict[str, Any]] = {}
    job_failed = False
    codes = iter(suite_codes)
    for step in steps:
        name = step.get("name") or step.get("uses") or "?"
        if not evaluate(str(step.get("if", "")), job_failed, results):
            if "id" in step:
                results[step["id"]] = {"outcome": "skipped", "outputs": {}}
            continue
        ran.append(name)
        outputs: dict[str, str] = {}
        code = 0
        if "pytest smoke/" in step.get("run", ""):
            output_file = tmp_path / "github_output"
            output_file.write_text("")
            script = EXPRESSION.sub("EXPR", step["run"])
            code, _ = run_with_stubs(
                tmp_path,
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                set(),
                {"GITHUB_OUTPUT": str(output_file)},
                codes={"pytest": next(codes)},
            )
            outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if line)
        if "id" in step:
            results[step["id"]] = {"outcome": "success" if code == 0 else "failure", "outputs": outputs}
        job_failed = job_failed or code != 0
    return ran, results


ROLL_BACK, NO_ROLLBACK, MIGRATE = (
    "Roll back",
    "Say why nothing was rolled back",
    "Move the traffic to the candidate",
)


@pytest.mark.parametrize("code", [0, 1, 2, 4, 5])
def test_the_workflow_rolls_back_only_when_the_serving_checks_exit_1(
    tmp_path: Path, steps: list[dict[str, Any]], code: int
) -> None:
    ran, results = simulate_job(tmp_path, steps, [0, code])
    assert MIGRATE in ran
    assert results["serving_smoke"]["outputs"] == {"exit_code": str(code)}
    assert (ROLL_BACK in ran) == (code == 1), ran
    assert (NO_ROLLBACK in ran) == (code not in (0, 1)), ran
    assert "Keep the verdicts" in ran


@pytest.mark.parametrize("code", [1, 2, 4, 5])
def test_a_candidate_that_fails_never_gets_traffic_and_nothing_rolls_back(
    tmp_path: Path, steps: list[dict[str, Any]], code: int
) -> None:
    ran, results = simulate_job(tmp_path, steps, [code])
    assert results["candidate_smoke"]["outputs"] == {"exit_code": str(code)}
    assert not {MIGRATE, ROLL_BACK, NO_ROLLBACK} & set(ran), ran
    assert "Keep the verdicts" in ran


# -- Cloud Build ----------------------------------------------------------------------------------------
CLOUDBUILD_BUILTINS = {"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "COMMIT_SHA", "SHORT_SHA"}


@pytest.fixture(scope="module")
def cloudbuild() -> dict[str, Any]:
    return yaml.safe_load(CLOUDBUILD_PATH.read_text())


def substituted(text: str, values: dict[str, str]) -> str:
    """What Cloud Build runs: ``$NAME`` / ``${NAME}`` replaced, ``$$`` left as one ``$``."""
    return re.sub(
        r"\$(\$)|\$\{(\w+)\}|\$(\w+)", lambda m: m.group(1) or values[m.group(2) or m.group(3)], text
    )


def test_cloudbuild_substitutions_are_declared_and_used(cloudbuild: dict[str, Any]) -> None:
    steps_text = json.dumps(cloudbuild["steps"])
    used = {a or b for a, b in re.findall(r"(?<!\$)\$\{(\w+)\}|(?<!\$)\$(\w+)", steps_text)}
    declared = set(cloudbuild["substitutions"])
    assert used - CLOUDBUILD_BUILTINS == declared, "Cloud Build refuses unknown and unused substitutions"
    assert all(name.startswith("_") for name in declared)


def test_cloudbuild_runs_the_suite_after_the_deploy_and_rolls_back_only_on_failure(
    cloudbuild: dict[str, Any], tmp_path: Path
) -> None:
    deploy, smoke = cloudbuild["steps"]
    assert deploy["args"][:2] == ["run", "deploy"]
    assert smoke["waitFor"] == [deploy["id"]]
    assert smoke["name"] == "python:3.11-slim"
    values = {**cloudbuild["substitutions"], "PROJECT_ID": "p"}
    script = substituted(smoke["args"][-1], values)
    assert command_lines(script, "pip") == [["pip", "install", "--quiet", "."]], "no [local] extra"
    [suite] = command_lines(script, "pytest")
    assert_suite_command(suite, env="prod")
    [rollback] = command_lines(script, "cloudrun-smoke")
    assert rollback_args(rollback).env == "prod"

    argv = [smoke["entrypoint"], *smoke["args"][:-1], script]
    code, calls = run_with_stubs(tmp_path, argv, failing=set(), extra_env={})
    assert code == 0
    assert [c[0] for c in calls] == ["pip", "pytest"], "a passing suite must not roll back"

    code, calls = run_with_stubs(tmp_path, argv, failing={"pytest"}, extra_env={})
    assert code != 0, "a failing suite must fail the build"
    assert [c[0] for c in calls] == ["pip", "pytest", "cloudrun-smoke"]
    assert calls[-1][1:] == ["rollback", "--env", "prod", "--yes"]


@pytest.mark.parametrize("suite_exit", [0, 1, 2, 4, 5])
def test_cloudbuild_rolls_back_only_when_the_checks_exit_1(
    cloudbuild: dict[str, Any], tmp_path: Path, suite_exit: int
) -> None:
    _, smoke = cloudbuild["steps"]
    script = substituted(smoke["args"][-1], {**cloudbuild["substitutions"], "PROJECT_ID": "p"})
    argv = [smoke["entrypoint"], *smoke["args"][:-1], script]
    code, calls = run_with_stubs(tmp_path, argv, set(), {}, codes={"pytest": suite_exit})
    assert code == suite_exit, "the build fails exactly when the suite does, with its exit code"
    rolled_back = [c for c in calls if c[0] == "cloudrun-smoke"]
    assert bool(rolled_back) == (suite_exit == 1), calls


# -- Docker -----------------------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE_PATH.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_installs_the_suite_without_the_local_extra() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    installs = [arg for op, arg in instructions if op == "RUN" and "pip install" in arg]
    assert installs == ["pip install ."], installs
    for op, arg in instructions:
        if op == "COPY":
            *sources, _ = arg.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository (build from its root)"


def test_the_entrypoint_runs_the_suite_for_smoke_env(tmp_path: Path) -> None:
    [entrypoint] = [arg for op, arg in dockerfile_instructions() if op == "ENTRYPOINT"]
    argv = json.loads(entrypoint)
    code, calls = run_with_stubs(tmp_path, [*argv, "--read-only"], set(), {"SMOKE_ENV": "prod"})
    assert code == 0
    [call] = calls
    assert_suite_command(call, env="prod")
    assert call[-1] == "--read-only", "arguments of the job must reach pytest"
