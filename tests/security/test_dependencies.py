"""Dependency audit: pip-audit over the installed environment against PyPI's advisory database.

A known vulnerability in any installed package fails with the package, its version, the advisories and the
versions that fix them. The advisory database is a service on the internet, not one this project runs:
where it cannot be reached (a machine with only a package mirror), the test skips and says so, whatever
MHOSPITAL_REQUIRE_SERVICES asks of local services.
"""

import json
import subprocess
import sys

import pytest


def test_no_installed_package_has_a_known_vulnerability() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--skip-editable", "--format", "json", "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pip-audit gave no report: {run.stderr.strip()[-500:]}")
    dependencies = report["dependencies"]
    audited = [dependency for dependency in dependencies if "skip_reason" not in dependency]
    if not audited:
        pytest.skip(
            "PyPI's advisory database could not be reached from this machine: no package was audited "
            f"({dependencies[0]['skip_reason'] if dependencies else run.stderr.strip()[-200:]})"
        )
    vulnerable = [
        f"{dependency['name']} {dependency['version']}: "
        + ", ".join(f"{vuln['id']} (fixed in {', '.join(vuln['fix_versions']) or 'no release yet'})" for vuln in vulns)
        for dependency in audited
        if (vulns := dependency.get("vulns"))
    ]
    assert not vulnerable, "Installed packages with known vulnerabilities: " + "; ".join(vulnerable)
    unaudited = [dependency["name"] for dependency in dependencies if "skip_reason" in dependency]
    assert not unaudited, f"Not audited (not found on PyPI): {', '.join(unaudited)}"
