"""nix/: every file parses, and the NixOS module evaluates (with a stub lib: nixpkgs cannot be fetched here)
to documented options and hardened units. Needs Debian's nix-bin (installed by .ci/run)."""

import json
import shutil
import subprocess

import pytest

from helpers import REPO

NIX_FILES = sorted((REPO / "nix").rglob("*.nix"))

pytestmark = pytest.mark.skipif(shutil.which("nix-instantiate") is None,
                                reason="nix-instantiate not installed (apt-get install nix-bin)")


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_nix_file_parses(path):
    done = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_syntax_error_is_caught(tmp_path):
    broken = tmp_path / "broken.nix"
    broken.write_text("{ services.evolve = { enable = true; ")
    done = subprocess.run(["nix-instantiate", "--parse", str(broken)], capture_output=True, text=True)
    assert done.returncode != 0 and "broken.nix" in done.stderr


@pytest.fixture(scope="module")
def module():
    done = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", str(REPO / "nix/checks/module-eval.nix")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_option_is_described_and_in_the_readme(module):
    readme = (REPO / "nix" / "README.md").read_text()
    names = [o["name"] for o in module["options"]]
    for needed in ("projectDir", "llm.baseUrl", "trackingUri", "optunaStorage", "policyFile", "start.budget",
                   "start.onCalendar", "worker.enable", "serve.enable"):
        assert f"services.evolve.{needed}" in names
    for option in module["options"]:
        assert option["description"] and len(option["description"]) > 20, option["name"]
        assert f"`{option['name']}`" in readme, f"{option['name']} is not documented in nix/README.md"


def test_units_run_the_cli_with_the_settings_and_a_timer(module):
    config = module["config"]
    services = config["systemd"]["services"]
    assert {"evolve-serve", "evolve-worker", "evolve-start", "mlflow"} <= set(services)
    assert config["systemd"]["timers"]["evolve-start"]["timerConfig"]["OnCalendar"]
    start = services["evolve-start"]["serviceConfig"]
    assert "evolve' 'start' '--budget'" in start["ExecStart"]
    assert "evolve stop" in start["ExecStop"] and start["Restart"] == "on-failure"
    assert "'worker' '--follow'" in services["evolve-worker"]["serviceConfig"]["ExecStart"]
    assert services["evolve-serve"]["serviceConfig"]["LimitNOFILE"] >= 4096  # connections before the token check
    environment = services["evolve-worker"]["environment"]
    for variable in ("EVOLVE_LLM_BASE_URL", "MLFLOW_TRACKING_URI", "EVOLVE_OPTUNA_STORAGE", "EVOLVE_POLICY",
                     "EVOLVE_PROJECT_DIR"):
        assert variable in environment
    assert environment["HF_HUB_OFFLINE"] == "1"


def test_every_evolve_unit_is_hardened(module):
    for name, unit in module["config"]["systemd"]["services"].items():
        if not name.startswith("evolve-"):
            continue
        service = unit["serviceConfig"]
        assert service["User"] == "evolve" and service["NoNewPrivileges"] is True, name
        assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == ["/var/lib/evolve"], name
        assert service["CapabilityBoundingSet"] == "" and service["ProtectHome"] is True, name
        gpu = "CUDA_VISIBLE_DEVICES" in unit["environment"]
        assert service["PrivateDevices"] is (not gpu), name
        assert all(d.startswith("char-nvidia") for d in service["DeviceAllow"]), name


def test_the_mlflow_unit_has_the_same_sandbox_with_its_own_state(module):
    service = module["config"]["systemd"]["services"]["mlflow"]["serviceConfig"]
    assert service["User"] == "mlflow" and service["NoNewPrivileges"] is True
    assert service["ProtectSystem"] == "strict" and service["PrivateDevices"] is True
    assert service["ReadWritePaths"] == ["/var/lib/mlflow/artifacts", "/var/lib/mlflow"]
    assert service["CapabilityBoundingSet"] == "" and service["ProtectKernelModules"] is True


def test_model_servers_run_vllm_in_the_sandbox_and_the_registry_points_evolve_at_them(module):
    """The embedding and reranker servers are hardened vLLM units; the registry file they write is one evolve's own
    validator accepts, with the key named, never written, and every evolve unit reads it."""
    from pipelines.remote import ModelRegistryFile

    config = module["config"]
    services = config["systemd"]["services"]
    for unit, port in (("vllm-embedding", "8001"), ("vllm-reranker", "8002")):
        service = services[unit]["serviceConfig"]
        command = service["ExecStart"]
        assert "'vllm.entrypoints.openai.api_server'" in command and "'--runner' 'pooling'" in command
        assert f"'--port' '{port}'" in command and "'--gpu-memory-utilization' '0.30'" in command
        assert 'export VLLM_API_KEY="$(cat "$CREDENTIALS_DIRECTORY/model-api-key")"' in command
        assert service["LoadCredential"] == ["model-api-key:/run/secrets/model-api-key"]
        assert service["User"] == "vllm" and service["NoNewPrivileges"] is True and service["PrivateDevices"] is False
        assert all(d.startswith("char-nvidia") for d in service["DeviceAllow"])
        assert service["CapabilityBoundingSet"] == "" and service["ProtectSystem"] == "strict"
    registry = ModelRegistryFile.model_validate_json(config["environment"]["etc"]["evolve/models.yaml"]["text"])
    served = {m.name: m for m in registry.models}
    assert served["bge-m3@gpu"].kind == "embedder" and served["bge-m3@gpu"].protocol == "openai"
    assert served["bge-reranker-v2-m3@gpu"].protocol == "rerank"
    assert served["bge-m3@gpu"].base_url == "http://gpu-node-2.cluster.internal:8001/v1"
    assert served["bge-m3@gpu"].api_key_env == "EVOLVE_MODEL_API_KEY" and served["bge-m3@gpu2"].api_key_env is None
    for name, unit in services.items():
        if name.startswith("evolve-"):
            assert unit["environment"]["EVOLVE_MODEL_REGISTRY"] == "/etc/evolve/models.yaml", name
            assert "model-api-key:/run/secrets/model-api-key" in unit["serviceConfig"]["LoadCredential"], name
    assert set(config["networking"]["firewall"]["allowedTCPPorts"]) >= {8001, 8002}
