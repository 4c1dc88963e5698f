"""What the deployment files are checked with: the repository's files read as YAML, and a service's own
settings class asked, in a process of its own, whether an environment starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("whatsapp-gateway", "ai-agent-service")
# Kept from the test's environment: where programs and packages are, not any service setting.
KEPT = ("PATH", "HOME", "PYTHONPATH")
SETTINGS_CHECK = """
import json
from config.settings import Settings
from service_kit.settings import ConfigurationError, load_settings

required = sorted(name for name, field in Settings.model_fields.items() if field.is_required())
try:
    load_settings(Settings, _env_file=None)
    errors = []
except ConfigurationError as exc:
    errors = exc.lines
print(json.dumps({"required": required, "errors": errors}))
"""


def load_yaml(name: str) -> Any:
    return YAML(typ="safe").load((ROOT / name).read_text(encoding="utf-8"))


def settings_check(service: str, env: dict[str, str]) -> dict[str, list[str]]:
    """The service's required settings, and the configuration errors it would stop with under `env`."""
    kept = {key: value for key, value in os.environ.items() if key in KEPT}
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_CHECK],
        cwd=ROOT / service,
        env={**kept, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def image_command(dockerfile: Path) -> str:
    """What a container of the image runs: the Dockerfile's last CMD."""
    commands = [
        line for line in dockerfile.read_text(encoding="utf-8").splitlines() if line.startswith("CMD ")
    ]
    return commands[-1].removeprefix("CMD ")
