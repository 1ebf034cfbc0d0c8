"""Where `deploy start` leaves the deployment's id for `deploy finish` to find.

- `relay-deployment.env` in the working directory (dotenv: `RELAY_DEPLOYMENT_ID=…`,
  `RELAY_COMPONENT=…`); GitLab can pass it to later jobs as a `dotenv` report;
- `$GITHUB_ENV` (the same two variables, for the later steps of a GitHub Actions job)
  and `$GITHUB_OUTPUT` (`deployment_id`), when those files are given.

`finish` reads `--id`, else the file, else `$RELAY_DEPLOYMENT_ID`, and removes the file
once the deployment ended, so a workspace that outlives the job is never misled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "relay-deployment.env"
ID_VAR = "RELAY_DEPLOYMENT_ID"
COMPONENT_VAR = "RELAY_COMPONENT"


@dataclass(frozen=True)
class Started:
    """A deployment in progress: its component and id."""

    component: str
    id: str


def _lines(started: Started) -> str:
    return f"{ID_VAR}={started.id}\n{COMPONENT_VAR}={started.component}\n"


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(text)


def leave(started: Started, file: Path, env: Mapping[str, str]) -> list[str]:
    """Write the id everywhere a later step looks; the places written, for the user."""
    file.write_text(_lines(started), encoding="utf-8")
    places = [str(file)]
    if github_env := env.get("GITHUB_ENV"):
        _append(github_env, _lines(started))
        places.append("$GITHUB_ENV")
    if github_output := env.get("GITHUB_OUTPUT"):
        _append(github_output, f"deployment_id={started.id}\n")
        places.append("$GITHUB_OUTPUT")
    return places


def _read_file(file: Path) -> dict[str, str]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            found[name.strip()] = value.strip()
    return found


def find(
    explicit_id: str | None,
    explicit_component: str | None,
    file: Path,
    env: Mapping[str, str],
) -> Started | None:
    """The deployment to finish: flags first, then the file, then the environment."""
    stored = _read_file(file)
    ident = explicit_id or stored.get(ID_VAR) or env.get(ID_VAR)
    component = explicit_component or stored.get(COMPONENT_VAR) or env.get(COMPONENT_VAR)
    if not ident or not component:
        return None
    return Started(component, ident)


def forget(started: Started, file: Path) -> None:
    """Remove the file if it names this deployment."""
    if _read_file(file).get(ID_VAR) == started.id:
        file.unlink(missing_ok=True)
