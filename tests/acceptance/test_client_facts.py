"""Facts the client fills in: git in the working directory and the seven CI providers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.client_support import (
    client,
    deployment,
    deployments,
    dry_run_body,
    serve,
    server_env,
)
from tests.acceptance.server import RelayServer

pytestmark = pytest.mark.slow

SHA = "0123456789abcdef0123456789abcdef01234567"

# provider: (its variables, as a job of that provider sets them; expected top-level
# fields; expected meta_data).
PROVIDERS: dict[str, tuple[dict[str, str], dict[str, str], dict[str, str]]] = {
    "github-actions": (
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SHA": SHA,
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_REF_NAME": "main",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_RUN_ID": "42",
            "GITHUB_RUN_ATTEMPT": "2",
            "GITHUB_ACTOR": "octocat",
        },
        {"commit_sha": SHA, "branch": "main", "version": SHA[:7]},
        {
            "repository_url": "https://github.com/acme/shop",
            "ci_run_url": "https://github.com/acme/shop/actions/runs/42/attempts/2",
            "ci_actor": "octocat",
        },
    ),
    "gitlab-ci": (
        {
            "GITLAB_CI": "true",
            "CI_COMMIT_SHA": SHA,
            "CI_COMMIT_TAG": "v3.1.0",
            "CI_COMMIT_REF_NAME": "v3.1.0",
            "CI_PROJECT_URL": "https://gitlab.com/acme/shop",
            "CI_REPOSITORY_URL": "https://gitlab-ci-token:glcbt-SECRET@gitlab.com/acme/shop.git",
            "CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/77",
            "CI_PIPELINE_URL": "https://gitlab.com/acme/shop/-/pipelines/7",
            "GITLAB_USER_LOGIN": "alice",
            "CI_COMMIT_TIMESTAMP": "2026-03-01T10:00:00+01:00",
            "CI_COMMIT_AUTHOR": "Alice <alice@example.com>",
        },
        {"commit_sha": SHA, "tag": "v3.1.0", "version": "v3.1.0"},
        {
            "repository_url": "https://gitlab.com/acme/shop",
            "ci_run_url": "https://gitlab.com/acme/shop/-/jobs/77",
            "ci_actor": "alice",
            "commit_author": "Alice <alice@example.com>",
        },
    ),
    "circleci": (
        {
            "CIRCLECI": "true",
            "CIRCLE_SHA1": SHA,
            "CIRCLE_BRANCH": "release/2",
            "CIRCLE_REPOSITORY_URL": "git@github.com:acme/shop.git",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/123",
            "CIRCLE_USERNAME": "bob",
        },
        {"commit_sha": SHA, "branch": "release/2", "version": SHA[:7]},
        {
            "repository_url": "git@github.com:acme/shop.git",
            "ci_run_url": "https://circleci.com/gh/acme/shop/123",
            "ci_actor": "bob",
        },
    ),
    "jenkins": (
        {
            "JENKINS_URL": "https://ci.example.com/",
            "BUILD_URL": "https://ci.example.com/job/shop/15/",
            "GIT_COMMIT": SHA,
            "GIT_BRANCH": "origin/main",
            "GIT_URL": "https://jenkins:s3cret@git.example.com/acme/shop.git",
        },
        {"commit_sha": SHA, "branch": "main", "version": SHA[:7]},
        {
            "repository_url": "https://git.example.com/acme/shop.git",
            "ci_run_url": "https://ci.example.com/job/shop/15/",
        },
    ),
    "buildkite": (
        {
            "BUILDKITE": "true",
            "BUILDKITE_COMMIT": SHA,
            "BUILDKITE_BRANCH": "main",
            "BUILDKITE_TAG": "",
            "BUILDKITE_REPO": "https://github.com/acme/shop.git",
            "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/shop/builds/8",
            "BUILDKITE_BUILD_CREATOR": "Carol",
        },
        {"commit_sha": SHA, "branch": "main", "version": SHA[:7]},
        {
            "repository_url": "https://github.com/acme/shop.git",
            "ci_run_url": "https://buildkite.com/acme/shop/builds/8",
            "ci_actor": "Carol",
        },
    ),
    "azure-pipelines": (
        {
            "TF_BUILD": "True",
            "BUILD_SOURCEVERSION": SHA,
            "BUILD_SOURCEBRANCH": "refs/heads/feature/login",
            "BUILD_SOURCEBRANCHNAME": "login",
            "BUILD_REPOSITORY_URI": "https://dev.azure.com/acme/shop/_git/shop",
            "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
            "SYSTEM_TEAMPROJECT": "shop",
            "BUILD_BUILDID": "991",
            "BUILD_REQUESTEDFOR": "Dana",
        },
        {"commit_sha": SHA, "branch": "feature/login", "version": SHA[:7]},
        {
            "repository_url": "https://dev.azure.com/acme/shop/_git/shop",
            "ci_run_url": "https://dev.azure.com/acme/shop/_build/results?buildId=991",
            "ci_actor": "Dana",
        },
    ),
    "bitbucket-pipelines": (
        {
            "CI": "true",
            "BITBUCKET_BUILD_NUMBER": "31",
            "BITBUCKET_COMMIT": SHA,
            "BITBUCKET_TAG": "v9",
            "BITBUCKET_GIT_HTTP_ORIGIN": "http://bitbucket.org/acme/shop",
            "BITBUCKET_WORKSPACE": "acme",
            "BITBUCKET_REPO_SLUG": "shop",
            "BITBUCKET_STEP_TRIGGERER_UUID": "{8a1b2c3d-0000-4000-8000-000000000001}",
        },
        {"commit_sha": SHA, "tag": "v9", "version": "v9"},
        {
            "repository_url": "http://bitbucket.org/acme/shop",
            "ci_run_url": "https://bitbucket.org/acme/shop/pipelines/results/31",
            "ci_actor": "{8a1b2c3d-0000-4000-8000-000000000001}",
        },
    ),
}


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayServer]:
    """The module's relay."""
    yield from serve(tmp_path_factory)


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_ci_provider_fills_in_its_facts(
    relay: RelayServer, tmp_path: Path, provider: str
) -> None:
    """A job of the provider (its variables set, nothing else, no git) records the commit,
    refs, version, repository, run URL and actor it documents; nothing else is made up."""
    variables, fields, meta = PROVIDERS[provider]
    done = client(
        "deploy", "create", "-C", "ci", env=server_env(relay, tmp_path, **variables), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    record = deployment(relay, "ci", done.stdout.strip())
    top = ("commit_sha", "branch", "tag", "version")
    assert {k: record[k] for k in top if record.get(k) is not None} == fields
    assert record["meta_data"] == {"ci_provider": provider, **meta}
    assert "SECRET" not in str(record) and "s3cret" not in str(record)


def _git(repo: Path, *args: str, when: str | None = None) -> str:
    env = {"GIT_COMMITTER_DATE": when, "GIT_AUTHOR_DATE": when} if when else {}
    done = subprocess.run(
        ["git", "-c", "user.name=Erin", "-c", "user.email=erin@example.com", *args],
        cwd=repo,
        env={"PATH": "/usr/bin:/bin", "HOME": str(repo), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository on branch `trunk` with one commit tagged v2.5.0 and an origin
    whose URL carries a password."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "trunk")
    (path / "app.txt").write_text("hello\n")
    _git(path, "add", "app.txt")
    _git(path, "commit", "-q", "-m", "first", when="2026-02-03T04:05:06+02:00")
    _git(path, "tag", "v2.5.0")
    _git(path, "remote", "add", "origin", "https://deploy:hunter2@git.example.com/acme/app.git")
    return path


def test_git_gives_sha_branch_tag_and_commit_time(relay: RelayServer, repo: Path) -> None:
    """In a git checkout the deployment gets HEAD's SHA, branch, tag (also the version),
    repository URL without its password, author and commit time (UTC)."""
    sha = _git(repo, "rev-parse", "HEAD")
    env = server_env(relay, repo)
    done = client("deploy", "create", "-C", "gitapp", "--stage", "qa", env=env, cwd=repo)
    assert done.returncode == 0, done.stderr
    record = deployment(relay, "gitapp", done.stdout.strip())
    assert (record["commit_sha"], record["branch"], record["tag"]) == (sha, "trunk", "v2.5.0")
    assert record["version"] == "v2.5.0"
    meta: dict[str, Any] = record["meta_data"]
    assert meta["repository_url"] == "https://git.example.com/acme/app.git"
    assert meta["commit_author"] == "Erin <erin@example.com>"
    assert "hunter2" not in done.stdout + done.stderr + str(record)
    # committed_at is a deployment field; relay keeps it where it knows the field.
    shown = client("deploy", "create", "-C", "gitapp", "--dry-run", env=env, cwd=repo)
    assert dry_run_body(shown.stdout)["committed_at"] == "2026-02-03T02:05:06Z"
    if "committed_at" in record:
        assert record["committed_at"].startswith("2026-02-03T02:05:06")


def test_version_defaults_to_the_short_sha_without_a_tag(relay: RelayServer, repo: Path) -> None:
    """An untagged HEAD gives the 7-character SHA as the version."""
    _git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    sha = _git(repo, "rev-parse", "HEAD")
    done = client("deploy", "create", "-C", "gitapp", env=server_env(relay, repo), cwd=repo)
    assert done.returncode == 0, done.stderr
    record = deployment(relay, "gitapp", done.stdout.strip())
    assert (record["version"], record["tag"]) == (sha[:7], None)


def test_flags_win_over_git_and_ci(relay: RelayServer, repo: Path) -> None:
    """Explicit flags replace what git and the CI say."""
    variables = PROVIDERS["github-actions"][0]
    done = client(
        *("deploy", "create", "-C", "gitapp", "--version", "x1", "--branch", "hotfix"),
        *("--commit-sha", "feedface", "--tag", "manual", "--meta", "ci_actor=release-bot"),
        env=server_env(relay, repo, **variables),
        cwd=repo,
    )
    assert done.returncode == 0, done.stderr
    record = deployment(relay, "gitapp", done.stdout.strip())
    assert (record["version"], record["branch"], record["commit_sha"], record["tag"]) == (
        "x1",
        "hotfix",
        "feedface",
        "manual",
    )
    assert record["meta_data"]["ci_actor"] == "release-bot"


def test_no_version_and_no_git_is_a_usage_error(relay: RelayServer, tmp_path: Path) -> None:
    """Outside git and CI, a missing --version is refused before anything is sent."""
    done = client("deploy", "create", "-C", "nov", env=server_env(relay, tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "no version" in done.stderr


def test_a_branch_name_that_is_not_utf8_is_left_out(relay: RelayServer, repo: Path) -> None:
    """git allows any bytes in a branch name: one that is not UTF-8 is an unknown fact
    (left out, the rest still sent), not a crash that stops even a --soft deploy run."""
    subprocess.run(
        ["git", "checkout", "-q", "-b", b"caf\xe9"],
        cwd=repo,
        env={"PATH": "/usr/bin:/bin", "HOME": str(repo)},
        check=True,
    )
    env = server_env(relay, repo)
    done = client(
        *("deploy", "run", "-C", "latin", "--soft", "--", "echo", "DEPLOYED"), env=env, cwd=repo
    )
    assert (done.returncode, done.stdout) == (0, "DEPLOYED\n"), done.stderr
    (record,) = deployments(relay, "latin")
    assert record["branch"] is None
    assert (record["tag"], record["status"]) == ("v2.5.0", "success")
