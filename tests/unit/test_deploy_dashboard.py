"""The Grafana dashboard and Prometheus config in deploy/ ask only for what kafkaboot
exports, and the compose file mounts them where Grafana and Prometheus look."""

import json
import re
from pathlib import Path

import yaml
from prometheus_client.metrics_core import Metric

from kafkaboot.observability.export import KafkaBootCollector
from kafkaboot.observability.lag import LagProbe
from kafkaboot.observability.metrics import Series, TemplateMetrics

DEPLOY = Path(__file__).parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "central-consumer.json"
_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",), "gauge": ("",)}


def exported_names() -> set[str]:
    """Every sample name the collector can export, from its families' names and types."""
    collector = KafkaBootCollector(Series(), TemplateMetrics(), list, LagProbe())
    families: list[Metric] = list(collector.collect())
    return {f.name + suffix for f in families for suffix in _SUFFIXES[f.type]}


def queries(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        found += [node["query"]["query"]] if isinstance(node.get("query"), dict) else []
        return found + [q for value in node.values() for q in queries(value)]
    if isinstance(node, list):
        return [q for value in node for q in queries(value)]
    return []


def test_every_metric_in_the_dashboard_is_exported():
    dashboard = json.loads(DASHBOARD.read_text())
    used = {n for q in queries(dashboard) for n in re.findall(r"\bkafkaboot_[a-z_]+", q)}
    assert len(used) >= 8
    assert used <= exported_names(), used - exported_names()


def test_the_dashboard_has_the_panels_operators_need():
    titles = {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    for wanted in ("Records handled", "p99", "Lag per partition (records)", "(seconds)", "Errors"):
        assert any(wanted in title for title in titles), wanted
    assert any("Dead letters" in title for title in titles)


def test_compose_mounts_prometheus_and_grafana_provisioning():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    prometheus, grafana = compose["prometheus"], compose["grafana"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/kafkaboot.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    scrape = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: job for job in scrape["scrape_configs"]}
    assert targets["central-consumer"]["metrics_path"] == "/actuator/prometheus"
    assert targets["central-consumer"]["static_configs"][0]["targets"] == ["consumer:8090"]
