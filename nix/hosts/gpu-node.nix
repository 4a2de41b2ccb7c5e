# A GPU node (RTX 5080): vLLM's OpenAI server, an evolve worker, and on node 1 also `evolve serve` and the
# scheduled `evolve start`; node 2 serves the embedding model and node 3 the reranker to every evolve process of
# the cluster (nix/README.md, "Shared model servers"). The kernel driver comes from the stable channel (this system); vLLM, PyTorch
# and the CUDA user space from nixpkgs-unstable's Python 3.12 (the flake's `vllm` and `evolve-cuda`).
{ config, lib, pkgs, self, gpuIndex, ... }:

let
  system = "x86_64-linux";
  head = gpuIndex == 1; # the node that serves users and runs the loop
  vllmPort = 8000;
  servedModel = "qwen2.5-7b-instruct";
  storage = "storage.cluster.internal";
  # the cluster's shared model servers: registry entries (evolve's models.yaml fields) every node gets
  embedding = { node = 2; port = 8001; name = "bge-m3@gpu2"; served = "bge-m3"; };
  reranker = { node = 3; port = 8002; name = "bge-reranker-v2-m3@gpu3"; served = "bge-reranker-v2-m3"; };
  url = server: "http://gpu-node-${toString server.node}.cluster.internal:${toString server.port}/v1";
  entry = server: kind: protocol: {
    name = server.name; inherit kind protocol; base_url = url server; model = server.served; licence = "MIT";
    languages = "multilingual"; api_key_env = "EVOLVE_MODEL_API_KEY";
  };
  sharedServer = server: options: {
    enable = true;
    package = self.packages.${system}.vllm;
    model = "/var/lib/models/${server.served}"; # copied by an admin; nothing is downloaded
    servedName = server.served;
    registryName = server.name;
    advertiseUrl = url server;
    port = server.port;
    licence = "MIT";
    gpuMemoryUtilization = "0.20"; # beside the node's LLM (0.55) and its worker
  } // options;
in
{
  networking.hostName = "gpu-node-${toString gpuIndex}";
  system.stateVersion = "25.05";
  nixpkgs.config.allowUnfree = true; # the NVIDIA driver

  # --- GPU: the driver from the stable channel; Blackwell (RTX 50xx) needs the open kernel modules ---
  services.xserver.videoDrivers = [ "nvidia" ];
  hardware.graphics.enable = true;
  hardware.nvidia = {
    open = true;
    package = config.boot.kernelPackages.nvidiaPackages.stable;
    nvidiaPersistenced = true;
  };

  # --- vLLM: generator, judge and proposer for evolve, as an OpenAI-compatible server ---
  users.users.vllm = { isSystemUser = true; group = "vllm"; extraGroups = [ "video" ]; };
  users.groups.vllm = { };
  systemd.services.vllm = {
    description = "vLLM OpenAI-compatible server (${servedModel})";
    wantedBy = [ "multi-user.target" ];
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    environment = {
      HF_HUB_OFFLINE = "1"; # weights are copied to /var/lib/vllm/models by an admin, never downloaded here
      TRANSFORMERS_OFFLINE = "1";
      VLLM_NO_USAGE_STATS = "1";
      DO_NOT_TRACK = "1";
      HOME = "/var/lib/vllm";
      LD_LIBRARY_PATH = "/run/opengl-driver/lib"; # libcuda from the driver
    };
    serviceConfig = {
      User = "vllm";
      Group = "vllm";
      StateDirectory = "vllm";
      ExecStart = lib.escapeShellArgs [
        "${self.packages.${system}.vllm}/bin/python" "-m" "vllm.entrypoints.openai.api_server"
        "--model" "/var/lib/vllm/models/${servedModel}" "--served-model-name" servedModel
        "--host" "127.0.0.1" "--port" (toString vllmPort)
        "--gpu-memory-utilization" "0.55" # 16 GB card: leave room for the evolve worker's embeddings
        "--max-model-len" "8192"
      ];
      Restart = "always";
      RestartSec = 10;
      NoNewPrivileges = true;
      ProtectSystem = "strict";
      ReadWritePaths = [ "/var/lib/vllm" ];
      ProtectHome = true;
      PrivateTmp = true;
      DeviceAllow = [ "char-nvidia-frontend rw" "char-nvidia-uvm rw" "char-nvidia-caps rw" ];
      CapabilityBoundingSet = "";
      RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
    };
  };

  # --- evolve ---
  services.evolve = {
    enable = true;
    package = self.packages.${system}.evolve-cuda;
    llm.baseUrl = "http://127.0.0.1:${toString vllmPort}/v1"; # each node judges with its own vLLM
    llm.model = servedModel;
    trackingUri = "http://${storage}:5000";
    # EVOLVE_OPTUNA_STORAGE=postgresql://evolve:PASSWORD@storage.cluster.internal:5432/optuna
    environmentFile = "/run/secrets/evolve.env";
    policyFile = ./policy.yaml; # the human-set guardrails, read-only in the store
    readOnlyPaths = [ "/srv/knowledge" ]; # evaluation sets and the served corpus, synced to every node

    worker = { enable = true; cudaDevice = 0; };

    # one embedding server (node 2) and one reranker server (node 3), shared by every node's evolve processes
    modelApiKeyFile = "/run/secrets/model-api-key";
    embeddingServer = lib.mkIf (gpuIndex == embedding.node) (sharedServer embedding { dim = 1024; });
    rerankerServer = lib.mkIf (gpuIndex == reranker.node) (sharedServer reranker { });
    models = lib.optional (gpuIndex != embedding.node) (entry embedding "embedder" "openai")
      ++ lib.optional (gpuIndex != reranker.node) (entry reranker "reranker" "rerank");

    serve = lib.mkIf head {
      enable = true;
      corpus = "/srv/knowledge/corpus.jsonl";
      host = "0.0.0.0";
      apiTokenFile = "/run/secrets/evolve-api-token";
      openFirewall = true;
    };

    start = lib.mkIf head {
      enable = true;
      evalset = "/srv/knowledge/evalsets/helpdesk";
      failureSet = "/var/lib/evolve/failures";
      budget = "48h";
      onCalendar = "Fri *-*-* 20:00:00"; # over the weekend; reviewers approve on Monday
    };
  };

  # turn the week's bad ratings into a failure set before each run
  systemd.services.evolve-failures = lib.mkIf head {
    description = "evolve feedback failures: the week's bad ratings as an evaluation set";
    before = [ "evolve-start.service" ];
    requiredBy = [ "evolve-start.service" ];
    environment.EVOLVE_PROJECT_DIR = "/var/lib/evolve";
    serviceConfig = {
      Type = "oneshot";
      User = "evolve";
      Group = "evolve";
      ExecStart = "${self.packages.${system}.evolve-cuda}/bin/evolve feedback failures --out /var/lib/evolve/failures --project-dir /var/lib/evolve";
      NoNewPrivileges = true;
      ProtectSystem = "strict";
      ReadWritePaths = [ "/var/lib/evolve" ];
      ProtectHome = true;
    };
  };
}
