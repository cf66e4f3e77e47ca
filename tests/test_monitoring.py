"""The shipped monitoring: Prometheus alert rules that promtool accepts and whose unit tests
pass, and a Grafana dashboard that is valid JSON; both query only metrics imgbot exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from imgbot.bucket.usage import Usage
from imgbot.service.metrics import Metrics
from tests.processes import ROOT

RULES = ROOT / "infra/prometheus/imgbot-alerts.yml"
RULE_TESTS = ROOT / "infra/prometheus/imgbot-alerts.test.yml"
DASHBOARD = ROOT / "infra/grafana/imgbot-dashboard.json"
_METRIC = re.compile(r"\bimgbot_[a-z_]+")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed; scripts/system-deps.sh installs it (prometheus)")
    return path


def exported_metrics() -> set[str]:
    """Every series name imgbot's metrics registry can export (labelled ones included)."""
    metrics = Metrics()
    metrics.storage_usage(Usage("b", "imagegen/", 1, 2, 3))  # labelled gauges appear once set
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def test_promtool_accepts_the_alert_rules() -> None:
    """`promtool check rules` accepts infra/prometheus/imgbot-alerts.yml."""
    done = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_alert_rule_unit_tests_pass() -> None:
    """`promtool test rules`: storage failing, bot down, error rate and usage growth fire when
    (and only when) they should."""
    done = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alerts_cover_what_an_operator_must_hear_about() -> None:
    """The rules name bot down, storage failing, state store down, error rate and usage."""
    text = RULES.read_text(encoding="utf-8")
    alerts = set(re.findall(r"- alert: (\w+)", text))
    assert {
        "ImgbotDown",
        "ImgbotStorageFailing",
        "ImgbotStateStoreDown",
        "ImgbotErrorRate",
        "ImgbotStorageUsageHigh",
        "ImgbotStorageUsageGrowing",
    } <= alerts


@pytest.mark.parametrize("path", [RULES, DASHBOARD], ids=lambda p: Path(p).name)
def test_every_queried_metric_is_exported(path: Path) -> None:
    """Each imgbot_* name the rules or the dashboard query is one imgbot exports."""
    queried = set(_METRIC.findall(path.read_text(encoding="utf-8")))
    assert queried, "no imgbot metric queried"
    assert queried - exported_metrics() == set()


def test_dashboard_is_grafana_json() -> None:
    """The dashboard parses as JSON, has panels each with a Prometheus query, and a datasource
    variable so it imports into any Grafana."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] == "imgbot" and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
    [variable] = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    usage = [p for p in dashboard["panels"] if "imgbot_storage_prefix_bytes" in json.dumps(p)]
    assert usage, "the dashboard shows storage usage"
