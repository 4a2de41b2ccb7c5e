# NixOS module: services.evolve
#
# One module for every node; each host turns on the parts it runs:
#   serve    `evolve serve`: the champion pipeline behind /search /answer /feedback (always on)
#   worker   `evolve worker --follow`: pulls trials of the loop's studies from the shared Optuna storage
#   start    `evolve start --budget ...` on a timer (nightly / weekend runs); resumes itself after a crash
#   mlflow   the MLflow tracking server (storage node)
# Approval stays with people: nothing here runs `evolve approve`.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkIf mkMerge mkOption optional optionalAttrs optionalString types;
  cfg = config.services.evolve;
  evolve = "${cfg.package}/bin/evolve";

  # settings every evolve process reads from its environment (the CLI's envvars)
  environment = {
    EVOLVE_PROJECT_DIR = cfg.projectDir;
    EVOLVE_EMBEDDING_CACHE = "${cfg.projectDir}/.evolve/cache/embeddings.sqlite";
    HF_HUB_OFFLINE = "1"; # models come inside packages; nothing is downloaded at run time
    TRANSFORMERS_OFFLINE = "1";
    MLFLOW_DISABLE_TELEMETRY = "true";
    DO_NOT_TRACK = "true";
    HOME = cfg.projectDir;
  }
  // optionalAttrs (cfg.llm.baseUrl != null) { EVOLVE_LLM_BASE_URL = cfg.llm.baseUrl; }
  // optionalAttrs (cfg.llm.model != null) { EVOLVE_LLM_MODEL = cfg.llm.model; }
  // optionalAttrs (cfg.trackingUri != null) { MLFLOW_TRACKING_URI = cfg.trackingUri; }
  // optionalAttrs (cfg.optunaStorage != null) { EVOLVE_OPTUNA_STORAGE = cfg.optunaStorage; }
  // optionalAttrs (cfg.policyFile != null) { EVOLVE_POLICY = toString cfg.policyFile; }
  // optionalAttrs (registryEntries != [ ]) { EVOLVE_MODEL_REGISTRY = "/etc/evolve/models.yaml"; };

  # --- model servers (vLLM's pooling/score APIs) and the registry entries that point evolve at them ---
  servers = [
    { part = "embeddingServer"; unit = "vllm-embedding"; kind = "embedder"; protocol = "openai"; task = "/v1/embeddings"; }
    { part = "rerankerServer"; unit = "vllm-reranker"; kind = "reranker"; protocol = "rerank"; task = "/v1/rerank and /score"; }
  ];
  enabledServers = builtins.filter (s: cfg.${s.part}.enable) servers;
  # one registry entry (pipelines/remote/registry.py's fields) per model server on this node, then cfg.models
  localEntry = s: let server = cfg.${s.part}; in {
    name = server.registryName; kind = s.kind; protocol = s.protocol; base_url = server.advertiseUrl;
    model = server.servedName; licence = server.licence; languages = server.languages;
    batch_size = server.batchSize; concurrency = server.concurrency; revision = server.revision;
  } // optionalAttrs (server.dim != null) { dim = server.dim; }
    // optionalAttrs (cfg.modelApiKeyFile != null) { api_key_env = "EVOLVE_MODEL_API_KEY"; };
  registryEntries = map localEntry enabledServers ++ cfg.models;

  # secrets are read from files at start (systemd credentials), never put in the Nix store
  withSecrets = name: command: pkgs.writeShellScript "evolve-${name}" ''
    set -eu
    if [ -n "''${CREDENTIALS_DIRECTORY:-}" ]; then
      [ -f "$CREDENTIALS_DIRECTORY/api-token" ] && export EVOLVE_API_TOKEN="$(cat "$CREDENTIALS_DIRECTORY/api-token")"
      [ -f "$CREDENTIALS_DIRECTORY/llm-api-key" ] && export EVOLVE_LLM_API_KEY_FILE="$CREDENTIALS_DIRECTORY/llm-api-key"
      [ -f "$CREDENTIALS_DIRECTORY/model-api-key" ] && export EVOLVE_MODEL_API_KEY="$(cat "$CREDENTIALS_DIRECTORY/model-api-key")"
    fi
    exec ${command}
  '';

  credentials = optional (cfg.serve.apiTokenFile != null) "api-token:${cfg.serve.apiTokenFile}"
    ++ optional (cfg.llm.apiKeyFile != null) "llm-api-key:${cfg.llm.apiKeyFile}"
    ++ optional (cfg.modelApiKeyFile != null) "model-api-key:${cfg.modelApiKeyFile}";

  # a vLLM pooling server (embeddings or scores) for one GPU of this node; the key, if any, as VLLM_API_KEY
  vllmUnit = s: let server = cfg.${s.part}; in {
    description = "vLLM ${s.task} server for evolve (${server.servedName})";
    wantedBy = [ "multi-user.target" ];
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    environment = {
      HF_HUB_OFFLINE = "1"; # weights are copied to the node by an admin, never downloaded here
      TRANSFORMERS_OFFLINE = "1";
      VLLM_NO_USAGE_STATS = "1";
      DO_NOT_TRACK = "1";
      HOME = "/var/lib/${s.unit}";
      LD_LIBRARY_PATH = "/run/opengl-driver/lib";
      CUDA_VISIBLE_DEVICES = toString server.cudaDevice;
    };
    serviceConfig = sandbox { writable = [ "/var/lib/${s.unit}" ]; gpu = true; } // {
      User = "vllm";
      Group = "vllm";
      StateDirectory = s.unit;
      ReadOnlyPaths = [ server.model ];
      LoadCredential = optional (cfg.modelApiKeyFile != null) "model-api-key:${cfg.modelApiKeyFile}";
      ExecStart = pkgs.writeShellScript "${s.unit}" ''
        set -eu
        if [ -f "''${CREDENTIALS_DIRECTORY:-/nonexistent}/model-api-key" ]; then
          export VLLM_API_KEY="$(cat "$CREDENTIALS_DIRECTORY/model-api-key")"
        fi
        exec ${lib.escapeShellArgs ([
          "${server.package}/bin/python" "-m" "vllm.entrypoints.openai.api_server"
          "--model" server.model "--served-model-name" server.servedName "--runner" "pooling"
          "--host" server.host "--port" (toString server.port)
          "--gpu-memory-utilization" server.gpuMemoryUtilization "--max-model-len" (toString server.maxModelLen)
        ] ++ server.extraArgs)}
      '';
      Restart = "always";
      RestartSec = 10;
    };
  };

  serverOptions = { what, port, task, example }: {
    enable = mkEnableOption "a vLLM ${what} server on this node (vLLM `--runner pooling`: ${task}), shared by every evolve process of the cluster";
    package = mkOption {
      type = types.package;
      description = "Python environment with vLLM (the flake's `vllm`); its `python -m vllm.entrypoints.openai.api_server` runs.";
    };
    model = mkOption {
      type = types.str;
      example = example;
      description = "Directory of the model's weights on this node (copied there by an admin; nothing is downloaded).";
    };
    servedName = mkOption {
      type = types.str;
      example = builtins.baseNameOf example;
      description = "The model id vLLM serves it as (--served-model-name) and the registry entry sends with each request.";
    };
    registryName = mkOption {
      type = types.str;
      example = "${builtins.baseNameOf example}@gpu";
      description = "The name configs, search spaces and the proposer use for it (its entry in the generated models.yaml).";
    };
    advertiseUrl = mkOption {
      type = types.str;
      example = "http://gpu-node-2.cluster.internal:${toString port}/v1";
      description = "The URL evolve on every node reaches this server at (written into the registry entry).";
    };
    host = mkOption {
      type = types.str;
      default = "0.0.0.0";
      description = "Bind address of the server (the cluster network; set modelApiKeyFile when it is not loopback).";
    };
    port = mkOption {
      type = types.port;
      default = port;
      description = "Port of the server's OpenAI-compatible API.";
    };
    cudaDevice = mkOption {
      type = types.int;
      default = 0;
      description = "GPU the server runs on (CUDA_VISIBLE_DEVICES).";
    };
    gpuMemoryUtilization = mkOption {
      type = types.str;
      default = "0.30";
      description = "Share of the GPU's memory vLLM may take (--gpu-memory-utilization); leave room for the worker and the LLM.";
    };
    maxModelLen = mkOption {
      type = types.ints.positive;
      default = 8192;
      description = "Longest input in tokens (--max-model-len); longer inputs are refused by the server.";
    };
    licence = mkOption {
      type = types.str;
      example = "MIT";
      description = "Licence of the served weights: the guardrails' licence rule reads it from the registry entry.";
    };
    languages = mkOption {
      type = types.str;
      default = "multilingual";
      description = "Languages the model serves well; the heuristic proposer offers it for sets in those languages.";
    };
    dim = mkOption {
      type = types.nullOr types.int;
      default = null;
      description = "Vector dimension (embedders; informational, checked by the fingerprint probe).";
    };
    batchSize = mkOption {
      type = types.ints.positive;
      default = 32;
      description = "Texts (or documents to score) per request from one evolve process.";
    };
    concurrency = mkOption {
      type = types.ints.positive;
      default = 4;
      description = "Requests in flight at once from one evolve process (vLLM batches them on the GPU).";
    };
    revision = mkOption {
      type = types.ints.positive;
      default = 1;
      description = "Raise it when other weights are deliberately deployed under servedName: evolve then takes a new fingerprint instead of refusing the server.";
    };
    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--dtype" "float16" ];
      description = "More arguments for vLLM (its OpenAI server; e.g. --dtype, --max-num-seqs).";
    };
  };

  # the sandbox of every unit here (evolve's and mlflow's): read-only system, only `writable` writable,
  # no capabilities, no devices except the NVIDIA ones for GPU units
  sandbox = { writable, gpu ? false }: {
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ReadWritePaths = writable;
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = !gpu; # GPU units need /dev/nvidia*
    DeviceAllow = optional gpu "char-nvidia-frontend rw" ++ optional gpu "char-nvidia-uvm rw"
      ++ optional gpu "char-nvidia-caps rw";
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictSUIDSGID = true;
    RestrictRealtime = true;
    RestrictNamespaces = true;
    LockPersonality = true;
    SystemCallArchitectures = "native";
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" ];
    UMask = "0027";
  };

  # evolve's units: a dedicated user in the project directory, which is all they may write
  hardening = { gpu ? false }: sandbox { writable = [ cfg.projectDir ]; inherit gpu; } // {
    User = cfg.user;
    Group = cfg.group;
    WorkingDirectory = cfg.projectDir;
    EnvironmentFile = optional (cfg.environmentFile != null) cfg.environmentFile;
    LoadCredential = credentials;
    ReadOnlyPaths = cfg.readOnlyPaths;
  };

  gpuEnvironment = optionalAttrs (cfg.worker.cudaDevice != null) {
    CUDA_VISIBLE_DEVICES = toString cfg.worker.cudaDevice;
  };
in
{
  options.services.evolve = {
    enable = mkEnableOption "evolve, the self-tuning retrieval stack (pick the parts with serve/worker/start/mlflow)";

    package = mkOption {
      type = types.package;
      description = "The evolve package (the flake's `evolve`, or `evolve-cuda` on GPU nodes).";
    };

    user = mkOption {
      type = types.str;
      default = "evolve";
      description = "System user every evolve unit runs as (created by the module).";
    };

    group = mkOption {
      type = types.str;
      default = "evolve";
      description = "Group of that user; members can read the project directory (e.g. reviewers running `evolve review`).";
    };

    projectDir = mkOption {
      type = types.str;
      default = "/var/lib/evolve";
      description = ''
        The project directory: champion.yaml (the approved default), the policy if kept here, the embedding
        cache, the local MLflow store and Optuna SQLite file when no servers are configured, the audit log,
        the agent's checkpoints. The only path the units may write.
      '';
    };

    readOnlyPaths = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "/srv/knowledge/evalsets" ];
      description = "Extra paths the units may read (evaluation sets, the corpus to serve) when outside projectDir.";
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/evolve.env";
      description = ''
        systemd EnvironmentFile for secrets that are part of URLs, e.g.
        `EVOLVE_OPTUNA_STORAGE=postgresql://evolve:PASSWORD@storage:5432/optuna`. Kept out of the Nix store.
      '';
    };

    llm = {
      baseUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "http://127.0.0.1:8000/v1";
        description = ''
          OpenAI-compatible endpoint (vLLM) used as generator, judge and proposer. null: `evolve start` and
          `evolve serve` run a local CPU llama.cpp server themselves (laptops); with none installed, /answer is
          off and /health says why.
        '';
      };
      model = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "qwen2.5-7b-instruct";
        description = "Model name as the endpoint serves it (vLLM's --served-model-name). Judge scores are logged with it.";
      };
      apiKeyFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "File holding the endpoint's API key, if it requires one (vLLM --api-key); evolve reads it as a systemd credential through EVOLVE_LLM_API_KEY_FILE.";
      };
    };

    trackingUri = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "http://storage:5000";
      description = "MLflow tracking (and registry) URI. null: SQLite under projectDir/mlruns (one machine).";
    };

    optunaStorage = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "postgresql://evolve@storage:5432/optuna";
      description = ''
        Optuna storage URL shared by `evolve start` and the workers. null: SQLite in projectDir (one machine).
        Put a URL with a password in environmentFile instead.
      '';
    };

    policyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/etc/evolve/policy.yaml";
      description = ''
        The human-set guardrails policy (guardrails/policy.yaml format). The units can read it, never write
        it: keep it in the Nix store or a root-owned path. null: the packaged default policy.
      '';
    };

    embeddingServer = serverOptions {
      what = "embedding"; port = 8001; task = "/v1/embeddings"; example = "/var/lib/models/bge-m3";
    };

    rerankerServer = serverOptions {
      what = "reranker"; port = 8002; task = "/v1/rerank and /score"; example = "/var/lib/models/bge-reranker-v2-m3";
    };

    models = mkOption {
      type = types.listOf types.attrs;
      default = [ ];
      example = [ { name = "bge-m3@gpu2"; kind = "embedder"; protocol = "openai"; base_url = "http://gpu-node-2:8001/v1";
                    model = "bge-m3"; licence = "MIT"; languages = "multilingual"; } ];
      description = ''
        Entries of the model registry (models.yaml; fields as in evolve's README) for models served on other
        nodes. With this node's embeddingServer / rerankerServer they are written to /etc/evolve/models.yaml,
        which every evolve unit reads (EVOLVE_MODEL_REGISTRY).
      '';
    };

    modelApiKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/model-api-key";
      description = ''
        File with the bearer token of the cluster's model servers: the vLLM servers here require it (VLLM_API_KEY)
        and evolve sends it (EVOLVE_MODEL_API_KEY; registry entries name the variable, never the key).
      '';
    };

    serve = {
      enable = mkEnableOption "`evolve serve`: the champion behind /search, /answer, /feedback, /health";
      corpus = mkOption {
        type = types.str;
        example = "/srv/knowledge/corpus.jsonl";
        description = "Documents to serve: an evaluation-set folder or a corpus.jsonl.";
      };
      host = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Bind address. Anything but loopback needs apiTokenFile (clients send it as a bearer token).";
      };
      port = mkOption {
        type = types.port;
        default = 8400;
        description = "Port of the HTTP API (OpenAPI schema at /docs).";
      };
      apiTokenFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "File with the API token; required when host is not loopback.";
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open the port in the firewall.";
      };
    };

    worker = {
      enable = mkEnableOption "`evolve worker --follow`: run trials of the loop's studies on this node (one per GPU)";
      cudaDevice = mkOption {
        type = types.nullOr types.int;
        default = 0;
        description = "GPU the worker uses (CUDA_VISIBLE_DEVICES); null for a CPU-only worker.";
      };
    };

    start = {
      enable = mkEnableOption "`evolve start` on a timer: the agent loop within a wall-time budget";
      evalset = mkOption {
        type = types.str;
        example = "/srv/knowledge/evalsets/helpdesk";
        description = "Evaluation set the loop tunes on (same path on every node that runs workers).";
      };
      failureSet = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/var/lib/evolve/failures";
        description = "Failure set from `evolve feedback failures`, checked by the guardrails on every candidate.";
      };
      budget = mkOption {
        type = types.str;
        default = "48h";
        example = "10h";
        description = "Wall time of one run (30m, 2h, 48h). A run killed or rebooted resumes with the budget it has left.";
      };
      onCalendar = mkOption {
        type = types.str;
        default = "Fri *-*-* 20:00:00";
        example = "*-*-* 01:00:00";
        description = "systemd calendar event that starts a run (default: Friday night, over the weekend with 48h).";
      };
      trialsPerIteration = mkOption {
        type = types.ints.positive;
        default = 20;
        description = "Optuna trials in each proposed study.";
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--max-iterations" "10" ];
        description = "More arguments for `evolve start`.";
      };
      useGpu = mkOption {
        type = types.bool;
        default = true;
        description = "Let the loop's own trials use this node's GPU.";
      };
    };

    mlflow = {
      enable = mkEnableOption "the MLflow tracking server (UI where reviewers read candidates and guardrail reports)";
      package = mkOption {
        type = types.package;
        default = pkgs.python312.withPackages (ps: [ ps.mlflow ps.psycopg ]);
        defaultText = lib.literalExpression "pkgs.python312.withPackages (ps: [ ps.mlflow ps.psycopg ])";
        description = "Python environment providing the `mlflow` command (with a PostgreSQL driver).";
      };
      backendStoreUri = mkOption {
        type = types.str;
        default = "postgresql+psycopg://mlflow@/mlflow?host=/run/postgresql";
        description = "Where MLflow keeps runs and the model registry.";
      };
      artifactsDir = mkOption {
        type = types.str;
        default = "/var/lib/mlflow/artifacts";
        description = "Artifacts of every node (configs, per-query results, guardrail reports, plots), served by the server.";
      };
      host = mkOption {
        type = types.str;
        default = "0.0.0.0";
        description = "Bind address of the tracking server (keep it on the cluster network).";
      };
      port = mkOption {
        type = types.port;
        default = 5000;
        description = "Port of the tracking server and UI.";
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = !cfg.serve.enable || cfg.serve.host == "127.0.0.1" || cfg.serve.host == "::1"
            || cfg.serve.apiTokenFile != null;
          message = "services.evolve.serve: binding ${cfg.serve.host} needs serve.apiTokenFile";
        }
        {
          assertion = !cfg.worker.enable || cfg.optunaStorage != null || cfg.environmentFile != null;
          message = "services.evolve.worker needs a shared optunaStorage (or EVOLVE_OPTUNA_STORAGE in environmentFile)";
        }
      ];

      users.users.${cfg.user} = {
        isSystemUser = true;
        group = cfg.group;
        home = cfg.projectDir;
        extraGroups = optional cfg.worker.enable "video";
      };
      users.groups.${cfg.group} = { };

      systemd.tmpfiles.rules = [ "d ${cfg.projectDir} 0750 ${cfg.user} ${cfg.group} -" ];

      # reviewers run `evolve review` / `evolve approve` as themselves, with the same settings
      environment.systemPackages = [ cfg.package ];
      environment.variables = removeAttrs environment [ "HOME" ];
    }

    (mkIf (registryEntries != [ ]) {
      # JSON is YAML: evolve validates it like a hand-written models.yaml
      environment.etc."evolve/models.yaml".text = builtins.toJSON { models = registryEntries; };
    })

    (mkIf (enabledServers != [ ]) {
      users.users.vllm = { isSystemUser = true; group = "vllm"; extraGroups = [ "video" ]; };
      users.groups.vllm = { };
      systemd.services = builtins.listToAttrs (map (s: { name = s.unit; value = vllmUnit s; }) enabledServers);
      networking.firewall.allowedTCPPorts = map (s: cfg.${s.part}.port) enabledServers;
    })

    (mkIf cfg.serve.enable {
      systemd.services.evolve-serve = {
        description = "evolve serve: the approved retrieval pipeline";
        wantedBy = [ "multi-user.target" ];
        after = [ "network-online.target" ];
        wants = [ "network-online.target" ];
        inherit environment;
        serviceConfig = hardening { } // {
          ExecStart = withSecrets "serve" (lib.escapeShellArgs [
            evolve "serve" "--corpus" cfg.serve.corpus "--host" cfg.serve.host "--port" (toString cfg.serve.port)
            "--project-dir" cfg.projectDir
          ]);
          Restart = "always";
          RestartSec = 5;
          # open files for `evolve serve --limit-concurrency` (1024 connections by default) beside the index, the
          # models, the feedback store and its snapshots: the default soft limit (1024) is exhausted by sockets alone
          LimitNOFILE = 65536;
        };
      };
      networking.firewall.allowedTCPPorts = optional cfg.serve.openFirewall cfg.serve.port;
    })

    (mkIf cfg.worker.enable {
      systemd.services.evolve-worker = {
        description = "evolve worker: trials of the loop's studies on this node";
        wantedBy = [ "multi-user.target" ];
        after = [ "network-online.target" ];
        wants = [ "network-online.target" ];
        environment = environment // gpuEnvironment;
        serviceConfig = hardening { gpu = cfg.worker.cudaDevice != null; } // {
          ExecStart = withSecrets "worker" (lib.escapeShellArgs [ evolve "worker" "--follow" "--project-dir" cfg.projectDir ]);
          Restart = "always";
          RestartSec = 30;
          Nice = 5;
        };
      };
    })

    (mkIf cfg.start.enable {
      systemd.services.evolve-start = {
        description = "evolve start: the agent loop (${cfg.start.budget})";
        after = [ "network-online.target" ];
        wants = [ "network-online.target" ];
        environment = environment // optionalAttrs cfg.start.useGpu gpuEnvironment;
        serviceConfig = hardening { gpu = cfg.start.useGpu; } // {
          Type = "exec";
          ExecStart = withSecrets "start" (lib.escapeShellArgs ([
            evolve "start" "--budget" cfg.start.budget "--evalset" cfg.start.evalset
            "--trials-per-iteration" (toString cfg.start.trialsPerIteration) "--project-dir" cfg.projectDir
          ] ++ lib.optionals (cfg.start.failureSet != null) [ "--failure-set" cfg.start.failureSet ]
            ++ cfg.start.extraArgs));
          # stop gracefully: ask the loop to end after its trial, then wait for it (it resumes next time)
          ExecStop = pkgs.writeShellScript "evolve-start-stop" ''
            ${evolve} stop --project-dir ${lib.escapeShellArg cfg.projectDir}
            while kill -0 "$MAINPID" 2>/dev/null; do sleep 5; done
          '';
          TimeoutStopSec = "30min";
          # a crash or reboot mid-run: start again, the run resumes from its checkpoint and budget
          Restart = "on-failure";
          RestartSec = 60;
        };
      };
      systemd.timers.evolve-start = {
        description = "Scheduled evolve runs";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnCalendar = cfg.start.onCalendar;
          Persistent = true;
          Unit = "evolve-start.service";
        };
      };
    })

    (mkIf cfg.mlflow.enable {
      systemd.tmpfiles.rules = [ "d ${cfg.mlflow.artifactsDir} 0750 mlflow mlflow -" ];
      users.users.mlflow = { isSystemUser = true; group = "mlflow"; };
      users.groups.mlflow = { };
      systemd.services.mlflow = {
        description = "MLflow tracking server and model registry for evolve";
        wantedBy = [ "multi-user.target" ];
        after = [ "network-online.target" "postgresql.service" ];
        wants = [ "network-online.target" ];
        environment = { MLFLOW_DISABLE_TELEMETRY = "true"; HOME = "/var/lib/mlflow"; };
        serviceConfig = sandbox { writable = [ cfg.mlflow.artifactsDir "/var/lib/mlflow" ]; } // {
          User = "mlflow";
          Group = "mlflow";
          StateDirectory = "mlflow";
          ExecStart = lib.escapeShellArgs [
            "${cfg.mlflow.package}/bin/mlflow" "server" "--backend-store-uri" cfg.mlflow.backendStoreUri
            "--artifacts-destination" cfg.mlflow.artifactsDir "--serve-artifacts"
            "--host" cfg.mlflow.host "--port" (toString cfg.mlflow.port)
          ];
          Restart = "always";
        };
      };
    })
  ]);
}
