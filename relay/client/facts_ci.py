"""Facts about the CI run, read from each provider's documented environment variables.

Every provider gives: `ci_provider`, and when its variables are set `commit_sha`,
`branch`, `tag`, `repository_url`, `ci_run_url` and `ci_actor` (the README lists the
variables). Nothing is guessed: a variable that is absent or empty gives no fact."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from relay.client.facts_git import public_url, utc_iso

Env = Mapping[str, str]
Facts = dict[str, str]


def _pick(env: Env, *names: str) -> str | None:
    """The first of `names` set to a non-empty value."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _put(facts: Facts, key: str, value: str | None) -> None:
    if value:
        facts[key] = value


def _repository(env: Env, name: str) -> str | None:
    """The clone URL in `name`, without the credentials CI clones often carry."""
    url = _pick(env, name)
    return public_url(url) if url else None


def github(env: Env) -> Facts:
    """GitHub Actions."""
    facts: Facts = {}
    _put(facts, "commit_sha", _pick(env, "GITHUB_SHA"))
    ref_type, ref_name = _pick(env, "GITHUB_REF_TYPE"), _pick(env, "GITHUB_REF_NAME")
    if ref_type == "tag":
        _put(facts, "tag", ref_name)
    # A pull request's ref is `123/merge`; its branch is the head ref.
    branch = _pick(env, "GITHUB_HEAD_REF") or (ref_name if ref_type == "branch" else None)
    _put(facts, "branch", branch)
    server, repo = _pick(env, "GITHUB_SERVER_URL"), _pick(env, "GITHUB_REPOSITORY")
    if server and repo:
        repository_url = facts["repository_url"] = f"{server.rstrip('/')}/{repo}"
        if run := _pick(env, "GITHUB_RUN_ID"):
            url = f"{repository_url}/actions/runs/{run}"
            if attempt := _pick(env, "GITHUB_RUN_ATTEMPT"):
                url += f"/attempts/{attempt}"
            facts["ci_run_url"] = url
    _put(facts, "ci_actor", _pick(env, "GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"))
    return facts


def gitlab(env: Env) -> Facts:
    """GitLab CI/CD (CI_REPOSITORY_URL is not read: it embeds the job token)."""
    facts: Facts = {}
    _put(facts, "commit_sha", _pick(env, "CI_COMMIT_SHA"))
    _put(facts, "tag", _pick(env, "CI_COMMIT_TAG"))
    _put(facts, "branch", _pick(env, "CI_COMMIT_BRANCH", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"))
    _put(facts, "repository_url", _pick(env, "CI_PROJECT_URL"))
    _put(facts, "ci_run_url", _pick(env, "CI_JOB_URL", "CI_PIPELINE_URL"))
    _put(facts, "ci_actor", _pick(env, "GITLAB_USER_LOGIN"))
    if (stamp := _pick(env, "CI_COMMIT_TIMESTAMP")) and (when := utc_iso(stamp)):
        facts["committed_at"] = when
    _put(facts, "commit_author", _pick(env, "CI_COMMIT_AUTHOR"))
    return facts


def circleci(env: Env) -> Facts:
    """CircleCI."""
    facts: Facts = {}
    _put(facts, "commit_sha", _pick(env, "CIRCLE_SHA1"))
    _put(facts, "branch", _pick(env, "CIRCLE_BRANCH"))
    _put(facts, "tag", _pick(env, "CIRCLE_TAG"))
    _put(facts, "repository_url", _repository(env, "CIRCLE_REPOSITORY_URL"))
    _put(facts, "ci_run_url", _pick(env, "CIRCLE_BUILD_URL"))
    _put(facts, "ci_actor", _pick(env, "CIRCLE_USERNAME"))
    return facts


def jenkins(env: Env) -> Facts:
    """Jenkins (the Git plugin's variables; BRANCH_NAME/TAG_NAME in multibranch jobs)."""
    facts: Facts = {}
    _put(facts, "commit_sha", _pick(env, "GIT_COMMIT"))
    tag = _pick(env, "TAG_NAME")
    # The Git plugin names the remote (`origin/main`); in a tag build BRANCH_NAME is the tag.
    branch = _pick(env, "BRANCH_NAME", "GIT_BRANCH")
    if branch and not tag:
        facts["branch"] = branch.removeprefix("origin/")
    _put(facts, "tag", tag)
    _put(facts, "repository_url", _repository(env, "GIT_URL"))
    _put(facts, "ci_run_url", _pick(env, "BUILD_URL"))
    _put(facts, "ci_actor", _pick(env, "BUILD_USER_ID", "CHANGE_AUTHOR"))
    return facts


def buildkite(env: Env) -> Facts:
    """Buildkite."""
    facts: Facts = {}
    commit = _pick(env, "BUILDKITE_COMMIT")
    _put(facts, "commit_sha", commit if commit != "HEAD" else None)  # `HEAD` = not resolved yet
    _put(facts, "branch", _pick(env, "BUILDKITE_BRANCH"))
    _put(facts, "tag", _pick(env, "BUILDKITE_TAG"))
    _put(facts, "repository_url", _repository(env, "BUILDKITE_REPO"))
    _put(facts, "ci_run_url", _pick(env, "BUILDKITE_BUILD_URL"))
    _put(facts, "ci_actor", _pick(env, "BUILDKITE_BUILD_CREATOR"))
    return facts


def azure(env: Env) -> Facts:
    """Azure Pipelines."""
    facts: Facts = {}
    _put(facts, "commit_sha", _pick(env, "BUILD_SOURCEVERSION"))
    ref = _pick(env, "SYSTEM_PULLREQUEST_SOURCEBRANCH", "BUILD_SOURCEBRANCH") or ""
    if ref.startswith("refs/tags/"):
        facts["tag"] = ref.removeprefix("refs/tags/")
    elif ref.startswith("refs/heads/"):
        facts["branch"] = ref.removeprefix("refs/heads/")
    _put(facts, "repository_url", _repository(env, "BUILD_REPOSITORY_URI"))
    collection, project = _pick(env, "SYSTEM_COLLECTIONURI"), _pick(env, "SYSTEM_TEAMPROJECT")
    build_id = _pick(env, "BUILD_BUILDID")
    if collection and project and build_id:
        base = collection if collection.endswith("/") else collection + "/"
        facts["ci_run_url"] = f"{base}{project}/_build/results?buildId={build_id}"
    _put(facts, "ci_actor", _pick(env, "BUILD_REQUESTEDFOR"))
    return facts


def bitbucket(env: Env) -> Facts:
    """Bitbucket Pipelines."""
    facts: Facts = {}
    _put(facts, "commit_sha", _pick(env, "BITBUCKET_COMMIT"))
    _put(facts, "branch", _pick(env, "BITBUCKET_BRANCH"))
    _put(facts, "tag", _pick(env, "BITBUCKET_TAG"))
    _put(facts, "repository_url", _repository(env, "BITBUCKET_GIT_HTTP_ORIGIN"))
    workspace, slug = _pick(env, "BITBUCKET_WORKSPACE"), _pick(env, "BITBUCKET_REPO_SLUG")
    number = _pick(env, "BITBUCKET_BUILD_NUMBER")
    if workspace and slug and number:
        facts["ci_run_url"] = f"https://bitbucket.org/{workspace}/{slug}/pipelines/results/{number}"
    _put(facts, "ci_actor", _pick(env, "BITBUCKET_STEP_TRIGGERER_UUID"))
    return facts


# (name, detector variable, reader): the detector is what the provider documents as
# "always set in a job". Checked in order; the first present wins.
PROVIDERS: tuple[tuple[str, str, Callable[[Env], Facts]], ...] = (
    ("github-actions", "GITHUB_ACTIONS", github),
    ("gitlab-ci", "GITLAB_CI", gitlab),
    ("circleci", "CIRCLECI", circleci),
    ("buildkite", "BUILDKITE", buildkite),
    ("azure-pipelines", "TF_BUILD", azure),
    ("bitbucket-pipelines", "BITBUCKET_BUILD_NUMBER", bitbucket),
    ("jenkins", "JENKINS_URL", jenkins),
)


def ci_facts(env: Env) -> Facts:
    """The facts of the CI provider this process runs under ({} outside CI)."""
    for name, detector, read in PROVIDERS:
        if _pick(env, detector):
            return {"ci_provider": name, **read(env)}
    return {}
